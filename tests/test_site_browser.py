"""`asv publish` on a small results set, checked in a real browser (headless Chromium).

A temporary copy of the project gets the release ledger (built offline) and
asv results for its three newest releases (written in asv's results format by
the fixture writer of test_report.py, under the real ledger commit hashes);
`asv publish` builds html/, which is served on 127.0.0.1 and opened in
Chromium's headless mode. asv's pages are rendered by JavaScript, so the
checks read the DOM after the scripts ran (``--dump-dom``):

- the summary grid lists every benchmark;
- one benchmark's graph page draws a flot plot with data points: a small
  page of our own, served next to asv's, opens the graph in a same-origin
  iframe and writes what the plot holds (series, points) into its own DOM;
- the regressions page lists the real step (Softmax on mlx_cpu, +90%).

It also saves a screenshot of the graph page (to the test's temporary folder,
or to $MLX_ASV_SITE_SCREENSHOT). Chromium is Debian's ``chromium`` package:
installed with apt-get when missing (as root), else the test is skipped.
"""

import functools
import http.server
import json
import os
import re
import shutil
import socketserver
import subprocess
import sys
import threading

import pytest

from test_report import COLUMNS, write_results  # noqa: F401 - the fixture writer
from mlx_asv.report import site_assets
from mlx_asv.envs import ledger

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GRAPH = "ops.Softmax.time_op"
RELEASES = ("v0.32.2", "v0.32.3", "v0.32.4")


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def chromium():
    path = find_chromium()
    if path:
        return path
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("no chromium, and apt-get cannot install it here (needs root): "
                    "apt-get update && apt-get install -y chromium")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
        except subprocess.TimeoutExpired:
            pytest.skip(f"{' '.join(cmd)} timed out; install chromium to run this test")
        if proc.returncode != 0:
            pytest.skip(f"{' '.join(cmd)} failed ({proc.stderr.strip().splitlines()[-1:]}); "
                        f"install chromium to run this test")
    path = find_chromium()
    if not path:
        pytest.skip("apt-get install chromium did not provide a chromium binary")
    return path


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """html/ built by `asv publish` from a copy of the project and small results."""
    tmp = tmp_path_factory.mktemp("site")
    for name in ("tools", "mlx_asv"):
        shutil.copytree(os.path.join(ROOT, name), tmp / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(os.path.join(ROOT, "benchmarks"), tmp / "benchmarks",
                    ignore=shutil.ignore_patterns("__pycache__", "data"))
    shutil.copy(os.path.join(ROOT, "asv.conf.json"), tmp / "asv.conf.json")
    built = dict((rel.tag, commit) for rel, commit in
                 ledger.ensure(repo=str(tmp / "ledger"), online=False, log=lambda m: None))
    write_results(tmp / "results", [built[t] for t in RELEASES])
    env = dict(os.environ, MLX_ASV_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-m", "asv", "publish"], cwd=tmp, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    html = tmp / "html"
    index = json.loads((html / "index.json").read_text())
    assert GRAPH in index["benchmarks"] and set(RELEASES) <= set(index["tags"])
    serve_vendored_assets(html, tmp_path_factory.mktemp("asv-sdist"))
    return html


def serve_vendored_assets(html, workdir):
    """asv 0.6's pages load their libraries from CDNs, which this machine (and
    any offline one) cannot reach: reporting/site_assets.py points them at local
    copies, as the main job does."""
    try:
        site_assets.vendor(str(html), cache=str(workdir))
    except site_assets.AssetsError as e:
        pytest.skip(str(e))
    text = (html / "index.html").read_text()
    assert not re.findall(r'<(?:script|link)[^>]*https://[^"]+', text)


@pytest.fixture(scope="module")
def server(site):
    handler = functools.partial(QuietHandler, directory=str(site))
    httpd = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def browse(chromium, tmp_path, url, *extra, budget=10000):
    """Load ``url`` in headless Chromium; return the DOM after its scripts ran
    (or, with ``--screenshot=`` in ``extra``, take the screenshot instead)."""
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
           f"--virtual-time-budget={budget}", *extra]
    if not any(e.startswith("--screenshot") for e in extra):
        cmd.append("--dump-dom")
    cmd.append(url)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


# Opens asv's graph page in a same-origin iframe, waits for flot's plot, and
# writes what it holds into this page's DOM (dumped by --dump-dom).
CHECK_PAGE = """<!doctype html><html><body>
<pre id="check">waiting</pre>
<iframe id="asv" src="index.html#%(graph)s" width="1200" height="800"></iframe>
<script>
var tries = 0;
function look() {
  tries += 1;
  var out = document.getElementById('check');
  try {
    var w = document.getElementById('asv').contentWindow;
    var plot = w.$ && w.$('#main-graph').data('plot');
    if (plot && plot.getData().length) {
      var series = plot.getData(), points = 0, labels = [];
      series.forEach(function (s) {
        s.data.forEach(function (p) { if (p && p[1] !== null && !isNaN(p[1])) points += 1; });
        labels.push(String(s.label || ''));
      });
      var ticks = plot.getAxes().xaxis.ticks.map(function (t) { return String(t.label); });
      out.textContent = JSON.stringify({series: series.length, points: points, labels: labels,
        ticks: ticks, canvases: w.document.querySelectorAll('#main-graph canvas').length});
      return;
    }
  } catch (e) { out.textContent = 'error: ' + e; }
  if (tries < 100) { setTimeout(look, 100); } else { out.textContent = 'timeout'; }
}
setTimeout(look, 100);
</script></body></html>
"""


def test_summary_page_lists_the_benchmarks(chromium, server, tmp_path):
    dom = browse(chromium, tmp_path, server + "/index.html")
    names = set(re.findall(r'id="summarygrid-([^"]+)"', dom))
    assert {"ops.Softmax.time_op", "ops.SumAll.time_op"} <= names, dom[-2000:]
    assert dom.count('class="benchmark-text"') >= 2


def test_graph_renders_data_points(chromium, site, server, tmp_path):
    (site / "_check.html").write_text(CHECK_PAGE % {"graph": GRAPH})
    dom = browse(chromium, tmp_path, server + "/_check.html")
    found = re.search(r'<pre id="check">(.*?)</pre>', dom, re.S)
    assert found, dom[-2000:]
    text = found.group(1).replace("&quot;", '"').replace("&amp;", "&")
    assert text.startswith("{"), text
    state = json.loads(text)
    assert state["canvases"] >= 1
    # Softmax: 2 cases x 3 backends with results; every release of mlx_cpu/torch_cpu is a point
    assert state["series"] >= 4 and state["points"] >= 2 * 2 * len(RELEASES), state


def test_regressions_page_lists_the_step(chromium, site, server, tmp_path):
    regressions = json.loads((site / "regressions.json").read_text())
    # asv finds the fixture's two slowdowns on mlx_cpu (10.5 -> 20 ms, and 1 -> 2 ms that
    # stays), and nothing on the steady torch_cpu rows
    steps = sorted(r[0] for r in regressions["regressions"])
    assert steps == [f"{GRAPH}('dim=64x1000000 axis=-1', 'mlx_cpu')",
                     f"{GRAPH}('dim=8x16 axis=0', 'mlx_cpu')"], regressions
    dom = browse(chromium, tmp_path, server + "/index.html#regressions")
    assert GRAPH in dom and "dim=64x1000000 axis=-1" in dom, dom[-2000:]


def test_screenshot_of_the_graph_page(chromium, server, tmp_path):
    target = os.environ.get("MLX_ASV_SITE_SCREENSHOT") or str(tmp_path / "site.png")
    browse(chromium, tmp_path, f"{server}/index.html#{GRAPH}",
           f"--screenshot={target}", "--window-size=1400,900", "--hide-scrollbars")
    with open(target, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20000


def test_site_assets_is_idempotent_and_clear_on_bad_input(site, tmp_path):
    # the fixture already made html/ load local copies: nothing left to do
    assert site_assets.vendor(str(site), cache=str(tmp_path)) == 0
    with pytest.raises(site_assets.AssetsError, match="index.html not found: run asv publish first"):
        site_assets.vendor(str(tmp_path / "no-html"))


class OneVerdict:
    """Stands in for reporting.sessions.Sessions: one session of two releases
    whose verdict calls one case slower."""

    def __init__(self, before, after, key):
        self.sessions = [("/x/.asv/main/run/rounds.json", {"commits": [before, after]})]
        self.pair, self.key = (before, after), key

    def verdicts(self, before, after):
        if (before, after) != self.pair:
            return {}, None
        v = type("V", (), dict(verdict="slower", ratio=1.11, lo=1.06, hi=1.16, evidence=lambda self: "2+2"))()
        return {self.key: v}, "/x/.asv/main/run"


def test_a_confirmed_slowdown_asv_missed_is_added_and_the_feed_follows_the_page(site, tmp_path):
    from mlx_asv.report import regressions

    saved = {n: (site / n).read_text() for n in ("regressions.json", "regressions.xml")}
    try:
        index = json.loads((site / "index.json").read_text())
        by_tag = {t: index["revision_to_hash"][str(r)] for t, r in index["tags"].items()}
        machine = next(p["machine"] for p in index["graph_param_list"])
        # a case asv did not call a step: the steady torch_cpu row of the fixture
        key = f"{GRAPH}('dim=64x1000000 axis=-1', 'torch_cpu')"
        before, after = by_tag["v0.32.3"], by_tag["v0.32.4"]
        kept, dropped = regressions.filter_regressions(str(site), OneVerdict(before, after, key),
                                                       repo=str(site.parent / "ledger"), machine=machine)
        page = json.loads((site / "regressions.json").read_text())["regressions"]
        added = [e for e in page if e[0] == key]
        assert len(added) == 1 and kept[-1][3].endswith("added"), (kept, page)
        name, path, params, j, last, best, jumps = added[0]
        graph = json.loads((site / path).read_text())
        values = {rev: v[j] for rev, v in graph if v[j] is not None}
        rev_b = int(next(r for r, h in index["revision_to_hash"].items() if h == after))
        assert jumps[0][1] == rev_b and jumps[0][3] == values[rev_b] and best == min(values.values())
        assert jumps[0][0] is None  # v0.32.3 is v0.32.4's parent in the ledger: a step of one commit
        # another machine's graphs, or a pair with a point between: nothing added
        assert regressions.graph_entry(str(site), index, "elsewhere", key, before, after) is None
        assert regressions.graph_entry(str(site), index, machine, key, by_tag["v0.32.2"], after) is None
        # asv's feed, written again from the page: one entry a step listed
        regressions.rewrite_feed(str(site), config=str(site.parent / "asv.conf.json"))
        feed = (site / "regressions.xml").read_text()
        assert feed.count("<entry>") == sum(len(e[6]) for e in page) and "torch_cpu" in feed
    finally:
        for n, text in saved.items():
            (site / n).write_text(text)

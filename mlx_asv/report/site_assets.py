#!/usr/bin/env python3
"""Make the site of `asv publish` work without internet access.

asv 0.6's ``html/index.html`` loads jQuery, flot, bootstrap, md5 and
stupidtable from CDNs: where those can't be reached (offline, a closed
network like this project's machines) the pages stay blank. asv 0.5.1 still
shipped the same libraries in its source package (``asv/www/vendor/``). This
tool takes them from there (one download from the package index, cached in
``.asv/site-assets/``), copies them to ``html/vendor/`` and points
``index.html`` at the local copies. Run it after every ``asv publish``
(the main job of tools/quickstart.py does).

    python reporting/site_assets.py [html]
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile

from mlx_asv import cli

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SDIST = "asv==0.5.1"
CACHE = os.path.join(ROOT, ".asv", "site-assets")
# The CDN file names in asv 0.6's index.html -> the file in asv 0.5.1's www/vendor/.
VENDOR_FILES = {
    "jquery-3.3.1.min.js": "jquery-3.3.1.min.js",
    "jquery.flot.min.js": "jquery.flot-0.8.3.min.js",
    "jquery.flot.time.min.js": "jquery.flot-0.8.3.time.min.js",
    "jquery.flot.selection.min.js": "jquery.flot-0.8.3.selection.min.js",
    "jquery.flot.categories.min.js": "jquery.flot-0.8.3.categories.min.js",
    "jquery.flot.orderBars.js": "jquery.flot.orderBars.js",
    "stupidtable.min.js": "stupidtable.js",
    "md5.min.js": "md5.js",
    "bootstrap.min.css": "bootstrap-3.1.0.min.css",
    "bootstrap.min.js": "bootstrap-3.1.0.min.js",
}
CDN_TAG = re.compile(r'<(script|link)[^>]*?(https://[^"]+)"[^>]*>')


class AssetsError(Exception):
    pass


def fetch_sdist(cache=CACHE):
    """The asv 0.5.1 source package, downloaded once into ``cache``."""
    os.makedirs(cache, exist_ok=True)
    found = [f for f in os.listdir(cache) if f.startswith("asv-") and f.endswith(".tar.gz")]
    if not found:
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
             "-q", "-d", cache, SDIST],
            capture_output=True, text=True, timeout=300,
        )
        found = [f for f in os.listdir(cache) if f.startswith("asv-") and f.endswith(".tar.gz")]
        if proc.returncode != 0 or not found:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise AssetsError(f"could not download {SDIST} for the site's JavaScript ({last}); "
                              f"the site still works where its CDNs can be reached")
    return os.path.join(cache, found[0])


def vendor(html, cache=CACHE):
    """Point ``html/index.html`` at local copies of its CDN libraries. Idempotent."""
    page = os.path.join(html, "index.html")
    try:
        with open(page, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        raise AssetsError(f"{page} not found: run asv publish first") from None
    if not CDN_TAG.search(text):
        return 0
    target = os.path.join(html, "vendor")
    os.makedirs(target, exist_ok=True)
    wanted = set(VENDOR_FILES.values())
    with tarfile.open(fetch_sdist(cache)) as tar:
        for member in tar.getmembers():
            name = member.name.rsplit("/", 1)[-1]
            if "/asv/www/vendor/" in member.name and name in wanted:
                with open(os.path.join(target, name), "wb") as out:
                    out.write(tar.extractfile(member).read())

    def local(match):
        tag, url = match.group(0), match.group(2)
        name = VENDOR_FILES.get(url.rsplit("/", 1)[-1])
        if name is None or not os.path.exists(os.path.join(target, name)):
            return tag
        tag = tag.replace(url, "vendor/" + name)
        # the CDN's integrity hashes don't match the local files' bytes
        return re.sub(r'\s(integrity|crossorigin|referrerpolicy)="[^"]*"', "", tag)

    new, count = CDN_TAG.subn(local, text)
    left = CDN_TAG.findall(new)
    if left:
        raise AssetsError(f"index.html still loads from CDNs: {', '.join(u for _, u in left)}")
    with open(page, "w", encoding="utf-8") as f:
        f.write(new)
    return count


def main(argv=None):
    ap = cli.parser(__doc__, wrap=True)
    ap.add_argument("html", nargs="?", default=os.path.join(ROOT, "html"))
    args = ap.parse_args(argv)
    try:
        count = vendor(args.html)
    except AssetsError as e:
        print(f"site_assets: {e}", file=sys.stderr)
        return 1
    print(f"site_assets: {count} CDN references in {args.html}/index.html now load local copies"
          if count else f"site_assets: {args.html}/index.html already loads local copies")
    return 0


if __name__ == "__main__":
    sys.exit(main())

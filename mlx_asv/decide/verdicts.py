"""Verdicts: slower, faster, same or undecided, each with its evidence.

What is compared
----------------
One benchmark case (a benchmark and one parameter combination) measured on
two sides, a base and a candidate, *in one asv run with interleaved rounds*:
each round runs the case in a fresh process for each side, and the order of
the sides alternates from round to round (base, cand, cand, base, ...), so a
drift of the machine during the run falls on both sides alike. A process
gives a few samples; the observation of that process is the log of the
fastest (see :func:`process_observations`). Absolute times from different runs are never compared this way: the
machines this suite runs on drift by tens of percent over hours.

Why processes, not samples
--------------------------
Samples of one process share its memory layout, its threads' placement and
the load of the machine at that moment, so they scatter less than processes
do. A test over pooled samples (asv's Mann-Whitney) then takes a difference
between two processes for a difference between two builds: that is how the
pinned torch rows came out "1.56x slower". Here the unit is the process, so
the spread between processes is in the error of every estimate.

The test: a moderated t-test (Smyth 2004, the empirical-Bayes test of limma)
----------------------------------------------------------------------------
With two to four processes a side, one case's own variance has two to six
degrees of freedom: far too few to trust alone. The cases of one run on one
backend share the machine, so their variances are alike; the moderated test
estimates a prior variance s0^2 with d0 degrees of freedom from all cases of
the group (a scaled inverse chi-square fitted by moments of log s^2), and
shrinks each case's variance toward it:

    s~^2 = (d0 s0^2 + d s^2) / (d0 + d),   t = delta / (s~ sqrt(1/nb + 1/nc)),   dof = d0 + d

where delta is the difference of the mean observations (log of the ratio of
geometric means). The fit is robust to cases whose processes fall into two
modes (measured here: one process of ops.Concat or LayerNorm 2-6x slower than
the others of the same build): it leaves them out, and such a case keeps its
own variance instead of the prior's (see :func:`priors`, :func:`shrunk`). A case whose own variance is large keeps most of it (wide
interval: undecided), a case with one process a side still gets a variance
(from the prior), and the t quantile is taken at d0 + d degrees of freedom.

The verdicts, from the (1 - alpha) confidence interval [lo, hi] of the ratio
candidate / base:

- ``slower``: lo > 1 + min_effect (a real slowdown of at least min_effect);
- ``faster``: hi < 1 / (1 + min_effect);
- ``same``: the interval lies inside [1 / (1 + same_within), 1 + same_within]:
  any change is smaller than the threshold a regression is judged at;
- ``undecided``: none of these; the interval is too wide. It says how many
  rounds a side would decide it (the interval narrows as 1/sqrt(rounds)).

The error rates of these rules on this machine are measured, not assumed:
``studies/calibrate.py`` runs the gate on a release against itself (A/A) and
with slowdowns injected into the candidate, and writes the false-alarm rate,
the detection rate and each case's minimum detectable effect.

Steps in a release series
-------------------------
:func:`locate_steps` finds the releases at which a case's time steps, over a
series measured in one interleaved run: binary segmentation (split where the
means left and right differ most in t, keep the split if the moderated test
confirms it, recurse on both sides), each step attributed to one release pair.
"""

from __future__ import annotations

import dataclasses
import math
import statistics

import numpy as np
from scipy import special, stats

SLOWER, FASTER, SAME, UNDECIDED = "slower", "faster", "same", "undecided"
VERDICTS = (SLOWER, FASTER, SAME, UNDECIDED)

# The defaults the gate and the report use; studies/calibrate.py measures their
# error rates on the machine it runs on.
ALPHA = 0.001
MIN_EFFECT = 0.02
SAME_WITHIN = 0.10
# The prior's fit leaves out the noisiest quarter of a group's variances, and
# a case whose own variance the prior can't explain (p < OUTLIER_P) keeps it
# (see priors, shrunk). Chosen on recorded calibration rounds and measured:
# README, "Calibration".
PRIOR_TRIM = 0.25
OUTLIER_P = 0.01
# More rounds than this a side are not worth asking for: say so instead.
MAX_ROUNDS = 32
# observations closer than this are equal (timer resolution), so that a case
# with identical process observations does not get a zero variance.
_VAR_FLOOR = 1e-10


def process_observations(runs):
    """The observation of each process: the log of its fastest sample.

    Interference on a shared machine (other jobs, their cache and memory
    traffic) only ever adds time, so within a process the fastest sample is
    the one least disturbed (Chen and Revels 2016, "Robust benchmarking in
    noisy environments"). Interference that lasts a whole process is not
    removed: in an A/A gate of ReLU and Sigmoid run here while two test
    suites shared the 2 cores, one case's 8 process minima still spread 1.1x
    to 38x (medians 1.1x to 50x). That spread is what the test sees, so such
    a run ends "undecided" (it did: 8 of 8), never in a false alarm.

    ``runs`` is a list of sample lists, one per process (round); empty or
    failed processes (None, no samples) are left out.
    """
    out = []
    for samples in runs:
        values = [s for s in (samples or []) if s is not None and s > 0 and math.isfinite(s)]
        if values:
            out.append(math.log(min(values)))
    return out


@dataclasses.dataclass
class Comparison:
    """One case, both sides: per-process sample lists, and its prior group
    (cases whose variances are alike: the backend)."""

    key: str
    base: list
    cand: list
    group: str = ""

    def observations(self):
        return process_observations(self.base), process_observations(self.cand)


@dataclasses.dataclass
class Verdict:
    key: str
    verdict: str
    ratio: float  # candidate / base, ratio of geometric means of the processes' observations
    lo: float  # confidence interval of the ratio
    hi: float
    p: float
    n_base: int  # processes (rounds) a side
    n_cand: int
    dof: float
    sd: float  # moderated per-process standard deviation of log time
    rounds_needed: int | None = None  # per side, for an undecided verdict
    samples_base: int = 0
    samples_cand: int = 0
    group: str = ""
    note: str = ""  # how a sequential confirmation ended (tools/gate.py)

    @property
    def change(self):
        return self.ratio - 1.0

    def evidence(self, alpha=ALPHA):
        return (
            f"{self.n_base}+{self.n_cand} processes ({self.samples_base}+{self.samples_cand} samples), "
            f"moderated t, {100 * (1 - alpha):g}% interval {self.lo:.3f}-{self.hi:.3f}, p={self.p:.2g}"
        )

    def minimum_detectable_effect(self, alpha=ALPHA, power=0.8, min_effect=MIN_EFFECT, rounds=None):
        """The smallest slowdown this case would call ``slower`` with ``power``,
        at ``rounds`` processes a side (default: as measured)."""
        return minimum_detectable_effect(self.sd, self.dof, rounds or self.n_base, rounds or self.n_cand,
                                         alpha=alpha, power=power, min_effect=min_effect)


def minimum_detectable_effect(sd, dof, n_base, n_cand, alpha=ALPHA, power=0.8, min_effect=MIN_EFFECT):
    """Smallest ratio - 1 detected as slower with probability ``power``:
    the interval's lower end must clear log(1 + min_effect), so the true
    log-ratio must exceed it by (q_alpha + q_power) standard errors."""
    if not (sd >= 0 and n_base and n_cand):
        return math.nan
    se = sd * math.sqrt(1.0 / n_base + 1.0 / n_cand)
    q = _t_quantile(1 - alpha / 2, dof)
    z = _t_quantile(power, dof)
    log_ratio = math.log1p(min_effect) + (q + z) * se
    return math.inf if log_ratio > 700 else math.exp(log_ratio) - 1.0  # past a float: no effect is detectable


def _t_quantile(prob, dof):
    if not math.isfinite(dof) or dof > 1e6:
        return float(stats.norm.ppf(prob))
    return float(stats.t.ppf(prob, dof))


def trigamma_inverse(x):
    """y with trigamma(y) = x (Newton's method, as in limma)."""
    if x > 1e7:
        return 1.0 / math.sqrt(x)
    if x < 1e-6:
        return 1.0 / x
    y = 0.5 + 1.0 / x
    for _ in range(50):
        tri = float(special.polygamma(1, y))
        dif = tri * (1 - tri / x) / float(special.polygamma(2, y))
        y += dif
        if -dif / y < 1e-8:
            break
    return y


def fit_prior(variances, dofs):
    """(s0^2, d0): the scaled inverse chi-square that the cases' variances
    ``variances`` (with ``dofs`` degrees of freedom each) are drawn from,
    by moments of log s^2 (Smyth 2004, section 6.2). d0 is inf where the
    variances scatter no more than sampling alone would make them."""
    pairs = [(max(v, _VAR_FLOOR), d) for v, d in zip(variances, dofs) if d > 0 and v is not None]
    if not pairs:
        return math.nan, 0.0
    s2 = np.array([p[0] for p in pairs])
    d = np.array([float(p[1]) for p in pairs])
    e = np.log(s2) - special.digamma(d / 2) + np.log(d / 2)
    emean = float(e.mean())
    if len(e) < 2:
        return math.exp(emean), 0.0
    evar = float(((e - emean) ** 2).sum() / (len(e) - 1) - special.polygamma(1, d / 2).mean())
    if evar <= 0:
        return math.exp(emean), math.inf
    d0 = 2 * trigamma_inverse(evar)
    s0sq = math.exp(emean + float(special.digamma(d0 / 2)) - math.log(d0 / 2))
    return s0sq, d0


def _pooled(groups_of_obs):
    """(variance, dof) pooled over the groups of observations (one group per side or release)."""
    ss, dof = 0.0, 0
    for obs in groups_of_obs:
        if len(obs) > 1:
            m = sum(obs) / len(obs)
            ss += sum((y - m) ** 2 for y in obs)
            dof += len(obs) - 1
    return (ss / dof if dof else None), dof


# Public names of the two helpers other modules use (the gate, the studies).
t_quantile = _t_quantile
pooled = _pooled


def shrunk(variance, dof, prior, outlier_p=None):
    """(variance, dof) of a case for its test: moderated toward its group's
    prior, unless its own variance is larger than the prior makes plausible
    (p < ``outlier_p``, default OUTLIER_P, an F test, or chi-square where d0
    is infinite): such a case (processes in two modes) keeps its own variance
    and degrees of freedom, so its interval stays as wide as its data."""
    if _implausible(variance, dof, prior, outlier_p):
        return moderate(variance, dof, (prior[0], 0.0))
    return moderate(variance, dof, prior)


def _implausible(variance, dof, prior, outlier_p=None):
    """True where ``variance`` (with ``dof``) is larger than the prior makes
    plausible: p < outlier_p (default OUTLIER_P)."""
    outlier_p = OUTLIER_P if outlier_p is None else outlier_p
    s0sq, d0 = prior
    if variance is None or not dof or not d0 or not s0sq or not math.isfinite(s0sq):
        return False
    ratio = max(variance, _VAR_FLOOR) / s0sq
    p = float(stats.chi2.sf(dof * ratio, dof) if math.isinf(d0) else stats.f.sf(ratio, dof, d0))
    return p < outlier_p


def moderate(variance, dof, prior):
    """(moderated variance, its degrees of freedom)."""
    s0sq, d0 = prior
    if variance is None or dof == 0:
        return s0sq, d0
    variance = max(variance, _VAR_FLOOR)
    if math.isinf(d0):
        return s0sq, math.inf
    if not d0 or not math.isfinite(s0sq):
        return variance, dof
    return (d0 * s0sq + dof * variance) / (d0 + dof), d0 + dof


def priors(cases, trim=None):
    """{group: prior} from the within-side variances of ``cases`` (each a
    list of observation groups, with its group name).

    The fit leaves out the noisiest ``trim`` share of each group's variances
    (default PRIOR_TRIM): a few cases whose processes fall into two modes (one
    process 2-6x slower than the others) would otherwise make the variances
    look so dispersed that the fitted d0 is 1-3, and every case of the group,
    however quiet, gets a t quantile at 3-6 degrees of freedom. The cases
    left out are not forgotten: :func:`shrunk` keeps the own variance of a
    case whose variance the prior can't explain.

    A group name may be refined with '|' (``mlx_cpu|-3``: a backend and the
    decade of the case's time): a refined group with too few cases to fit a
    prior of its own takes its backend's, and that one the whole run's. The
    noise of a case depends on both (sub-millisecond calls scatter most), so
    the finer prior keeps a quiet case's interval narrow."""
    fits = {}
    members = {}
    for obs_groups, group in cases:
        vd_ = _pooled(obs_groups)
        for name in _ancestors(group):
            members.setdefault(name, []).append(vd_)
    trim = PRIOR_TRIM if trim is None else trim
    for name, vds in members.items():
        usable = sorted(((v, d) for v, d in vds if d > 0 and v is not None), key=lambda vd_: vd_[0])
        if len(usable) >= 5:
            # A first fit without the noisiest share names the variances it
            # can't explain; the prior is then fitted on all the others (a
            # fit on the trimmed share alone would put s0 too low where the
            # variances are all alike).
            keep = max(5, int(round(len(usable) * (1.0 - trim))))
            first = fit_prior(*zip(*usable[:keep]))
            plausible = [(v, d) for v, d in usable if not _implausible(v, d, first)]
            fits[name] = fit_prior(*zip(*plausible)) if len(plausible) >= 5 else first
    overall = fits.get("", (math.nan, 0.0))
    fitted = {}
    for _, group in cases:
        fitted[group] = next((fits[n] for n in _ancestors(group) if n in fits), overall)
    return fitted


def prior_group(backend, base_runs):
    """'mlx_cpu|-2': a case's backend and the decade of its base time (10-100 ms
    here), the group its prior is fitted in (see :func:`priors`)."""
    obs = process_observations(base_runs or [])
    return f"{backend}|{math.floor(min(obs) / math.log(10)) if obs else '?'}"


def _ancestors(group):
    """'mlx_cpu|-3' -> ['mlx_cpu|-3', 'mlx_cpu', '']: the finest group first."""
    parts = group.split("|") if group else []
    return ["|".join(parts[:i]) for i in range(len(parts), 0, -1)] + [""]


def _prior_of(prior, group):
    return next((prior[n] for n in _ancestors(group) if n in prior), None) or next(iter(prior.values()))


def decide(comparisons, alpha=ALPHA, min_effect=MIN_EFFECT, same_within=SAME_WITHIN, prior=None):
    """A :class:`Verdict` for each :class:`Comparison` (same order).

    ``prior`` ({group: (s0^2, d0)}) defaults to the one fitted on these
    comparisons; pass one fitted on a larger run to decide a few re-measured
    cases with it.
    """
    observed = [c.observations() for c in comparisons]
    if prior is None:
        prior = priors([(obs, c.group) for obs, c in zip(observed, comparisons)])
    out = []
    margin = math.log1p(min_effect)
    bound = math.log1p(same_within)
    for c, (yb, yc) in zip(comparisons, observed):
        nb, nc = len(yb), len(yc)
        samples = (sum(len(r or []) for r in c.base), sum(len(r or []) for r in c.cand))
        if not nb or not nc:
            out.append(Verdict(c.key, UNDECIDED, math.nan, math.nan, math.nan, math.nan, nb, nc,
                               0, math.nan, None, *samples, c.group))
            continue
        v, d = _pooled([yb, yc])
        var, dof = shrunk(v, d, _prior_of(prior, c.group))
        delta = sum(yc) / nc - sum(yb) / nb
        if not (var >= 0) or (dof == 0):
            out.append(Verdict(c.key, UNDECIDED, math.exp(delta), math.nan, math.nan, math.nan, nb, nc,
                               dof, math.nan, None, *samples, c.group))
            continue
        sd = math.sqrt(var)
        out.append(_judged(c.key, delta, sd, dof, nb, nc, alpha, margin, bound, samples, c.group))
    return out


def _judged(key, delta, sd, dof, nb, nc, alpha, margin, bound, samples, group):
    """The Verdict of an estimated log ratio ``delta`` with per-side ``sd``
    (``dof`` degrees of freedom) over ``nb`` and ``nc`` observations: the
    interval at ``alpha``, its p, and the thresholds of :func:`decide`."""
    se = sd * math.sqrt(1.0 / nb + 1.0 / nc)
    q = _t_quantile(1 - alpha / 2, dof)
    lo, hi = delta - q * se, delta + q * se
    t = delta / se if se > 0 else math.copysign(math.inf, delta) if delta else 0.0
    p = float(2 * (stats.norm.sf(abs(t)) if math.isinf(dof) else stats.t.sf(abs(t), dof)))
    needed = None
    if lo > margin:
        verdict = SLOWER
    elif hi < -margin:
        verdict = FASTER
    elif lo > -bound and hi < bound:
        verdict = SAME
    else:
        verdict = UNDECIDED
        needed = rounds_to_decide(delta, sd, q, margin, bound)
    # An interval from one degree of freedom at the gate's alpha can reach
    # past what a float holds: its end is infinite, not an error.
    return Verdict(key, verdict, math.exp(delta), math.exp(max(lo, -700.0)), math.exp(min(hi, 700.0)), p, nb, nc,
                   dof, sd, needed, *samples, group)


def paired_priors(cases, trim=None):
    """{group: prior} for :func:`decide_paired`, from ``cases`` ({key:
    (observations, group)}): each case's variance of its pairs' observations
    (n - 1 degrees of freedom), fitted as :func:`priors` fits."""
    return priors([([obs], group) for obs, group in cases.values()], trim=trim)


def decide_paired(cases, alpha=ALPHA, min_effect=MIN_EFFECT, same_within=SAME_WITHIN, prior=None):
    """{key: Verdict} from paired observations: ``cases`` is {key:
    (observations, group)}, each observation the log ratio candidate / base
    of one pair of processes measured side by side (studies/paired.py).

    A one-sample moderated t-test of their mean (the variance between pairs
    shrunk toward the group's prior, as :func:`decide` does between
    processes), with :func:`decide`'s thresholds. A Verdict's ``sd`` is
    per side (the pairs' sd / sqrt 2), so that its interval, minimum
    detectable effect and rounds to decide, which take sd sqrt(2 / n), are
    those of n pairs; ``n_base`` = ``n_cand`` = pairs.
    """
    if prior is None:
        prior = paired_priors(cases)
    margin = math.log1p(min_effect)
    bound = math.log1p(same_within)
    out = {}
    for key, (obs, group) in cases.items():
        n = len(obs)
        if not n:
            out[key] = Verdict(key, UNDECIDED, math.nan, math.nan, math.nan, math.nan, 0, 0, 0, math.nan,
                               group=group)
            continue
        mean = sum(obs) / n
        own, dof = _pooled([obs])
        var, dof = shrunk(own, dof, _prior_of(prior, group))
        if not (var >= 0) or dof == 0:
            out[key] = Verdict(key, UNDECIDED, math.exp(mean), math.nan, math.nan, math.nan, n, n, dof, math.nan,
                               group=group)
            continue
        # sd per side: sd sqrt(1/n + 1/n) is then the pairs' sd / sqrt n.
        out[key] = _judged(key, mean, math.sqrt(var / 2), dof, n, n, alpha, margin, bound, (n, n), group)
    return out


def rounds_to_decide(delta, sd, q, margin, bound):
    """Processes a side after which the interval, as narrow as q sd sqrt(2/n),
    would decide the current estimate (a change, or 'same'); None if more
    than MAX_ROUNDS."""
    gaps = [g for g in (abs(delta) - margin, bound - abs(delta)) if g > 0]
    if not gaps or sd <= 0:
        return None
    n = math.ceil(2 * (q * sd / max(gaps)) ** 2)
    return max(n, 2) if n <= MAX_ROUNDS else None


# The work verdict's thresholds, from the A/A spread of counts measured
# between processes of one build (docs/instructions.md: at most 0.27% for the
# cases of 1 M instructions or more, up to 2.7% below): "same" within 1%
# there, within 5% below.
WORK_LARGE = 1_000_000
WORK_SAME_WITHIN = 0.01
WORK_SAME_WITHIN_SMALL = 0.05
# Implementations whose counts scatter between processes of one build past
# those: metal_kernels.py's pure-MLX compositions (ours_mlx_cpu) differed by
# up to 3.6% between two runs of one build, 7 of their 82 comparisons past 1%,
# the function that moved most glibc's _int_malloc (docs/work-verdicts.md,
# "The kernel suites' CPU cases": `python tools/instructions.py --power RUN1 RUN2`).
# Their work is "same" within twice that, as a small case's 5% is about twice
# its 2.6%; chosen on that A/A, with no second one to check it.
WORK_UNSTEADY_BACKENDS = ("ours_mlx_cpu",)
WORK_SAME_WITHIN_UNSTEADY = 0.08


# A work verdict's words: a count is work, not speed (more instructions is
# what "slower" means for time); "undecided" where processes of one side
# disagreed past the threshold.
WORK_WORDS = {SLOWER: "more", FASTER: "fewer", SAME: "same", UNDECIDED: "undecided"}


def work_word(verdict):
    """The work verdict's word for ``verdict`` (failed/skipped stay as they are)."""
    return WORK_WORDS.get(verdict, verdict)


def work_threshold(count, key=""):
    """The work verdict's ``min_effect`` for a call of ``count`` instructions
    of the case ``key`` (its asv name, which ends in its backend)."""
    if any(key.endswith(f"'{backend}')") for backend in WORK_UNSTEADY_BACKENDS):
        return WORK_SAME_WITHIN_UNSTEADY
    return WORK_SAME_WITHIN if count >= WORK_LARGE else WORK_SAME_WITHIN_SMALL


def decide_counts(key, base, cand, min_effect=None, group=""):
    """The :class:`Verdict` of a case's *instruction counts* (tools/instructions.py).

    ``base`` and ``cand`` are lists of counts, one per measured call (every
    call of every process of that side). An instruction count does not
    depend on the machine's load, so there is no sampling error to estimate
    and no test: the interval is the range of every ratio the counts allow,
    min(cand) / max(base) to max(cand) / min(base). A case whose counts are
    the same from call to call gets a point; one whose counts vary (work
    that depends on timing: threads waiting by spinning) gets a wide range,
    and the verdict says so. The rule is the time verdicts' own, with the
    range for the interval and ``min_effect`` for both thresholds:
    ``slower`` (more instructions) if the range lies above 1 + min_effect,
    ``faster`` below 1 / (1 + min_effect), ``same`` inside those two,
    ``undecided`` otherwise. Its false alarms between processes of one
    build are measured (docs/instructions.md). ``min_effect`` None: by the
    base's size and the case's backend, ``work_threshold``.
    """
    base = [c for c in base if c and c > 0]
    cand = [c for c in cand if c and c > 0]
    nb, nc = len(base), len(cand)
    if not nb or not nc:
        return Verdict(key, UNDECIDED, math.nan, math.nan, math.nan, math.nan, nb, nc, 0, math.nan,
                       None, nb, nc, group, note="no counts")
    if min_effect is None:
        min_effect = work_threshold(statistics.median(base), key)
    ratio = statistics.median(cand) / statistics.median(base)
    lo, hi = min(cand) / max(base), max(cand) / min(base)
    spread = max(max(base) / min(base), max(cand) / min(cand)) - 1.0
    if lo > 1 + min_effect:
        verdict = SLOWER
    elif hi < 1 / (1 + min_effect):
        verdict = FASTER
    elif lo >= 1 / (1 + min_effect) and hi <= 1 + min_effect:
        verdict = SAME
    else:
        verdict = UNDECIDED
    note = f"counts vary by {100 * spread:.2g}% on one side" if spread > min_effect / 2 else ""
    return Verdict(key, verdict, ratio, lo, hi, math.nan, nb, nc, math.nan, spread, None, nb, nc, group,
                   note=note)


def summary(verdicts):
    """{verdict: count}, every verdict present."""
    counts = {v: 0 for v in VERDICTS}
    for v in verdicts:
        counts[v.verdict] += 1
    return counts


# --------------------------------------------------------------------------
# Steps in a release series
# --------------------------------------------------------------------------


@dataclasses.dataclass
class Step:
    key: str
    before: str  # the release pair the step lies between
    after: str
    ratio: float  # mean of the segment after / mean of the segment before
    lo: float
    hi: float
    p: float

    @property
    def verdict(self):
        return SLOWER if self.ratio > 1 else FASTER


def locate_steps(series, alpha=ALPHA, min_effect=MIN_EFFECT, priors_by_group=None):
    """Steps of each case over a release series measured in one run.

    ``series`` is ``{key: (group, [(release, runs), ...])}`` in release order
    (runs: sample lists, one per process). Returns ``{key: [Step, ...]}``.
    The per-split level is alpha divided by the number of splits tried in
    the segment (Bonferroni), so a longer series does not raise the
    false-alarm rate of a case.
    """
    obs = {key: (group, [(rel, process_observations(runs)) for rel, runs in points])
           for key, (group, points) in series.items()}
    if priors_by_group is None:
        priors_by_group = priors([([o for _, o in pts], group) for group, pts in obs.values()])
    margin = math.log1p(min_effect)
    found = {}
    for key, (group, points) in obs.items():
        points = [(rel, o) for rel, o in points if o]
        v, d = _pooled([o for _, o in points])
        var, dof = shrunk(v, d, _prior_of(priors_by_group, group))
        steps = []
        if var and var > 0 and dof:
            _segment(key, points, 0, len(points), math.sqrt(var), dof, alpha, margin, steps)
        found[key] = sorted(steps, key=lambda s: [r for r, _ in points].index(s.after))
    return found


def _segment(key, points, a, b, sd, dof, alpha, margin, steps):
    if b - a < 2:
        return
    best = None
    for k in range(a + 1, b):
        left = [y for _, o in points[a:k] for y in o]
        right = [y for _, o in points[k:b] for y in o]
        delta = sum(right) / len(right) - sum(left) / len(left)
        se = sd * math.sqrt(1 / len(left) + 1 / len(right))
        t = delta / se
        if best is None or abs(t) > abs(best[1]):
            best = (k, t, delta, se)
    k, t, delta, se = best
    level = alpha / (b - a - 1)
    q = _t_quantile(1 - level / 2, dof)
    lo, hi = delta - q * se, delta + q * se
    if lo > margin or hi < -margin:
        p = float(min(1.0, 2 * stats.t.sf(abs(t), dof) * (b - a - 1))) if math.isfinite(dof) else \
            float(min(1.0, 2 * stats.norm.sf(abs(t)) * (b - a - 1)))
        steps.append(Step(key, points[k - 1][0], points[k][0], math.exp(delta), math.exp(lo), math.exp(hi), p))
        _segment(key, points, a, k, sd, dof, alpha, margin, steps)
        _segment(key, points, k, b, sd, dof, alpha, margin, steps)

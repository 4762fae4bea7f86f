"""Transformer inference latency, as in the MLX-Transformers paper (seed 004).

One table, ``Inference.time_forward``: 4 models x 4 input lengths x 3 batch
sizes = 48 cases, on each backend of ``BACKENDS`` (mlx_cpu, mlx_gpu,
torch_cpu, torch_cuda, torch_mps)::

    model                hidden layers heads interm.  vocab  max pos  types  ln eps  pad
    bert-base-uncased       768     12    12   3072   30522     512      2   1e-12    0
    bert-large-uncased     1024     24    16   4096   30522     512      2   1e-12    0
    roberta-base            768     12    12   3072   50265     514      1   1e-05    1
    xlm-roberta-base        768     12    12   3072  250002     514      1   1e-05    1

    length (characters)  50, 100, 200, 500    batch  1, 16, 32

What is timed: one forward pass to the last hidden state (no pooler), in
inference mode, evaluated before the clock stops:

- MLX: ``transformer_mlx.Encoder``, which has no dropout layers (and is in
  ``eval()``), called through ``Backend.timed``, which runs ``mx.eval`` on the
  output inside the timed region (MLX is lazy: an unevaluated output would
  time only the graph construction);
- torch: the ``transformers`` model after ``model.eval()``, called inside
  ``torch.inference_mode()``; ``Backend.timed`` synchronizes CUDA/MPS
  inside the timed region.

Attention: torch runs transformers' "sdpa" implementation (the fused
``F.scaled_dot_product_attention``; pinned in ``model_inputs.ATTENTION``).
MLX runs matmul, softmax, matmul written out, the same graph on every
release: ``mx.fast.scaled_dot_product_attention`` exists only in later
releases and would make the series jump there for another reason than
MLX's speed.

Both frameworks compute with the same weights: the torch model is built
(seeded random init, or a local checkpoint: see ``model_inputs``) and the MLX
model is converted from it (``transformer_mlx.from_torch``). Building,
conversion and tokenization happen in ``setup``, outside the timed region, and
once per process: asv_runner >= 0.3 calls setup before every sample, so the
model is cached per (model, backend) and the inputs per case
(``common.cached``). A small forward pass when the model is built warms up
one-time costs (MLX's compiled GELU, kernel JIT, torch's first-call paths).
For MLX and GPU backends the drawn weights are kept on disk, beside the
input cache, by the first process that draws them, and loaded bit for bit
by the next cases' processes (``weights_cache``).

Inputs (``model_inputs``): paragraphs of the shipped corpus cut to the
length, space-padded when short, tokenized offline by each family's kind of
tokenizer, padded to the longest in the batch. Tokens per sequence (padded
width) / non-padding tokens of the whole batch, with the shipped tokenizers;
``Tokens.track_tokens`` and ``Tokens.track_real_tokens`` record them, so a
tokenizer change shows in the results::

    model / chars        batch 1     batch 16     batch 32
    bert-*   50          13 / 13     15 / 214     18 / 434
    bert-*  100          24 / 24     26 / 386     31 / 774
    bert-*  200          44 / 44     48 / 724     53 / 1446
    bert-*  500         112 / 112   115 / 1711   115 / 3442
    roberta  50          14 / 14     16 / 220     18 / 439
    roberta 100          24 / 24     26 / 389     31 / 777
    roberta 200          44 / 44     49 / 729     53 / 1454
    roberta 500         112 / 112   248 / 1881   248 / 3612
    xlm-r    50          16 / 16     21 / 287     23 / 586
    xlm-r   100          33 / 33     41 / 546     41 / 1099
    xlm-r   200          58 / 58     73 / 1051    73 / 2121
    xlm-r   500         154 / 154   174 / 2563   179 / 5212

(bert-base and bert-large share the WordPiece tokenizer. roberta at 500
characters, batch >= 16: paragraph 10 is 327 characters, and byte-level BPE
makes one token of each of its 173 padding spaces, as the paper's rule of
padding with spaces does with a BPE vocabulary that has no merges of spaces;
WordPiece and XLM-R's normalizer drop them.)

Budget (2-core Linux CPU, this project's machine): MLX's Linux CPU wheel
multiplies with the reference BLAS it bundles, far slower than torch's. Measured
end to end on MLX 0.32.4 with::

    MLX_ASV_BACKENDS=mlx_cpu asv run --launch-method forkserver --record-samples -b "^models\\.Inference[^(]*\\(.*'mlx_cpu'\\)$" v0.32.4^!

the 48 mlx_cpu cases took 61 minutes (57.8 of them in timed calls; one
forward from 0.54 s, bert-base 50 characters x 1, to 562 s, bert-large 500 x
32: ``python reporting/report.py -b Inference --backends mlx_cpu`` lists
them), and the same command with ``torch_cpu`` 5 min 51 s (README,
"Measured here"). Each case is therefore sampled by time, not count:
``number = 1``; a warm-up of at least one call
(``warmup_time``); then samples until ``repeat[2]`` seconds have passed (at
most ``repeat[1]`` samples). With ``min_run_count = 1``, a case whose single
call outlasts ``warmup_time + repeat[2]`` keeps that one call as its only
sample (asv_runner returns the warm-up call; the build-time warm-up has
taken the one-time costs out of it): most mlx_cpu cases (the run above's
results show which: one sample), so their results carry no spread.
``asv run --quick`` (one call per case) saves little, since the time is in the long mlx_cpu calls. ``rounds = 1``: one
process per case, so each model is built once per case. ``timeout`` (per
case, 2400 s) leaves room for the slowest mlx_cpu case (bert-large, 500
characters x 32: 562 s) on a busy machine. Narrow a run with
``MLX_ASV_BACKENDS`` and asv's ``-b``.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys

from .lib import model_inputs as mi
from .common import BACKENDS, backend, cached, check_mlx_release, input_cache_dir, profile_event, require_mlx, torch

# As common.py does for the frameworks: in asv's forkserver, import the
# transformers classes once in the server, not in each per-case process.
# $MLX_ASV_PRELOAD_MODELS=0 skips that where a run selects no models.py case
# (mlx_asv/gpu/gpu_asv.sh sets it from its regex): the server then starts
# without importing transformers, which nothing of such a run uses.
if len(sys.argv) > 1 and sys.argv[1] == "run_server" and os.environ.get(mi.PRELOAD_ENV, "1") != "0":
    mi.preload()

MODELS = mi.MODELS
LENGTHS = list(mi.LENGTHS)
BATCHES = list(mi.BATCHES)
MODEL_BACKENDS = [b for b in BACKENDS if b != "mlx_gpu_compile"]


def _require_reference():
    """The weights come from transformers models: torch and transformers are
    needed, in versions that work together."""
    for module in ("torch", "transformers"):
        if importlib.util.find_spec(module) is None:
            raise NotImplementedError(f"model weights are built with transformers: {module} is not installed")
    why = transformers_torch_mismatch()
    if why:
        raise NotImplementedError(why)


@functools.lru_cache(maxsize=None)
def transformers_torch_mismatch(version=None, requires=None):
    """None, or the one line saying that the installed transformers can't run
    with the installed torch: transformers' own metadata names the lowest torch
    it works with (its ``torch`` extra; 5.x: ``torch>=2.6``), and below it
    transformers disables torch (its models can't be built). The torch matrix
    (asv.torch.conf.json) meets this with old torch versions: every case of
    this module is then skipped with this reason. ``version(dist)`` and
    ``requires(dist)`` default to importlib.metadata's (tests pass others)."""
    from importlib import metadata

    from packaging.requirements import Requirement

    version = version or metadata.version
    requires = requires or metadata.requires
    try:
        have_transformers, have_torch = version("transformers"), version("torch")
    except metadata.PackageNotFoundError:
        return None  # _require_reference names what is missing
    for line in requires("transformers") or ():
        req = Requirement(line)
        if req.name != "torch" or (req.marker is not None and not req.marker.evaluate({"extra": "torch"})):
            continue
        if not req.specifier.contains(have_torch.split("+")[0], prereleases=True):
            return (f"transformers {have_transformers} needs torch{req.specifier} (its 'torch' extra; it "
                    f"disables an older torch), and this environment has torch {have_torch}: the models "
                    f"can't be built")
    return None


class Built:
    """A model ready to time on one backend: the model and where its weights came from."""

    def __init__(self, model, source, spec):
        self.model = model
        self.source = source
        self.spec = spec


def build(name, be, small=False):
    """The model ``name`` on backend ``be``, in inference mode, warmed up.

    The torch model is built first (weights), then moved to the backend's
    device, or converted to MLX and dropped.
    """
    _require_reference()
    if be.is_mlx:
        from .lib import transformer_mlx

        require_mlx(transformer_mlx.MIN_MLX, "the MLX transformer encoders")
    profile_event("build")
    s = mi.spec(name, small)
    torch_model, source = mi.build_torch_model(s, cache=weights_cache(be, small))
    profile_event("inputs")
    if be.is_mlx:
        be.activate()
        model = transformer_mlx.from_torch(torch_model)
        del torch_model
    else:
        model = torch_model.to(be.device)
    profile_event("on_device")
    built = Built(model, source, s)
    warm = be.arrays(_inputs(name, 50, 1))
    be.timed(forward(built, be), *warm)()
    return built


def weights_cache(be, small=False):
    """Where drawn weights are kept between processes (``mi.build_torch_model``'s
    ``cache``): beside the input cache, for the full-size models of backends
    that copy the weights anyway (MLX converts them; torch moves them to a
    GPU). None elsewhere: a torch CPU model runs on the tensors it was built
    with, and those stay freshly drawn."""
    if small or not (be.is_mlx or be.copies_to_device):
        return None
    return input_cache_dir()


def forward(built, be):
    """The forward pass, in inference mode, as a function of (input_ids, attention_mask)."""
    model = built.model
    if be.is_mlx:
        if model.training:
            raise RuntimeError("the MLX model must be in eval() mode")
        return model
    t = torch()
    if model.training:
        raise RuntimeError("the torch model must be in eval() mode")

    def call(input_ids, attention_mask):
        with t.inference_mode():
            return model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    return call


def _inputs(name, length, batch):
    enc = mi.encode(name, length, batch)
    return [enc["input_ids"], enc["attention_mask"]]


def model(name, backend_name, small=False):
    """The model of ``name`` on ``backend_name``, built once per process."""
    be = backend(backend_name)
    return cached((__name__, "model", name, backend_name, small), lambda: build(name, be, small))


def forward_callable(name, length, batch, backend_name, small=False):
    """The timed callable of one case: one forward pass, evaluated/synchronized.

    ``small`` gives the same case on the toy-sized model of the same family
    (tests). Cached per process, like the model it calls.
    """
    profile_event("setup", bench="Inference", case=f"{name} {length} {batch}", backend=backend_name)
    check_mlx_release()  # under asv: the installed MLX is the results' release
    be = backend(backend_name)  # NotImplementedError: asv shows the case as skipped

    def make():
        built = model(name, backend_name, small)
        fn = be.timed(forward(built, be), *be.arrays(_inputs(name, length, batch)))
        profile_event("built")
        return fn

    fn = cached((__name__, "forward", name, length, batch, backend_name, small), make)
    be.activate()  # the cache may hold callables of several backends
    return fn


class Inference:
    """Times one forward pass of an encoder to its last hidden state (MLX / transformers).

    Forward-pass latency of the four encoders (seed 004, appendix C)."""

    params = [list(MODELS), LENGTHS, BATCHES, MODEL_BACKENDS]
    param_names = ["model", "length", "batch", "backend"]

    # Toy-sized models of the same families (tests only).
    small = False

    # Sampling by time, for cases from milliseconds (GPU) to ~15 minutes
    # (mlx_cpu bert-large 500 x 32): see the module docstring.
    number = 1
    warmup_time = 0.5
    repeat = (1, 5, 10.0)
    min_run_count = 1
    rounds = 1
    timeout = 2400

    def setup(self, model, length, batch, backend):
        self.fn = forward_callable(model, length, batch, backend, small=self.small)

    def time_forward(self, model, length, batch, backend):
        self.fn()


class Tokens:
    """Records the token counts of each case's input (nothing is timed).

    Framework-independent: a change of the shipped tokenizers shows here."""

    params = [list(MODELS), LENGTHS, BATCHES]
    param_names = ["model", "length", "batch"]
    unit = "tokens"
    timeout = 120

    def track_tokens(self, model, length, batch):
        """Tokens per sequence: the padded width the model runs on."""
        return int(mi.encode(model, length, batch)["input_ids"].shape[1])

    def track_real_tokens(self, model, length, batch):
        """Non-padding tokens of the whole batch."""
        return int(mi.encode(model, length, batch)["attention_mask"].sum())

"""Tests of the transformer benchmarks (benchmarks/models.py).

Parity of the MLX encoders with transformers goes through the very callables
that asv times (``models.forward_callable``): the same building, conversion,
tokenization and evaluation code. The toy-sized models (``small=True``) keep
each family's vocabulary, positions and tokenizer; one test runs a full-size
model (``-m slow`` selects it, ``-m "not slow"`` leaves it out).
"""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import gpu_parity as gpu
from benchmarks.lib.timing import call_seconds

from benchmarks import common, models
from benchmarks.lib import model_inputs as mi

HAVE_MLX = common.mlx() is not None
HAVE_TORCH = common.torch() is not None and importlib.util.find_spec("transformers") is not None
needs_mlx = pytest.mark.skipif(not HAVE_MLX, reason="MLX is not installed")
needs_torch = pytest.mark.skipif(not HAVE_TORCH, reason="torch/transformers are not installed")
needs_both = pytest.mark.skipif(not (HAVE_MLX and HAVE_TORCH), reason="needs MLX, torch and transformers")

ARCHITECTURES = ["bert-base-uncased", "roberta-base", "xlm-roberta-base"]
ATOL = 1e-4  # max abs difference of last hidden states, float32

# (model, length, batch) -> (tokens per sequence, non-padding tokens of the
# batch) with the shipped tokenizers: the table of models.py's docstring.
TOKEN_TABLE = {
    ("bert", 50): [(13, 13), (15, 214), (18, 434)],
    ("bert", 100): [(24, 24), (26, 386), (31, 774)],
    ("bert", 200): [(44, 44), (48, 724), (53, 1446)],
    ("bert", 500): [(112, 112), (115, 1711), (115, 3442)],
    ("roberta", 50): [(14, 14), (16, 220), (18, 439)],
    ("roberta", 100): [(24, 24), (26, 389), (31, 777)],
    ("roberta", 200): [(44, 44), (49, 729), (53, 1454)],
    ("roberta", 500): [(112, 112), (248, 1881), (248, 3612)],
    ("xlm-roberta", 50): [(16, 16), (21, 287), (23, 586)],
    ("xlm-roberta", 100): [(33, 33), (41, 546), (41, 1099)],
    ("xlm-roberta", 200): [(58, 58), (73, 1051), (73, 2121)],
    ("xlm-roberta", 500): [(154, 154), (174, 2563), (179, 5212)],
}


def expected_tokens(name, length, batch):
    return TOKEN_TABLE[mi.SPECS[name].family, length][mi.BATCHES.index(batch)]


@pytest.fixture(autouse=True)
def no_checkpoints(monkeypatch):
    """The tests use the shipped tokenizers and seeded weights, whatever is on disk."""
    monkeypatch.delenv(mi.CHECKPOINTS_ENV, raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv(common.SELECTED_ENV, raising=False)
    mi.encoder.cache_clear()
    yield
    mi.encoder.cache_clear()


# --------------------------------------------------------------------------
# Texts and tokens
# --------------------------------------------------------------------------


def test_cut_rule():
    assert mi.cut("abc", 5) == "abc  "
    assert mi.cut("abcdefgh", 5) == "abcde"
    assert mi.cut("", 3) == "   "


@pytest.mark.parametrize("length", mi.LENGTHS)
def test_texts_have_exact_length(length):
    batch = mi.texts(length, max(mi.BATCHES))
    assert len(batch) == max(mi.BATCHES)
    assert all(len(t) == length for t in batch)
    # batches are prefixes of each other: batch 16 is the first 16 texts of 32
    assert mi.texts(length, 16) == batch[:16]


def test_corpus_shape():
    docs = mi.corpus()
    assert len(docs) >= max(mi.BATCHES)
    assert all(d.isascii() for d in docs)
    # paragraph 10 is the one short text: it is space-padded at 500 characters
    short = [i for i, d in enumerate(docs[: max(mi.BATCHES)]) if len(d) < max(mi.LENGTHS)]
    assert short == [10]
    assert mi.texts(500, 16)[10].endswith(" " * (500 - len(docs[10])))
    with pytest.raises(ValueError):
        mi.texts(50, len(docs) + 1)


@pytest.mark.parametrize("name", mi.MODELS)
def test_token_table(name):
    """Lengths are deterministic and those documented (models.py docstring)."""
    for length in mi.LENGTHS:
        for batch in mi.BATCHES:
            enc = mi.encode(name, length, batch)
            again = mi.encoder(name)(mi.texts(length, batch))
            np.testing.assert_array_equal(enc["input_ids"], again["input_ids"])
            got = (enc["input_ids"].shape[1], int(enc["attention_mask"].sum()))
            assert got == expected_tokens(name, length, batch), (name, length, batch)
            tracked = models.Tokens()
            assert tracked.track_tokens(name, length, batch) == got[0]
            assert tracked.track_real_tokens(name, length, batch) == got[1]


@pytest.mark.parametrize("name", mi.MODELS)
def test_token_ids_in_range_and_padded(name):
    s = mi.SPECS[name]
    enc = mi.encode(name, 500, 32)
    ids, mask = enc["input_ids"], enc["attention_mask"]
    assert ids.dtype == np.int64 and mask.dtype == np.int64
    assert ids.min() >= 0 and ids.max() < s.vocab
    assert ids.max() < mi.encoder(name).vocab_size
    lengths = mask.sum(axis=1)
    assert lengths.min() < ids.shape[1]  # the batch holds padding, so the mask matters
    for row, n in zip(ids, lengths):
        assert np.all(row[n:] == s.pad)
        assert np.all(row[:n] != s.pad)
    bos, eos = (2, 3) if s.family == "bert" else (0, 2)  # [CLS]/[SEP], <s>/</s>
    assert np.all(ids[:, 0] == bos)
    assert np.all(ids[np.arange(len(ids)), lengths - 1] == eos)
    unk = 1 if s.family == "bert" else 3
    assert not np.any(ids == unk)


def test_tokenizer_kinds():
    bert = mi.encoder("bert-base-uncased")
    assert bert(["The River"])["input_ids"].tolist() == bert(["the river"])["input_ids"].tolist()  # uncased
    assert json.load(open(bert.path))["model"]["type"] == "WordPiece"

    roberta = mi.encoder("roberta-base")
    assert json.load(open(roberta.path))["model"]["type"] == "BPE"
    ids = roberta(["caf\u00e9 \u2603 \u4e2d"])["input_ids"]
    assert not np.any(ids == 3)  # byte-level: no <unk>, whatever the text
    # spaces are tokens for byte-level BPE (so the paper's space padding shows) ...
    assert roberta(["the river   "])["input_ids"].shape[1] > roberta(["the river"])["input_ids"].shape[1]

    xlmr = mi.encoder("xlm-roberta-base")
    assert json.load(open(xlmr.path))["model"]["type"] == "Unigram"
    # ... and not for SentencePiece, which strips and collapses them
    assert xlmr(["the river   "])["input_ids"].tolist() == xlmr(["the river"])["input_ids"].tolist()


@pytest.mark.parametrize("name", ["bert-base-uncased", "roberta-base"])
def test_truncation_keeps_closing_token(name):
    s = mi.SPECS[name]
    enc = mi.encoder(name)([" ".join(["river"] * 2000)])
    assert enc["input_ids"].shape == (1, s.max_tokens)
    assert enc["input_ids"][0, -1] == (3 if s.family == "bert" else 2)


def test_retraining_gives_tokenizers_of_the_same_kind():
    """The generator still works; its output is not bit-reproducible (ties), so
    only its shape is checked: the shipped files are the reference."""
    for family in mi.TOKENIZER_FILES:
        tok = mi.train_tokenizer(family)
        assert 500 < tok.get_vocab_size() <= mi.TRAIN_VOCAB
        assert [tok.token_to_id(t) for t in mi.SPECIALS[family]] == list(range(len(mi.SPECIALS[family])))


# --------------------------------------------------------------------------
# Parity with transformers, through the benchmark's own callables
# --------------------------------------------------------------------------


def outputs(name, length, batch, small=True):
    out = {}
    for be_name in ("mlx_cpu", "torch_cpu"):
        fn = models.forward_callable(name, length, batch, be_name, small=small)
        out[be_name] = common.Backend(be_name).to_numpy(fn())
    return out


@needs_both
@pytest.mark.parametrize("name", ARCHITECTURES)
@pytest.mark.parametrize("length,batch", [(500, 16), (100, 32)])
def test_parity_small(name, length, batch):
    out = outputs(name, length, batch)
    enc = mi.encode(name, length, batch)
    assert enc["attention_mask"].min() == 0  # padding in the batch
    s = mi.spec(name, small=True)
    assert out["mlx_cpu"].shape == (batch, enc["input_ids"].shape[1], s.hidden)
    assert np.all(np.isfinite(out["mlx_cpu"]))
    np.testing.assert_allclose(out["mlx_cpu"], out["torch_cpu"], rtol=0, atol=ATOL)


@needs_both
@pytest.mark.parametrize("name", ARCHITECTURES)
def test_parity_random_ids_and_left_padding(name):
    """Ids from the whole vocabulary, padding on either side (RoBERTa's
    position ids skip padding wherever it is), and the mask matters."""
    import mlx.core as mx
    import torch

    s = mi.spec(name, small=True)
    rng = common.rng("test_models", name)
    ids = rng.integers(0, s.vocab, size=(4, 24)).astype(np.int64)
    ids[ids == s.pad] = s.pad + 2
    mask = np.ones_like(ids)
    mask[1, 15:] = 0  # right padding
    mask[2, :9] = 0  # left padding
    mask[3, 1:] = 0  # a single real token
    ids[mask == 0] = s.pad
    mlx_model = models.model(name, "mlx_cpu", small=True).model
    torch_model = models.model(name, "torch_cpu", small=True).model
    got = np.array(mlx_model(mx.array(ids), mx.array(mask)))
    with torch.inference_mode():
        want = torch_model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))
    np.testing.assert_allclose(got, want.last_hidden_state.numpy(), rtol=0, atol=ATOL)
    unmasked = np.array(mlx_model(mx.array(ids), None))
    assert np.abs(unmasked[0] - got[0]).max() < ATOL  # row 0 has no padding
    assert np.abs(unmasked[1, :15] - got[1, :15]).max() > 1e-3  # the mask changes real tokens


@needs_both
def test_weights_are_converted_one_to_one():
    from benchmarks.lib import transformer_mlx as tm
    from mlx.utils import tree_flatten

    s = mi.spec("roberta-base", small=True)
    torch_model, source = mi.build_torch_model(s)
    assert source.startswith("random(")
    mlx_model = tm.from_torch(torch_model)
    got = dict(tree_flatten(mlx_model.parameters()))
    params = dict(torch_model.named_parameters())
    assert len(got) == len(params)
    for name, p in params.items():
        np.testing.assert_array_equal(np.array(got[tm.mlx_name(name)]), p.detach().numpy())
    # no parameter was left at HF's 0/1 init, which would hide a dropped one
    for name, p in params.items():
        if name.endswith("bias") or "LayerNorm" in name:
            assert not np.allclose(p.detach().numpy(), np.round(p.detach().numpy())), name
    with pytest.raises(ValueError, match="missing"):
        tm.load_weights(tm.Encoder(torch_model.config), {})
    with pytest.raises(KeyError):
        tm.mlx_name("pooler.dense.weight")


@needs_both
@pytest.mark.parametrize("name", ARCHITECTURES)
def test_inference_mode(name):
    """No dropout anywhere: both models are in eval mode, MLX has no dropout
    layer at all, and repeated calls give identical outputs."""
    from benchmarks.lib import transformer_mlx as tm

    mlx_model = models.model(name, "mlx_cpu", small=True).model
    torch_model = models.model(name, "torch_cpu", small=True).model
    assert not tm.has_dropout(mlx_model) and not mlx_model.training
    assert not any(m.training for m in torch_model.modules())
    assert torch_model.config._attn_implementation == mi.ATTENTION
    for be_name in ("mlx_cpu", "torch_cpu"):
        fn = models.forward_callable(name, 50, 16, be_name, small=True)
        be = common.Backend(be_name)
        np.testing.assert_array_equal(be.to_numpy(fn()), be.to_numpy(fn()))
    # the torch call runs under inference_mode
    assert models.forward_callable(name, 50, 1, "torch_cpu", small=True)().is_inference()


@needs_both
@pytest.mark.slow
def test_parity_full_size():
    """bert-base-uncased at its full config, batch 1, 50 characters."""
    out = outputs("bert-base-uncased", 50, 1, small=False)
    assert out["mlx_cpu"].shape == (1, 13, 768)
    np.testing.assert_allclose(out["mlx_cpu"], out["torch_cpu"], rtol=0, atol=ATOL)
    common.CACHE.clear()


GPU_MODEL_BACKENDS = [b for b in gpu.GPU_BACKENDS if b in models.MODEL_BACKENDS]


def assert_gpu_close(got, want, be_name):
    """ATOL, or gpu.TF32_RELATIVE of the largest |value| where MLX runs TF32."""
    if gpu.mlx_tf32(be_name):
        gpu.assert_within_tf32(got, want, be_name)
    else:
        np.testing.assert_allclose(got, want, rtol=0, atol=ATOL, err_msg=be_name)


@needs_both
@pytest.mark.parametrize("be_name", GPU_MODEL_BACKENDS)
@pytest.mark.parametrize("name", ARCHITECTURES)
def test_gpu_parity(name, be_name):
    """The callable each GPU backend times, against torch on the CPU, on the
    toy-sized models with padded batches. Skipped without a GPU."""
    gpu.require(be_name)
    want = common.Backend("torch_cpu").to_numpy(models.forward_callable(name, 500, 16, "torch_cpu", small=True)())
    got = common.Backend(be_name).to_numpy(models.forward_callable(name, 500, 16, be_name, small=True)())
    assert_gpu_close(got, want, be_name)


@needs_both
@pytest.mark.slow
@pytest.mark.parametrize("be_name", GPU_MODEL_BACKENDS)
def test_gpu_parity_full_size(be_name):
    """bert-base-uncased at its full config on each GPU backend, batch 16,
    200 characters, against torch on the CPU."""
    gpu.require(be_name)
    want = common.Backend("torch_cpu").to_numpy(models.forward_callable("bert-base-uncased", 200, 16, "torch_cpu")())
    got = common.Backend(be_name).to_numpy(models.forward_callable("bert-base-uncased", 200, 16, be_name)())
    assert_gpu_close(got, want, be_name)
    common.CACHE.clear()


# --------------------------------------------------------------------------
# What asv times
# --------------------------------------------------------------------------


def test_benchmark_table():
    bench = models.Inference
    assert bench.param_names == ["model", "length", "batch", "backend"]
    models_, lengths, batches, backends = bench.params
    assert models_ == ["bert-base-uncased", "bert-large-uncased", "roberta-base", "xlm-roberta-base"]
    assert lengths == [50, 100, 200, 500] and batches == [1, 16, 32]
    assert backends == ["mlx_cpu", "mlx_gpu", "torch_cpu", "torch_cuda", "torch_mps"]
    assert len(models_) * len(lengths) * len(batches) == 48
    assert bench.number == 1 and bench.rounds == 1
    assert models.Tokens.unit == "tokens"
    for s in mi.SPECS.values():  # the configs are never shrunk
        assert (s.hidden, s.layers) in [(768, 12), (1024, 24)]


@pytest.mark.parametrize("be_name", models.MODEL_BACKENDS)
def test_missing_backend_skips(be_name):
    if common.unavailable_reason(be_name) is None:
        pytest.skip(f"{be_name} is available here")
    with pytest.raises(NotImplementedError):
        models.Inference().setup("bert-base-uncased", 50, 1, be_name)


def test_unselected_backend_skips(monkeypatch):
    monkeypatch.setenv(common.SELECTED_ENV, "torch_cpu")
    with pytest.raises(NotImplementedError, match="not selected"):
        models.Inference().setup("bert-base-uncased", 50, 1, "mlx_cpu")


@needs_both
def test_setup_builds_the_model_once_per_process(monkeypatch):
    """asv_runner calls setup before every sample: the model is built once per
    (model, backend), and the inputs once per case."""
    builds = []
    real_build = models.build

    def counting_build(name, be, small=False):
        builds.append((name, be.name))
        return real_build(name, be, small)

    monkeypatch.setattr(models, "build", counting_build)
    common.CACHE.clear()

    class Small(models.Inference):
        small = True

    bench = Small()
    for _ in range(3):  # three samples of one case
        bench.setup("roberta-base", 200, 16, "mlx_cpu")
        bench.time_forward("roberta-base", 200, 16, "mlx_cpu")
    first = bench.fn
    assert builds == [("roberta-base", "mlx_cpu")]
    bench.setup("roberta-base", 200, 16, "mlx_cpu")
    assert bench.fn is first  # cache hit
    bench.setup("roberta-base", 50, 1, "mlx_cpu")  # other case, same model
    assert builds == [("roberta-base", "mlx_cpu")]
    bench.setup("roberta-base", 50, 1, "torch_cpu")
    bench.time_forward("roberta-base", 50, 1, "torch_cpu")
    assert builds == [("roberta-base", "mlx_cpu"), ("roberta-base", "torch_cpu")]


@needs_both
def test_timed_mlx_callable_evaluates(monkeypatch):
    """The timed MLX callable runs the graph (MLX is lazy): it calls mx.eval
    on its output, and 16 sequences cost clearly more than 1."""
    import mlx.core as mx

    name = "xlm-roberta-base"
    one = models.forward_callable(name, 500, 1, "mlx_cpu", small=True)
    many = models.forward_callable(name, 500, 16, "mlx_cpu", small=True)

    evaluated = []
    real_eval = mx.eval

    def recording_eval(*args):
        evaluated.extend(args)
        return real_eval(*args)

    monkeypatch.setattr(mx, "eval", recording_eval)
    out = one()
    assert any(a is out for a in evaluated)
    monkeypatch.setattr(mx, "eval", real_eval)

    t_one, t_many = min(call_seconds(one, samples=5, warmup=1)), min(call_seconds(many, samples=5, warmup=1))
    assert t_many > 4 * t_one, (t_one, t_many)


# --------------------------------------------------------------------------
# Local checkpoints (never the network)
# --------------------------------------------------------------------------


@needs_both
def test_local_checkpoint_is_loaded_offline(tmp_path, monkeypatch):
    """A checkpoint directory is found through $MLX_ASV_CHECKPOINTS, loaded with
    local_files_only, checked against the benchmark's config, and its
    tokenizer is used."""
    from transformers import PreTrainedTokenizerFast

    s = mi.spec("bert-base-uncased", small=True)
    saved, _ = mi.build_torch_model(s, seed=7, source=None)
    path = tmp_path / "bert-base-uncased"
    saved.save_pretrained(path)
    tok = PreTrainedTokenizerFast(
        tokenizer_file=os.path.join(mi.DATA_DIR, mi.TOKENIZER_FILES["bert"]),
        pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
    )
    tok.save_pretrained(path)

    monkeypatch.setenv(mi.CHECKPOINTS_ENV, str(tmp_path))
    assert mi.checkpoint("bert-base-uncased") == str(path)
    assert mi.checkpoint("roberta-base") is None

    loaded, source = mi.build_torch_model(s, source=str(path))
    assert source == str(path) and not loaded.training
    for (n1, p1), (n2, p2) in zip(saved.named_parameters(), loaded.named_parameters()):
        assert n1 == n2 and np.array_equal(p1.detach().numpy(), p2.detach().numpy())
    # the full-size benchmark refuses a checkpoint whose config differs
    with pytest.raises(ValueError, match="differs"):
        mi.build_torch_model(mi.SPECS["bert-base-uncased"])
    # the checkpoint's tokenizer gives the same tokens as the shipped file here
    mi.encoder.cache_clear()
    assert mi.encoder("bert-base-uncased").source == str(path)
    enc = mi.encode("bert-base-uncased", 500, 16)
    assert (enc["input_ids"].shape[1], int(enc["attention_mask"].sum())) == expected_tokens(
        "bert-base-uncased", 500, 16
    )


@needs_torch
def test_drawn_weights_are_kept_and_loaded_bit_for_bit(tmp_path, monkeypatch, capsys):
    """With a cache folder, the first build draws the weights and saves them;
    later builds load them without drawing: the same tensors, bit for bit, as
    weights drawn without a cache. A damaged folder is drawn again and replaced."""
    s = mi.spec("roberta-base", small=True)
    fresh, _ = mi.build_torch_model(s, seed=7, source=None)
    first, source = mi.build_torch_model(s, seed=7, source=None, cache=str(tmp_path))
    path = mi.weights_cache_path(s, 7, str(tmp_path))
    assert source == "random(seed=7)" and os.path.isfile(os.path.join(path, "config.json"))
    assert os.listdir(os.path.dirname(path)) == [os.path.basename(path)]  # no temporary folder left

    def no_drawing(model, seed):
        raise AssertionError("drew the weights although they were cached")

    with monkeypatch.context() as m:
        m.setattr(mi, "_draw_all", no_drawing)
        loaded, source = mi.build_torch_model(s, seed=7, source=None, cache=str(tmp_path))
    assert source == "random(seed=7)" and not loaded.training
    want = fresh.state_dict()
    for model in (first, loaded):
        got = model.state_dict()
        assert list(got) == list(want)
        for name, tensor in want.items():
            assert got[name].dtype == tensor.dtype and np.array_equal(got[name].numpy(), tensor.numpy()), name
    # another seed is another folder
    assert mi.weights_cache_path(s, 8, str(tmp_path)) != path
    # a damaged folder: drawn again, with one line, and replaced by a good one
    with open(os.path.join(path, "config.json"), "w") as f:
        f.write("{not json")
    again, _ = mi.build_torch_model(s, seed=7, source=None, cache=str(tmp_path))
    assert "unusable" in capsys.readouterr().err
    assert np.array_equal(again.state_dict()["embeddings.word_embeddings.weight"].numpy(),
                          want["embeddings.word_embeddings.weight"].numpy())
    with monkeypatch.context() as m:
        m.setattr(mi, "_draw_all", no_drawing)
        mi.build_torch_model(s, seed=7, source=None, cache=str(tmp_path))


def test_weights_cache_only_where_the_weights_are_copied(monkeypatch, tmp_path):
    """models.build keeps drawn weights only for full-size models on backends
    that copy them (MLX, torch on a GPU): a torch CPU model runs on its own
    freshly drawn tensors."""
    from types import SimpleNamespace as NS

    monkeypatch.setenv(common.INPUT_CACHE_ENV, str(tmp_path))
    assert models.weights_cache(NS(is_mlx=True, copies_to_device=False)) == str(tmp_path)
    assert models.weights_cache(NS(is_mlx=False, copies_to_device=True)) == str(tmp_path)
    assert models.weights_cache(NS(is_mlx=False, copies_to_device=False)) is None
    assert models.weights_cache(NS(is_mlx=True, copies_to_device=True), small=True) is None
    monkeypatch.setenv(common.INPUT_CACHE_ENV, "off")
    assert models.weights_cache(NS(is_mlx=True, copies_to_device=True)) is None


@needs_both
def test_mlx_version_gate(monkeypatch):
    """The MLX encoders are gated at transformer_mlx.MIN_MLX: on an older
    release (a monkeypatched version) the MLX cases skip with the gate's
    reason, the torch cases still run; at MIN_MLX the MLX case runs."""
    import mlx.core as mx
    from benchmarks.lib import transformer_mlx as tm

    older = tm.MIN_MLX.split(".")
    older = ".".join(older[:1] + [str(int(older[1]) - 1)] + older[2:])  # 0.2.0 -> 0.1.0
    assert common.parse_version(older) < common.parse_version(tm.MIN_MLX)
    monkeypatch.setattr(mx, "__version__", older)
    common.CACHE.clear()
    with pytest.raises(NotImplementedError, match=rf"needs MLX >= {tm.MIN_MLX}; this is {older}"):
        models.forward_callable("bert-base-uncased", 50, 1, "mlx_cpu", small=True)
    with pytest.raises(NotImplementedError, match=rf"needs MLX >= {tm.MIN_MLX}"):
        models.Inference().setup("bert-base-uncased", 50, 1, "mlx_cpu")
    with pytest.raises(NotImplementedError, match=rf"Encoder needs MLX >= {tm.MIN_MLX}"):
        tm.Encoder(mi.build_torch_model(mi.spec("bert-base-uncased", small=True))[0].config)
    assert models.forward_callable("bert-base-uncased", 50, 1, "torch_cpu", small=True)() is not None
    monkeypatch.setattr(mx, "__version__", tm.MIN_MLX)
    common.CACHE.clear()
    assert models.forward_callable("bert-base-uncased", 50, 1, "mlx_cpu", small=True)() is not None
    common.CACHE.clear()


def test_hub_cache_is_used_only_offline(monkeypatch):
    """The Hugging Face cache counts as local only with HF_HUB_OFFLINE=1 (so
    from_pretrained(local_files_only=True) never reaches for the network)."""
    huggingface_hub = pytest.importorskip("huggingface_hub")
    asked = []

    def fake_lookup(repo, filename, **kwargs):
        asked.append(repo)
        return f"/cache/{repo}/{filename}" if repo == "FacebookAI/roberta-base" else None

    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", fake_lookup)
    assert mi.checkpoint("roberta-base") is None and asked == []
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert mi.checkpoint("roberta-base") == "FacebookAI/roberta-base"
    assert mi.checkpoint("xlm-roberta-base") is None


@pytest.mark.parametrize("preload", ["0", "1"])
def test_forkserver_preloads_transformers_unless_told_not_to(preload):
    # asv's forkserver is started as `python -m asv_runner run_server ...`: models.py imports
    # transformers' classes there, unless $MLX_ASV_PRELOAD_MODELS=0 (a run without models.py cases)
    if importlib.util.find_spec("transformers") is None:
        pytest.skip("transformers is not installed: nothing is preloaded either way")
    code = ("import sys; sys.argv = ['asv_runner', 'run_server']; import benchmarks.models; "
            "print('transformers.models.bert' in sys.modules)")
    env = dict(os.environ, MLX_ASV_PRELOAD_MODELS=preload, MLX_ASV_OFFLINE="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == ("True" if preload == "1" else "False")

"""What goes into the transformer benchmarks: model configs, texts, tokens, weights.

Framework-neutral (no MLX import), so that asv can import it anywhere.

Models
    ``SPECS``: the four encoders of the MLX-Transformers paper (seed 004), with
    their published configs, never shrunk. ``small_spec`` is the same family
    vocabulary and positions at hidden 32 / 2 layers / 2 heads / 64
    intermediate, for the tests.

Texts
    ``data/corpus.txt``: 32 paragraphs of plain English written for this
    project (public domain), one per line. The batch of size B at length N is
    paragraphs 0..B-1, each cut to N characters and padded with spaces to N
    when shorter (paragraph 10 has 327 characters, so the 500-character cut
    of batches 16 and 32 holds trailing spaces).

Tokens
    Offline tokenizers of each family's kind, trained once on the corpus with
    the ``tokenizers`` library and shipped as JSON (nothing is trained at
    benchmark time; ``python -m benchmarks.lib.model_inputs --write`` retrains
    them, though not bit-reproducibly: see there):
    WordPiece, lowercased (BERT), byte-level BPE (RoBERTa), Unigram with
    SentencePiece's metaspace (XLM-R). Special tokens sit at the real models'
    ids ([PAD]=0 for BERT, <s>=0 <pad>=1 </s>=2 for the others), so padding
    and RoBERTa's position ids behave as with the real vocabularies. A batch is
    padded to its longest text and truncated to the model's position limit.

Weights
    ``build_torch_model``: the ``transformers`` model with seeded random
    weights (``torch.manual_seed``; every bias and LayerNorm is also drawn,
    since HF's init leaves them 0/1 and would hide a conversion that drops
    them), or a real checkpoint when one is on disk: a directory
    ``$MLX_ASV_CHECKPOINTS/<model>`` or, with ``HF_HUB_OFFLINE=1``, the Hugging
    Face cache. Either way it is loaded with ``local_files_only=True``; with a
    checkpoint, its own tokenizer is used too. Nothing is ever downloaded.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import importlib.util
import os
import shutil
import sys

import numpy as np

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
CORPUS_PATH = os.path.join(DATA_DIR, "corpus.txt")
CHECKPOINTS_ENV = "MLX_ASV_CHECKPOINTS"
WEIGHT_SEED = 20240101
# The torch models' attention implementation (see hf_config).
ATTENTION = "sdpa"

LENGTHS = (50, 100, 200, 500)
BATCHES = (1, 16, 32)


class ModelSpec(
    collections.namedtuple(
        "ModelSpec",
        "name family hidden layers heads intermediate vocab max_positions type_vocab eps pad",
    )
):
    """One encoder: the fields of the config table in the module docstring."""

    @property
    def roberta_positions(self):
        """RoBERTa and XLM-R count positions from pad+1 and skip padding."""
        return self.family in ("roberta", "xlm-roberta")

    @property
    def max_tokens(self):
        """The longest input the position table holds."""
        offset = self.pad + 1 if self.roberta_positions else 0
        return self.max_positions - offset


# model: hidden, layers, heads, intermediate, vocab, max pos, type vocab, ln eps, pad id
SPECS = collections.OrderedDict(
    (s.name, s)
    for s in [
        ModelSpec("bert-base-uncased", "bert", 768, 12, 12, 3072, 30522, 512, 2, 1e-12, 0),
        ModelSpec("bert-large-uncased", "bert", 1024, 24, 16, 4096, 30522, 512, 2, 1e-12, 0),
        ModelSpec("roberta-base", "roberta", 768, 12, 12, 3072, 50265, 514, 1, 1e-5, 1),
        ModelSpec("xlm-roberta-base", "xlm-roberta", 768, 12, 12, 3072, 250002, 514, 1, 1e-5, 1),
    ]
)
MODELS = tuple(SPECS)

# Hugging Face repository ids under which a model may sit in the local cache.
HUB_IDS = {
    "bert-base-uncased": ("google-bert/bert-base-uncased", "bert-base-uncased"),
    "bert-large-uncased": ("google-bert/bert-large-uncased", "bert-large-uncased"),
    "roberta-base": ("FacebookAI/roberta-base", "roberta-base"),
    "xlm-roberta-base": ("FacebookAI/xlm-roberta-base", "xlm-roberta-base"),
}

# The shipped tokenizer of each family: file, vocabulary size asked of the trainer.
TOKENIZER_FILES = {
    "bert": "tokenizer-bert-wordpiece.json",
    "roberta": "tokenizer-roberta-bpe.json",
    "xlm-roberta": "tokenizer-xlmr-unigram.json",
}
TRAIN_VOCAB = 4000


def spec(name, small=False):
    s = SPECS[name]
    return small_spec(s) if small else s


def small_spec(s):
    """The same family, vocabulary and positions at toy width and depth."""
    return s._replace(hidden=32, layers=2, heads=2, intermediate=64)


# --------------------------------------------------------------------------
# Texts
# --------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def corpus():
    with open(CORPUS_PATH, encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f]
    return tuple(line for line in lines if line.strip())


def cut(text, length):
    """The paper's input rule: the first ``length`` characters, space-padded."""
    return text[:length].ljust(length)


def texts(length, batch):
    docs = corpus()
    if batch > len(docs):
        raise ValueError(f"batch {batch} needs {batch} paragraphs; the corpus has {len(docs)}")
    return [cut(doc, length) for doc in docs[:batch]]


# --------------------------------------------------------------------------
# Tokenizers
# --------------------------------------------------------------------------

SPECIALS = {
    "bert": ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
    "roberta": ["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
    "xlm-roberta": ["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
}


def _pipeline(family):
    """An untrained tokenizer of ``family``'s kind and its trainer."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    specials = SPECIALS[family]
    if family == "bert":
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(vocab_size=TRAIN_VOCAB, special_tokens=specials, show_progress=False)
    elif family == "roberta":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=TRAIN_VOCAB,
            special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
    elif family == "xlm-roberta":
        tok = Tokenizer(models.Unigram())
        # As transformers' converter of XLM-R's SentencePiece model: NFKC,
        # strip on the right, collapse runs of spaces.
        tok.normalizer = normalizers.Sequence(
            [normalizers.NFKC(), normalizers.Strip(left=False, right=True), normalizers.Replace(Regex(" {2,}"), " ")]
        )
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
        tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
        trainer = trainers.UnigramTrainer(
            vocab_size=TRAIN_VOCAB, special_tokens=specials, unk_token="<unk>", show_progress=False
        )
    else:
        raise ValueError(family)
    return tok, trainer


def _post_process(tok, family):
    from tokenizers import processors

    if family == "bert":
        cls_, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls_), ("[SEP]", sep)]
        )
    elif family == "roberta":
        tok.post_processor = processors.RobertaProcessing(
            ("</s>", tok.token_to_id("</s>")), ("<s>", tok.token_to_id("<s>")), add_prefix_space=False
        )
    else:
        bos, eos = tok.token_to_id("<s>"), tok.token_to_id("</s>")
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", bos), ("</s>", eos)]
        )


def train_tokenizer(family):
    """Train ``family``'s tokenizer on the shipped corpus (deterministic)."""
    tok, trainer = _pipeline(family)
    tok.train_from_iterator(list(corpus()), trainer=trainer)
    specials = SPECIALS[family]
    got = [tok.token_to_id(t) for t in specials]
    if got != list(range(len(specials))):
        raise RuntimeError(f"{family}: special tokens at {got}, expected 0..{len(specials) - 1}")
    _post_process(tok, family)
    return tok


def write_tokenizers(directory=DATA_DIR):
    for family, filename in TOKENIZER_FILES.items():
        train_tokenizer(family).save(os.path.join(directory, filename))


class Encoder:
    """Texts -> padded ``input_ids``/``attention_mask`` (NumPy int64), one way
    for the shipped ``tokenizers`` files and checkpoint tokenizers alike."""

    def __init__(self, spec_, source=None):
        self.spec = spec_
        self.source = source
        if source is None:
            from tokenizers import Tokenizer

            self.path = os.path.join(DATA_DIR, TOKENIZER_FILES[spec_.family])
            self._tok = Tokenizer.from_file(self.path)
            self._tok.no_padding()
            # truncation keeps the closing special token, as in transformers
            self._tok.enable_truncation(max_length=spec_.max_tokens)
            self.vocab_size = self._tok.get_vocab_size()
        else:
            from transformers import AutoTokenizer

            self.path = source
            self._tok = AutoTokenizer.from_pretrained(source, local_files_only=True)
            self.vocab_size = len(self._tok)

    def __call__(self, batch_texts):
        if self.source is None:
            ids = [e.ids for e in self._tok.encode_batch(list(batch_texts))]
        else:
            ids = self._tok(
                list(batch_texts), add_special_tokens=True, truncation=True, max_length=self.spec.max_tokens
            )["input_ids"]
        width = max(len(row) for row in ids)
        input_ids = np.full((len(ids), width), self.spec.pad, dtype=np.int64)
        mask = np.zeros((len(ids), width), dtype=np.int64)
        for i, row in enumerate(ids):
            input_ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        if input_ids.max() >= self.spec.vocab or input_ids.min() < 0:
            raise ValueError(f"{self.spec.name}: token id out of range [0, {self.spec.vocab})")
        return {"input_ids": input_ids, "attention_mask": mask}


@functools.lru_cache(maxsize=None)
def encoder(name):
    """The tokenizer of model ``name``: its checkpoint's if one is on disk, else the shipped one."""
    s = SPECS[name]
    return Encoder(s, checkpoint(name))


def encode(name, length, batch):
    """The benchmark input of one case (NumPy int64 arrays)."""
    return encoder(name)(texts(length, batch))


# --------------------------------------------------------------------------
# Weights: the transformers (PyTorch) reference model
# --------------------------------------------------------------------------


def checkpoint(name):
    """A local checkpoint of model ``name`` (a path or a cached hub id), or None.

    Never touches the network: a directory under ``$MLX_ASV_CHECKPOINTS``, or
    the Hugging Face cache when ``HF_HUB_OFFLINE=1`` says to use it.
    """
    root = os.environ.get(CHECKPOINTS_ENV, "").strip()
    if root:
        path = os.path.join(root, name)
        if os.path.isfile(os.path.join(path, "config.json")):
            return path
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:
            return None
        for repo in HUB_IDS.get(name, ()):
            found = try_to_load_from_cache(repo, "config.json")
            if isinstance(found, str):
                return repo
    return None


def _transformers_classes(family):
    import transformers

    return {
        "bert": (transformers.BertConfig, transformers.BertModel),
        "roberta": (transformers.RobertaConfig, transformers.RobertaModel),
        "xlm-roberta": (transformers.XLMRobertaConfig, transformers.XLMRobertaModel),
    }[family]


# 0: asv's forkserver does not preload (a run that selects no models.py case; benchmarks/models.py)
PRELOAD_ENV = "MLX_ASV_PRELOAD_MODELS"


def preload():
    """Import the transformers encoder classes now (~2 s), e.g. once in asv's
    forkserver rather than in every per-case process forked from it."""
    if importlib.util.find_spec("transformers") is not None:
        for family in ("bert", "roberta", "xlm-roberta"):
            _transformers_classes(family)


def hf_config(s):
    """The transformers config of spec ``s`` (exact GELU, absolute positions)."""
    config_cls, _ = _transformers_classes(s.family)
    kwargs = dict(
        vocab_size=s.vocab,
        hidden_size=s.hidden,
        num_hidden_layers=s.layers,
        num_attention_heads=s.heads,
        intermediate_size=s.intermediate,
        max_position_embeddings=s.max_positions,
        type_vocab_size=s.type_vocab,
        layer_norm_eps=s.eps,
        pad_token_id=s.pad,
        hidden_act="gelu",
        # transformers' default on torch 2.x, pinned so that an upgrade cannot
        # change what torch runs: fused F.scaled_dot_product_attention
        attn_implementation=ATTENTION,
    )
    if s.family != "bert":
        kwargs.update(bos_token_id=0, eos_token_id=2)
    return config_cls(**kwargs)


def _check_config(s, config):
    want = hf_config(s)
    fields = [
        "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
        "max_position_embeddings", "type_vocab_size", "layer_norm_eps", "pad_token_id", "hidden_act",
    ]
    bad = [f for f in fields if getattr(config, f, None) != getattr(want, f)]
    if bad:
        raise ValueError(f"checkpoint of {s.name} differs from the benchmark's config in {bad}")


def _draw_all(model, seed):
    """Give every bias and LayerNorm parameter seeded values too."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.copy_(0.02 * torch.randn(p.shape, generator=gen))
            elif "LayerNorm" in name:  # LayerNorm weights
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))


def weights_cache_path(s, seed, folder):
    """The folder under ``folder`` that keeps spec ``s``'s seeded random weights.

    Its name hashes everything the drawn bits depend on: the spec, the seed,
    the attention implementation, and the torch and transformers versions
    (whose initialisation may consume the generator differently)."""
    import torch
    import transformers

    what = (tuple(s), seed, ATTENTION, torch.__version__, transformers.__version__)
    digest = hashlib.sha256(repr(what).encode()).hexdigest()[:24]
    return os.path.join(folder, "models", f"{s.name}-{digest}")


def _load_cached_weights(s, model_cls, path):
    """The model saved at ``path`` (``_save_cached_weights``), or None."""
    import torch

    if not os.path.isfile(os.path.join(path, "config.json")):
        return None
    try:
        model = model_cls.from_pretrained(
            path, local_files_only=True, add_pooling_layer=False, dtype=torch.float32,
            attn_implementation=ATTENTION,
        )
        _check_config(s, model.config)
        return model
    except Exception as e:  # a damaged or foreign folder: draw again (and replace it)
        print(f"mlx-asv: cached weights {path} unusable ({type(e).__name__}: {e}); drawing them again",
              file=sys.stderr)
        shutil.rmtree(path, ignore_errors=True)
        return None


def _save_cached_weights(model, path):
    """Save ``model`` at ``path``: written beside it, then renamed into place,
    so a reader sees all of it or nothing; a folder that can't be written
    costs only the time."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        model.save_pretrained(tmp)
        os.rename(tmp, path)
    except OSError as e:
        if not os.path.isdir(path):  # not a concurrent writer that got there first
            print(f"mlx-asv: could not keep the drawn weights in {path} ({e})", file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def build_torch_model(s, seed=WEIGHT_SEED, source="auto", cache=None):
    """The ``transformers`` encoder of spec ``s`` in inference mode, on the CPU.

    ``source``: ``"auto"`` loads the local checkpoint of a full-size model
    when there is one (``checkpoint``), else draws seeded random weights;
    ``None`` always draws; a path or cached hub id loads that checkpoint
    (``local_files_only``) and checks its config against ``s``.
    Returns ``(model, source)``, source being the checkpoint or
    ``"random(seed=...)"``. No pooler: the benchmark ends at the last hidden
    state. ``model.eval()`` turns dropout off.

    ``cache``: a folder that keeps drawn weights between processes
    (``weights_cache_path``): the first call draws them and saves the model
    there (``save_pretrained``: safetensors of the float32 tensors), later
    calls load it, the same bits without drawing 110-335 million numbers
    again (asv builds the model in every case's process). Only for drawn
    weights; the source is ``"random(seed=...)"`` either way.
    """
    import torch

    _, model_cls = _transformers_classes(s.family)
    if source == "auto":
        source = checkpoint(s.name) if SPECS.get(s.name) == s else None
    if source is not None:
        model = model_cls.from_pretrained(
            source, local_files_only=True, add_pooling_layer=False, dtype=torch.float32,
            attn_implementation=ATTENTION,
        )
        _check_config(s, model.config)
    else:
        path = weights_cache_path(s, seed, cache) if cache else None
        model = _load_cached_weights(s, model_cls, path) if path else None
        if model is None:
            torch.manual_seed(seed)
            model = model_cls(hf_config(s), add_pooling_layer=False)
            _draw_all(model, seed)
            if path:
                _save_cached_weights(model, path)
        source = f"random(seed={seed})"
    model = model.float().eval()
    return model, source


def token_lengths():
    """{(model, length, batch): (padded length, non-padding tokens)}: the table
    that models.py's docstring quotes and ``models.Tokens`` tracks."""
    table = {}
    for name in MODELS:
        for length in LENGTHS:
            for batch in BATCHES:
                enc = encode(name, length, batch)
                table[name, length, batch] = (enc["input_ids"].shape[1], int(enc["attention_mask"].sum()))
    return table


if __name__ == "__main__":
    # python -m benchmarks.lib.model_inputs [--write]: print the token table, and
    # with --write first retrain the shipped tokenizers from the corpus.
    # Retraining is not bit-reproducible (the trainers break ties between
    # equally frequent pieces in hash order, so ids, and a token count here
    # and there, can change): the shipped files are the reference, and
    # models.Tokens tracks the lengths they give.
    import sys

    if "--write" in sys.argv[1:]:
        write_tokenizers()
    for (name, length, batch), (width, real) in token_lengths().items():
        print(f"{name:20s} {length:4d} chars  batch {batch:2d}: {width:4d} tokens/seq, {real:6d} non-pad")

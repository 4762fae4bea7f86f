"""BERT, RoBERTa and XLM-RoBERTa encoders in MLX, and weights from ``transformers``.

The forward pass is that of transformers' ``BertModel``/``RobertaModel``/
``XLMRobertaModel`` without pooler, returning the last hidden state:

- embeddings: word + position + token type, then LayerNorm. BERT numbers
  positions 0..L-1; RoBERTa and XLM-R number them from ``pad+1`` and give
  padding the position ``pad`` (transformers' create_position_ids_from_input_ids);
- each layer: self-attention with the additive mask made from the padding
  mask, output dense + residual + LayerNorm, exact (erf) GELU intermediate,
  output dense + residual + LayerNorm.

Inference only: there are no dropout layers at all, and the converted model is
put in ``eval()`` mode as well. Parameters are float32 (as the torch model).

Built only from what every MLX release since 0.2.0 has (``nn.Linear``,
``nn.Embedding``, ``nn.LayerNorm``, ``nn.gelu`` = ``x * (1 + erf(x/sqrt 2)) / 2``,
``mx.matmul``, ``mx.softmax``, ``mx.cumsum``): the same graph is timed on every
release, so a change in the numbers is a change in MLX. The newer fused
``mx.fast.scaled_dot_product_attention`` is deliberately not used.

This module imports without MLX (asv imports every module of the suite); the
classes then exist but cannot be instantiated.
"""

from __future__ import annotations

import math
import re

import numpy as np

from ..common import require_mlx

try:
    import mlx.core as mx
    import mlx.nn as nn
    from mlx.utils import tree_flatten, tree_unflatten

    _Module = nn.Module
except ImportError:  # asv discovery on a machine without MLX
    mx = nn = tree_flatten = tree_unflatten = None
    _Module = object

# Oldest MLX release on which these models were built and checked against
# transformers (tests/test_models.py, run in a venv per release).
MIN_MLX = "0.2.0"

# Additive mask value of padded keys: float32's lowest, as transformers uses.
MASK_VALUE = float(np.finfo(np.float32).min)


def _config_get(config, *names):
    for n in names:
        if hasattr(config, n):
            return getattr(config, n)
    raise AttributeError(f"config has none of {names}")


class EncoderConfig:
    """The fields the MLX model needs, from a transformers config or a
    ``model_inputs.ModelSpec``."""

    def __init__(self, config):
        g = lambda *n: _config_get(config, *n)  # noqa: E731
        self.hidden = int(g("hidden_size", "hidden"))
        self.layers = int(g("num_hidden_layers", "layers"))
        self.heads = int(g("num_attention_heads", "heads"))
        self.intermediate = int(g("intermediate_size", "intermediate"))
        self.vocab = int(g("vocab_size", "vocab"))
        self.max_positions = int(g("max_position_embeddings", "max_positions"))
        self.type_vocab = int(g("type_vocab_size", "type_vocab"))
        self.eps = float(g("layer_norm_eps", "eps"))
        self.pad = int(g("pad_token_id", "pad"))
        family = g("model_type", "family")
        if family not in ("bert", "roberta", "xlm-roberta"):
            raise ValueError(f"not a BERT-family encoder: {family!r}")
        self.family = family
        self.roberta_positions = family != "bert"
        act = getattr(config, "hidden_act", "gelu")
        if act != "gelu":
            raise ValueError(f"only exact GELU ('gelu') is implemented, not {act!r}")
        pos = getattr(config, "position_embedding_type", "absolute")
        if pos not in (None, "absolute"):
            raise ValueError(f"only absolute position embeddings are implemented, not {pos!r}")
        if self.hidden % self.heads:
            raise ValueError("hidden size must be a multiple of the number of heads")


class Embeddings(_Module):
    def __init__(self, cfg):
        super().__init__()
        self.word = nn.Embedding(cfg.vocab, cfg.hidden)
        self.position = nn.Embedding(cfg.max_positions, cfg.hidden)
        self.token_type = nn.Embedding(cfg.type_vocab, cfg.hidden)
        self.norm = nn.LayerNorm(cfg.hidden, eps=cfg.eps)
        self.pad = cfg.pad
        self.roberta_positions = cfg.roberta_positions

    def __call__(self, input_ids, token_type_ids=None):
        if self.roberta_positions:
            # create_position_ids_from_input_ids: count real tokens from pad+1,
            # padding keeps position ``pad``.
            real = (input_ids != self.pad).astype(mx.int32)
            positions = mx.cumsum(real, axis=1) * real + self.pad
        else:
            positions = mx.arange(input_ids.shape[1])[None]
        if token_type_ids is None:
            token_type_ids = mx.zeros(input_ids.shape, dtype=mx.int32)
        x = self.word(input_ids) + self.token_type(token_type_ids) + self.position(positions)
        return self.norm(x)


class SelfAttention(_Module):
    def __init__(self, cfg):
        super().__init__()
        self.heads = cfg.heads
        self.scale = 1.0 / math.sqrt(cfg.hidden // cfg.heads)
        self.query = nn.Linear(cfg.hidden, cfg.hidden)
        self.key = nn.Linear(cfg.hidden, cfg.hidden)
        self.value = nn.Linear(cfg.hidden, cfg.hidden)
        self.out = nn.Linear(cfg.hidden, cfg.hidden)
        self.norm = nn.LayerNorm(cfg.hidden, eps=cfg.eps)

    def __call__(self, x, mask):
        B, L, E = x.shape
        H = self.heads
        D = E // H
        q = mx.transpose(self.query(x).reshape(B, L, H, D), (0, 2, 1, 3))
        k = mx.transpose(self.key(x).reshape(B, L, H, D), (0, 2, 3, 1))
        v = mx.transpose(self.value(x).reshape(B, L, H, D), (0, 2, 1, 3))
        scores = mx.matmul(q * self.scale, k)  # (B, H, L, L)
        if mask is not None:
            scores = scores + mask
        probs = mx.softmax(scores, axis=-1)
        context = mx.transpose(mx.matmul(probs, v), (0, 2, 1, 3)).reshape(B, L, E)
        return self.norm(self.out(context) + x)


class Layer(_Module):
    def __init__(self, cfg):
        super().__init__()
        self.attention = SelfAttention(cfg)
        self.intermediate = nn.Linear(cfg.hidden, cfg.intermediate)
        self.output = nn.Linear(cfg.intermediate, cfg.hidden)
        self.output_norm = nn.LayerNorm(cfg.hidden, eps=cfg.eps)

    def __call__(self, x, mask):
        a = self.attention(x, mask)
        h = nn.gelu(self.intermediate(a))
        return self.output_norm(self.output(h) + a)


class Encoder(_Module):
    """The encoder: ``model(input_ids, attention_mask)`` -> last hidden state (B, L, E)."""

    def __init__(self, config):
        super().__init__()
        require_mlx(MIN_MLX, "transformer_mlx.Encoder")
        cfg = config if isinstance(config, EncoderConfig) else EncoderConfig(config)
        self.embeddings = Embeddings(cfg)
        self.layers = [Layer(cfg) for _ in range(cfg.layers)]

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None):
        x = self.embeddings(input_ids, token_type_ids)
        mask = None
        if attention_mask is not None:
            # 0 for tokens to attend to, float32 min for padding: (B, 1, 1, L)
            mask = (1.0 - attention_mask.astype(x.dtype)) * MASK_VALUE
            mask = mask[:, None, None, :]
        for layer in self.layers:
            x = layer(x, mask)
        return x


# --------------------------------------------------------------------------
# Weights from transformers
# --------------------------------------------------------------------------

# transformers parameter name -> this module's, applied in order.
NAME_MAP = [
    (r"^embeddings\.word_embeddings\.", "embeddings.word."),
    (r"^embeddings\.position_embeddings\.", "embeddings.position."),
    (r"^embeddings\.token_type_embeddings\.", "embeddings.token_type."),
    (r"^embeddings\.LayerNorm\.", "embeddings.norm."),
    (r"^encoder\.layer\.(\d+)\.attention\.self\.(query|key|value)\.", r"layers.\1.attention.\2."),
    (r"^encoder\.layer\.(\d+)\.attention\.output\.dense\.", r"layers.\1.attention.out."),
    (r"^encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.", r"layers.\1.attention.norm."),
    (r"^encoder\.layer\.(\d+)\.intermediate\.dense\.", r"layers.\1.intermediate."),
    (r"^encoder\.layer\.(\d+)\.output\.dense\.", r"layers.\1.output."),
    (r"^encoder\.layer\.(\d+)\.output\.LayerNorm\.", r"layers.\1.output_norm."),
]


def mlx_name(torch_name):
    """The MLX parameter name of a transformers parameter name."""
    name = re.sub(r"^(bert|roberta)\.", "", torch_name)
    for pattern, repl in NAME_MAP:
        new, n = re.subn(pattern, repl, name)
        if n:
            return new
    raise KeyError(f"no MLX counterpart for parameter {torch_name!r}")


def load_weights(model, weights):
    """Set every parameter of ``model`` from ``weights`` ({mlx name: array}),
    checking that names and shapes match one to one."""
    have = dict(tree_flatten(model.parameters()))
    missing = sorted(set(have) - set(weights))
    extra = sorted(set(weights) - set(have))
    if missing or extra:
        raise ValueError(f"weights do not match the model: missing {missing[:5]}, unexpected {extra[:5]}")
    for k, v in weights.items():
        if tuple(v.shape) != tuple(have[k].shape):
            raise ValueError(f"{k}: shape {tuple(v.shape)}, model has {tuple(have[k].shape)}")
    model.update(tree_unflatten(list(weights.items())))
    return model


def from_torch(torch_model):
    """The MLX encoder with the weights of a transformers encoder (float32).

    Pooler weights, if the torch model has a pooler, are left out: the
    benchmark ends at the last hidden state.
    """
    model = Encoder(torch_model.config)
    weights = {}
    for name, p in torch_model.named_parameters():
        if name.startswith("pooler.") or ".pooler." in name:
            continue
        weights[mlx_name(name)] = mx.array(p.detach().to("cpu").float().numpy())
    load_weights(model, weights)
    model.eval()
    mx.eval(model.parameters())
    return model


def has_dropout(model):
    """Whether any submodule of ``model`` is a dropout layer (there are none)."""
    dropouts = tuple(getattr(nn, n) for n in ("Dropout", "Dropout2d", "Dropout3d") if hasattr(nn, n))

    def walk(value):
        if isinstance(value, dropouts):
            return True
        if isinstance(value, (list, tuple)):
            return any(walk(v) for v in value)
        if isinstance(value, nn.Module):
            return any(walk(v) for v in value.values())
        return False

    return walk(model)

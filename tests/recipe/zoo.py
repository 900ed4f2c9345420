"""A zoo of small models: the bugs the recipe checks exist for, and correct look-alikes.

Each case is a ``ModelSpec`` (what ``pytest --nncheck`` runs for a declared model) and the check
that must catch it (``None`` for a correct model, which must pass every check that applies to it).
The look-alikes are the models a check must not confuse with a bug: BatchNorm (mixes the batch in
train mode), LayerNorm and GroupNorm, attention with a correct mask, dropout, a zero-initialised
head, a backbone frozen on purpose. ``tests/recipe`` and ``benchmarks/recipe.py`` both use it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from pytest_nncheck.recipe.models import ModelSpec

SAMPLES, FEATURES, CLASSES = 16, 8, 4
BATCH, LENGTH, CHANNELS, VOCAB = 4, 8, 6, 6
HIDDEN = 16


@dataclass(frozen=True)
class Case:
    """A zoo model: its spec, and the check that must fail on it (None: every check must pass)."""

    spec: ModelSpec
    bug: Optional[str]
    description: str

    @property
    def name(self) -> str:
        return self.spec.name


def _generator() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def tabular() -> Tuple[torch.Tensor, torch.Tensor]:
    """16 samples of 8 features; the class is the argmax of a fixed linear map (learnable)."""
    g = _generator()
    x = torch.randn(SAMPLES, FEATURES, generator=g)
    return x, (x @ torch.randn(FEATURES, CLASSES, generator=g)).argmax(dim=1)


def images() -> Tuple[torch.Tensor, torch.Tensor]:
    g = _generator()
    x = torch.randn(SAMPLES, 1, 6, 6, generator=g)
    return x, (x.flatten(1) @ torch.randn(36, CLASSES, generator=g)).argmax(dim=1)


def regression() -> Tuple[torch.Tensor, torch.Tensor]:
    x, _ = tabular()
    return x, (x @ torch.randn(FEATURES, 1, generator=_generator())) * 0.5


def sequences() -> Tuple[torch.Tensor, torch.Tensor]:
    """(batch, time, channels) floats; each position's class depends on that position alone."""
    g = _generator()
    x = torch.randn(BATCH, LENGTH, CHANNELS, generator=g)
    return x, (x @ torch.randn(CHANNELS, CLASSES, generator=g)).argmax(dim=-1)


def tokens() -> Tuple[torch.Tensor, torch.Tensor]:
    """(batch, time) token ids; each position's target is its token plus one (mod the vocabulary)."""
    x = torch.randint(0, VOCAB, (BATCH, LENGTH), generator=_generator())
    return x, (x + 1) % VOCAB


def per_position(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over every position of a (batch, time, classes) output."""
    return F.cross_entropy(outputs.flatten(0, 1), targets.flatten())


def calm(layer: nn.Linear) -> nn.Linear:
    """A last layer initialised small, so the loss at init is ln C (Karpathy's "init well")."""
    with torch.no_grad():
        layer.weight.mul_(0.1)
        layer.bias.zero_()
    return layer


def mlp(norm: Callable[[int], nn.Module] = nn.Identity, dropout: float = 0.0) -> nn.Sequential:
    return nn.Sequential(nn.Linear(FEATURES, HIDDEN), norm(HIDDEN), nn.ReLU(), nn.Dropout(dropout),
                         calm(nn.Linear(HIDDEN, CLASSES)))


# ---------------------------------------------------------------- batch independence bugs

class SoftmaxOverBatch(nn.Module):
    """log_softmax over dim 0, the batch, where the classes (dim 1) were meant."""

    def __init__(self) -> None:
        super().__init__()
        self.net = mlp()

    def forward(self, x):
        return F.log_softmax(self.net(x), dim=0)


class CentredOverBatch(nn.Module):
    """Inputs standardised with the batch's own mean: x - x.mean(0), in train and eval alike."""

    def __init__(self) -> None:
        super().__init__()
        self.net = mlp()

    def forward(self, x):
        return self.net(x - x.mean(dim=0))


class NormalisedOverBatch(nn.Module):
    """Hidden features normalised over the batch axis (F.normalize's dim=0) instead of features."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(FEATURES, HIDDEN)
        self.head = calm(nn.Linear(HIDDEN, CLASSES))

    def forward(self, x):
        return self.head(F.normalize(torch.relu(self.hidden(x)), dim=0) * 4)


class SequenceFirstGRUFedByView(nn.Module):
    """A sequence-first GRU fed (batch, time, channels) through view, not transpose."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(CHANNELS, HIDDEN)
        self.head = calm(nn.Linear(HIDDEN, CLASSES))

    def forward(self, x):
        batch, time, channels = x.shape
        out, _ = self.rnn(x.view(time, batch, channels))
        return self.head(out.view(batch, time, HIDDEN))


class PooledAfterView(nn.Module):
    """Mean over time after a view that was meant to be transpose(0, 1): the pool mixes samples."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(CHANNELS, HIDDEN)
        self.head = calm(nn.Linear(HIDDEN, CLASSES))

    def forward(self, x):
        batch, time, _ = x.shape
        h = torch.tanh(self.embed(x)).view(time, batch, HIDDEN)
        return self.head(h.mean(dim=0))


# ---------------------------------------------------------------- causality bugs

class MaskedAttention(nn.Module):
    """One attention head over (batch, time, channels); ``mask(length)`` marks what is hidden."""

    def __init__(self, mask: Callable[[int], torch.Tensor]) -> None:
        super().__init__()
        self.mask = mask
        self.qkv = nn.Linear(CHANNELS, 3 * HIDDEN)
        self.head = calm(nn.Linear(HIDDEN, CLASSES))

    def forward(self, x):
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        scores = q @ k.transpose(1, 2) / math.sqrt(HIDDEN)
        hidden = self.mask(x.shape[1]).to(x.device)
        weights = scores.masked_fill(hidden, float("-inf")).softmax(dim=-1)
        return self.head(weights @ v + q)


def future(length: int) -> torch.Tensor:
    return torch.triu(torch.ones(length, length, dtype=torch.bool), diagonal=1)


def future_but_next(length: int) -> torch.Tensor:
    return torch.triu(torch.ones(length, length, dtype=torch.bool), diagonal=2)


def past(length: int) -> torch.Tensor:
    return torch.tril(torch.ones(length, length, dtype=torch.bool), diagonal=-1)


class PaddedConv(nn.Module):
    """A kernel-3 convolution over time; ``trim`` keeps the part of the padded output it wants."""

    def __init__(self, padding: Tuple[int, int], trim: slice) -> None:
        super().__init__()
        self.padding, self.trim = padding, trim
        self.conv = nn.Conv1d(CHANNELS, HIDDEN, kernel_size=3)
        self.head = calm(nn.Linear(HIDDEN, CLASSES))

    def forward(self, x):
        h = self.conv(F.pad(x.transpose(1, 2), self.padding))[..., self.trim]
        return self.head(torch.relu(h).transpose(1, 2))


class GlobalContext(nn.Module):
    """Adds the mean over the whole sequence to every position: a summary of the future."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(CHANNELS, HIDDEN)
        self.head = calm(nn.Linear(HIDDEN, CLASSES))

    def forward(self, x):
        h = torch.tanh(self.embed(x))
        return self.head(h + h.mean(dim=1, keepdim=True))


class TokenTransformer(nn.Module):
    """Token and position embeddings, one transformer layer, a head; ``causal`` adds the mask."""

    def __init__(self, causal: bool = True, use_tokens: bool = True) -> None:
        super().__init__()
        self.causal, self.use_tokens = causal, use_tokens
        self.tokens = nn.Embedding(VOCAB, HIDDEN)
        self.positions = nn.Embedding(LENGTH, HIDDEN)
        self.layer = nn.TransformerEncoderLayer(HIDDEN, nhead=2, dim_feedforward=32, dropout=0.1,
                                                batch_first=True)
        self.head = calm(nn.Linear(HIDDEN, VOCAB))

    def forward(self, x):
        where = torch.arange(x.shape[1], device=x.device)
        h = self.tokens(x) + self.positions(where)
        if not self.use_tokens:
            h = self.positions(where).expand(x.shape[0], -1, -1)  # the typo: tokens overwritten
        mask = nn.Transformer.generate_square_subsequent_mask(x.shape[1]) if self.causal else None
        return self.head(self.layer(h, src_mask=mask, is_causal=self.causal))


class TokenGRU(nn.Module):
    """A batch-first GRU language model with tied input and output embeddings."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens = nn.Embedding(VOCAB, HIDDEN)
        self.rnn = nn.GRU(HIDDEN, HIDDEN, batch_first=True)
        self.head = nn.Linear(HIDDEN, VOCAB)
        self.head.weight = self.tokens.weight
        with torch.no_grad():
            self.tokens.weight.mul_(0.1)

    def forward(self, x):
        out, _ = self.rnn(self.tokens(x))
        return self.head(out)


# ---------------------------------------------------------------- input-ignoring bugs

class InputDroppedEntirely(nn.Module):
    """Dropout with p=1.0 on the input (meant 0.1): in training the model never sees its input."""

    def __init__(self) -> None:
        super().__init__()
        self.drop = nn.Dropout(p=1.0)
        self.net = mlp()

    def forward(self, x):
        return self.net(self.drop(x))


class UnfilledFeatureMask(nn.Module):
    """Inputs multiplied by a feature mask buffer that was meant to be loaded and stayed zero."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("feature_mask", torch.zeros(FEATURES))
        self.net = mlp()

    def forward(self, x):
        return self.net(x * self.feature_mask)


# ---------------------------------------------------------------- parameter bugs

class Backbone(nn.Module):
    """A two-layer encoder and a head: the shape real fine-tuning code has."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(FEATURES, HIDDEN), nn.ReLU(),
                                     nn.Linear(HIDDEN, HIDDEN), nn.ReLU())
        self.head = calm(nn.Linear(HIDDEN, CLASSES))

    def forward(self, x):
        return self.head(self.encoder(x))


def frozen_by_accident() -> nn.Module:
    """Everything frozen to fine-tune the head, and the unfreezing loop never ran."""
    model = Backbone()
    for parameter in model.parameters():
        parameter.requires_grad = False
    model.head.bias.requires_grad = True
    return model


def frozen_on_purpose() -> nn.Module:
    model = Backbone()
    for parameter in model.encoder.parameters():
        parameter.requires_grad = False
    return model


class LayerBuiltInForward(nn.Module):
    """The projection is built inside forward: new random weights on every call."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Linear(FEATURES, HIDDEN)

    def forward(self, x):
        return calm(nn.Linear(HIDDEN, CLASSES))(torch.relu(self.encoder(x)))


class LayersInPlainList(nn.Module):
    """Hidden layers kept in a Python list, not nn.ModuleList: invisible to model.parameters()."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = [nn.Linear(FEATURES, HIDDEN), nn.Linear(HIDDEN, HIDDEN)]
        self.head = calm(nn.Linear(HIDDEN, CLASSES))

    def forward(self, x):
        for layer in self.layers:
            x = torch.relu(layer(x))
        return self.head(x)


class ScaleNotAParameter(nn.Module):
    """A learnable scale made with requires_grad=True instead of nn.Parameter."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Linear(FEATURES, HIDDEN)
        self.scale = torch.ones(HIDDEN, requires_grad=True)
        self.head = calm(nn.Linear(HIDDEN, CLASSES))

    def forward(self, x):
        return self.head(torch.relu(self.encoder(x)) * self.scale)


class DetachedEncoder(nn.Module):
    """The encoder's output is detached (a leftover from feature extraction): it gets no gradient."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Linear(FEATURES, HIDDEN)
        self.head = calm(nn.Linear(HIDDEN, CLASSES))

    def forward(self, x):
        return self.head(torch.relu(self.encoder(x)).detach())


class ZeroInitialisedHead(nn.Module):
    """A last layer initialised to zero: the encoder's gradient is zero at the first step only."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(FEATURES, HIDDEN), nn.ReLU())
        self.head = nn.Linear(HIDDEN, CLASSES)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x):
        return self.head(self.encoder(x))


class CentredPerSample(nn.Module):
    """Each sample centred on its own mean over features: dim=1, the look-alike of x - x.mean(0)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = mlp()

    def forward(self, x):
        return self.net(x - x.mean(dim=1, keepdim=True))


class SequenceFirstGRU(nn.Module):
    """The correct way to feed a sequence-first GRU: transpose, not view."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(CHANNELS, HIDDEN)
        self.head = calm(nn.Linear(HIDDEN, CLASSES))

    def forward(self, x):
        out, _ = self.rnn(x.transpose(0, 1))
        return self.head(out.transpose(0, 1))


def cnn(norm: Callable[[int], nn.Module]) -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), norm(4), nn.ReLU(), nn.Flatten(),
                         calm(nn.Linear(4 * 36, CLASSES)))


def _optimizer_over_head(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.Adam(model.head.parameters(), lr=1e-2)


def _optimizer_over_another_instance(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.Adam(type(model)().parameters(), lr=1e-2)


def dead_relu_mlp() -> nn.Sequential:
    """A first-layer bias of -20: no ReLU ever fires, the encoder never learns."""
    model = mlp()
    with torch.no_grad():
        model[0].bias.fill_(-20.0)
    return model


def _softmaxed() -> nn.Module:
    return nn.Sequential(mlp(), nn.Softmax(dim=1))


SEQUENCE_OPTIONS = {"initial_loss": {"expected": math.log(CLASSES)}}
TOKEN_OPTIONS = {"initial_loss": {"expected": math.log(VOCAB)}}


def _case(name: str, bug: Optional[str], factory: Callable[[], nn.Module], batch: Callable,
          description: str, loss_fn=None, **fields) -> Case:
    sequence = batch in (sequences, tokens)
    loss_fn = loss_fn or (per_position if sequence else nn.CrossEntropyLoss())
    options = fields.pop("options", SEQUENCE_OPTIONS if batch is sequences else
                         TOKEN_OPTIONS if batch is tokens else {})
    return Case(ModelSpec(factory=factory, batch=batch, loss_fn=loss_fn, name=name,
                          sequence=fields.pop("sequence", sequence), options=options, **fields),
                bug, description)


def all_cases() -> List[Case]:
    """Every zoo case, buggy ones first."""
    return [
        _case("softmax-over-batch", "batch_independence", SoftmaxOverBatch, tabular,
              "log_softmax over dim 0", loss_fn=nn.NLLLoss()),
        _case("centred-over-batch", "batch_independence", CentredOverBatch, tabular,
              "x - x.mean(0) in forward"),
        _case("normalised-over-batch", "batch_independence", NormalisedOverBatch, tabular,
              "F.normalize over the batch axis"),
        _case("gru-fed-by-view", "batch_independence", SequenceFirstGRUFedByView, sequences,
              "a sequence-first GRU fed through view", sequence=False),
        _case("pooled-after-view", "batch_independence", PooledAfterView,
              lambda: (sequences()[0], tabular()[1][:BATCH]), "mean over time after a view",
              sequence=False, options={}),
        _case("mask-off-by-one", "causality", lambda: MaskedAttention(future_but_next), sequences,
              "triu(diagonal=2): position t sees t + 1"),
        _case("mask-inverted", "causality", lambda: MaskedAttention(past), sequences,
              "tril where triu was meant"),
        _case("conv-padded-both-sides", "causality", lambda: PaddedConv((1, 1), slice(None)),
              sequences, "a kernel-3 'causal' convolution with padding=1"),
        _case("conv-trimmed-wrong-end", "causality", lambda: PaddedConv((2, 2), slice(2, None)),
              sequences, "padding 2 on both sides, the left end trimmed"),
        _case("global-context", "causality", GlobalContext, sequences,
              "the sequence mean added to every position"),
        _case("transformer-without-mask", "causality", lambda: TokenTransformer(causal=False),
              tokens, "a token transformer layer with no causal mask"),
        _case("tokens-overwritten", "baseline", lambda: TokenTransformer(use_tokens=False), tokens,
              "the token embedding overwritten by the positions"),
        _case("input-dropout-1", "baseline", InputDroppedEntirely, tabular,
              "Dropout(p=1.0) on the input"),
        _case("unfilled-feature-mask", "baseline", UnfilledFeatureMask, tabular,
              "inputs times a zero buffer"),
        _case("optimizer-over-head", "parameters_update", Backbone, tabular,
              "the optimizer built over the head only", optimizer=_optimizer_over_head),
        _case("optimizer-of-another-instance", "parameters_update", Backbone, tabular,
              "the optimizer built over another instance", optimizer=_optimizer_over_another_instance),
        _case("frozen-by-accident", "parameters_update", frozen_by_accident, tabular,
              "all but one parameter left with requires_grad=False"),
        _case("layer-built-in-forward", "parameters_update", LayerBuiltInForward, tabular,
              "nn.Linear built inside forward"),
        _case("layers-in-plain-list", "parameters_update", LayersInPlainList, tabular,
              "a Python list instead of nn.ModuleList"),
        _case("scale-not-a-parameter", "parameters_update", ScaleNotAParameter, tabular,
              "torch.ones(requires_grad=True) instead of nn.Parameter"),
        _case("detached-encoder", "parameters_update", DetachedEncoder, tabular,
              ".detach() after the encoder"),
        _case("softmax-before-cross-entropy", "overfit", _softmaxed, tabular,
              "nn.Softmax before CrossEntropyLoss"),
        _case("mse-broadcast", "initial_loss", lambda: nn.Linear(FEATURES, 1),
              lambda: (regression()[0], regression()[1].squeeze(1)),
              "an (N, 1) output against (N,) targets under MSE", loss_fn=nn.MSELoss()),
        _case("dead-relus", "training", dead_relu_mlp, tabular, "a first-layer bias of -20"),
        _case("sgd-lr-20", "training", mlp, tabular, "SGD at lr 20: the loss diverges",
              optimizer=lambda m: torch.optim.SGD(m.parameters(), lr=20.0)),
        # correct look-alikes
        _case("mlp-batchnorm", None, lambda: mlp(nn.BatchNorm1d), tabular, "BatchNorm1d"),
        _case("mlp-layernorm", None, lambda: mlp(nn.LayerNorm), tabular, "LayerNorm"),
        _case("mlp-dropout", None, lambda: mlp(dropout=0.3), tabular, "Dropout(0.3)"),
        _case("cnn-batchnorm", None, lambda: cnn(nn.BatchNorm2d), images, "BatchNorm2d"),
        _case("cnn-groupnorm", None, lambda: cnn(lambda c: nn.GroupNorm(2, c)), images, "GroupNorm"),
        _case("centred-per-sample", None, CentredPerSample, tabular, "x - x.mean(1)"),
        _case("log-softmax-over-classes", None, lambda: nn.Sequential(mlp(), nn.LogSoftmax(dim=1)),
              tabular, "log_softmax over dim 1", loss_fn=nn.NLLLoss()),
        _case("gru-fed-by-transpose", None, SequenceFirstGRU, sequences,
              "a sequence-first GRU fed through transpose"),
        _case("attention-causal-mask", None, lambda: MaskedAttention(future), sequences,
              "triu(diagonal=1) mask"),
        _case("conv-padded-left", None, lambda: PaddedConv((2, 0), slice(None)), sequences,
              "a kernel-3 convolution padded on the left only"),
        _case("transformer-causal", None, TokenTransformer, tokens,
              "token transformer with a causal mask and dropout"),
        _case("gru-tied-embeddings", None, TokenGRU, tokens, "GRU language model, tied weights"),
        _case("zero-initialised-head", None, ZeroInitialisedHead, tabular, "a zero last layer"),
        _case("frozen-on-purpose", None, frozen_on_purpose, tabular, "a frozen encoder, declared",
              options={"parameters_update": {"ignore": ["encoder"]}}),
        _case("mse-matching-shapes", None, lambda: calm(nn.Linear(FEATURES, 1)), regression,
              "an (N, 1) output against (N, 1) targets", loss_fn=nn.MSELoss()),
    ]

"""A zoo of small training runs, healthy and sick, for the health tests and ``benchmarks/health.py``.

Each run is data: a name, a builder that returns (model, inputs, targets, loss_fn, optimizer
factory, validation), and the problem code it must produce (None for a healthy run, which must
produce none). Tasks are learnable by construction: labels come from a fixed random "teacher".
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

FEATURES, CLASSES, EXAMPLES = 16, 4, 128


def teacher_data(seed: int = 0, examples: int = EXAMPLES, shape: Tuple[int, ...] = (FEATURES,),
                 classes: int = CLASSES) -> Tuple[torch.Tensor, torch.Tensor]:
    """Inputs from N(0, 1) and labels from a fixed random linear teacher (the same for every seed)."""
    teacher = torch.randn(int(torch.tensor(shape).prod()), classes,
                          generator=torch.Generator().manual_seed(1234))
    x = torch.randn(examples, *shape, generator=torch.Generator().manual_seed(seed))
    return x, (x.flatten(1) @ teacher).argmax(1)


def mlp(activation: Callable[[], nn.Module] = nn.ReLU, widths=(FEATURES, 64, 64, CLASSES),
        batchnorm: bool = False) -> nn.Sequential:
    layers: list = []
    for i, (a, b) in enumerate(zip(widths, widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers += [nn.BatchNorm1d(b)] if batchnorm else []
            layers.append(activation())
    return nn.Sequential(*layers)


class ConvNet(nn.Module):
    """Two convolutions on 1x8x8 images; ReLUs written functionally, as most real code does."""

    def __init__(self, batchnorm: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.norm = nn.BatchNorm2d(8) if batchnorm else nn.Identity()
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.head = nn.Linear(16 * 4 * 4, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.norm(self.conv1(x))), 2)
        return self.head(F.relu(self.conv2(x)).flatten(1))


class LSTMClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(FEATURES, 32, batch_first=True)
        self.head = nn.Linear(32, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.lstm(x)[0][:, -1])


class TinyTransformer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.TransformerEncoderLayer(FEATURES, 2, 32, dropout=0.0, batch_first=True)
        self.head = nn.Linear(FEATURES, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x).mean(1))


class Detached(nn.Module):
    """An encoder cut off from the graph by ``.detach()``: only the head learns."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Linear(FEATURES, 64)
        self.head = nn.Linear(64, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.encoder(x)).detach())


class LogOfRelu(nn.Module):
    """A forward that takes log of a ReLU output: -inf wherever the unit is off."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(FEATURES, 32)
        self.features = nn.ReLU()
        self.head = nn.Linear(32, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.log(self.features(self.hidden(x))))


def handwritten_cross_entropy(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy as -log(softmax): softmax underflows to 0 on large logits, and log(0) = -inf."""
    return -torch.log(torch.softmax(outputs, 1)[torch.arange(len(targets)), targets]).mean()


def scaled(model: nn.Module, weight_scale: float = 1.0, bias: Optional[float] = None,
           std: Optional[float] = None) -> nn.Module:
    """Re-initialise every Linear: weights times ``weight_scale`` or N(0, std); biases set to ``bias``."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Linear):
                if std is not None:
                    module.weight.normal_(0, std)
                module.weight.mul_(weight_scale)
                if bias is not None:
                    module.bias.fill_(bias)
    return model


def first_bias(model: nn.Sequential, value: float) -> nn.Sequential:
    with torch.no_grad():
        model[0].bias.fill_(value)
    return model


def adam(lr: float = 1e-3) -> Callable:
    return lambda params: torch.optim.Adam(params, lr=lr)


def sgd(lr: float, momentum: float = 0.0) -> Callable:
    return lambda params: torch.optim.SGD(params, lr=lr, momentum=momentum)


@dataclass
class Run:
    """One zoo entry: ``build()`` returns (model, inputs, targets, loss_fn, optimizer, validation)."""

    name: str
    build: Callable[[], tuple]
    expected: Optional[str]


def _vectors(model: nn.Module, optimizer: Callable, loss_fn: Any = None, validation: bool = False):
    x, y = teacher_data()
    held_out = teacher_data(seed=1) if validation else None
    return model, x, y, loss_fn or nn.CrossEntropyLoss(), optimizer, held_out


def _images(model: nn.Module, optimizer: Callable):
    x, y = teacher_data(shape=(1, 8, 8))
    return model, x, y, nn.CrossEntropyLoss(), optimizer, None


def _sequences(model: nn.Module, optimizer: Callable):
    x, y = teacher_data(shape=(6, FEATURES))
    return model, x, y, nn.CrossEntropyLoss(), optimizer, None


def _memorise_noise():
    """A wide MLP trained on 16 examples with random labels: it memorises them, and the loss on
    held-out examples (also random labels) rises."""
    x = torch.randn(16, FEATURES, generator=torch.Generator().manual_seed(5))
    y = torch.randint(0, CLASSES, (16,), generator=torch.Generator().manual_seed(6))
    held_out = (torch.randn(64, FEATURES, generator=torch.Generator().manual_seed(7)),
                torch.randint(0, CLASSES, (64,), generator=torch.Generator().manual_seed(8)))
    return (mlp(widths=(FEATURES, 256, 256, CLASSES)), x, y, nn.CrossEntropyLoss(), adam(1e-2),
            held_out)


def _seeded(builder: Callable[[], tuple], seed: int = 0) -> Callable[[], tuple]:
    def build() -> tuple:
        torch.manual_seed(seed)
        return builder()
    return build


HEALTHY = [
    Run("mlp-relu-adam", _seeded(lambda: _vectors(mlp(), adam())), None),
    Run("mlp-relu-sgd-momentum", _seeded(lambda: _vectors(mlp(), sgd(0.05, 0.9))), None),
    Run("mlp-batchnorm-adam", _seeded(lambda: _vectors(mlp(batchnorm=True), adam())), None),
    Run("mlp-batchnorm-sgd", _seeded(lambda: _vectors(mlp(batchnorm=True), sgd(0.1, 0.9))), None),
    Run("mlp-tanh-adam", _seeded(lambda: _vectors(mlp(nn.Tanh), adam())), None),
    Run("mlp-sigmoid-shallow-adam", _seeded(lambda: _vectors(mlp(nn.Sigmoid, (FEATURES, 32, CLASSES)),
                                                             adam(1e-2))), None),
    Run("mlp-with-validation", _seeded(lambda: _vectors(mlp(), adam(), validation=True)), None),
    Run("cnn-adam", _seeded(lambda: _images(ConvNet(), adam())), None),
    Run("cnn-batchnorm-sgd", _seeded(lambda: _images(ConvNet(batchnorm=True), sgd(0.05, 0.9))), None),
    Run("lstm-adam", _seeded(lambda: _sequences(LSTMClassifier(), adam(1e-2))), None),
    Run("transformer-adam", _seeded(lambda: _sequences(TinyTransformer(), adam())), None),
    Run("mlp-gelu-adamw", _seeded(lambda: _vectors(mlp(nn.GELU), lambda p: torch.optim.AdamW(p, 1e-3))),
        None),
]

SICK = [
    Run("deep-sigmoid-tiny-init", _seeded(lambda: _vectors(
        scaled(mlp(nn.Sigmoid, (FEATURES,) + (32,) * 8 + (CLASSES,)), std=0.01, bias=0.0),
        sgd(0.1))), "vanishing-gradient"),
    Run("huge-init", _seeded(lambda: _vectors(
        scaled(mlp(widths=(FEATURES,) + (64,) * 5 + (CLASSES,)), weight_scale=6.0), sgd(1e-4))),
        "exploding-gradient"),
    Run("negative-bias-under-relu", _seeded(lambda: _vectors(first_bias(mlp(), -20.0), adam())),
        "dead-relu"),
    Run("tanh-large-weights", _seeded(lambda: _vectors(scaled(mlp(nn.Tanh), weight_scale=20.0),
                                                       adam())), "saturated-activation"),
    Run("lr-1e-7", _seeded(lambda: _vectors(mlp(), adam(1e-7))), "update-ratio-low"),
    Run("sgd-lr-too-low", _seeded(lambda: _vectors(mlp(), sgd(1e-4))), "loss-not-decreasing"),
    Run("adam-lr-1", _seeded(lambda: _vectors(mlp(), adam(1.0))), "update-ratio-high"),
    Run("sgd-lr-too-high", _seeded(lambda: _vectors(mlp(), sgd(20.0))), "loss-diverged"),
    Run("sgd-oscillating", _seeded(lambda: _vectors(mlp(), sgd(4.0))), "loss-oscillating"),
    Run("log-zero-in-loss", _seeded(lambda: _vectors(scaled(mlp(), weight_scale=30.0), adam(),
                                                     handwritten_cross_entropy)), "nan"),
    Run("log-zero-in-forward", _seeded(lambda: _vectors(LogOfRelu(), adam())), "nan"),
    Run("detached-layer", _seeded(lambda: _vectors(Detached(), adam())), "parameter-not-updated"),
    Run("memorising-noise", _seeded(_memorise_noise), "overfitting"),
]

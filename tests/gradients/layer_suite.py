"""Custom layers with a correct and a deliberately wrong backward, in pairs.

Shared by the tests (correct ones must pass, wrong ones must fail) and by
benchmarks/gradcheck_vs_torch.py (bugs detected and false alarms per tool).
Each case builds fresh objects: ``build() -> (fn, inputs, options)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Tuple

import torch
import torch.nn.functional as F
from torch import nn


class LinearFunction(torch.autograd.Function):
    """y = x W^T + b with a hand-written backward; ``bug`` selects a mistake."""

    bug = None

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        return x @ weight.t() + bias

    @classmethod
    def _backward(cls, ctx, grad):
        x, weight = ctx.saved_tensors
        grad_x = grad @ weight
        grad_w = grad.t() @ x
        grad_b = grad.sum(0)
        if cls.bug == "dense":
            grad_x = grad_x * 1.1
        elif cls.bug == "single-entry":
            grad_w = grad_w.clone()
            grad_w[1, 2] = grad_w[1, 2] * 3.0
        elif cls.bug == "weight":
            grad_w = grad_w * 0.5
        elif cls.bug == "bias":
            grad_b = grad.mean(0)
        return grad_x, grad_w, grad_b


def _make_linear_function(bug):
    class Variant(LinearFunction):
        @staticmethod
        def backward(ctx, grad):
            return LinearFunction._backward.__func__(Variant, ctx, grad)
    Variant.bug = bug
    return Variant


CorrectLinear = _make_linear_function(None)
DenseBugLinear = _make_linear_function("dense")
SingleEntryBugLinear = _make_linear_function("single-entry")
WeightBugLinear = _make_linear_function("weight")
BiasBugLinear = _make_linear_function("bias")


class CustomLinear(nn.Module):
    """A module with parameters whose gradient comes from a hand-written Function."""

    def __init__(self, function: type, in_features: int = 5, out_features: int = 4) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(1)
        self.function = function
        self.weight = nn.Parameter(torch.randn(out_features, in_features, generator=generator))
        self.bias = nn.Parameter(torch.randn(out_features, generator=generator))

    def forward(self, x):
        return self.function.apply(x, self.weight, self.bias)


class DropoutMaskFunction(torch.autograd.Function):
    """Inverted dropout with a hand-written backward that forgets the 1/(1-p) scale when buggy."""

    scale_in_backward = True

    @staticmethod
    def forward(ctx, x, p):
        mask = (torch.rand_like(x) > p).to(x.dtype) / (1 - p)
        ctx.save_for_backward(mask)
        ctx.p = p
        return x * mask

    @classmethod
    def _backward(cls, ctx, grad):
        (mask,) = ctx.saved_tensors
        if cls.scale_in_backward:
            return grad * mask, None
        return grad * (mask > 0).to(grad.dtype), None


class CorrectDropoutMask(DropoutMaskFunction):
    @staticmethod
    def backward(ctx, grad):
        return DropoutMaskFunction._backward.__func__(CorrectDropoutMask, ctx, grad)


class UnscaledDropoutMask(DropoutMaskFunction):
    scale_in_backward = False

    @staticmethod
    def backward(ctx, grad):
        return DropoutMaskFunction._backward.__func__(UnscaledDropoutMask, ctx, grad)


class HandDropout(nn.Module):
    """Dropout written by hand inside a small block, in train mode."""

    def __init__(self, function: type, p: float = 0.5) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 4)
        self.function, self.p = function, p

    def forward(self, x):
        return self.function.apply(torch.tanh(self.fc(x)), self.p)


class RedrawingDropout(torch.autograd.Function):
    """A dropout whose backward draws a new mask instead of reusing the forward's."""

    @staticmethod
    def forward(ctx, x):
        ctx.shape = x.shape
        return x * (torch.rand_like(x) > 0.5).to(x.dtype) * 2

    @staticmethod
    def backward(ctx, grad):
        return grad * (torch.rand(ctx.shape, dtype=grad.dtype) > 0.5).to(grad.dtype) * 2


class DropoutBlock(nn.Module):
    """Linear, dropout, linear; ``redraw`` swaps nn.Dropout for a backward that redraws the mask."""

    def __init__(self, redraw: bool = False) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(6, 8), nn.Linear(8, 3)
        self.dropout = nn.Dropout(0.5)
        self.redraw = redraw

    def forward(self, x):
        hidden = torch.tanh(self.fc1(x))
        hidden = RedrawingDropout.apply(hidden) if self.redraw else self.dropout(hidden)
        return self.fc2(hidden)


class LeakyMaskReLU(torch.autograd.Function):
    """ReLU whose backward passes gradient where x >= -1 instead of x > 0 (wrong near 0)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (x >= -1).to(grad.dtype)


class SpreadMax(torch.autograd.Function):
    """Row max whose backward spreads the gradient over every entry instead of the winner."""

    @staticmethod
    def forward(ctx, x):
        ctx.shape = x.shape
        return x.max(dim=1).values

    @staticmethod
    def backward(ctx, grad):
        return grad[:, None].expand(ctx.shape) / ctx.shape[1]


def svm_loss(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Weston-Watkins multiclass hinge loss (CS231n), autograd backward."""
    correct = scores.gather(1, labels[:, None])
    margins = (scores - correct + 1.0).clamp(min=0)
    margins = margins.scatter(1, labels[:, None], 0.0)
    return margins.sum() / scores.shape[0]


class SignFlippedHinge(torch.autograd.Function):
    """max(0, 1 - y*s) with the sign of the gradient flipped."""

    @staticmethod
    def forward(ctx, scores, y):
        ctx.save_for_backward(scores, y)
        return (1 - y * scores).clamp(min=0).sum()

    @staticmethod
    def backward(ctx, grad):
        scores, y = ctx.saved_tensors
        active = ((1 - y * scores) > 0).to(scores.dtype)
        return grad * active * y, None


def binary_hinge(scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (1 - y * scores).clamp(min=0).sum()


class SoftmaxLossFunction(torch.autograd.Function):
    """Softmax cross-entropy with a hand-written gradient; ``off`` makes it slightly wrong."""

    @staticmethod
    def forward(ctx, scores, labels, off):
        probabilities = torch.softmax(scores, dim=1)
        ctx.save_for_backward(probabilities, labels)
        ctx.off = off
        return -probabilities.gather(1, labels[:, None]).log().mean()

    @staticmethod
    def backward(ctx, grad):
        probabilities, labels = ctx.saved_tensors
        target = F.one_hot(labels, probabilities.shape[1]).to(probabilities.dtype)
        gradient = (probabilities - target * (1 - ctx.off)) / probabilities.shape[0]
        return grad * gradient, None, None


class RegularizedClassifier(nn.Module):
    """A linear softmax classifier whose loss has a hand-written gradient (wrong when ``off``)."""

    def __init__(self, off: float) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(3)
        self.weight = nn.Parameter(torch.randn(4, 6, generator=generator) * 0.1)
        self.off = off

    def forward(self, x, labels):
        return SoftmaxLossFunction.apply(x @ self.weight.t(), labels, self.off)


def strong_weight_decay(module: nn.Module) -> torch.Tensor:
    return 1e3 * (module.weight ** 2).sum()


class BatchNormFunction(torch.autograd.Function):
    """Train-mode batch norm; ``bug`` treats mean and var as constants, or drops the var term."""

    bug = None

    @staticmethod
    def forward(ctx, x, weight, bias):
        mean = x.mean(0)
        inv_std = (x.var(0, unbiased=False) + 1e-5).rsqrt()
        normalized = (x - mean) * inv_std
        ctx.save_for_backward(normalized, inv_std, weight)
        return normalized * weight + bias

    @classmethod
    def _backward(cls, ctx, grad):
        normalized, inv_std, weight = ctx.saved_tensors
        grad_normalized = grad * weight
        if cls.bug == "constant statistics":
            grad_x = grad_normalized * inv_std
        elif cls.bug == "no variance term":
            grad_x = inv_std * (grad_normalized - grad_normalized.mean(0))
        else:
            grad_x = inv_std * (grad_normalized - grad_normalized.mean(0)
                                - normalized * (grad_normalized * normalized).mean(0))
        return grad_x, (grad * normalized).sum(0), grad.sum(0)


class CorrectBatchNorm(BatchNormFunction):
    @staticmethod
    def backward(ctx, grad):
        return BatchNormFunction._backward.__func__(CorrectBatchNorm, ctx, grad)


class ConstantStatisticsBatchNorm(BatchNormFunction):
    bug = "constant statistics"

    @staticmethod
    def backward(ctx, grad):
        return BatchNormFunction._backward.__func__(ConstantStatisticsBatchNorm, ctx, grad)


class NoVarianceTermBatchNorm(BatchNormFunction):
    bug = "no variance term"

    @staticmethod
    def backward(ctx, grad):
        return BatchNormFunction._backward.__func__(NoVarianceTermBatchNorm, ctx, grad)


class BatchNormBlock(nn.Module):
    """Linear then batch norm in train mode (nn.BatchNorm1d, or a hand-written one)."""

    def __init__(self, function: type = None) -> None:
        super().__init__()
        self.fc = nn.Linear(5, 4)
        self.bn = nn.BatchNorm1d(4)
        self.function = function

    def forward(self, x):
        hidden = self.fc(x)
        if self.function is None:
            return torch.tanh(self.bn(hidden))
        return torch.tanh(self.function.apply(hidden, self.bn.weight, self.bn.bias))


def _x(*shape: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=generator, dtype=torch.float64).requires_grad_()


def _at_relu_kinks() -> torch.Tensor:
    x = _x(3, 4)
    with torch.no_grad():
        x[0, :2] = 0.0
        x[1, 1] = 3e-7
    return x


def _max_ties() -> torch.Tensor:
    x = _x(3, 4)
    with torch.no_grad():
        x[:, 1] = x[:, 0] + 2e-7
    return x


def _scores_at_margin() -> Tuple[torch.Tensor, torch.Tensor]:
    scores = _x(4, 3)
    labels = torch.tensor([0, 1, 2, 0])
    with torch.no_grad():
        scores[0, 1] = scores[0, 0] - 1.0
        scores[2, 0] = scores[2, 2] - 1.0 + 1e-7
    return scores, labels


def _binary_at_margin() -> Tuple[torch.Tensor, torch.Tensor]:
    scores = _x(6)
    y = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0, -1.0], dtype=torch.float64)
    with torch.no_grad():
        scores[0], scores[1] = 1.0, -1.0 + 2e-7
    return scores, y


@dataclass
class Case:
    """One layer of the suite: ``correct`` says whether its backward is right."""

    name: str
    bug: str
    correct: bool
    build: Callable[[], Tuple[Any, tuple, Dict[str, Any]]]
    # How users call torch.autograd.gradcheck on it: (function, inputs) or None when not applicable.
    torch_call: Callable[[], Tuple[Callable, tuple]] = field(default=None)


def _module_call(module_factory, *input_factories):
    def build():
        return module_factory(), tuple(f() for f in input_factories), {}

    def torch_call():
        module = module_factory().double()
        return module, tuple(f() for f in input_factories)
    return build, torch_call


def _pair(name: str, bug: str, good_factory, bad_factory, *input_factories, options=None):
    cases = []
    for correct, factory in ((True, good_factory), (False, bad_factory)):
        build, torch_call = _module_call(factory, *input_factories)
        if options:
            build = (lambda b=build: (*b()[:2], dict(options)))
        cases.append(Case(f"{name} ({'correct' if correct else 'wrong'})", bug, correct, build,
                          torch_call))
    return cases


def _function_pair(name: str, bug: str, good, bad, inputs_factory):
    cases = []
    for correct, fn in ((True, good), (False, bad)):
        def build(fn=fn):
            return fn, inputs_factory(), {}

        def torch_call(fn=fn):
            call = fn.apply if isinstance(fn, type) else fn
            return call, inputs_factory()
        cases.append(Case(f"{name} ({'correct' if correct else 'wrong'})", bug, correct, build,
                          torch_call))
    return cases


def _regularized_pair():
    cases = []
    for correct, off in ((True, 0.0), (False, 0.02)):
        def build(off=off):
            return (RegularizedClassifier(off), (_x(5, 6), torch.tensor([0, 1, 2, 3, 1])),
                    {"regularization": strong_weight_decay})

        def torch_call(off=off):
            module = RegularizedClassifier(off).double()
            x, labels = _x(5, 6), torch.tensor([0, 1, 2, 3, 1])
            return (lambda x, w: SoftmaxLossFunction.apply(x @ w.t(), labels, off)
                    + strong_weight_decay(module)), (x, module.weight)
        cases.append(Case(f"regularization-dominated loss ({'correct' if correct else 'wrong'})",
                          "wrong data gradient under a large regularization", correct, build,
                          torch_call))
    return cases


def all_cases():
    """The whole suite: 13 pairs of a correct and a wrong backward."""
    relu_inputs = _at_relu_kinks
    return [
        *_pair("linear", "dense bug in the input gradient",
               lambda: CustomLinear(CorrectLinear), lambda: CustomLinear(DenseBugLinear),
               lambda: _x(3, 5)),
        *_pair("linear", "a single wrong weight-gradient entry",
               lambda: CustomLinear(CorrectLinear, 30, 20),
               lambda: CustomLinear(SingleEntryBugLinear, 30, 20), lambda: _x(3, 30)),
        *_pair("linear", "wrong weight gradient, correct input gradient",
               lambda: CustomLinear(CorrectLinear), lambda: CustomLinear(WeightBugLinear),
               lambda: _x(3, 5)),
        *_pair("linear", "wrong bias gradient",
               lambda: CustomLinear(CorrectLinear), lambda: CustomLinear(BiasBugLinear),
               lambda: _x(3, 5)),
        *_pair("hand-written dropout", "backward forgets the 1/(1-p) scale",
               lambda: HandDropout(CorrectDropoutMask), lambda: HandDropout(UnscaledDropoutMask),
               lambda: _x(4, 6)),
        *_pair("nn.Dropout in train mode", "backward draws a new mask",
               lambda: DropoutBlock(), lambda: DropoutBlock(redraw=True), lambda: _x(4, 6)),
        *_function_pair("relu at its kink", "backward mask x >= -1 instead of x > 0",
                        torch.relu, LeakyMaskReLU, lambda: (relu_inputs(),)),
        *_function_pair("row max with ties", "gradient spread over every entry",
                        lambda x: x.max(dim=1).values, SpreadMax, lambda: (_max_ties(),)),
        *_function_pair("multiclass SVM at the margin", "margin gradient with the wrong sign",
                        svm_loss, lambda s, y: -svm_loss(s, y) + 2 * svm_loss(s, y).detach(),
                        _scores_at_margin),
        *_function_pair("binary hinge at the margin", "gradient sign flipped",
                        binary_hinge, SignFlippedHinge, _binary_at_margin),
        *_regularized_pair(),
        *_pair("batch norm in train mode", "mean and variance treated as constants",
               lambda: BatchNormBlock(CorrectBatchNorm),
               lambda: BatchNormBlock(ConstantStatisticsBatchNorm), lambda: _x(6, 5)),
        *_pair("nn.BatchNorm1d in train mode", "variance term dropped from the backward",
               lambda: BatchNormBlock(), lambda: BatchNormBlock(NoVarianceTermBatchNorm),
               lambda: _x(6, 5)),
    ]

"""Layers of our own modelled on what real custom code does: solvers, losses that write into what
they saved, float32 inside a float64 check, reversible blocks, penalties, constrained inputs.

Each comes in a correct and a wrong version where that makes sense; the tests in
test_real_code_causes.py run them through check_gradients.
"""
from __future__ import annotations

import threading

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.scaling import Tap


# 1. Kinks ----------------------------------------------------------------------------------------

class MulticlassHinge(torch.autograd.Function):
    """CS231n's SVM loss with a hand-written backward; ``wrong`` miscounts the correct class."""

    wrong = False

    @classmethod
    def forward(cls, ctx, scores, labels):
        correct = scores.gather(1, labels[:, None])
        margins = (scores - correct + 1.0).clamp(min=0)
        margins = margins.scatter(1, labels[:, None], 0.0)
        ctx.save_for_backward(margins, labels)
        return margins.sum()

    @classmethod
    def backward(cls, ctx, grad):
        margins, labels = ctx.saved_tensors
        positive = (margins > 0).to(margins.dtype)
        count = positive.sum(1, keepdim=True) + (1.0 if cls.wrong else 0.0)
        result = positive.scatter(1, labels[:, None], -count)
        return grad * result, None


class WrongHinge(MulticlassHinge):
    wrong = True


def hinge_at_margin():
    """Scores where wrong classes sit exactly at the margin of the correct one, beside active ones."""
    scores = torch.tensor([[2.0, 1.0, 1.5], [1.2, 1.5, 0.5], [1.0, 0.3, 2.0]], dtype=torch.float64)
    return scores.requires_grad_(), torch.tensor([0, 1, 2])


class FirstOfPairMax(torch.autograd.Function):
    """Max over pairs whose backward always routes the gradient to the first entry of a pair."""

    @staticmethod
    def forward(ctx, x):
        ctx.shape = x.shape
        return F.max_pool1d(x, 2)

    @staticmethod
    def backward(ctx, grad):
        result = torch.zeros(ctx.shape, dtype=grad.dtype)
        result[..., 0::2] = grad
        return result


def nearly_tied_pairs():
    """Pairs 1e-8 apart: within a 1e-6 step of each other, so every probe flips a winner."""
    generator = torch.Generator().manual_seed(3)
    first = torch.randn(2, 3, 4, generator=generator, dtype=torch.float64)
    x = torch.stack([first, first + 1e-8], dim=-1).reshape(2, 3, 8)
    return x.requires_grad_()


# 2. Solvers --------------------------------------------------------------------------------------

class BisectionSparsemax(torch.autograd.Function):
    """Sparsemax with its threshold found by 60 bisection steps: hundreds of comparisons per
    forward, which flip under a tiny step while the output stays smooth. ``wrong`` forgets to
    subtract the mean over the support in the backward."""

    wrong = False

    @classmethod
    def forward(cls, ctx, z):
        low = z.max(dim=-1, keepdim=True).values - 1.0
        high = z.max(dim=-1, keepdim=True).values
        for _ in range(60):
            tau = (low + high) / 2
            total = (z - tau).clamp(min=0).sum(dim=-1, keepdim=True)
            above = total > 1.0
            low = torch.where(above, tau, low)
            high = torch.where(above, high, tau)
        tau = (low + high) / 2
        support = (z > tau).to(z.dtype)
        tau = ((z * support).sum(-1, keepdim=True) - 1) / support.sum(-1, keepdim=True)
        output = (z - tau).clamp(min=0)
        ctx.save_for_backward(support)
        return output

    @classmethod
    def backward(cls, ctx, grad):
        (support,) = ctx.saved_tensors
        if cls.wrong:
            return grad * support
        mean = (grad * support).sum(-1, keepdim=True) / support.sum(-1, keepdim=True)
        return support * (grad - mean)


class WrongBisectionSparsemax(BisectionSparsemax):
    wrong = True


# 4. The backward contract ------------------------------------------------------------------------

class SoftmaxCrossEntropy(torch.autograd.Function):
    """A fused loss. ``in_place`` turns the saved probabilities into the gradient in place, as
    four real loss functions do: the first backward is right, a second one is not."""

    in_place = False

    @classmethod
    def forward(cls, ctx, logits, labels):
        probs = logits.softmax(dim=1)
        ctx.save_for_backward(probs, labels)
        return -probs.gather(1, labels[:, None]).log().mean()

    @classmethod
    def backward(cls, ctx, grad):
        probs, labels = ctx.saved_tensors
        result = probs if cls.in_place else probs.clone()
        result[torch.arange(len(labels)), labels] -= 1.0
        return result * grad / len(labels), None


class InPlaceSoftmaxCrossEntropy(SoftmaxCrossEntropy):
    in_place = True


class ScalesGradOutputInPlace(torch.autograd.Function):
    """y = 3x, whose backward returns the right value by scaling grad_output itself."""

    @staticmethod
    def forward(ctx, x):
        return x * 3.0

    @staticmethod
    def backward(ctx, grad):
        return grad.mul_(3.0)


class ZeroesItsInput(torch.autograd.Function):
    """y = x^2, whose backward reuses the saved input as scratch space."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        result = 2 * x * grad
        x.zero_()
        return result


# 5. Lower precision inside a float64 check -------------------------------------------------------

class Float32RMSNorm(nn.Module):
    """An RMSNorm that normalises in float32 whatever the input dtype, as timm's *Fp32 norms do."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.linspace(0.5, 1.5, size))

    def forward(self, x):
        computed = x.float()
        normed = computed * torch.rsqrt(computed.pow(2).mean(-1, keepdim=True) + 1e-6)
        return normed.to(x.dtype) * self.weight


class Float32ScaleBug(torch.autograd.Function):
    """tanh computed in float32, with a backward 20% off."""

    @staticmethod
    def forward(ctx, x):
        y = torch.tanh(x.float()).to(x.dtype)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * (1 - y * y) * 0.8


class Float32Attention(nn.Module):
    """Single-head self-attention whose softmax runs in float32, as x-transformers' does."""

    def __init__(self, size: int) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(3)
        self.query, self.key = (nn.Parameter(torch.randn(size, size, generator=generator) /
                                             size ** 0.5) for _ in range(2))

    def forward(self, x):
        scores = (x @ self.query) @ (x @ self.key).transpose(-1, -2) / x.shape[-1] ** 0.5
        return scores.softmax(-1, dtype=torch.float32).to(x.dtype) @ x


class EntryBug(nn.Module):
    """``inner`` with one entry of its input's gradient 20% off."""

    def __init__(self, inner: nn.Module, entry: int) -> None:
        super().__init__()
        self.inner, self.entry = inner, entry

    def forward(self, x):
        factor = torch.ones_like(x.detach())
        factor.view(-1)[self.entry] = 1.2
        return self.inner(Tap(factor)(x))


# 6. Solver noise next to large gradients ---------------------------------------------------------

class NoisyZeroGradient(torch.autograd.Function):
    """f = x0 + 1e-14 sin(1e6 x1): the numeric derivative of x1 is solver-like noise of ~1e-8,
    the analytic one is exactly 0 (``scale`` adds a real term of slope ``scale`` that the backward
    misses)."""

    scale = 0.0

    @classmethod
    def forward(cls, ctx, x):
        return x[0] + 1e-14 * torch.sin(1e6 * x[1]) + cls.scale * x[1]

    @classmethod
    def backward(cls, ctx, grad):
        result = torch.zeros(2, dtype=grad.dtype)
        result[0] = grad
        return result


class MissingSmallGradient(NoisyZeroGradient):
    scale = 1e-2


# 7. Gradients written to .grad, and forwards that differentiate ----------------------------------

class RecomputingLinear(torch.autograd.Function):
    """A reversible-network style Function: the forward runs without a graph, the backward
    recomputes it and fills the layer's parameter gradients itself. ``weight_factor`` scales the
    gradient it writes (1.0 is correct)."""

    weight_factor = 1.0

    @classmethod
    def forward(cls, ctx, x, layer):
        ctx.layer = layer
        ctx.save_for_backward(x)
        with torch.no_grad():
            return layer(x)

    @classmethod
    def backward(cls, ctx, grad):
        (x,) = ctx.saved_tensors
        with torch.enable_grad():
            free = x.detach().requires_grad_()
            out = ctx.layer(free)
            grad_x, grad_w, grad_b = torch.autograd.grad(out, (free, ctx.layer.weight,
                                                               ctx.layer.bias), grad)
        for parameter, value in ((ctx.layer.weight, grad_w), (ctx.layer.bias, grad_b)):
            value = value * cls.weight_factor
            parameter.grad = value if parameter.grad is None else parameter.grad + value
        return grad_x, None


class WrongRecomputingLinear(RecomputingLinear):
    weight_factor = 0.5


class ReversibleBlock(nn.Module):
    def __init__(self, function: type = RecomputingLinear) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.layer = nn.Linear(4, 3)
        self.function = function

    def forward(self, x):
        return self.function.apply(x, self.layer)


class ForceField(nn.Module):
    """Returns -dE/dx of a learned energy: the forward itself calls autograd.grad."""

    def __init__(self) -> None:
        super().__init__()
        self.stiffness = nn.Parameter(torch.tensor([1.0, 2.0, 0.5]))

    def forward(self, x):
        if not x.requires_grad:
            x = x.requires_grad_()
        energy = (self.stiffness * x.pow(2) + x.pow(3) / 3).sum()
        (gradient,) = torch.autograd.grad(energy, x, create_graph=True)
        return -gradient


# 8. Second order and forward mode ----------------------------------------------------------------

class Square(torch.autograd.Function):
    """x^2; ``detached`` computes the backward from a detached x: first order right, second wrong."""

    detached = False

    @classmethod
    def forward(cls, ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @classmethod
    def backward(cls, ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 2 * (x.detach() if cls.detached else x)


class DetachedSquare(Square):
    detached = True


class SineWithJvp(torch.autograd.Function):
    """sin with hand-written backward and jvp; ``jvp_factor`` 1.0 is correct."""

    jvp_factor = 1.0

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        ctx.save_for_forward(x)
        return torch.sin(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * torch.cos(x)

    @classmethod
    def jvp(cls, ctx, tangent):
        (x,) = ctx.saved_tensors
        return tangent * torch.cos(x) * cls.jvp_factor


class WrongJvpSine(SineWithJvp):
    jvp_factor = 0.5


# 9. Constrained inputs ---------------------------------------------------------------------------

class CholeskyLogDet(torch.autograd.Function):
    """log det A through a Cholesky factor, which reads only the lower triangle; the backward is
    the symmetric A^-1, right for symmetric perturbations only. ``factor`` 1.0 is correct."""

    factor = 1.0

    @classmethod
    def forward(cls, ctx, a):
        lower = torch.linalg.cholesky(a)
        ctx.save_for_backward(lower)
        return 2 * lower.diagonal(dim1=-2, dim2=-1).log().sum(-1)

    @classmethod
    def backward(cls, ctx, grad):
        (lower,) = ctx.saved_tensors
        return grad[..., None, None] * torch.cholesky_inverse(lower) * cls.factor


class WrongCholeskyLogDet(CholeskyLogDet):
    factor = 2.0


def spd(size: int = 4, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(size, size, generator=generator, dtype=torch.float64)
    return (a @ a.t() + size * torch.eye(size, dtype=torch.float64)).requires_grad_()


# 10. Modules that are hard to copy ---------------------------------------------------------------

class HoldsALock(nn.Module):
    """A layer with a lock attribute: copy.deepcopy raises on it."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(3, 2)
        self.lock = threading.Lock()

    def forward(self, x):
        with self.lock:
            return torch.tanh(self.fc(x))


# 11. A constant factor ---------------------------------------------------------------------------

class HalfGradientTanh(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = torch.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * (1 - y * y) * 0.5

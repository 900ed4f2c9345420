"""Hand-fused layers in pairs: a correct kernel and a subtly wrong one, each with its reference.

Shared by the tests (correct ones pass in bfloat16, float16 and float32; wrong ones fail where
they are wrong) and by benchmarks/reference.py (bugs caught and false alarms per tool). Like real
fused kernels, the correct ones compute in float32 inside and round once on the way out; the
references are the straightforward PyTorch code, registered with ``@reference``.
Each case builds fresh objects from a seed: ``build(seed) -> (fn, inputs)`` in float32.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from pytest_nncheck import reference

IGNORE_INDEX = -100
LOW_PRECISION = (torch.bfloat16, torch.float16)
ALL_DTYPES = (torch.bfloat16, torch.float16, torch.float32)


# Softmax + cross-entropy --------------------------------------------------------------------

def cross_entropy_reference(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, target, ignore_index=IGNORE_INDEX)


@reference(cross_entropy_reference)
class SoftmaxCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy over the targets that are not ignored; the gradient is computed in the
    forward (as Liger-Kernel's fused kernel does) and scaled in the backward."""

    @staticmethod
    def denominator(valid: torch.Tensor) -> torch.Tensor:
        return valid.sum()

    @classmethod
    def forward(cls, ctx, logits, target):
        x = logits.float()
        valid = target != IGNORE_INDEX
        safe = target.clamp_min(0)
        losses = torch.logsumexp(x, -1) - x.gather(-1, safe[:, None])[:, 0]
        loss = (losses * valid).sum() / valid.sum()
        gradient = torch.softmax(x, -1) - F.one_hot(safe, x.shape[-1])
        gradient = gradient * valid[:, None] / cls.denominator(valid)
        ctx.save_for_backward(gradient)
        ctx.dtype = logits.dtype
        return loss.to(logits.dtype)

    @staticmethod
    def backward(ctx, grad_loss):
        (gradient,) = ctx.saved_tensors
        return (gradient * grad_loss.float()).to(ctx.dtype), None


class CrossEntropyOverAllRows(SoftmaxCrossEntropy):
    """The backward divides by every row, ignored ones included: 1.6% small with 1 in 64 ignored."""

    @staticmethod
    def denominator(valid: torch.Tensor) -> torch.Tensor:
        return valid.new_tensor(valid.numel(), dtype=torch.float32)


def cross_entropy_inputs(seed: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """2048 tokens, 1 in 64 ignored (padding): gradients of order 1e-4, as in a language model."""
    generator = torch.Generator().manual_seed(seed)
    logits = (2 * torch.randn(2048, 10, generator=generator)).requires_grad_()
    target = torch.randint(0, 10, (2048,), generator=generator)
    target[torch.randperm(2048, generator=generator)[:32]] = IGNORE_INDEX
    return logits, target


# RMSNorm ------------------------------------------------------------------------------------

class RMSNormReference(nn.Module):
    def __init__(self, dim: int = 16, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class RMSNormFunction(torch.autograd.Function):
    """RMSNorm with a hand-written backward; the weight gradient is accumulated row by row (as a
    kernel looping over its rows does) in ``accumulator(x.dtype)``."""

    @staticmethod
    def accumulator(dtype: torch.dtype) -> torch.dtype:
        return torch.float32

    @classmethod
    def forward(cls, ctx, x, weight, eps):
        xf = x.float()
        rstd = torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
        ctx.save_for_backward(x, weight, rstd)
        ctx.variant = cls
        return (xf * rstd * weight.float()).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        x, weight, rstd = ctx.saved_tensors
        normalized = x.float() * rstd
        scaled = grad.float() * weight.float()
        grad_x = rstd * (scaled - normalized * (scaled * normalized).mean(-1, keepdim=True))
        products = (grad.float() * normalized).reshape(-1, weight.numel())
        grad_weight = torch.zeros(weight.shape, dtype=ctx.variant.accumulator(x.dtype),
                                  device=x.device)
        for row in products:
            grad_weight = grad_weight + row.to(grad_weight.dtype)
        return grad_x.to(x.dtype), grad_weight.to(weight.dtype), None


class RMSNormInputDtypeAccumulation(RMSNormFunction):
    """The weight gradient's partial sums are accumulated in the input dtype (bf16 for bf16)."""

    @staticmethod
    def accumulator(dtype: torch.dtype) -> torch.dtype:
        return dtype


@reference(lambda layer: RMSNormReference(layer.dim, layer.eps))
class FusedRMSNorm(nn.Module):
    function = RMSNormFunction

    def __init__(self, dim: int = 16, eps: float = 1e-6) -> None:
        super().__init__()
        self.dim, self.eps = dim, eps
        self.weight = nn.Parameter(1 + 0.1 * torch.randn(dim))

    def forward(self, x):
        return self.function.apply(x, self.weight, self.eps)


class RMSNormWithInputDtypeAccumulation(FusedRMSNorm):
    function = RMSNormInputDtypeAccumulation


def rmsnorm_inputs(seed: int) -> Tuple[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(16, 64, 16, generator=generator).requires_grad_(),)


# SwiGLU -------------------------------------------------------------------------------------

class SwiGLUReference(nn.Module):
    """silu(x W1ᵀ) * (x W3ᵀ) projected by W2, with W1 and W3 stacked as ``gate_up``."""

    def __init__(self, dim: int = 16, hidden: int = 32) -> None:
        super().__init__()
        self.gate_up = nn.Parameter(torch.empty(2 * hidden, dim))
        self.down = nn.Parameter(torch.empty(dim, hidden))

    def forward(self, x):
        gate, up = (x @ self.gate_up.t()).chunk(2, -1)
        return (F.silu(gate) * up) @ self.down.t()


class SwiGLUFunction(torch.autograd.Function):
    @staticmethod
    def silu_derivative(gate: torch.Tensor, sigmoid: torch.Tensor) -> torch.Tensor:
        return sigmoid * (1 + gate * (1 - sigmoid))

    @classmethod
    def forward(cls, ctx, x, w13, w2):
        gate, up = (x.float() @ w13.float().t()).chunk(2, -1)
        hidden = F.silu(gate) * up
        ctx.save_for_backward(x, w13, w2, gate, up)
        ctx.silu_derivative = cls.silu_derivative
        return (hidden @ w2.float().t()).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        x, w13, w2, gate, up = ctx.saved_tensors
        grad = grad.float()
        sigmoid = torch.sigmoid(gate)
        hidden = gate * sigmoid * up
        grad_hidden = grad @ w2.float()
        grad_gate = grad_hidden * up * ctx.silu_derivative(gate, sigmoid)
        grad_up = grad_hidden * gate * sigmoid
        grad_gate_up = torch.cat([grad_gate, grad_up], -1)
        return ((grad_gate_up @ w13.float()).to(x.dtype),
                (grad_gate_up.t() @ x.float()).to(w13.dtype),
                (grad.t() @ hidden).to(w2.dtype))


class SwiGLUSigmoidOnlyDerivative(SwiGLUFunction):
    """The backward takes silu'(a) as sigmoid(a), dropping a * sigmoid'(a)."""

    @staticmethod
    def silu_derivative(gate: torch.Tensor, sigmoid: torch.Tensor) -> torch.Tensor:
        return sigmoid


@reference(lambda layer: SwiGLUReference(layer.dim, layer.hidden),
           parameters={"w13": "gate_up", "w2": "down"})
class FusedSwiGLU(nn.Module):
    function = SwiGLUFunction

    def __init__(self, dim: int = 16, hidden: int = 32) -> None:
        super().__init__()
        self.dim, self.hidden = dim, hidden
        self.w13 = nn.Parameter(torch.randn(2 * hidden, dim) / dim ** 0.5)
        self.w2 = nn.Parameter(torch.randn(dim, hidden) / hidden ** 0.5)

    def forward(self, x):
        return self.function.apply(x, self.w13, self.w2)


class SwiGLUWithSigmoidOnlyDerivative(FusedSwiGLU):
    function = SwiGLUSigmoidOnlyDerivative


def swiglu_inputs(seed: int) -> Tuple[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(32, 16, generator=generator).requires_grad_(),)


# Causal attention ---------------------------------------------------------------------------

def causal_attention_reference(q, k, v):
    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
    future = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool, device=q.device).triu(1)
    return torch.softmax(scores.masked_fill(future, float("-inf")), -1) @ v


@reference(causal_attention_reference)
class CausalAttention(torch.autograd.Function):
    """softmax(q kᵀ / √d, causal) v, probabilities recomputed in float32 in the backward."""

    MASK_DIAGONAL = 1  # positions j >= i + MASK_DIAGONAL are masked
    SCALE_GRAD_KEY = True

    @classmethod
    def probabilities(cls, q, k):
        scores = q.float() @ k.float().transpose(-2, -1) / q.shape[-1] ** 0.5
        future = torch.ones(scores.shape[-2:], dtype=torch.bool, device=q.device).triu(
            cls.MASK_DIAGONAL)
        return torch.softmax(scores.masked_fill(future, float("-inf")), -1)

    @classmethod
    def forward(cls, ctx, q, k, v):
        ctx.save_for_backward(q, k, v)
        ctx.variant = cls
        return (cls.probabilities(q, k) @ v.float()).to(v.dtype)

    @staticmethod
    def backward(ctx, grad):
        q, k, v = ctx.saved_tensors
        variant = ctx.variant
        probabilities = variant.probabilities(q, k)
        grad = grad.float()
        grad_v = probabilities.transpose(-2, -1) @ grad
        grad_p = grad @ v.float().transpose(-2, -1)
        grad_scores = probabilities * (grad_p - (grad_p * probabilities).sum(-1, keepdim=True))
        scale = q.shape[-1] ** -0.5
        grad_q = grad_scores @ k.float() * scale
        key_scale = scale if variant.SCALE_GRAD_KEY else 1.0
        grad_k = grad_scores.transpose(-2, -1) @ q.float() * key_scale
        return grad_q.to(q.dtype), grad_k.to(k.dtype), grad_v.to(v.dtype)


class AttentionSeeingNextToken(CausalAttention):
    """The mask is off by one: each query also attends to the token after it."""

    MASK_DIAGONAL = 2


class AttentionUnscaledKeyGradient(CausalAttention):
    """The backward forgets the 1/√d softmax scale in the key gradient."""

    SCALE_GRAD_KEY = False


def attention_inputs(seed: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(2, 2, 8, 8, generator=generator).requires_grad_() for _ in range(3))


# The table ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class FusedCase:
    """``build(seed) -> (fn, inputs)`` in float32; ``wrong_in``: the dtypes where fn is wrong."""

    name: str
    make: Callable[[], Any]
    inputs: Callable[[int], Sequence[Any]]
    wrong_in: Tuple[torch.dtype, ...] = ()

    def build(self, seed: int = 0) -> Tuple[Any, Sequence[Any]]:
        torch.manual_seed(seed)
        return self.make(), self.inputs(seed)

    def correct_in(self, dtype: torch.dtype) -> bool:
        return dtype not in self.wrong_in


CASES = (
    FusedCase("softmax cross-entropy", lambda: SoftmaxCrossEntropy, cross_entropy_inputs),
    FusedCase("cross-entropy averaged over ignored rows too", lambda: CrossEntropyOverAllRows,
              cross_entropy_inputs, ALL_DTYPES),
    FusedCase("rmsnorm", FusedRMSNorm, rmsnorm_inputs),
    FusedCase("rmsnorm accumulating in the input dtype", RMSNormWithInputDtypeAccumulation,
              rmsnorm_inputs, LOW_PRECISION),
    FusedCase("swiglu", FusedSwiGLU, swiglu_inputs),
    FusedCase("swiglu with silu' = sigmoid", SwiGLUWithSigmoidOnlyDerivative, swiglu_inputs,
              ALL_DTYPES),
    FusedCase("causal attention", lambda: CausalAttention, attention_inputs),
    FusedCase("attention mask off by one", lambda: AttentionSeeingNextToken, attention_inputs,
              ALL_DTYPES),
    FusedCase("attention key gradient unscaled", lambda: AttentionUnscaledKeyGradient,
              attention_inputs, ALL_DTYPES),
)

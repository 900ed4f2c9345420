"""Custom layers: a Swish activation with a hand-written backward, and a block that uses it."""
from __future__ import annotations

import torch
from torch import nn


class SwishFunction(torch.autograd.Function):
    """swish(x) = x * sigmoid(x), with the derivative written out instead of taped."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        sigmoid = torch.sigmoid(x)
        ctx.save_for_backward(x, sigmoid)
        return x * sigmoid

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        x, sigmoid = ctx.saved_tensors
        return grad * (sigmoid + x * sigmoid * (1 - sigmoid))


class SwishBlock(nn.Module):
    """Linear, layer norm, Swish, dropout: the hidden block of the classifier."""

    def __init__(self, in_features: int, out_features: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.norm = nn.LayerNorm(out_features)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(SwishFunction.apply(self.norm(self.linear(x))))


class DigitsNet(nn.Module):
    """64 pixels -> two Swish blocks -> 10 class logits (a small last layer keeps init calm)."""

    def __init__(self, hidden: int = 64, dropout: float = 0.1) -> None:
        super().__init__()
        self.blocks = nn.Sequential(SwishBlock(64, hidden, dropout), SwishBlock(hidden, hidden, dropout))
        self.head = nn.Linear(hidden, 10)
        with torch.no_grad():
            self.head.weight.mul_(0.1)
            self.head.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(x))

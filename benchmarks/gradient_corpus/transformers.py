"""x-transformers: attention, feed-forward, norms and a small encoder, plus its one hand-written
backward (``DetachMultiple``, the belief-state wrapper's detach that passes gradients back once).

x-transformers' attention computes its softmax in float32 on purpose
(``softmax(dtype=torch.float32)``) unless queries and keys are normalised: those layers are
``float32-layer`` cases, where a float64 check measures float32 round-off.
"""
from __future__ import annotations

from typing import List

import torch
from .case import FLOAT32_LAYER, LAYER, Case, FirstOutput, seeded, seeded_module


def _tokens(seed: int = 60) -> torch.Tensor:
    return seeded(2, 5, 16, seed=seed)


def _detach_multiple(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    from x_transformers.belief_state_wrapper import detach_multiple

    left, right = detach_multiple(a, b)
    return (left * right.sin()).sum(-1)


def cases() -> List[Case]:
    import x_transformers as xt
    from loguru import logger

    logger.disable("x_transformers")  # its advice on rotary sizes for language models
    from x_transformers import x_transformers as layers

    table = [
        ("x_transformers.Attention", FLOAT32_LAYER,
         lambda: FirstOutput(layers.Attention(16, heads=2, dim_head=8))),
        ("x_transformers.Attention causal", FLOAT32_LAYER,
         lambda: FirstOutput(layers.Attention(16, heads=2, dim_head=8, causal=True))),
        ("x_transformers.Attention qk_norm", LAYER,
         lambda: FirstOutput(layers.Attention(16, heads=2, dim_head=8, qk_norm=True))),
        ("x_transformers.FeedForward GLU", LAYER,
         lambda: layers.FeedForward(16, mult=2, glu=True)),
        ("x_transformers.FeedForward relu squared", LAYER,
         lambda: layers.FeedForward(16, mult=2, relu_squared=True)),
        ("x_transformers.RMSNorm", LAYER, lambda: layers.RMSNorm(16)),
        ("x_transformers.ScaleNorm", LAYER, lambda: layers.ScaleNorm(16)),
        ("x_transformers.LayerNorm", LAYER, lambda: layers.LayerNorm(16)),
        ("x_transformers.SimpleRMSNorm", LAYER, lambda: layers.SimpleRMSNorm(16)),
        ("x_transformers.DynamicTanh", LAYER, lambda: layers.DynamicTanh(16)),
        ("x_transformers.Encoder depth 1", FLOAT32_LAYER,
         lambda: xt.Encoder(dim=16, depth=1, heads=2, attn_dim_head=8)),
        ("x_transformers.Encoder rotary", FLOAT32_LAYER,
         lambda: xt.Encoder(dim=16, depth=1, heads=2, attn_dim_head=8, rotary_pos_emb=True)),
    ]
    result = [Case("x_transformers.DetachMultiple", "x-transformers",
                   lambda: (_detach_multiple, seeded(3, 4, seed=61), seeded(3, 4, seed=62)))]
    result += [Case(name, "x-transformers",
                    lambda factory=factory, seed=seed: (seeded_module(factory, seed=seed), _tokens()),
                    kind=kind)
               for seed, (name, kind, factory) in enumerate(table)]
    return result

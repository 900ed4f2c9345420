"""vector-quantize-pytorch: vector, finite-scalar and lookup-free quantisers.

Quantisation is piecewise constant; these layers pass gradients straight through (or through the
rotation trick) on purpose, so they are ``surrogate`` cases. The package ships no
``autograd.Function``: its surrogates are written with ``detach``.
"""
from __future__ import annotations

from typing import List

from .case import LAYER, SURROGATE, Case, FirstOutput, seeded, seeded_module


def _first_output(factory):
    return lambda: FirstOutput(factory())


def cases() -> List[Case]:
    import vector_quantize_pytorch as vq

    table = [
        ("vector_quantize_pytorch.VectorQuantize",
         lambda: vq.VectorQuantize(dim=8, codebook_size=16, ema_update=False),
         "straight-through estimator with the rotation trick (codebook frozen: no moving averages)"),
        ("vector_quantize_pytorch.FSQ", lambda: vq.FSQ(levels=[5, 5, 5], dim=8),
         "rounding with a straight-through gradient"),
        ("vector_quantize_pytorch.LFQ", lambda: vq.LFQ(dim=8, codebook_size=16, entropy_loss_weight=0.0),
         "sign quantisation with a straight-through gradient"),
    ]
    return [Case(name, "vector-quantize-pytorch",
                 lambda factory=factory, seed=seed: (seeded_module(_first_output(factory), seed=seed),
                                                     seeded(2, 5, 8, seed=90 + seed)),
                 SURROGATE, kind=LAYER, note=note)
            for seed, (name, factory, note) in enumerate(table)]

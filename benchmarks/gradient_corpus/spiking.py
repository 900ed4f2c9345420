"""snntorch: spike surrogates, spike-time extraction and state quantisation.

Every one of these is a step function in the forward with a made-up gradient in the backward, on
purpose: they are labelled ``surrogate``, and a checker is right to flag them (a user excludes them
from gradient checks). Membrane potentials sit around the firing threshold. ``LeakySpikeOperator``
is in genuine_bugs.py: its backward returns too few gradients.
"""
from __future__ import annotations

from typing import List

import torch

from .case import LAYER, SURROGATE, Case, seeded, seeded_module


def _membrane() -> torch.Tensor:
    return seeded(4, 6, seed=40, scale=0.5)


def _spike_record() -> torch.Tensor:
    """Time x batch x neurons spikes (0/1, float64) that the spike-time losses read."""
    generator = torch.Generator().manual_seed(41)
    return (torch.rand(6, 2, 3, generator=generator, dtype=torch.float64) > 0.6).double().requires_grad_()


def _leaky_layer():
    import snntorch

    return seeded_module(lambda: snntorch.Leaky(beta=0.9, learn_beta=True, learn_threshold=True),
                         seed=42)


def cases() -> List[Case]:
    from snntorch import surrogate
    from snntorch.functional import quant
    from snntorch.functional.loss import SpikeTime

    spike_functions = [
        ("StraightThroughEstimator", surrogate.straight_through_estimator()),
        ("Triangular", surrogate.triangular()),
        ("FastSigmoid", surrogate.fast_sigmoid()),
        ("ATan", surrogate.atan()),
        ("Heaviside", surrogate.heaviside()),
        ("Sigmoid", surrogate.sigmoid()),
        ("SpikeRateEscape", surrogate.spike_rate_escape()),
        ("StochasticSpikeOperator", surrogate.SSO()),
        ("SparseFastSigmoid", surrogate.SFS()),
        ("CustomSurrogate", surrogate.custom_surrogate(lambda x, out, grad: grad * 0.5)),
    ]
    levels = torch.linspace(-1.0, 1.0, 5, dtype=torch.float64)
    result = [Case(f"snntorch.{name}", "snntorch", lambda fn=fn: (fn, _membrane()), SURROGATE,
                   note="spike surrogate gradient")
              for name, fn in spike_functions]
    result += [
        Case("snntorch.StateQuant", "snntorch",
             lambda: (lambda x: quant.StateQuant.apply(x, levels), _membrane()), SURROGATE,
             note="straight-through quantiser"),
        Case("snntorch.SpikeTime.FirstSpike", "snntorch",
             lambda: (lambda s: SpikeTime.FirstSpike.apply(s), _spike_record()), SURROGATE,
             note="sign estimator for the first spike time"),
        Case("snntorch.SpikeTime.MultiSpike", "snntorch",
             lambda: (lambda s: SpikeTime.MultiSpike.apply(s, 2), _spike_record()), SURROGATE,
             note="sign estimator for the first spike times"),
        Case("snntorch.SpikeTime.Tolerance", "snntorch",
             lambda: (lambda t: SpikeTime.Tolerance.apply(t, torch.full_like(t, 2.0), 0.5),
                      seeded(2, 3, seed=43, shift=2.0)), SURROGATE,
             note="snaps near-target spike times to the target, gradient passed straight through"),
        Case("snntorch.Leaky neuron", "snntorch",
             lambda: (_leaky_layer(), _membrane(), seeded(4, 6, seed=44, scale=0.5)), SURROGATE, kind=LAYER,
             note="Leaky integrate-and-fire with the ATan spike surrogate"),
    ]
    return result

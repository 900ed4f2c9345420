"""MONAI: its two pure-Python hand-written backwards (memory-efficient Swish, guided
backpropagation's ReLU) and layers: convolution blocks, self-attention, filters, losses.

MONAI's other Functions (bilateral and permutohedral filters, grid pull/push, LLTM, the Gaussian
mixture) need its C++ extension, which the PyPI wheel does not build: they are left out.
Layers whose output comes back in float32 from float64 inputs (the Savitzky-Golay and Hilbert
filters, the focal and SSIM losses) are ``float32-layer`` cases.
"""
from __future__ import annotations

from typing import List

import torch

from .case import FLOAT32_LAYER, LAYER, SURROGATE, Case, seeded, seeded_module


def _volume(seed: int = 70, channels: int = 2) -> torch.Tensor:
    return seeded(1, channels, 6, 6, seed=seed)


def _probabilities(seed: int = 71) -> torch.Tensor:
    return seeded(1, 3, 6, 6, seed=seed)


def _one_hot_labels(seed: int = 72) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (1, 6, 6), generator=generator)
    return torch.nn.functional.one_hot(labels, 3).permute(0, 3, 1, 2).double()


def _guided_relu(x: torch.Tensor) -> torch.Tensor:
    from monai.visualize.gradient_based import _AutoGradReLU

    return _AutoGradReLU.apply(x)


def cases() -> List[Case]:
    from monai import losses
    from monai.networks import blocks, layers
    from monai.networks.blocks.activation import SwishImplementation

    functions = [
        Case("monai.SwishImplementation", "monai",
             lambda: (SwishImplementation, seeded(4, 5, seed=73))),
        Case("monai._AutoGradReLU (guided backprop)", "monai",
             lambda: (_guided_relu, seeded(4, 5, seed=74)), SURROGATE,
             note="guided backpropagation zeroes negative incoming gradients on purpose"),
    ]
    table = [
        ("monai.blocks.Convolution", LAYER, lambda: blocks.Convolution(
            2, 2, 3, act="PRELU", norm="INSTANCE"), [_volume]),
        ("monai.blocks.ResidualUnit", LAYER, lambda: blocks.ResidualUnit(
            2, 2, 2, subunits=2, act="PRELU", norm="BATCH"), [_volume]),
        ("monai.blocks.SABlock", LAYER, lambda: blocks.SABlock(16, 2), [lambda: seeded(2, 5, 16, seed=75)]),
        ("monai.blocks.MLPBlock", LAYER, lambda: blocks.MLPBlock(16, 32, act="GELU"),
         [lambda: seeded(2, 5, 16, seed=76)]),
        ("monai.blocks.SEBlock", LAYER, lambda: blocks.ChannelSELayer(2, 4, r=2),
         [lambda: _volume(channels=4)]),
        ("monai.blocks.Mish", LAYER, lambda: blocks.Mish(), [lambda: seeded(4, 5, seed=77)]),
        ("monai.blocks.GEGLU", LAYER, lambda: blocks.GEGLU(), [lambda: seeded(4, 6, seed=78)]),
        ("monai.layers.GaussianFilter", LAYER, lambda: layers.GaussianFilter(2, 1.0), [_volume]),
        ("monai.layers.SavitzkyGolayFilter", FLOAT32_LAYER,
         lambda: layers.SavitzkyGolayFilter(5, 2, axis=2), [_volume]),
        ("monai.layers.MedianFilter", LAYER, lambda: layers.MedianFilter(1, spatial_dims=2), [_volume]),
        ("monai.layers.HilbertTransform", FLOAT32_LAYER,
         lambda: _Real(layers.HilbertTransform(axis=2)), [_volume]),
        ("monai.losses.DiceLoss", LAYER, lambda: losses.DiceLoss(softmax=True),
         [_probabilities, _one_hot_labels]),
        ("monai.losses.FocalLoss", FLOAT32_LAYER, lambda: losses.FocalLoss(gamma=2.0),
         [_probabilities, _one_hot_labels]),
        ("monai.losses.TverskyLoss", LAYER, lambda: losses.TverskyLoss(softmax=True),
         [_probabilities, _one_hot_labels]),
        ("monai.losses.GeneralizedDiceLoss", LAYER, lambda: losses.GeneralizedDiceLoss(softmax=True),
         [_probabilities, _one_hot_labels]),
        ("monai.losses.SSIMLoss", FLOAT32_LAYER, lambda: losses.SSIMLoss(2, data_range=4.0, win_size=3),
         [_volume, lambda: _volume(seed=79)]),
    ]
    layers_ = [Case(name, "monai", lambda factory=factory, inputs=inputs, seed=seed: (
                    seeded_module(factory, seed=seed), *(make() for make in inputs)), kind=kind)
               for seed, (name, kind, factory, inputs) in enumerate(table)]
    return functions + layers_


class _Real(torch.nn.Module):
    """The real and imaginary parts of a complex-valued layer's output, stacked."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.view_as_real(self.inner(x))

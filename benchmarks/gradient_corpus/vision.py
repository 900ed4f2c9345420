"""kornia: two hand-written backwards (a target log-softmax for the focal loss, the null-space
basis of the five-point essential-matrix solver) and image layers: filters, colour, losses,
morphology, geometry.

Images are small (1 x 3 x 6 x 6) and lie in [0, 1] where the layer expects colours.
"""
from __future__ import annotations

from typing import List

import torch

from .case import LAYER, Case, seeded, seeded_module


def _image(seed: int = 50, channels: int = 3) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(1, channels, 6, 6, generator=generator, dtype=torch.float64).requires_grad_()


def _target_log_softmax(logits: torch.Tensor) -> torch.Tensor:
    from kornia.losses.focal import _TargetLogSoftmax

    target = torch.tensor([[0], [2], [1], [3]])
    return _TargetLogSoftmax.apply(logits, target, None)


def _null_space_projector(design: torch.Tensor) -> torch.Tensor:
    """B Bᵀ for the basis B of the design's four smallest right singular vectors.

    The basis itself is defined up to a rotation inside the subspace (LAPACK picks one); the
    projector is what the solver's candidates depend on, and it is smooth.
    """
    from kornia.geometry.epipolar.essential import _NullSpaceBasis

    basis = _NullSpaceBasis.apply(design)[0]
    return basis @ basis.transpose(-1, -2)


def _labels(seed: int = 51) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 3, (1, 6, 6), generator=generator)


def _layer(factory, *inputs, seed: int = 52):
    return lambda: (seeded_module(factory, seed=seed), *(make() for make in inputs))


def cases() -> List[Case]:
    import kornia
    from kornia import color, enhance, filters, losses, morphology

    functions = [
        Case("kornia._TargetLogSoftmax", "kornia",
             lambda: (_target_log_softmax, seeded(4, 5, seed=53))),
        Case("kornia._NullSpaceBasis 5 points", "kornia",
             lambda: (_null_space_projector, seeded(2, 5, 9, seed=54))),
        Case("kornia._NullSpaceBasis 7 points", "kornia",
             lambda: (_null_space_projector, seeded(2, 7, 9, seed=55))),
    ]
    kernel = lambda: torch.ones(3, 3, dtype=torch.float64)  # noqa: E731
    logits = lambda: seeded(1, 3, 6, 6, seed=56)  # noqa: E731
    table = [
        ("kornia.filters.GaussianBlur2d", lambda: filters.GaussianBlur2d((3, 3), (1.5, 1.5)), [_image]),
        ("kornia.filters.BoxBlur", lambda: filters.BoxBlur((3, 3)), [_image]),
        ("kornia.filters.Sobel", lambda: filters.Sobel(), [_image]),
        ("kornia.filters.Laplacian", lambda: filters.Laplacian(3), [_image]),
        ("kornia.filters.MedianBlur", lambda: filters.MedianBlur((3, 3)), [_image]),
        ("kornia.filters.BilateralBlur", lambda: filters.BilateralBlur((3, 3), 0.1, (1.5, 1.5)), [_image]),
        ("kornia.color.RgbToHsv", lambda: color.RgbToHsv(), [_image]),
        ("kornia.color.RgbToGrayscale", lambda: color.RgbToGrayscale(), [_image]),
        ("kornia.color.RgbToLab", lambda: color.RgbToLab(), [_image]),
        ("kornia.enhance.AdjustGamma", lambda: enhance.AdjustGamma(0.8), [_image]),
        ("kornia.enhance.Normalize",
         lambda: enhance.Normalize(torch.tensor([0.5]), torch.tensor([0.25])), [_image]),
        ("kornia.losses.SSIMLoss", lambda: losses.SSIMLoss(3), [_image, lambda: _image(57)]),
        ("kornia.losses.TotalVariation", lambda: losses.TotalVariation(), [_image]),
        ("kornia.losses.DiceLoss", lambda: losses.DiceLoss(), [logits, _labels]),
        ("kornia.losses.FocalLoss", lambda: losses.FocalLoss(0.5, 2.0, reduction="mean"), [logits, _labels]),
        ("kornia.losses.TverskyLoss", lambda: losses.TverskyLoss(0.5, 0.5), [logits, _labels]),
        ("kornia.morphology dilation", lambda: _Morphology(morphology.dilation), [_image, kernel]),
        ("kornia.geometry.Rotate", lambda: kornia.geometry.transform.Rotate(
            torch.tensor([30.0], dtype=torch.float64)), [_image]),
    ]
    layers = [Case(name, "kornia", _layer(factory, *inputs), kind=LAYER)
              for name, factory, inputs in table]
    return functions + layers


class _Morphology(torch.nn.Module):
    """A morphology operator with its structuring element as the second input."""

    def __init__(self, operator) -> None:
        super().__init__()
        self.operator = operator

    def forward(self, image: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
        return self.operator(image, kernel)

"""Gradient taps leave the forward alone and rewrite exactly the gradient they sit on."""
from __future__ import annotations

import torch
from torch import nn

from benchmarks.gradient_corpus.case import Case
from benchmarks.gradient_corpus.taps import (ENTRY_FACTOR, SCALE, InputTapped, ParameterTapped,
                                             mutants, tap, targets)


def _x(*shape: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=generator, dtype=torch.float64).requires_grad_()


def _gradient(tensor: torch.Tensor, rewrite: str, entry: int = 0) -> torch.Tensor:
    weights = torch.arange(1.0, tensor.numel() + 1, dtype=torch.float64).reshape(tensor.shape)
    (gradient,) = torch.autograd.grad((tap(tensor, rewrite, entry) * weights).sum(), [tensor])
    return gradient, weights


def test_tap_is_the_identity_in_the_forward():
    x = _x(3, 4)
    assert torch.equal(tap(x, "scale"), x)


def test_scale_tap_multiplies_the_whole_gradient():
    gradient, true = _gradient(_x(3, 4), "scale")
    assert torch.allclose(gradient, true * SCALE)


def test_entry_tap_changes_one_entry_only():
    gradient, true = _gradient(_x(3, 4), "entry", entry=5)
    expected = true.clone()
    expected.view(-1)[5] *= ENTRY_FACTOR
    assert torch.allclose(gradient, expected)
    assert int((gradient != true).sum()) == 1


def test_entry_tap_takes_a_non_contiguous_gradient():
    x = _x(3, 4)
    weights = torch.arange(1.0, 13.0, dtype=torch.float64).reshape(4, 3)
    (gradient,) = torch.autograd.grad((tap(x, "entry", 5).t() * weights).sum(), [x])
    expected = weights.t().contiguous()
    expected.view(-1)[5] *= ENTRY_FACTOR
    assert torch.allclose(gradient, expected)


def test_zero_tap_drops_the_gradient():
    gradient, _ = _gradient(_x(3, 4), "zero")
    assert torch.count_nonzero(gradient) == 0


def test_parameter_tap_rewrites_only_that_parameter():
    layer = nn.Linear(4, 2).double()
    tapped = ParameterTapped(layer, "weight", "scale", 0)
    x = _x(3, 4)
    torch.testing.assert_close(tapped(x), layer(x))
    clean = torch.autograd.grad(layer(x).sum(), [layer.weight, layer.bias])
    rewritten = torch.autograd.grad(tapped(x).sum(), [layer.weight, layer.bias])
    torch.testing.assert_close(rewritten[0], clean[0] * SCALE)
    torch.testing.assert_close(rewritten[1], clean[1])


def test_input_tap_on_a_layer_keeps_its_parameters_checked():
    layer = nn.Linear(4, 2).double()
    tapped = InputTapped(layer, 0, "zero", 0)
    assert [name for name, _ in tapped.named_parameters()] == ["inner.weight", "inner.bias"]
    x = _x(3, 4)
    (gradient,) = torch.autograd.grad(tapped(x).sum(), [x])
    assert torch.count_nonzero(gradient) == 0


def test_a_correct_case_yields_input_and_parameter_mutants_that_are_wrong():
    def build():
        generator = torch.Generator().manual_seed(0)
        layer = nn.Bilinear(3, 3, 2).double()
        with torch.no_grad():
            for parameter in layer.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator))
        return layer, _x(2, 3, seed=1), _x(2, 3, seed=2)

    variants = mutants(Case("bilinear", "torch", build))
    assert [m.target.label for m in variants] == [
        "scale@input[0]", "entry@input[0]", "zero@input[1]",
        "scale@weight", "entry@weight", "zero@bias"]
    assert [m.target.visible_to_gradcheck for m in variants] == [True] * 3 + [False] * 3
    layer, x, y = build()
    clean = torch.autograd.grad(layer(x, y).sum(), [x, y, layer.weight, layer.bias])
    for variant in variants:
        fn, x, y = variant.case.build()
        torch.testing.assert_close(fn(x, y), layer(x, y))
        wrong = torch.autograd.grad(fn(x, y).sum(), [x, y, fn.inner.weight, fn.inner.bias])
        assert any(not torch.allclose(a, b) for a, b in zip(wrong, clean)), variant.target.label


def test_a_tensor_whose_gradient_is_zero_gets_no_tap():
    """Rewriting a zero gradient (a bias under instance norm) would be a mutant that is no bug."""
    def build():
        normalised = nn.Sequential(nn.Conv1d(2, 2, 1), nn.InstanceNorm1d(2)).double()
        return normalised, _x(3, 2, 5)

    assert [t.label for t in targets(Case("conv then instance norm", "torch", build))] == [
        "scale@input[0]", "entry@input[0]", "scale@0.weight", "entry@0.weight"]


def test_a_case_that_cannot_be_differentiated_yields_no_mutant():
    def build():
        return (lambda x: x.detach() * 2), _x(3)

    assert targets(Case("detached", "torch", build)) == []

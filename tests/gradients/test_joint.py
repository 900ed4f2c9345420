"""Joint probes: whole models checked at a cost that does not grow with their number of tensors."""
import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from pytest_nncheck import NNCheckError, check_gradients
from pytest_nncheck.gradients import joint
from pytest_nncheck.gradients.joint import JOINT_FROM
from benchmarks.scaling import Tap
from tests.gradients.layer_suite import CustomLinear, SingleEntryBugLinear
from tests.gradients.real_code_layers import Float32RMSNorm


def deep_mlp(blocks: int, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(*[layer for _ in range(blocks) for layer in (nn.Linear(6, 6), nn.Tanh())])


def _x():
    return torch.randn(3, 6, dtype=torch.float64, requires_grad=True)


def test_a_correct_model_passes_at_a_cost_independent_of_its_size():
    small = check_gradients(deep_mlp(4), _x(), strategy="joint")
    large = check_gradients(deep_mlp(12), _x(), strategy="joint")
    assert small.passed and large.passed, large.render()
    assert large.forwards == small.forwards <= 8
    assert check_gradients(deep_mlp(12), _x(), strategy="per-tensor").forwards > 10 * large.forwards


@pytest.mark.parametrize("whole", [True, False], ids=["whole tensor", "one entry"])
def test_a_wrong_tensor_is_localised_and_named_with_its_entry(whole):
    model = deep_mlp(8)
    weight = model[6].weight
    factor = torch.tensor(1.1) if whole else torch.ones_like(weight.detach())
    if not whole:
        factor[2, 3] = 1.1
    parametrize.register_parametrization(model[6], "weight", Tap(factor))
    report = check_gradients(model, _x(), strategy="joint")
    failing = {e.name: e for e in report.entries if e.verdict in ("wrong", "suspicious")}
    assert set(failing) == {"6.parametrizations.weight.original"}, report.render()
    if not whole:
        assert failing["6.parametrizations.weight.original"].worst_probe.endswith("[2, 3]")


def test_two_wrong_tensors_are_both_found():
    model = deep_mlp(8)
    for position in (2, 10):
        parametrize.register_parametrization(model[position], "bias", Tap(torch.tensor(0.8)))
    report = check_gradients(model, _x(), strategy="joint")
    failing = {e.name for e in report.entries if e.verdict in ("wrong", "suspicious")}
    assert failing == {"2.parametrizations.bias.original", "10.parametrizations.bias.original"}


def test_auto_switches_to_joint_probes_from_the_documented_tensor_count():
    assert JOINT_FROM == 3  # the input, a weight and a bias: a Linear layer is checked jointly
    below = check_gradients(nn.Linear(6, 6, bias=False).double(), _x())  # 2 tensors
    above = check_gradients(deep_mlp(1), _x())                            # 3 tensors
    assert not any("joint" in e.worst_probe for e in below.entries)
    assert all("joint" in e.worst_probe for e in above.entries)


def test_low_precision_tensors_keep_their_own_probes():
    model = nn.Sequential(deep_mlp(6), Float32RMSNorm(6))
    report = check_gradients(model.double(), _x(), strategy="joint")
    assert report.passed, report.render()
    entries = {e.name: e for e in report.entries}
    # Everything before the norm reaches its cast to float32; only the norm's gain does not.
    assert entries["0.0.weight"].verdict == "low precision"
    assert "joint" not in entries["0.0.weight"].worst_probe
    assert entries["1.weight"].verdict in ("ok", "excellent")


def _counting_narrow(monkeypatch):
    calls, original = [], joint.narrow

    def counted(*args, **kwargs):
        calls.append(args[1].probe.label)
        return original(*args, **kwargs)
    monkeypatch.setattr(joint, "narrow", counted)
    return calls


def test_low_precision_tensors_leave_the_joint_probes_before_any_narrowing(monkeypatch):
    calls = _counting_narrow(monkeypatch)
    model = nn.Sequential(deep_mlp(6), Float32RMSNorm(6))
    assert check_gradients(model.double(), _x(), strategy="joint").passed
    assert calls == []


class SlightlyInexact(torch.autograd.Function):
    """The identity, whose backward is exact only to 2e-5, as an iterative solver's is."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        wobble = torch.cos(torch.arange(grad.numel(), dtype=grad.dtype)).reshape(grad.shape)
        return grad * (1 + 2e-5 * wobble)


class InexactBackward(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return SlightlyInexact.apply(self.inner(x))


def test_a_backward_exact_to_1e_5_passes_without_narrowing_again_and_again(monkeypatch):
    # Joint probes flag 2e-5 (they are judged at 1e-6); the entry they lead to agrees at the
    # failure threshold, so the rest of the direction is judged there, not narrowed again.
    calls = _counting_narrow(monkeypatch)
    report = check_gradients(InexactBackward(deep_mlp(3)).double(), _x(), strategy="joint")
    assert report.passed, report.render()
    assert len(calls) == joint.JOINT_DIRECTIONS, calls


def test_a_tensor_found_wrong_is_narrowed_once_and_its_factor_named(monkeypatch):
    calls = _counting_narrow(monkeypatch)
    model = deep_mlp(8)
    parametrize.register_parametrization(model[6], "weight", Tap(torch.tensor(0.5)))
    report = check_gradients(model, _x(), strategy="joint")
    failing = [e for e in report.entries if e.verdict == "wrong"]
    assert [e.name for e in failing] == ["6.parametrizations.weight.original"], report.render()
    assert len(calls) == 1  # the second direction leaves the culprit out
    assert "analytic ≈ 0.5 × numeric on every probe: a missing factor of 2?" in failing[0].details


def test_unknown_strategy_is_rejected():
    with pytest.raises(NNCheckError, match="strategy='jointly' is not an option"):
        check_gradients(torch.sin, _x(), strategy="jointly")


def test_a_small_layer_checked_jointly_still_names_the_entry_at_fault():
    x = torch.randn(3, 30, dtype=torch.float64, requires_grad=True)
    report = check_gradients(CustomLinear(SingleEntryBugLinear, 30, 20), x)
    weight = {e.name: e for e in report.entries}["weight"]
    assert weight.verdict == "wrong" and weight.worst_probe == "weight[1, 2]"
    assert all(e.verdict == "excellent" for e in report.entries if e.name != "weight")

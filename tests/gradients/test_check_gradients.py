import math

import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn

from pytest_nncheck import GradientReport, NNCheckError, assert_gradients, check_gradients
from tests.gradients.layer_suite import (CorrectLinear, CustomLinear, WeightBugLinear, all_cases,
                                         strong_weight_decay, RegularizedClassifier)
from tests.state import assert_unchanged, snapshot

CASES = all_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_correct_backward_passes_and_wrong_backward_fails(case):
    fn, inputs, options = case.build()
    report = check_gradients(fn, *inputs, **options)
    assert report.passed is case.correct, report.render()
    assert report.failed is (not case.correct)


def test_suite_has_at_least_ten_pairs():
    assert sum(not c.correct for c in CASES) >= 10
    assert sum(c.correct for c in CASES) == sum(not c.correct for c in CASES)


def test_parameters_are_checked_not_only_inputs():
    x = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    report = check_gradients(CustomLinear(WeightBugLinear), x)
    verdicts = {e.name: e.verdict for e in report.entries}
    assert verdicts["input[0]"] == "excellent"
    assert verdicts["weight"] == "wrong"
    assert verdicts["bias"] == "excellent"


def test_entries_name_the_tensor_and_the_worst_coordinate():
    model = nn.Sequential()
    model.add_module("fc1", nn.Linear(3, 2))
    report = check_gradients(model, torch.randn(2, 3, requires_grad=True), strategy="per-tensor")
    names = [e.name for e in report.entries]
    assert names == ["input[0]", "fc1.weight", "fc1.bias"]
    weight = report.entries[1]
    assert weight.shape == (2, 3)
    assert weight.worst_probe.startswith("fc1.weight")
    assert weight.probes == 4 + 2  # 4 of its 6 coordinates, plus 2 directions


def test_report_fields_and_rendering():
    report = check_gradients(nn.Linear(4, 3), torch.randn(2, 4, requires_grad=True))
    assert isinstance(report, GradientReport)
    assert report.passed and report.verdict == "passed"
    assert report.checked == sum(e.probes for e in report.entries)
    assert report.max_rel_error == max(e.max_rel_error for e in report.entries)
    assert str(report) == report.render()
    lines = report.render().splitlines()
    assert lines[0].startswith("gradient check PASSED")
    for column in ("tensor", "shape", "probes", "kinks", "rel error", "analytic", "numeric", "verdict"):
        assert column in lines[1]
    assert report.to_dict()["entries"][0]["name"] == "input[0]"


def test_assert_gradients_raises_with_the_rendered_report():
    x = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    with pytest.raises(AssertionError) as raised:
        assert_gradients(CustomLinear(WeightBugLinear), x)
    assert str(raised.value).startswith("gradient check FAILED")
    assert "weight" in str(raised.value)
    assert assert_gradients(CustomLinear(CorrectLinear), x).passed


def test_autograd_function_subclass_uses_apply():
    weight = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(4, dtype=torch.float64, requires_grad=True)
    x = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    report = check_gradients(CorrectLinear, x, weight, bias)
    assert report.passed and [e.name for e in report.entries] == ["input[0]", "input[1]", "input[2]"]
    assert not check_gradients(WeightBugLinear, x, weight, bias).passed


def test_tuple_outputs_are_all_checked():
    def two_outputs(x):
        return x.sin(), (x * 3).sum(dim=1), torch.argmax(x, dim=1)

    class WrongCos(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.cos()

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * x.sin()  # sign error

    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    assert check_gradients(two_outputs, x).passed
    assert check_gradients(lambda x: (x.sin(), WrongCos.apply(x)), x).failed
    assert check_gradients(lambda x: {"logits": x.sin(), "aux": WrongCos.apply(x)}, x).failed


def test_float32_is_low_precision_with_looser_step():
    report = check_gradients(nn.Linear(4, 3), torch.randn(2, 4, requires_grad=True),  # noqa: NN101 (float32 on purpose)
                             dtype=torch.float32)
    assert report.low_precision and report.eps == pytest.approx(1e-3)
    assert report.passed
    assert "LOW PRECISION" in report.render()


def test_float64_failure_suggests_float32():
    class Float32Only(nn.Module):
        def forward(self, x):
            if x.dtype != torch.float32:
                raise TypeError(f"kernel expected Float but got {x.dtype}")
            return x * 2

    x = torch.randn(3, requires_grad=True)
    with pytest.raises(NNCheckError, match="cannot run in float64.*dtype=torch.float32"):
        check_gradients(Float32Only(), x)
    assert check_gradients(Float32Only(), x, dtype=torch.float32).passed  # noqa: NN101


def test_kinks_are_resolved_one_sided_not_dropped():
    x = torch.zeros(2, 3, dtype=torch.float64)
    x[0] = torch.tensor([1.0, -2.0, 0.5])
    x.requires_grad_()
    report = check_gradients(torch.relu, x)
    assert report.passed, report.render()
    entry = report.entries[0]
    assert entry.probes == 4 + 2  # no probe is dropped or replaced
    assert entry.kinks_crossed >= 2 and entry.one_sided == entry.kinks_crossed
    assert "sat at kinks" in report.render()


def test_counting_kinks_instead_of_skipping_them_gives_a_false_alarm():
    x = torch.tensor([[0.0, 1.0, -1.0, 2e-7]], dtype=torch.float64, requires_grad=True)
    assert check_gradients(torch.relu, x).passed
    assert check_gradients(torch.relu, x, kinks="count").failed


def test_kinks_inside_a_custom_function_forward_are_seen():
    class MyAbs(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.abs()

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * x.sign()

    x = torch.tensor([0.0, 1e-7, 3.0, -2.0], dtype=torch.float64, requires_grad=True)
    report = check_gradients(MyAbs, x)
    assert report.kinks_crossed > 0 and report.passed


def test_relu_at_all_zeros_compares_zero_with_zero_and_is_untested():
    x = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    report = check_gradients(torch.relu, x)
    assert report.verdict == "untested"
    assert not report.passed and not report.failed
    assert "no evidence" in report.render()
    with pytest.raises(AssertionError, match="UNTESTED"):
        assert_gradients(torch.relu, x)


def test_regularization_is_checked_apart_and_its_dominance_reported():
    x, labels = torch.randn(5, 6, dtype=torch.float64), torch.tensor([0, 1, 2, 3, 1])
    report = check_gradients(RegularizedClassifier(0.02), x, labels,
                             regularization=strong_weight_decay)
    parts = {(e.part, e.name): e.verdict for e in report.entries}
    assert parts[("data", "weight")] == "wrong"
    assert parts[("regularization", "weight")] in ("excellent", "ok")
    assert report.regularization_ratio > 10
    assert "regularization dominates" in report.render()


def test_regularization_of_a_plain_function_gets_the_inputs():
    w = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    x = torch.randn(4, 3, dtype=torch.float64)
    report = check_gradients(lambda w, x: (x @ w).pow(2).mean(), w, x,
                             regularization=lambda w, x: 0.5 * (w * w).sum())
    assert report.passed and report.regularization_ratio is not None
    assert {e.part for e in report.entries} == {"data", "regularization"}


def test_nondeterministic_forward_is_reported_not_blamed_on_the_gradient():
    class Counter(nn.Module):
        def __init__(self):
            super().__init__()
            self.calls = 0
            self.fc = nn.Linear(3, 2)

        def forward(self, x):
            self.calls += 1
            return self.fc(x) * self.calls

    report = check_gradients(Counter(), torch.randn(2, 3))
    assert report.verdict == "nondeterministic" and report.failed
    assert "state kept between calls" in report.render()


def test_own_generator_randomness_is_nondeterministic():
    generator = torch.Generator().manual_seed(0)

    def noisy(x):
        return x * torch.rand(x.shape, generator=generator, dtype=x.dtype)

    report = check_gradients(noisy, torch.randn(4, requires_grad=True))
    assert report.verdict == "nondeterministic"


@pytest.mark.parametrize("make_call, message", [
    (lambda: (lambda x: x * 2, (torch.randn(3),)), "no input requires grad"),
    (lambda: (lambda i: i.float() * 2, (torch.arange(3),)), "input\\[0\\] is torch.int64"),
    (lambda: (lambda x: (x > 0), (torch.randn(3, requires_grad=True),)), "floating tensor output"),
    (lambda: (lambda x: x / 0.0, (torch.ones(3, requires_grad=True),)), "output\\[0\\] contains Inf"),
    (lambda: (lambda x: x.sqrt(), (torch.tensor([-1.0, 2.0], requires_grad=True),)),
     "output\\[0\\] contains NaN"),
    (lambda: (lambda x: x.clamp(min=0).sqrt().sum(), (torch.tensor([0.0, 2.0], requires_grad=True),)),
     "analytic gradient of input\\[0\\] contains Inf"),
    (lambda: (lambda x: x @ torch.ones(5, 2, dtype=x.dtype), (torch.randn(3, 4, requires_grad=True),)),
     "fn raised RuntimeError in the forward: mat1 and mat2"),
    (lambda: ("not callable", (torch.randn(3, requires_grad=True),)), "must be an nn.Module"),
    (lambda: (lambda x: "text", (torch.randn(3, requires_grad=True),)), "floating tensor output"),
])
def test_bad_input_gets_one_clear_error(make_call, message):
    fn, inputs = make_call()
    with pytest.raises(NNCheckError, match=message) as raised:
        check_gradients(fn, *inputs)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("options, message", [
    ({"dtype": torch.float16}, "not supported"),
    ({"kinks": "ignore"}, "not an option"),
    ({"eps": -1.0}, "positive step"),
    ({"coords": 0, "directions": 0}, "not both 0"),
])
def test_bad_options_are_rejected(options, message):
    with pytest.raises(NNCheckError, match=message):
        check_gradients(torch.sin, torch.randn(3, requires_grad=True), **options)


def _outcome_calls():
    def passing():
        model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Dropout(0.3), nn.ReLU(),
                              nn.Linear(4, 2)).float()
        return model, torch.randn(5, 3, requires_grad=True)

    def failing():
        return CustomLinear(WeightBugLinear).float(), torch.randn(3, 5, requires_grad=True)

    def erroring():
        model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
        return model, torch.randn(5, 7, requires_grad=True)
    return {"pass": passing, "fail": failing, "error": erroring}


@settings(max_examples=12, deadline=None)
@given(outcome=st.sampled_from(["pass", "fail", "error"]), seed=st.integers(0, 2**31),
       train=st.booleans(), caller_seed=st.integers(0, 1000))
def test_callers_objects_and_global_state_are_unchanged(outcome, seed, train, caller_seed):
    torch.manual_seed(caller_seed)
    model, x = _outcome_calls()[outcome]()
    model.train(train)
    before = snapshot([model, x])
    try:
        check_gradients(model, x, seed=seed)
    except NNCheckError:
        assert outcome == "error"
    after = snapshot([model, x])
    assert_unchanged(before, after)
    assert next(model.parameters()).dtype == torch.float32


def test_same_seed_same_report_and_seed_changes_the_probes():
    model, x = nn.Linear(6, 5), torch.randn(3, 6, requires_grad=True)
    first = check_gradients(model, x, seed=1, strategy="per-tensor")
    assert first.to_dict() == check_gradients(model, x, seed=1, strategy="per-tensor").to_dict()
    other = check_gradients(model, x, seed=2, strategy="per-tensor")
    assert [e.worst_probe for e in other.entries] != [e.worst_probe for e in first.entries]


def test_relative_error_guard_keeps_dead_units_from_reading_as_errors():
    w = torch.zeros(3, 4, dtype=torch.float64, requires_grad=True)
    x = torch.randn(2, 4, dtype=torch.float64)
    report = check_gradients(lambda w: (x @ w.t() - 5).clamp(min=0).sum() + w.sum() * 0, w)
    assert not report.failed and report.verdict == "untested"  # 0 against 0 is no evidence
    assert all(math.isfinite(e.max_rel_error) for e in report.entries)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_layers_are_checked_on_the_gpu_with_seeded_dropout():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.Dropout(0.5), nn.Tanh(), nn.Linear(8, 3)).cuda()
    x = torch.randn(4, 6, device="cuda", requires_grad=True)
    cuda_state = torch.cuda.get_rng_state()
    report = check_gradients(model, x)
    assert report.passed, report.render()
    assert torch.equal(cuda_state, torch.cuda.get_rng_state())
    assert next(model.parameters()).dtype == torch.float32
    assert not check_gradients(CustomLinear(WeightBugLinear).cuda(), x[:, :5].detach()).passed


def test_nested_inputs_are_checked_and_named_by_their_path():
    q = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    k = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    scale = torch.randn(3, dtype=torch.float64)

    def attend(features, extra):
        return torch.softmax(features["query"] @ features["key"].t(), dim=1) * extra[0].sum()

    report = check_gradients(attend, {"query": q, "key": k}, [scale])
    assert [e.name for e in report.entries] == ["input[0]['query']", "input[0]['key']"]
    assert report.passed
    assert report.entries[0].worst_probe.startswith("input[0]['query']")

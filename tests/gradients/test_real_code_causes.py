"""What real custom code showed check_gradients getting wrong, one test (correct and wrong) each.

Numbered as the causes were found: kinks dropped instead of checked, solver comparisons mistaken
for kinks, passes on empty evidence, the backward contract, float32 inside the forward, a floor
relative to the gradient, gradients written to .grad, second order, constrained inputs,
robustness, and failure text that points at the bug.
"""
import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pytest_nncheck import NNCheckError, check_gradients
from pytest_nncheck.errors import NNCheckInternalError
from pytest_nncheck.gradients import constraints
from pytest_nncheck.gradients.analytic import analytic_pass
from pytest_nncheck.gradients.kinks import DecisionRecord
from pytest_nncheck.gradients.precision import PrecisionTracer
from pytest_nncheck.gradients.subject import Subject
from tests.gradients import real_code_layers as layers
from tests.gradients.layer_suite import CorrectLinear, CustomLinear, SingleEntryBugLinear
from tests.state import assert_unchanged, snapshot


def _x(*shape, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=generator, dtype=torch.float64).requires_grad_()


# 1. Kinks are checked one-sided, not dropped

def test_hinge_at_its_margin_with_a_wrong_correct_class_gradient_fails():
    scores, labels = layers.hinge_at_margin()
    assert check_gradients(layers.MulticlassHinge, scores, labels).passed
    report = check_gradients(layers.WrongHinge, scores, labels)
    assert report.failed, report.render()


def test_max_over_nearly_tied_pairs_is_resolved_not_inconclusive():
    x = layers.nearly_tied_pairs()
    report = check_gradients(lambda t: F.max_pool1d(t, 2), x)
    assert report.passed, report.render()
    assert report.kinks_crossed > 0
    assert check_gradients(layers.FirstOfPairMax, x).failed


class _ClampedBias(nn.Module):
    """x-transformers' PolarEmbedding: a zero-initialised bias under clamp(-2 pi, 0), every
    entry on the clamp's upper kink; ``backward_scale`` 2 makes its gradient wrong."""

    def __init__(self, backward_scale: float = 1.0) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(2, 1, 8))
        self.backward_scale = backward_scale

    def forward(self, t):
        bias = self.bias.clamp(-6.283, 0.0)
        if self.backward_scale != 1.0:
            bias = bias * self.backward_scale - (bias * (self.backward_scale - 1.0)).detach()
        return t * 2.0, bias


def test_a_direction_over_many_entries_on_kinks_is_halved_not_failed():
    t = _x(2, 8)
    report = check_gradients(_ClampedBias(), t, strategy="per-tensor")
    assert report.passed, report.render()
    assert check_gradients(_ClampedBias(backward_scale=2.0), t, strategy="per-tensor").failed


# 2. Solvers are not kinks: confirm before blame

def test_bisection_solver_passes_when_right_and_fails_when_wrong():
    z = _x(3, 6)
    right = check_gradients(layers.BisectionSparsemax, z)
    assert right.passed, right.render()
    wrong = check_gradients(layers.WrongBisectionSparsemax, z)
    assert wrong.failed, wrong.render()
    assert wrong.entries[0].verdict == "wrong"


def test_decisions_and_precision_are_traced_only_for_disagreeing_probes():
    z = _x(3, 6)
    report = check_gradients(layers.BisectionSparsemax, z)
    # the analytic pass, the pass at x, two forwards per probe: nothing replayed or traced
    assert report.forwards == 1 + 1 + 2 * report.checked


class _SineWithASlopeOfTwo(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.sin()

    @staticmethod
    def backward(ctx, grad):
        return 2 * grad


def test_a_confirmation_reuses_the_central_differences_evaluations():
    report = check_gradients(_SineWithASlopeOfTwo, _x(1))
    assert report.failed
    # analytic pass, pass at x, the central difference, the one-sided differences at half the
    # step (those at the full step are the central difference's), and the precision pass
    assert report.forwards == 1 + 1 + 2 + 2 + 1


# 3. Never pass on empty evidence

def test_dead_units_everywhere_are_untested_and_do_not_pass():
    layer = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    with torch.no_grad():
        layer[0].bias.fill_(-100.0)
    report = check_gradients(layer, _x(2, 4))
    assert report.verdict == "untested" and not report.passed
    assert {e.verdict for e in report.entries} == {"untested"}


def test_a_zero_initialised_weight_leaves_the_input_untested_but_the_rest_tested():
    layer = nn.Linear(4, 3)
    with torch.no_grad():
        layer.weight.zero_()
    report = check_gradients(layer, _x(2, 4))
    verdicts = {e.name: e.verdict for e in report.entries}
    assert verdicts["input[0]"] == "untested"
    assert verdicts["weight"] in ("excellent", "ok") and verdicts["bias"] in ("excellent", "ok")
    assert report.passed and "untested: every probe of input[0]" in report.render()


def test_coordinates_are_drawn_where_the_gradient_is_nonzero():
    weight = _x(50, 10)
    x = torch.randn(10, dtype=torch.float64)
    report = check_gradients(lambda w: torch.tanh(w[0] @ x), weight)  # only row 0 is used
    entry = report.entries[0]
    assert entry.untested_probes == 0
    assert entry.verdict in ("excellent", "ok")


# 4. The backward contract

def test_a_backward_that_writes_into_what_it_saved_is_not_reentrant():
    logits, labels = _x(4, 5), torch.tensor([0, 3, 1, 4])
    assert check_gradients(layers.SoftmaxCrossEntropy, logits, labels).passed
    report = check_gradients(layers.InPlaceSoftmaxCrossEntropy, logits, labels)
    assert report.failed
    assert "not reentrant" in report.render() and "saved for backward" in report.contract[0]


def test_a_backward_that_writes_into_grad_output_is_named():
    report = check_gradients(layers.ScalesGradOutputInPlace, _x(3, 4))
    assert report.failed
    assert "grad_output" in " ".join(report.contract)


def test_a_backward_that_writes_into_its_saved_input_is_not_reentrant():
    x = _x(3, 4)
    report = check_gradients(layers.ZeroesItsInput, x)
    assert report.failed
    assert any("saved for backward" in text for text in report.contract)
    assert bool((x != 0).all())  # the caller's tensor, and the checker's own copy, are intact


def test_a_backward_that_raises_on_a_valid_input_fails_the_check():
    class WrongArity(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, y):
            return x * y

        @staticmethod
        def backward(ctx, grad):
            return grad  # one gradient for two inputs

    report = check_gradients(WrongArity, _x(3), _x(3, seed=1))
    assert report.failed
    assert "the backward raises RuntimeError" in report.render()


# 5. Lower precision inside the forward

def test_float32_inside_a_float64_check_is_low_precision_not_wrong():
    report = check_gradients(layers.Float32RMSNorm(6), _x(3, 6))
    assert report.passed, report.render()
    entry = {e.name: e for e in report.entries}["input[0]"]
    assert entry.verdict == "low precision"
    assert re.search(r"low precision: a cast to float32 at real_code_layers\.py:\d+",
                     report.render())


def test_a_real_bug_inside_float32_code_still_fails():
    report = check_gradients(layers.Float32ScaleBug, _x(3, 4))
    assert report.failed and report.entries[0].verdict == "wrong"


def _input_gradient(layer, x):
    """The input gradient under the check's own projection of the outputs."""
    subject = Subject(layer, (x,), torch.float64, 0)
    return analytic_pass(subject).gradients[0].abs().reshape(-1)


def test_one_wrong_entry_inside_float32_code_fails_above_the_measured_round_off():
    # 512 entries: the wrong one moves a direction by less than 1e-2 of its value, far above
    # the round-off the probes measured, and no coordinate is drawn on it.
    layer, x = layers.Float32Attention(8), _x(4, 16, 8)
    assert check_gradients(layer, x).passed
    gradient = _input_gradient(layer, x)
    entry = int(gradient.argsort()[int(0.3 * len(gradient))])
    report = check_gradients(layers.EntryBug(layer, entry), x)
    found = {e.name: e for e in report.entries}["input[0]"]
    assert report.failed and found.verdict == "wrong", report.render()
    assert "(second projection)" not in report.render()  # seen under the first one
    assert found.max_rel_error > 0.1  # the bug's own size (20%), not one deflated by round-off


def test_an_entry_the_projection_hides_is_seen_under_a_second_one():
    layer, x = layers.Float32Attention(8), _x(2, 6, 8)
    hidden = int(_input_gradient(layer, x).argmin())  # 20% of almost nothing: round-off
    report = check_gradients(layers.EntryBug(layer, hidden), x)
    assert report.failed, report.render()
    assert "(second projection)" in report.render()


def test_a_zero_one_mask_cast_to_float32_is_not_low_precision():
    tracer = PrecisionTracer([], torch.float64)
    x = _x(4)
    report = check_gradients(lambda t: t * (t > 0).float(), x)
    assert report.entries[0].verdict != "low precision"
    assert not tracer.lowered


@pytest.mark.parametrize("message", [
    "expected scalar type Double but found Float",
    "mat1 and mat2 must have the same dtype, but got Double and Float",
    "Input type (double) and bias type (float) should be the same",
    "Input type (torch.DoubleTensor) and weight type (torch.FloatTensor) should be the same",
    "result type Double can't be cast to the desired output type Float",
    "value cannot be converted to type float without overflow",
    "kernel expected Float but got torch.float64",
])
def test_every_dtype_mismatch_message_suggests_float32(message):
    subject = Subject(torch.sin, (_x(3),), torch.float64, 0)
    error = subject.forward_error(RuntimeError(message))
    assert "cannot run in float64" in str(error) and "dtype=torch.float32" in str(error)


# 6. A floor relative to the gradient

def test_solver_noise_on_a_zero_gradient_next_to_large_ones_passes():
    x = torch.tensor([0.7, 0.3], dtype=torch.float64, requires_grad=True)
    report = check_gradients(layers.NoisyZeroGradient, x)
    assert report.passed, report.render()


def test_a_missing_small_gradient_next_to_large_ones_still_fails():
    x = torch.tensor([0.7, 0.3], dtype=torch.float64, requires_grad=True)
    assert check_gradients(layers.MissingSmallGradient, x).failed


# 7. Gradients written to .grad; forwards that need grad mode

def test_parameter_gradients_written_to_grad_by_a_custom_backward_are_read():
    report = check_gradients(layers.ReversibleBlock(), _x(2, 4))
    assert report.passed, report.render()
    wrong = check_gradients(layers.ReversibleBlock(layers.WrongRecomputingLinear), _x(2, 4))
    verdicts = {e.name: e.verdict for e in wrong.entries}
    assert verdicts["layer.weight"] == "wrong" and verdicts["input[0]"] in ("excellent", "ok")


def test_a_forward_that_calls_autograd_grad_is_evaluated_with_grad_enabled():
    report = check_gradients(layers.ForceField(), _x(4, 3))
    assert report.passed, report.render()


# 8. Second order and forward mode

def test_order_two_checks_the_double_backward():
    x = _x(3, 2)
    assert check_gradients(layers.DetachedSquare, x).passed
    assert check_gradients(layers.Square, x, order=2).passed
    report = check_gradients(layers.DetachedSquare, x, order=2)
    assert report.failed
    assert {e.part for e in report.entries if e.verdict == "wrong"} == {"second order"}


def test_order_two_on_a_once_differentiable_backward_fails_and_says_why():
    class Once(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.exp()

        @staticmethod
        @torch.autograd.function.once_differentiable
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * x.exp()

    report = check_gradients(Once, _x(3), order=2)
    assert report.failed
    assert "the backward's result carries no autograd graph" in report.render()


def test_a_functions_own_jvp_is_checked_in_forward_mode():
    x = _x(3, 4)
    right = check_gradients(layers.SineWithJvp, x)
    assert right.passed and "forward mode" in {e.part for e in right.entries}
    wrong = check_gradients(layers.WrongJvpSine, x)
    assert wrong.failed
    assert {e.part for e in wrong.entries if e.verdict == "wrong"} == {"forward mode"}


# 9. Constrained inputs

def test_a_symmetric_only_layer_passes_with_its_constraint_and_fails_without():
    a = layers.spd()
    report = check_gradients(layers.CholeskyLogDet, a, constraints={"input[0]": constraints.symmetric})
    assert report.passed, report.render()
    unconstrained = check_gradients(layers.CholeskyLogDet, a)
    assert unconstrained.failed
    assert "agrees along symmetric directions" in unconstrained.render()
    assert check_gradients(layers.WrongCholeskyLogDet, a, constraints={0: constraints.symmetric}).failed


def test_zero_sum_directions_keep_rows_summing_to_one():
    probabilities = torch.softmax(_x(2, 5), dim=1).detach()
    direction = constraints.zero_sum(torch.randn(2, 5, dtype=torch.float64))
    assert torch.allclose((probabilities + 1e-3 * direction).sum(1), torch.ones(2, dtype=torch.float64))


def test_an_unknown_constraint_name_is_one_clear_line():
    with pytest.raises(NNCheckError, match="not a checked tensor"):
        check_gradients(torch.sin, _x(3), constraints={"input[4]": constraints.symmetric})


# 10. Robustness

@pytest.mark.parametrize("name, fn, make_inputs", [
    ("median without dim", lambda x: x.median() * x.sum(), lambda: (_x(3, 4),)),
    ("nested list output", lambda x: [[x.sin(), x.cos()], {"sq": x * x}], lambda: (_x(3),)),
    ("forward pops its input list", lambda xs: xs.pop() * xs[0], lambda: ([_x(3), _x(3, seed=1)],)),
    ("forward writes into an unchecked mask",
     lambda x, mask: x * mask.clamp_(max=0.5), lambda: (_x(4), torch.ones(4, dtype=torch.float64))),
])
def test_awkward_forwards_are_checked(name, fn, make_inputs):
    report = check_gradients(fn, *make_inputs())
    assert report.passed, report.render()


def test_a_module_that_cannot_be_deep_copied_is_checked_and_left_alone():
    layer = layers.HoldsALock()
    x = _x(2, 3)
    before = snapshot([layer, x])
    report = check_gradients(layer, x)
    assert report.passed, report.render()
    assert {e.name for e in report.entries} == {"input[0]", "fc.weight", "fc.bias"}
    assert_unchanged(before, snapshot([layer, x]))


def test_sparse_gradients_are_compared_densely():
    embedding = nn.Embedding(10, 3, sparse=True)
    report = check_gradients(embedding, torch.tensor([[1, 2, 4], [4, 9, 1]]))
    assert report.passed, report.render()


@pytest.mark.parametrize("make_call, message", [
    (lambda: (torch.sin, (torch.empty(3, device="meta", requires_grad=True),)), "meta device"),
    (lambda: (nn.Linear(3, 2, device="meta"), (_x(2, 3),)), "meta device"),
    (lambda: (nn.Linear(3, 2), (torch.arange(6).reshape(2, 3),)), "input\\[0\\] is torch.int64"),
    (lambda: (lambda a, b: a.sum() + b.sum(), (_x(2), torch.empty(0, 3, requires_grad=True))),
     "input\\[1\\] is empty"),
    (lambda: (layers.Square.__new__(layers.Square), (_x(2),)), "pass the class itself"),
])
def test_bad_input_is_one_clear_line(make_call, message):
    fn, inputs = make_call()
    with pytest.raises(NNCheckError, match=message) as raised:
        check_gradients(fn, *inputs)
    assert "\n" not in str(raised.value)


def test_a_decider_that_cannot_read_its_op_never_breaks_the_forward():
    record = DecisionRecord()

    def broken(args, kwargs, out):
        raise IndexError("tuple index out of range")

    record.add("op", broken, (), {}, None)
    assert len(record) == 1


def test_an_error_inside_nncheck_is_reported_as_its_own(monkeypatch):
    def broken(self, func, args, kwargs, out):
        raise KeyError("broken tracer")

    monkeypatch.setattr(PrecisionTracer, "after", broken)
    with pytest.raises(NNCheckInternalError, match="nncheck's bug, not your code's"):
        check_gradients(layers.HalfGradientTanh, _x(3))  # a disagreement: precision is traced


# 11. Failure text that points at the bug

def test_a_constant_ratio_is_named_as_a_factor():
    report = check_gradients(layers.HalfGradientTanh, _x(3, 4))
    assert "analytic ≈ 0.5 × numeric on every probe: a missing factor of 2?" in report.render()


def test_a_failing_direction_is_narrowed_to_the_entry_at_fault():
    x = _x(3, 30)
    report = check_gradients(CustomLinear(SingleEntryBugLinear, 30, 20), x, coords=0, strategy="per-tensor")
    weight = {e.name: e for e in report.entries}["weight"]
    assert weight.verdict == "wrong"
    assert weight.worst_probe == "weight[1, 2]"  # where SingleEntryBugLinear puts its bug
    assert "narrowed to weight[1, 2]" in report.render()
    assert check_gradients(CustomLinear(CorrectLinear, 30, 20), x, coords=0).passed

import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pytest_nncheck import (NNCheckError, ReferenceReport, assert_against_reference,
                            check_against_reference, registered_reference)
from tests.reference.fused_layers import (ALL_DTYPES, CASES, FusedRMSNorm, FusedSwiGLU,
                                          RMSNormReference, RMSNormWithInputDtypeAccumulation,
                                          SwiGLUReference, rmsnorm_inputs)
from tests.state import assert_unchanged, snapshot


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=lambda d: str(d).replace("torch.", ""))
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_correct_kernels_pass_and_wrong_ones_fail(case, dtype):
    fn, inputs = case.build()
    report = registered_reference(fn).check(fn, *inputs, dtype=dtype)
    assert report.passed is case.correct_in(dtype), report.render()
    assert report.failed is not case.correct_in(dtype)
    assert report.dtype == str(dtype).replace("torch.", "")


def test_the_accumulation_bug_is_named_at_the_weight_gradient():
    fn, inputs = RMSNormWithInputDtypeAccumulation(), rmsnorm_inputs(0)
    report = registered_reference(fn).check(fn, *inputs, dtype=torch.bfloat16)
    verdicts = {e.name: e.verdict for e in report.entries}
    assert verdicts == {"output": "ok", "input[0].grad": "ok", "weight.grad": "wrong"}
    weight = report.entries[2]
    assert weight.error > weight.allowed >= 2 * weight.reference_error
    assert weight.ratio == pytest.approx(weight.error / weight.reference_error)
    assert weight.worst.startswith("weight.grad[")


def test_report_fields_and_rendering():
    torch.manual_seed(0)
    fn = FusedRMSNorm()
    report = check_against_reference(fn, RMSNormReference, *rmsnorm_inputs(0), dtype="bfloat16")
    assert isinstance(report, ReferenceReport) and report.passed and report.verdict == "passed"
    assert [e.name for e in report.entries] == ["output", "input[0].grad", "weight.grad"]
    assert report.k == 2 and report.floor == 2.0 ** -8 and report.device == "cpu"
    assert report.worst in report.entries
    assert str(report) == report.render()
    lines = report.render().splitlines()
    assert lines[0].startswith("reference check PASSED: 0 of 3 tensors")
    for column in ("tensor", "shape", "dtype", "error", "ref error", "ratio", "allowed",
                   "worst at", "fn", "float64", "verdict"):
        assert column in lines[1]
    record = json.loads(json.dumps(report.to_dict()))
    assert record["passed"] is True and len(record["entries"]) == 3


def test_assert_raises_with_the_table_on_failure_only():
    fn, inputs = RMSNormWithInputDtypeAccumulation(), rmsnorm_inputs(0)
    reference = registered_reference(fn)
    with pytest.raises(AssertionError, match="reference check FAILED") as raised:
        assert_against_reference(fn, reference.reference, *inputs, dtype=torch.bfloat16)
    assert "weight.grad" in str(raised.value)
    assert assert_against_reference(fn, reference.reference, *inputs, dtype=torch.float32).passed


def test_the_callers_objects_and_random_states_are_untouched():
    for case in (CASES[2], CASES[3]):  # a passing and a failing module
        fn, inputs = case.build()
        fn.eval()
        torch.manual_seed(5)
        before = snapshot([fn, *inputs])
        check_against_reference(fn, registered_reference(fn).reference, *inputs,
                                dtype=torch.bfloat16)
        assert_unchanged(before, snapshot([fn, *inputs]))
        assert not fn.training and fn.weight.dtype == torch.float32


def test_float64_sees_the_inputs_fn_sees_rounded_to_its_precision():
    x = torch.randn(6, 5, requires_grad=True)
    report = check_against_reference(lambda t: t * 2, lambda t: t * 2, x, dtype=torch.bfloat16)
    assert [e.error for e in report.entries] == [0.0, 0.0]  # 2x is exact for a bf16 x


def test_fn_runs_in_its_own_precision_by_default_mixed_ones_in_the_coarsest():
    torch.manual_seed(0)
    layer = FusedRMSNorm().to(torch.float16)
    x = rmsnorm_inputs(0)[0].detach().to(torch.float16).requires_grad_()
    assert check_against_reference(layer, RMSNormReference, x).dtype == "float16"
    mixed = FusedRMSNorm()  # float32 weight, bfloat16 activations
    x = x.detach().to(torch.bfloat16).requires_grad_()
    report = check_against_reference(mixed, RMSNormReference, x)
    assert report.dtype == "bfloat16" and report.passed, report.render()
    assert [e.dtype for e in report.entries] == ["bfloat16", "bfloat16", "float32"]


def test_a_float64_run_says_that_only_the_floor_bounds_it():
    x = torch.randn(4, 8, dtype=torch.float64, requires_grad=True)
    report = check_against_reference(torch.tanh, torch.tanh, x)
    assert report.dtype == "float64" and report.floor == 1e-12 and report.passed
    assert report.notes[0].startswith("fn ran in float64, where the reference's own run is")
    assert all(e.reference_error == 0 for e in report.entries)


def test_a_reference_instance_keeps_its_own_weights_out_of_it():
    torch.manual_seed(0)
    fn, inputs = FusedRMSNorm(), rmsnorm_inputs(0)
    instance = RMSNormReference()
    nn.init.constant_(instance.weight, 5.0)
    assert check_against_reference(fn, instance, *inputs, dtype=torch.bfloat16).passed
    assert torch.equal(instance.weight, torch.full((16,), 5.0))


class Doubler(nn.Module):
    def forward(self, x):
        return x * 2


class DoublerWithDropout(nn.Module):
    def __init__(self):
        super().__init__()
        self.dropout = nn.Dropout(0.5)

    def forward(self, x):
        return self.dropout(x) * 2


def test_a_reference_class_runs_in_the_layers_train_or_eval_mode():
    x = torch.randn(32, requires_grad=True)
    layer = Doubler().eval()
    assert check_against_reference(layer, DoublerWithDropout, x).passed
    assert check_against_reference(layer.train(), DoublerWithDropout, x).failed


def test_parameters_are_shared_through_a_mapping():
    torch.manual_seed(0)
    fn = FusedSwiGLU()
    x = torch.randn(4, 16, requires_grad=True)
    mapping = {"w13": "gate_up", "w2": "down"}
    report = check_against_reference(fn, SwiGLUReference, x, dtype=torch.float16,
                                     parameters=mapping)
    assert report.passed, report.render()
    assert [e.name for e in report.entries] == ["output", "input[0].grad", "w13.grad", "w2.grad"]


@pytest.mark.parametrize("parameters, message", [
    (None, "the reference's parameter 'gate_up' has no counterpart in fn"),
    ({"w13": "gate_up", "w3": "down"}, "parameters= names 'w3', which is not a parameter of fn"),
    ({"w13": "gate_up", "w2": "up"}, "onto 'up', which is not a parameter of the reference"),
    ({"w13": "down", "w2": "gate_up"}, r"fn's parameter 'w2' has shape \(16, 32\) but"),
])
def test_parameter_wiring_mistakes_are_named(parameters, message):
    torch.manual_seed(0)
    with pytest.raises(NNCheckError, match=message):
        check_against_reference(FusedSwiGLU(), SwiGLUReference, torch.randn(4, 16),
                                parameters=parameters)


def test_a_parameter_the_reference_never_uses_is_a_wiring_error():
    torch.manual_seed(0)

    def without_weight(layer):
        return lambda x: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)
    with pytest.raises(NNCheckError, match="the reference never uses fn's parameter 'weight'"):
        check_against_reference(FusedRMSNorm(), without_weight, *rmsnorm_inputs(0))


def test_a_factory_may_compute_from_the_layers_own_parameters():
    torch.manual_seed(0)
    fn, inputs = FusedSwiGLU(), (torch.randn(4, 16, requires_grad=True),)

    def from_fused(layer):
        def swiglu(x):
            gate, up = (x @ layer.w13.t()).chunk(2, -1)
            return (F.silu(gate) * up) @ layer.w2.t()
        return swiglu
    assert check_against_reference(fn, from_fused, *inputs, dtype=torch.bfloat16).passed


def test_nested_inputs_and_dict_outputs_are_named_by_path():
    def fused(pair):
        return {"scores": pair["query"] @ pair["key"].t(), "count": torch.tensor(2)}
    pair = {"query": torch.randn(3, 4, requires_grad=True), "key": torch.randn(5, 4)}
    report = check_against_reference(fused, fused, pair, dtype=torch.bfloat16)
    assert [e.name for e in report.entries] == ["output['scores']", "input[0]['query'].grad"]
    assert report.passed


def test_a_reference_that_rounds_inside_is_named_in_a_note():
    x = torch.randn(4, 8, requires_grad=True)
    report = check_against_reference(torch.tanh, lambda t: torch.tanh(t.float()), x,
                                     dtype=torch.bfloat16)
    assert report.notes == ["the reference's float64 run returned output (float32): it rounds "
                            "inside, so its errors are not measured against float64; make it "
                            "compute in its inputs' dtype"]
    assert report.notes[0] in report.render()
    assert not check_against_reference(torch.tanh, torch.tanh, x, dtype=torch.bfloat16).notes


def test_without_anything_to_differentiate_the_outputs_are_compared():
    x = torch.randn(4, 8)
    report = check_against_reference(lambda t: torch.softmax(t.float(), -1).to(t.dtype),
                                     lambda t: torch.softmax(t, -1), x, dtype=torch.bfloat16)
    assert [e.name for e in report.entries] == ["output"] and report.passed
    wrong = check_against_reference(lambda t: torch.softmax(t * 1.05, -1),
                                    lambda t: torch.softmax(t, -1), x, dtype=torch.bfloat16)
    assert wrong.failed


def test_every_run_starts_from_the_same_seed():
    x = torch.randn(64, requires_grad=True)

    def dropout(t):
        return F.dropout(t, 0.5, training=True)
    torch.manual_seed(3)
    state = torch.get_rng_state()
    assert check_against_reference(dropout, dropout, x, dtype=torch.bfloat16).passed
    assert torch.equal(torch.get_rng_state(), state)


def test_a_nan_where_float64_has_none_fails_and_matching_infinities_agree():
    x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    nan = check_against_reference(lambda t: t.log(), lambda t: t.abs().log(), x)
    assert nan.failed and math.isinf(nan.entries[0].error)
    masked = check_against_reference(lambda t: t.masked_fill(t < 0, float("-inf")),
                                     lambda t: torch.where(t < 0, float("-inf"), t), x)
    assert masked.passed, masked.render()


def test_a_reference_that_overflows_in_low_precision_is_inconclusive():
    x = torch.tensor([300.0, 1.0], requires_grad=True)

    def fused(t):
        return (t.float() * 1000) ** 2 / 1e6

    def naive(t):
        return (t * 1000) ** 2 / 1e6
    report = check_against_reference(fused, naive, x.detach().half(), dtype=torch.float16)
    assert report.inconclusive and not report.passed and not report.failed
    assert report.entries[0].verdict == "inconclusive"
    assert_against_reference(fused, naive, x.detach().half(), dtype=torch.float16)


@pytest.mark.parametrize("call, message", [
    (lambda: check_against_reference(torch.exp, torch.exp, torch.randn(2), dtype="int64"),
     "dtype='int64' is not a floating dtype"),
    (lambda: check_against_reference(torch.exp, torch.exp, torch.randn(2), k=0),
     "k=0 must be a positive number"),
    (lambda: check_against_reference(torch.exp, torch.exp, torch.randn(2), floor=-1.0),
     "floor=-1.0 must be >= 0"),
    (lambda: check_against_reference(torch.exp, 3, torch.randn(2)),
     "reference must be an nn.Module class or instance"),
    (lambda: check_against_reference(torch.exp, lambda t: t[:1], torch.randn(2)),
     r"the reference in float64 returned output 1 where fn returned output 2"),
    (lambda: check_against_reference(torch.exp, lambda t: t.nope(), torch.randn(2)),
     "the reference in float64 raised AttributeError"),
    (lambda: check_against_reference(lambda t: 1 / 0, torch.exp, torch.randn(2)),
     "fn raised ZeroDivisionError: division by zero in the forward"),
    (lambda: check_against_reference(torch.exp, lambda t: t.argmax(), torch.randn(2)),
     "the reference in float64 returned Tensor; a reference check compares floating"),
    (lambda: check_against_reference(FusedRMSNorm(), F.silu, torch.randn(2, 16)),
     "the reference factory raised .*write lambda layer: my_function"),
    (lambda: check_against_reference(FusedRMSNorm(), lambda layer: 3, torch.randn(2, 16)),
     "the reference factory returned int"),
])
def test_bad_input_gets_one_clear_line(call, message):
    with pytest.raises(NNCheckError, match=message):
        call()


def test_a_reference_class_that_needs_arguments_asks_for_a_factory():
    class NeedsSize(nn.Module):
        def __init__(self, size):
            super().__init__()

    with pytest.raises(NNCheckError, match=r"could not build the reference NeedsSize\(\) without "
                                           r"arguments \(TypeError: .*lambda layer: NeedsSize"):
        check_against_reference(FusedRMSNorm(), NeedsSize, torch.randn(2, 16))


def test_cuda_without_cuda_is_an_error_not_a_cpu_run():
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(NNCheckError, match="CUDA is not available"):
        check_against_reference(torch.exp, torch.exp, torch.randn(2), device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_cuda_runs_the_same_verdicts(case):
    fn, inputs = case.build()
    report = registered_reference(fn).check(fn, *inputs, dtype=torch.bfloat16, device="cuda")
    assert report.device.startswith("cuda")
    assert report.passed is case.correct_in(torch.bfloat16), report.render()

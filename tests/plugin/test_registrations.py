"""What a repository declares about its layers: options, exclusions, packages, references."""
import json

import pytest

PACKAGE_INIT = "from .blocks import Gate\nAlias = Gate\n"

BLOCKS = '''
import torch
from torch import nn
import pytest_nncheck


class Gate(nn.Module):
    def __init__(self, in_features=4):
        super().__init__()
        self.fc = nn.Linear(in_features, in_features)

    def forward(self, x, scale=1.0):
        return torch.sigmoid(self.fc(x)) * x * scale


class _Helper(nn.Module):
    def forward(self, x):
        return x


class Base(nn.Module):
    def forward(self, x):
        raise NotImplementedError


@pytest_nncheck.example(lambda: (Scaled(), torch.randn(3, 4, dtype=torch.float64,
                                                       requires_grad=True)),
                        forward_kwargs={"factor": 3.0}, coords=2, directions=1)
class Scaled(nn.Module):
    def forward(self, x, *, factor):
        return torch.tanh(x) * factor


class StraightThrough(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.round()

    @staticmethod
    def backward(ctx, grad):
        return grad


@pytest_nncheck.skip("gradient reversal: its backward is -grad on purpose")
class GradientReversal(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return -grad
'''

FUSED = '''
import torch
from torch import nn
import pytest_nncheck


class RMSNormReference(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(8))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight


class _FusedRMSNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, wrong):
        rms = torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-6)
        ctx.save_for_backward(x, weight, rms)
        ctx.wrong = wrong
        return (x.float() * rms).to(x.dtype) * weight

    @staticmethod
    def backward(ctx, grad):
        x, weight, rms = ctx.saved_tensors
        xf, g = x.float(), (grad * weight).float()
        normed = xf * rms
        grad_x = rms * (g - normed * (g * normed).mean(-1, keepdim=True))
        grad_w = (grad.float() * normed).sum(dim=tuple(range(grad.dim() - 1)))
        if ctx.wrong:
            grad_w = grad_w * 1.5
        return grad_x.to(x.dtype), grad_w.to(weight.dtype), None


@pytest_nncheck.example(lambda: (FusedRMSNorm(), torch.randn(4, 6, 8, requires_grad=True)))
@pytest_nncheck.reference(RMSNormReference)
class FusedRMSNorm(nn.Module):
    wrong = False

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(8))

    def forward(self, x):
        return _FusedRMSNorm.apply(x, self.weight, self.wrong)


@pytest_nncheck.example(lambda: (WrongFusedRMSNorm(), torch.randn(4, 6, 8, requires_grad=True)))
@pytest_nncheck.reference(RMSNormReference)
class WrongFusedRMSNorm(FusedRMSNorm):
    wrong = True
'''


@pytest.fixture
def package(pytester):
    pytester.mkpydir("mypkg")
    (pytester.path / "mypkg" / "__init__.py").write_text(PACKAGE_INIT)
    (pytester.path / "mypkg" / "blocks.py").write_text(BLOCKS)
    pytester.makeini("[pytest]\nnncheck_modules = mypkg mypkg.blocks\n"
                     "nncheck_exclude = mypkg.blocks.StraightThrough\n")
    pytester.syspathinsert()
    return pytester


def test_a_package_is_scanned_once_with_private_and_abstract_classes_left_out(package):
    result = package.runpytest("--nncheck", "--collect-only", "-q")
    ids = sorted(line for line in result.outlines if line.startswith("nncheck::"))
    assert ids == [f"nncheck::mypkg.blocks::{name}::gradients" for name in
                   ("Gate", "GradientReversal", "Scaled", "StraightThrough")]


def test_exclusions_show_as_skipped_with_their_reason_and_are_counted_apart(package):
    result = package.runpytest("--nncheck", "-rs", "--nncheck-report", "r.json")
    result.assert_outcomes(passed=2, skipped=2)
    for line in ("*GradientReversal*excluded*", "*2 of 4 layer checks ran (2 passed, 0 failed), "
                 "0 skipped, 2 excluded*", "*gradient reversal: its backward is -grad on purpose*",
                 "*excluded by nncheck_exclude pattern*StraightThrough*"):
        result.stdout.fnmatch_lines([line])
    records = {r["layer"]: r for r in json.loads((package.path / "r.json").read_text())["checks"]}
    assert records["mypkg.blocks.GradientReversal"]["excluded"] is True


def test_an_example_carries_its_check_options_and_forward_kwargs(package):
    package.runpytest("--nncheck", "-k", "Scaled", "--nncheck-report", "r.json")
    (record,) = json.loads((package.path / "r.json").read_text())["checks"]
    assert record["outcome"] == "passed"
    assert "Scaled" in record["example"]


def test_without_the_exclusion_a_straight_through_estimator_fails(package):
    package.makeini("[pytest]\nnncheck_modules = mypkg\n")
    result = package.runpytest("--nncheck", "-k", "StraightThrough")
    result.assert_outcomes(failed=1)


@pytest.fixture
def fused(pytester):
    pytester.makepyfile(fused=FUSED)
    pytester.syspathinsert()
    return pytester


def test_a_fused_layer_is_checked_against_its_reference_for_each_dtype(fused):
    fused.makeini("[pytest]\nnncheck_modules = fused\nnncheck_dtypes = bfloat16 float32\n")
    result = fused.runpytest("--nncheck", "--collect-only", "-q")
    ids = sorted(line for line in result.outlines if line.startswith("nncheck::"))
    assert ids == sorted([f"nncheck::fused::{name}::reference[{dtype}]"
                          for name in ("FusedRMSNorm", "WrongFusedRMSNorm")
                          for dtype in ("bfloat16", "float32")]
                         + ["nncheck::fused::RMSNormReference::gradients"])
    result = fused.runpytest("--nncheck", "-k", "reference and not RMSNormReference",
                             "--nncheck-report", "r.json")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(["*reference check FAILED*", "*weight.grad*wrong*",
                                 "*fused.WrongFusedRMSNorm*reference[[]bfloat16[]]*failed*"])
    records = json.loads((fused.path / "r.json").read_text())["checks"]
    assert {(r["layer"].split(".")[-1], r["dtype"], r["outcome"]) for r in records} == {
        ("FusedRMSNorm", "bfloat16", "passed"), ("FusedRMSNorm", "float32", "passed"),
        ("WrongFusedRMSNorm", "bfloat16", "failed"), ("WrongFusedRMSNorm", "float32", "failed")}


def test_a_fused_layer_runs_in_its_own_dtype_by_default(fused):
    fused.makeini("[pytest]\nnncheck_modules = fused\n")
    result = fused.runpytest("--nncheck", "--collect-only", "-q")
    assert "nncheck::fused::FusedRMSNorm::reference" in result.outlines

"""pytest --nncheck on throwaway projects, run by pytest itself (pytester)."""
import json

import pytest

LAYERS = '''
import torch
from torch import nn
import pytest_nncheck


class Swish(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * torch.sigmoid(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        s = torch.sigmoid(x)
        return grad * (s + x * s * (1 - s))


class BrokenSwish(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * torch.sigmoid(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * torch.sigmoid(x)


class GatedLinear(nn.Module):
    def __init__(self, in_features, out_features=3):
        super().__init__()
        self.proj = nn.Linear(in_features, 2 * out_features)

    def forward(self, x):
        a, b = self.proj(x).chunk(2, dim=-1)
        return a * torch.sigmoid(b)


@pytest_nncheck.example(lambda: (Mixer(vocab=7), torch.randn(2, 7, dtype=torch.float64,
                                                               requires_grad=True)))
class Mixer(nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(vocab, vocab))

    def forward(self, x):
        return torch.tanh(x @ self.weight)


class Tokenizer(nn.Module):
    def __init__(self, vocabulary_file):
        super().__init__()
        self.path = vocabulary_file

    def forward(self, x):
        return x


Linear = nn.Linear  # a re-export: not this module's layer
'''

CONFIG = """
[pytest]
nncheck_modules = mylayers
"""


def test_layers_are_collected_with_stable_node_ids(project):
    result = project.runpytest("--nncheck", "--collect-only", "-q")
    ids = [line for line in result.outlines if line.startswith("nncheck::")]
    assert ids == [f"nncheck::mylayers::{name}::gradients" for name in
                   ("Swish", "BrokenSwish", "GatedLinear", "Mixer", "Tokenizer")]


def test_outcomes_skip_message_and_failure_table(project):
    result = project.runpytest("--nncheck", "-rs")
    result.assert_outcomes(passed=3, failed=1, skipped=1)
    result.stdout.fnmatch_lines([
        "*nncheck::mylayers::BrokenSwish::gradients*",
        "*gradient check FAILED*",
        "*input[[]0]*wrong*",
    ])
    result.stdout.fnmatch_lines([
        "*SKIPPED*cannot infer an example for mylayers.Tokenizer*vocabulary_file*"
        "@pytest_nncheck.example(lambda: (Tokenizer(vocabulary_file=...)*"
        "pytest_nncheck_examples(config)*",
    ])
    assert result.ret == 1


def test_summary_table_lists_every_check(project):
    result = project.runpytest("--nncheck")
    result.stdout.fnmatch_lines(["*= nncheck =*", "*layer or test*check*outcome*worst entry*rel. error*",
                                 "*mylayers.BrokenSwish*gradients*failed*input[[]0]*",
                                 "*mylayers.Swish*gradients*passed*"])


def test_json_report(project):
    result = project.runpytest("--nncheck", "--nncheck-report", "nncheck.json")
    data = json.loads((project.path / "nncheck.json").read_text())
    records = {r["layer"]: r for r in data["checks"]}
    assert data["exitstatus"] == result.ret == 1
    assert records["mylayers.Swish"]["outcome"] == "passed"
    assert records["mylayers.BrokenSwish"]["outcome"] == "failed"
    assert records["mylayers.BrokenSwish"]["max_rel_error"] > 1e-2
    assert records["mylayers.BrokenSwish"]["worst_entry"].startswith("input[0]")
    assert records["mylayers.Tokenizer"]["outcome"] == "skipped"
    assert "vocabulary_file" in records["mylayers.Tokenizer"]["reason"]
    assert "gradient check FAILED" in records["mylayers.BrokenSwish"]["reason"]
    for record in data["checks"]:
        assert {"nodeid", "kind", "layer", "outcome", "reason", "max_rel_error", "worst_entry",
                "kinks_crossed", "duration"} <= set(record)
        assert record["nodeid"].startswith("nncheck::mylayers::") and record["kind"] == "gradients"


def test_conftest_hook_supplies_examples(project):
    project.makeconftest("""
import torch
import mylayers

def pytest_nncheck_examples(config):
    return {"mylayers.Tokenizer": lambda: (mylayers.Tokenizer("v.txt"),
                                           torch.randn(3, dtype=torch.float64, requires_grad=True))}
""")
    result = project.runpytest("--nncheck")
    result.assert_outcomes(passed=4, failed=1)


def test_without_the_flag_nothing_is_collected_or_imported(project):
    project.makepyfile(test_plain="""
import sys
import pytest

def test_plain():
    assert "torch" not in sys.modules
    assert "mylayers" not in sys.modules

@pytest.mark.nncheck
def test_expensive():
    raise AssertionError("must not run without --nncheck")
""")
    result = project.runpytest_subprocess("-rs", "--strict-markers")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*run with pytest --nncheck*"])


def test_marked_tests_run_with_the_flag_and_use_the_fixture(project):
    project.makepyfile(test_marked="""
import pytest
import torch

@pytest.mark.nncheck
def test_gradients(nncheck):
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    report = nncheck.assert_gradients(torch.nn.Linear(4, 2), x)
    assert report.passed

def test_seed_is_configurable(nncheck):
    assert nncheck.seed == 7 and nncheck.device == "cpu"
""")
    result = project.runpytest("--nncheck", "--nncheck-seed", "7", "--nncheck-device", "cpu",
                               "-k", "marked", "--strict-markers")
    result.assert_outcomes(passed=2)


def test_ini_twins_configure_seed_and_device(project):
    project.makeini(CONFIG + "nncheck_seed = 11\nnncheck_device = cpu\n")
    project.makepyfile(test_ini="""
def test_defaults(nncheck):
    assert (nncheck.seed, nncheck.device) == (11, "cpu")
""")
    project.runpytest("-k", "ini").assert_outcomes(passed=1)


def test_modules_option_overrides_ini(project):
    project.makepyfile(otherlayers="""
import torch
from torch import nn

class Scale(nn.Module):
    def __init__(self, dim=4):
        super().__init__()
        self.w = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * self.w
""")
    result = project.runpytest("--nncheck", "--nncheck-modules", "otherlayers", "--collect-only", "-q")
    assert "nncheck::otherlayers::Scale::gradients" in result.outlines


@pytest.mark.parametrize("flags", [["-p", "no:cacheprovider"], ["--import-mode=importlib"],
                                   ["--strict-markers"]])
def test_works_with_common_pytest_flags(project, flags):
    project.runpytest("--nncheck", *flags).assert_outcomes(passed=3, failed=1, skipped=1)


def test_src_layout(pytester):
    package = pytester.path / "src" / "mypkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "layers.py").write_text(LAYERS)
    pytester.makeini("[pytest]\nnncheck_modules = mypkg.layers\npythonpath = src\n")
    result = pytester.runpytest("--nncheck")
    result.assert_outcomes(passed=3, failed=1, skipped=1)


def test_xdist_gives_the_same_items_verdicts_and_one_report(project):
    pytest.importorskip("xdist")
    serial = project.runpytest("--nncheck", "--nncheck-report", "serial.json")
    parallel = project.runpytest_subprocess("--nncheck", "-n", "2", "--nncheck-report",
                                            "parallel.json")
    parallel.assert_outcomes(passed=3, failed=1, skipped=1)
    # Verdicts must match; errors at round-off level (and so which probe is worst among passing
    # ones) may differ with the kernels' thread split in other processes.
    keys = ("nodeid", "kind", "layer", "outcome", "kinks_crossed")
    strip = lambda path: [{k: r[k] for k in keys}
                          for r in json.loads((project.path / path).read_text())["checks"]]
    assert strip("parallel.json") == strip("serial.json")
    assert serial.ret == parallel.ret == 1


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the error without CUDA")
def test_cuda_device_without_cuda_is_a_usage_error_not_skips(project):
    result = project.runpytest("--nncheck", "--nncheck-device", "cuda")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*nncheck_device = cuda but CUDA is not available*"])


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA device")
def test_cuda_device_runs_layers_on_the_gpu(project):
    result = project.runpytest("--nncheck", "--nncheck-device", "cuda")
    result.assert_outcomes(passed=3, failed=1, skipped=1)


def test_a_module_that_does_not_import_is_one_clear_collection_error(project):
    project.makeini("[pytest]\nnncheck_modules = mylayerz\n")
    result = project.runpytest("--nncheck")
    result.stdout.fnmatch_lines(["*cannot import 'mylayerz' from nncheck_modules*No module named*"])
    assert result.ret == 2


def test_no_modules_configured_says_so(pytester):
    pytester.makepyfile(test_one="def test_one():\n    pass\n")
    result = pytester.runpytest("--nncheck")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*no layers were checked because nncheck_modules is not set*"])


def test_failure_table_is_coloured_on_a_colour_terminal(project):
    result = project.runpytest("--nncheck", "--color=yes", "-k", "BrokenSwish")
    failure = [line for line in result.outlines if "gradient check" in line]
    assert failure and "\x1b[" in failure[0]
    plain = project.runpytest("--nncheck", "--color=no", "-k", "BrokenSwish")
    assert not any("\x1b[" in line for line in plain.outlines)


def test_an_explicit_example_that_does_not_run_fails_with_the_reason(project):
    project.makeconftest("""
import torch
import mylayers

def pytest_nncheck_examples(config):
    return {mylayers.Tokenizer: lambda: (mylayers.Tokenizer("v.txt"), torch.arange(3))}
""")
    result = project.runpytest("--nncheck", "-k", "Tokenizer", "--nncheck-report", "r.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*NNCheckError: nothing to check: input[[]0] is torch.int64*"])
    (record,) = json.loads((project.path / "r.json").read_text())["checks"]
    assert record["outcome"] == "failed"

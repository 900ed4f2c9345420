"""pytest --nncheck as a CI gate: never passes silently, fails short, reports everything."""
import json

import pytest

from tests.plugin.test_plugin import CONFIG


@pytest.mark.parametrize("ini, message", [
    ("nncheck_device = gpu", "nncheck_device must be auto, cpu, cuda or cuda:N, got 'gpu'"),
    ("nncheck_seed = zero", "nncheck_seed must be an integer, got 'zero'"),
    ("nncheck_dtypes = bf16", "nncheck_dtypes has 'bf16'"),
])
def test_an_option_that_cannot_work_is_one_usage_error_at_start_up(project, ini, message):
    project.makeini(CONFIG + ini + "\n")
    result = project.runpytest("--nncheck")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert sum(message in line for line in result.stderr.lines) == 1
    assert "passed" not in result.stdout.str()


def test_an_explicit_example_that_raises_fails_in_a_few_lines(project):
    project.makeconftest("""
import torch
import mylayers

def build():
    return (mylayers.Tokenizer("v.txt"), torch.randn(2, 3, 4)[5])

def pytest_nncheck_examples(config):
    return {mylayers.Tokenizer: build}
""")
    result = project.runpytest("--nncheck", "-k", "Tokenizer", "--nncheck-report", "r.json")
    result.assert_outcomes(failed=1)
    failure = result.stdout.str().split("FAILURES")[1].split("short test summary")[0]
    assert len(failure.strip().splitlines()) <= 40
    assert "IndexError: index 5 is out of bounds" in failure
    assert "conftest.py" in failure and "torch.randn(2, 3, 4)[5]" in failure
    (record,) = json.loads((project.path / "r.json").read_text())["checks"]
    assert record["outcome"] == "failed" and "IndexError" in record["reason"]


def test_a_failing_model_with_many_tensors_shows_only_what_failed(project):
    project.makepyfile(deeplayers="""
import torch
from torch import nn


class Halved(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, grad):
        return grad


class Deep(nn.Module):
    def __init__(self, in_features=4):
        super().__init__()
        self.layers = nn.Sequential(*[nn.Linear(in_features, 4) for _ in range(30)])

    def forward(self, x):
        return Halved.apply(self.layers(x))
""")
    result = project.runpytest("--nncheck", "--nncheck-modules", "deeplayers", "-k", "Deep and not Halved")
    result.assert_outcomes(failed=1)
    failure = result.stdout.str().split("FAILURES")[1].split("= nncheck =")[0]
    assert len(failure.strip().splitlines()) <= 40
    assert "more tensors not shown" in failure


def test_the_report_folder_is_created(project):
    result = project.runpytest("--nncheck", "--nncheck-report", "reports/ci/nncheck.json")
    assert (project.path / "reports" / "ci" / "nncheck.json").is_file()
    result.stdout.fnmatch_lines(["*nncheck: 4 of 5 layer checks ran*"])


def test_marked_tests_are_in_the_json_report_with_their_figures(project):
    project.makepyfile(test_sanity="""
import pytest
import torch

@pytest.mark.nncheck
def test_initial_loss(nncheck):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    with torch.no_grad():
        model.weight.mul_(0.01)
    nncheck.assert_initial_loss(model, torch.randn(16, 4), torch.randint(0, 3, (16,)),
                                torch.nn.CrossEntropyLoss())

@pytest.mark.nncheck
def test_overconfident(nncheck):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    with torch.no_grad():
        model.weight.mul_(50)
    nncheck.assert_initial_loss(model, torch.randn(16, 4), torch.randint(0, 3, (16,)),
                                torch.nn.CrossEntropyLoss())
""")
    project.runpytest("--nncheck", "-k", "sanity", "--nncheck-report", "r.json")
    records = {r["nodeid"].split("::")[-1]: r for r in
               json.loads((project.path / "r.json").read_text())["checks"]}
    good, bad = records["test_initial_loss"], records["test_overconfident"]
    assert good["outcome"] == "passed" and good["kind"] == "test"
    assert good["checks"][0]["check"] == "initial_loss"
    assert good["checks"][0]["figures"]["expected"] == pytest.approx(1.0986, abs=1e-3)
    assert bad["outcome"] == "failed" and bad["checks"][0]["passed"] is False
    assert "over-confident" in bad["reason"]


def test_node_ids_from_the_summary_can_be_passed_back(project):
    result = project.runpytest("--nncheck", "nncheck::mylayers::Swish::gradients")
    result.assert_outcomes(passed=1)
    result = project.runpytest("--nncheck", "nncheck::mylayers::BrokenSwish")
    result.assert_outcomes(failed=1)


def test_a_test_file_given_alone_runs_alone(project):
    project.mkdir("tests")
    project.makepyfile(**{"tests/test_one": "def test_one():\n    pass\n"})
    result = project.runpytest("--nncheck", "tests/test_one.py")
    result.assert_outcomes(passed=1)
    result = project.runpytest("--nncheck", "tests/test_one.py", "mylayers.py")
    result.assert_outcomes(passed=4, failed=1, skipped=1)


def test_a_module_with_no_layers_is_a_warning(project):
    project.makepyfile(nolayers="def helper():\n    return 1\n")
    project.makeini("[pytest]\nnncheck_modules = mylayers nolayers\n")
    result = project.runpytest("--nncheck")
    result.stdout.fnmatch_lines(["*warning: nolayers (in nncheck_modules) defines no nn.Module*"])


def test_long_layer_names_are_not_cut_in_the_summary(project):
    name = "A" * 90 + "Layer"
    project.makepyfile(longnames=f"""
import torch
from torch import nn

class {name}(nn.Module):
    def __init__(self, in_features=4):
        super().__init__()
        self.fc = nn.Linear(in_features, 2)

    def forward(self, x):
        return torch.tanh(self.fc(x))
""")
    result = project.runpytest("--nncheck", "--nncheck-modules", "longnames")
    result.stdout.fnmatch_lines([f"*longnames.{name}*gradients*passed*"])


def test_training_health_pages_are_written_for_the_html_option(project):
    project.makepyfile(test_training="""
import pytest
import torch

@pytest.mark.nncheck
def test_training(nncheck):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    nncheck.check_training(model, torch.randn(32, 4), torch.randint(0, 3, (32,)),
                           torch.nn.CrossEntropyLoss(), steps=10)
""")
    project.runpytest("--nncheck", "-k", "test_training", "--nncheck-html", "health",
                      "--nncheck-report", "r.json").assert_outcomes(passed=1)
    index = (project.path / "health" / "index.html").read_text()
    (record,) = json.loads((project.path / "r.json").read_text())["checks"]
    page = record["checks"][0]["html"]
    assert page in index and (project.path / "health" / page).is_file()
    assert "<svg" in (project.path / "health" / page).read_text()


def test_a_run_that_checks_nothing_is_an_error(pytester):
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = pytester.runpytest("--nncheck")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*nncheck: error: --nncheck checked nothing*"])
    assert pytester.runpytest().ret == pytest.ExitCode.OK  # without --nncheck: an ordinary run


def test_a_run_whose_every_layer_is_skipped_is_an_error(pytester):
    pytester.makepyfile(onlyskipped="""
import torch
from torch import nn
import pytest_nncheck

@pytest_nncheck.skip("a straight-through estimator")
class RoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.round()

    @staticmethod
    def backward(ctx, grad):
        return grad
""")
    pytester.syspathinsert()
    result = pytester.runpytest("--nncheck", "--nncheck-modules", "onlyskipped")
    result.assert_outcomes(skipped=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*checked nothing (1 nncheck items, none ran to a verdict)*"])

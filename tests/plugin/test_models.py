"""Models declared once get the sanity, recipe and training-health checks as collected items."""
import json

import pytest

MODELS = '''
import torch
from torch import nn
import pytest_nncheck

FAST = {"baseline": {"steps": 20, "seeds": 1}, "overfit": {"steps": 150},
        "training": {"steps": 10}}


def batch():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(12, 6, generator=generator)
    return x, (x[:, 0] > 0).long()


@pytest_nncheck.model(batch=batch, loss_fn=nn.CrossEntropyLoss(), options=FAST)
class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 2))
        with torch.no_grad():
            self.net[2].weight.mul_(0.01)

    def forward(self, x):
        return self.net(x)


@pytest_nncheck.model(batch=batch, loss_fn=nn.CrossEntropyLoss(), options=FAST)
class MixesTheBatch(Classifier):
    def forward(self, x):
        return self.net(x - x.mean(0))
'''


@pytest.fixture
def project(pytester):
    pytester.makepyfile(models=MODELS)
    pytester.makeini("[pytest]\nnncheck_modules = models\n")
    pytester.syspathinsert()
    return pytester


def test_a_declared_model_gets_one_item_per_check(project):
    result = project.runpytest("--nncheck", "--collect-only", "-q", "-k", "not gradients")
    ids = [line for line in result.outlines if line.startswith("nncheck::models.Classifier::")]
    assert [i.rsplit("::", 1)[1] for i in ids] == [
        "initial_loss", "overfit", "batch_independence", "baseline", "parameters_update",
        "training"]


def test_a_model_that_mixes_the_batch_fails_there_and_the_json_names_the_problem(project):
    result = project.runpytest("--nncheck", "-k", "batch_independence", "--nncheck-report",
                               "r.json")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*nncheck::models.MixesTheBatch::batch_independence*"])
    records = {r["layer"]: r for r in json.loads((project.path / "r.json").read_text())["checks"]}
    assert records["models.MixesTheBatch"]["outcome"] == "failed"
    assert records["models.MixesTheBatch"]["problems"]
    assert records["models.Classifier"]["outcome"] == "passed"


def test_models_from_the_conftest_hook_are_checked_too(project):
    project.makeini("[pytest]\n")
    project.makeconftest("""
import pytest_nncheck
from torch import nn
import models

def pytest_nncheck_models(config):
    return [pytest_nncheck.ModelSpec(factory=models.Classifier, batch=models.batch,
                                     loss_fn=nn.CrossEntropyLoss(), options=models.FAST,
                                     name="hooked")]
""")
    result = project.runpytest("--nncheck", "-k", "initial_loss or parameters_update")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*2 model checks (2 passed, 0 failed)*"])

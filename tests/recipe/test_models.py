import importlib.util
import random
from pathlib import Path

import pytest
import torch
from torch import nn

import pytest_nncheck
from pytest_nncheck import NNCheckError, ModelSpec
from pytest_nncheck.recipe.models import MODEL_CHECKS, declared_model
from tests.recipe import zoo

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "digits"


@pytest_nncheck.model(batch=zoo.sequences, loss_fn=zoo.per_position, sequence=True,
                      options={"initial_loss": {"expected": 1.3862943611198906}})
class Declared(zoo.MaskedAttention):
    def __init__(self) -> None:
        super().__init__(zoo.future)


class Undeclared(Declared):
    """Inherits the decorated class but declares nothing itself."""


def test_the_decorator_declares_a_spec_on_the_class_itself():
    spec = declared_model(Declared)
    assert isinstance(spec, ModelSpec) and spec.factory is Declared and spec.sequence
    assert spec.name == f"{__name__}.Declared"
    assert declared_model(Undeclared) is None
    assert declared_model(nn.Linear) is None


def test_model_checks_apply_by_spec():
    assert list(MODEL_CHECKS) == ["initial_loss", "overfit", "batch_independence", "causality",
                                  "baseline", "parameters_update", "training"]
    sequence = declared_model(Declared)
    plain = ModelSpec(factory=zoo.mlp, batch=zoo.tabular, loss_fn=nn.CrossEntropyLoss())
    assert [n for n, c in MODEL_CHECKS.items() if c.applies(sequence)] == list(MODEL_CHECKS)
    assert [n for n, c in MODEL_CHECKS.items() if not c.applies(plain)] == ["causality"]


@pytest.mark.parametrize("check", list(MODEL_CHECKS))
def test_every_check_runs_on_a_declared_model(check):
    spec = declared_model(Declared)
    state = (torch.get_rng_state(), random.getstate())
    report = MODEL_CHECKS[check].run(spec, 0, "cpu")
    assert report.passed, report.render()
    assert str(report) == report.render() and report.to_dict()["passed"] is True
    assert torch.equal(state[0], torch.get_rng_state()) and state[1] == random.getstate()


def test_options_reach_the_check():
    spec = ModelSpec(factory=zoo.mlp, batch=zoo.tabular, loss_fn=nn.CrossEntropyLoss(),
                     options={"baseline": {"seeds": 1, "steps": 7}})
    report = MODEL_CHECKS["baseline"].run(spec, 0, "cpu")
    assert report.figures["runs"] == 1 and report.figures["steps"] == 7


def test_the_declared_optimizer_is_the_one_checked():
    spec = ModelSpec(factory=zoo.Backbone, batch=zoo.tabular, loss_fn=nn.CrossEntropyLoss(),
                     optimizer=lambda model: torch.optim.Adam(model.head.parameters()))
    report = MODEL_CHECKS["parameters_update"].run(spec, 0, "cpu")
    assert {p.code for p in report.problems} == {"parameter-not-in-optimizer"}
    assert not MODEL_CHECKS["overfit"].run(spec, 0, "cpu").passed


@pytest.mark.parametrize("fields, message", [
    ({"factory": zoo.mlp, "batch": None, "loss_fn": nn.MSELoss()}, "declare batch=.*loss_fn="),
    ({"factory": 3, "batch": zoo.tabular, "loss_fn": nn.MSELoss()}, "factory must build the model"),
    ({"factory": zoo.mlp, "batch": zoo.tabular, "loss_fn": nn.MSELoss(), "options": {"overfits": {}}},
     r"unknown checks \['overfits'\]"),
])
def test_bad_declarations_are_one_line(fields, message):
    with pytest.raises(NNCheckError, match=message):
        ModelSpec(**fields)


def test_a_batch_that_is_not_a_pair_is_one_line():
    spec = ModelSpec(factory=zoo.mlp, batch=lambda: zoo.tabular()[0], loss_fn=nn.CrossEntropyLoss())
    with pytest.raises(NNCheckError, match=r"batch must be \(inputs, targets\)"):
        MODEL_CHECKS["initial_loss"].run(spec, 0, "cpu")


def test_the_digits_example_declares_its_model_and_it_passes_every_check(monkeypatch):
    pytest.importorskip("sklearn")
    monkeypatch.syspath_prepend(str(EXAMPLE))
    location = importlib.util.spec_from_file_location("digits_conftest", EXAMPLE / "conftest.py")
    conftest = importlib.util.module_from_spec(location)
    location.loader.exec_module(conftest)
    [spec] = conftest.pytest_nncheck_models(config=None)
    assert spec.name == "digits.layers.DigitsNet" and not spec.sequence
    for name, check in MODEL_CHECKS.items():
        if check.applies(spec):
            report = check.run(spec, 0, "cpu")
            assert report.passed, f"{name}: {report.render()}"

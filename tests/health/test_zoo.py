"""Every healthy run of the zoo passes; every sick run is caught with its own code."""
import pytest

from pytest_nncheck import check_training
from tests.health.zoo import HEALTHY, SICK
from tests.state import assert_unchanged, snapshot


def _train(run):
    model, x, y, loss_fn, optimizer, validation = run.build()
    before = snapshot([model, x, y])
    report = check_training(model, x, y, loss_fn, optimizer=optimizer, validation=validation,
                            device="cpu")
    assert_unchanged(before, snapshot([model, x, y]))
    return report


@pytest.mark.parametrize("run", HEALTHY, ids=[r.name for r in HEALTHY])
def test_healthy_run_raises_no_problem(run):
    report = _train(run)
    assert report.passed, report.render()
    assert report.steps == 60 and len(report.losses) == 60


@pytest.mark.parametrize("run", SICK, ids=[r.name for r in SICK])
def test_sick_run_is_caught_with_its_code(run):
    report = _train(run)
    assert run.expected in {p.code for p in report.problems}, report.render()


def test_zoo_covers_every_code():
    codes = {"vanishing-gradient", "exploding-gradient", "dead-relu", "saturated-activation",
             "update-ratio-low", "update-ratio-high", "loss-diverged", "loss-not-decreasing",
             "loss-oscillating", "nan", "parameter-not-updated", "overfitting"}
    assert {run.expected for run in SICK} == codes
    assert len(HEALTHY) >= 10 and len(SICK) >= 10

"""Every bug in the zoo is caught by its check; no correct look-alike fails any check."""
import pytest

from pytest_nncheck.recipe.models import MODEL_CHECKS
from tests.recipe.zoo import all_cases

CASES = all_cases()
BUGGY = [case for case in CASES if case.bug is not None]
CORRECT = [(case, check) for case in CASES if case.bug is None
           for check, entry in MODEL_CHECKS.items() if entry.applies(case.spec)]


def test_the_zoo_is_large_enough():
    assert len(BUGGY) >= 12 and len(CASES) - len(BUGGY) >= 12
    assert {case.bug for case in BUGGY} == set(MODEL_CHECKS)


@pytest.mark.parametrize("case", BUGGY, ids=[case.name for case in BUGGY])
def test_every_bug_is_caught_by_its_check(case):
    report = MODEL_CHECKS[case.bug].run(case.spec, 0, "cpu")
    assert not report.passed, f"{case.name} ({case.description}) passed {case.bug}"


@pytest.mark.parametrize("case, check", CORRECT, ids=[f"{case.name}-{check}" for case, check in CORRECT])
def test_no_correct_model_fails(case, check):
    report = MODEL_CHECKS[check].run(case.spec, 0, "cpu")
    assert report.passed, f"{case.name} ({case.description}): {report.render()}"

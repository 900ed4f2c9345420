import pytest
import torch
from torch import nn

from pytest_nncheck import (NNCheckError, assert_input_independent_baseline,
                            check_input_independent_baseline)
from tests.recipe import zoo
from tests.state import assert_unchanged, snapshot


def test_a_model_that_uses_its_input_passes_with_the_figures():
    x, y = zoo.tabular()
    report = assert_input_independent_baseline(zoo.mlp(), x, y, nn.CrossEntropyLoss())
    assert report.passed and report.figures["ratio"] < 0.2
    assert report.figures["runs_asked"] == 3 and report.figures["steps"] == 50
    assert report.figures["runs"] == 2 and "the median was decided" in report.notes[0]
    assert "must be below 0.9" in report.summary
    runs = report.notes[0].split(": ")[1].split(";")[0].split(", ")
    assert len(set(runs)) == 2  # the second run starts from fresh weights


def test_runs_go_on_until_the_median_is_decided():
    x, y = zoo.tabular()
    report = check_input_independent_baseline(zoo.mlp(), x, y, nn.CrossEntropyLoss(), seeds=4)
    assert report.figures["runs"] == 3 and report.passed


def test_a_model_that_ignores_its_input_fails():
    x, y = zoo.tabular()
    report = check_input_independent_baseline(zoo.InputDroppedEntirely(), x, y, nn.CrossEntropyLoss())
    assert not report.passed and report.problems[0].code == "input-ignored"
    assert report.problems[0].value == pytest.approx(1.0, abs=0.02)
    with pytest.raises(AssertionError, match="does about as well without its input"):
        assert_input_independent_baseline(zoo.UnfilledFeatureMask(), x, y, nn.CrossEntropyLoss())


def test_token_inputs_are_zeroed_to_token_0():
    x, y = zoo.tokens()
    ignoring = check_input_independent_baseline(zoo.TokenTransformer(use_tokens=False), x, y,
                                                zoo.per_position, seeds=1, steps=20)
    assert not ignoring.passed
    assert check_input_independent_baseline(zoo.TokenGRU(), x, y, zoo.per_position, seeds=1,
                                            steps=20).passed


def test_the_users_optimizer_is_the_one_that_trains():
    x, y = zoo.tabular()
    model = zoo.mlp()
    still = torch.optim.SGD(model.parameters(), lr=0.0)
    report = check_input_independent_baseline(model, x, y, nn.CrossEntropyLoss(), optimizer=still,
                                              seeds=1)
    assert not report.passed and report.figures["ratio"] > 0.9
    partial = torch.optim.Adam(model[4].parameters(), lr=1e-2)
    report = check_input_independent_baseline(model, x, y, nn.CrossEntropyLoss(), optimizer=partial,
                                              seeds=1)
    assert "parameter-not-in-optimizer" in [p.code for p in report.problems]


def test_targets_that_need_no_input_are_one_line():
    x, _ = zoo.tabular()
    with pytest.raises(NNCheckError, match="the targets need no input"):
        check_input_independent_baseline(zoo.mlp(), x, torch.zeros(16, dtype=torch.long),
                                         nn.CrossEntropyLoss(), seeds=1)
    with pytest.raises(NNCheckError, match="steps=0"):
        check_input_independent_baseline(zoo.mlp(), x, torch.zeros(16, dtype=torch.long),
                                         nn.CrossEntropyLoss(), steps=0)


def test_callers_model_and_state_are_unchanged():
    x, y = zoo.tabular()
    model = zoo.mlp(nn.BatchNorm1d, dropout=0.2).train()
    optimizer = torch.optim.Adam(model.parameters())
    before = snapshot([model, x, y])
    check_input_independent_baseline(model, x, y, nn.CrossEntropyLoss(), optimizer=optimizer, seeds=2)
    assert_unchanged(before, snapshot([model, x, y]))
    assert optimizer.state_dict()["state"] == {}

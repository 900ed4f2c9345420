import warnings

import pytest
import torch
from torch import nn

from pytest_nncheck import NNCheckError, TrainingHealthError, TrainingHealthWarning, watch
from tests.health.zoo import Detached, LogOfRelu, first_bias, mlp, teacher_data
from tests.state import assert_unchanged, snapshot


def _loop(model, optimizer, x, y, steps, watcher=None):
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(steps):
        if optimizer is not None:
            optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        if optimizer is not None:
            optimizer.step()
        if watcher is not None:
            watcher.record(loss)


def _dead_relu_model():
    torch.manual_seed(0)
    return first_bias(mlp(), -20.0)


def test_watching_changes_nothing_in_the_training():
    x, y = teacher_data()
    results = []
    for watched in (False, True):
        torch.manual_seed(0)
        model = mlp(batchnorm=True)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        if watched:
            with watch(model, optimizer, every=3) as watcher:
                _loop(model, optimizer, x, y, 10, watcher)
        else:
            _loop(model, optimizer, x, y, 10)
        results.append(snapshot([model]))
    assert_unchanged(*results)
    assert watcher.report.parameters["0.weight"].steps == [0, 3, 6, 9]


def test_each_problem_is_warned_once_as_it_appears():
    model = _dead_relu_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = teacher_data()
    with pytest.warns(TrainingHealthWarning) as caught:
        with watch(model, optimizer, every=2) as watcher:
            _loop(model, optimizer, x, y, 20, watcher)
    dead = [str(w.message) for w in caught if "dead-relu" in str(w.message)]
    assert dead == [dead[0]] and "dead-relu (1 at step 4)" in dead[0]
    assert watcher.report.steps == 20 and len(watcher.report.losses) == 20
    assert not watcher.report.passed


def test_raise_stops_the_loop_at_the_step():
    model = _dead_relu_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = teacher_data()
    with pytest.raises(TrainingHealthError, match="dead-relu") as error:
        with watch(model, optimizer, every=2, on_problem="raise") as watcher:
            _loop(model, optimizer, x, y, 20, watcher)
    assert error.value.problem.step == 4 and error.value.report is watcher.report
    assert not model._forward_pre_hooks and not model._forward_hooks
    assert not optimizer._optimizer_step_pre_hooks and not optimizer._optimizer_step_post_hooks


def test_hooks_exist_only_on_sampled_forwards():
    torch.manual_seed(0)
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = teacher_data()
    seen = []
    probe = model[1].register_forward_hook(lambda m, a, o: seen.append(len(m._forward_hooks)))
    with watch(model, optimizer, every=3):
        _loop(model, optimizer, x, y, 4)
    probe.remove()
    assert seen == [2, 1, 1, 2]   # our name-tracking hook is there on steps 0 and 3 only
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def test_without_an_optimizer_steps_are_forwards_and_gradients_are_captured():
    torch.manual_seed(0)
    model = Detached()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = teacher_data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrainingHealthWarning)
        with watch(model, every=2) as watcher:
            _loop(model, optimizer, x, y, 8, watcher)
    report = watcher.report
    assert report.steps == 8 and report.parameters["head.weight"].steps == [0, 2, 4, 6]
    assert report.parameters["encoder.weight"].grad_norm == [None] * 4
    assert [p.code for p in report.problems] == ["parameter-not-updated"]
    assert report.problems[0].where == "encoder"


def test_nan_loss_is_located_on_the_next_forward():
    torch.manual_seed(0)
    model = LogOfRelu()
    x, y = teacher_data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrainingHealthWarning)
        with watch(model, every=5) as watcher:
            _loop(model, None, x, y, 3, watcher)
    assert [(p.code, p.where, p.step) for p in watcher.report.problems] == [("nan", "model", 1)]
    assert "before head" in watcher.report.problems[0].message


def test_bad_arguments_get_one_clear_line():
    model = mlp()
    with pytest.raises(NNCheckError, match="every=0"):
        watch(model, every=0)
    with pytest.raises(NNCheckError, match="on_problem='stop'"):
        watch(model, on_problem="stop")
    with pytest.raises(NNCheckError, match="optimizer must be"):
        watch(model, optimizer=lambda p: None)
    with pytest.raises(NNCheckError, match="nn.Module"):
        watch(lambda x: x)

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pytest_nncheck import NNCheckError, assert_overfit, check_overfit
from tests.sanity.conftest import Detached, cnn, mlp
from tests.state import assert_unchanged, snapshot


@pytest.mark.parametrize("factory", [mlp, cnn], ids=["mlp", "cnn"])
def test_small_models_memorise_twenty_digits(digits20, factory):
    x, y = digits20
    report = assert_overfit(factory(), x, y, nn.CrossEntropyLoss(), device="cpu")
    assert report.passed and report.accuracy == 1.0
    assert report.final_loss <= report.target_loss
    assert report.steps < 300 and len(report.losses) == report.steps
    assert report.device == "cpu"
    assert "▁" in report.render()


def test_detached_layer_fails_and_is_named(digits20):
    x, y = digits20
    report = check_overfit(Detached(), x, y, nn.CrossEntropyLoss(), device="cpu", steps=150)
    assert not report.passed
    assert "encoder.weight, encoder.bias" in report.render()


def test_targets_shuffled_every_step_fail(digits20):
    x, y = digits20

    def misaligned(outputs, targets):
        return F.cross_entropy(outputs, targets[torch.randperm(len(targets))])

    report = check_overfit(mlp(), x, y, misaligned, device="cpu", steps=150)
    assert not report.passed and "targets not aligned" in report.render()


def test_diverging_learning_rate_is_stopped_and_named(digits20):
    x, y = digits20
    report = check_overfit(mlp(), x, y, nn.CrossEntropyLoss(), device="cpu",
                           optimizer=lambda p: torch.optim.SGD(p, lr=1e3))
    assert not report.passed and report.steps < 5
    assert "diverged" in report.problems[0] and "at step" in report.problems[0]


def test_nan_loss_is_reported_with_its_step(digits20):
    x, _ = digits20
    torch.manual_seed(0)
    regression = nn.Linear(64, 1)
    targets = torch.randn(20, 1) * 10
    report = check_overfit(regression, x, targets, nn.MSELoss(), device="cpu",
                           optimizer=lambda p: torch.optim.SGD(p, lr=1e30))
    assert not report.passed
    assert report.problems[0].startswith(("loss became inf at step 1", "loss became nan at step 1"))


def test_label_smoothing_floor_is_the_target(digits20):
    x, y = digits20
    report = check_overfit(mlp(), x, y, nn.CrossEntropyLoss(label_smoothing=0.1), device="cpu")
    assert report.passed and report.final_loss > 0.4  # the smoothed entropy floor is ~0.5


def test_explicit_target_and_optimizer_factory(digits20):
    x, y = digits20
    report = check_overfit(mlp(), x, y, nn.CrossEntropyLoss(), device="cpu", target_loss=0.5,
                           optimizer=lambda p: torch.optim.SGD(p, lr=0.5, momentum=0.9))
    assert report.passed and report.target_loss == 0.5


def test_bad_arguments_get_clear_errors(digits20):
    x, y = digits20
    model = mlp()
    with pytest.raises(NNCheckError, match="an optimizer or a factory"):
        check_overfit(model, x, y, nn.CrossEntropyLoss(), optimizer="adam")
    with pytest.raises(NNCheckError, match="steps=0"):
        check_overfit(model, x, y, nn.CrossEntropyLoss(), steps=0)
    with pytest.raises(NNCheckError, match="not one of"):
        check_overfit(model, x, y, nn.CrossEntropyLoss(), device="tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without CUDA")
def test_cuda_demanded_without_cuda_is_a_clear_error(digits20):
    x, y = digits20
    with pytest.raises(NNCheckError, match="CUDA is not available.*device='auto'"):
        check_overfit(mlp(), x, y, nn.CrossEntropyLoss(), device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_auto_uses_cuda_when_present(digits20):
    x, y = digits20
    model = cnn()
    report = assert_overfit(model, x, y, nn.CrossEntropyLoss(), device="auto")
    assert report.device.startswith("cuda")
    assert next(model.parameters()).device.type == "cpu"


def test_auto_falls_back_to_cpu_without_cuda(digits20, monkeypatch):
    x, y = digits20
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert check_overfit(mlp(), x, y, nn.CrossEntropyLoss(), device="auto").device == "cpu"


def test_callers_model_rng_and_settings_are_unchanged(digits20):
    x, y = digits20
    model = cnn().train()
    before = snapshot([model, x, y])
    cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    check_overfit(model, x, y, nn.CrossEntropyLoss(), device="cpu", steps=20)
    assert_unchanged(before, snapshot([model, x, y]))
    assert (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark) == cudnn


def test_same_seed_same_curve(digits20):
    x, y = digits20
    first = check_overfit(mlp(), x, y, nn.CrossEntropyLoss(), device="cpu", seed=3, steps=10)
    second = check_overfit(mlp(), x, y, nn.CrossEntropyLoss(), device="cpu", seed=3, steps=10)
    assert first.losses == second.losses


def test_memorised_with_the_loss_still_falling_passes_and_says_so(digits20):
    x, y = digits20
    report = check_overfit(mlp(), x, y, nn.CrossEntropyLoss(), device="cpu", steps=100,
                           optimizer=lambda p: torch.optim.SGD(p, lr=0.1))
    assert report.passed, report.render()
    assert report.accuracy == 1.0 and report.final_loss > report.target_loss
    assert "100% training accuracy with the loss still falling" in report.outcome
    assert report.outcome in report.render()


def test_training_is_extended_while_the_loss_still_falls():
    torch.manual_seed(0)
    x = torch.randn(20, 8)
    y = x @ torch.randn(8, 2)
    report = check_overfit(nn.Linear(8, 2), x, y, nn.MSELoss(), device="cpu", steps=30)
    assert report.passed, report.render()
    assert report.extended_from == 30 and report.steps > 30
    assert report.outcome.startswith("extended from 30 to") and "reached its target" in report.outcome
    capped = check_overfit(nn.Linear(8, 2), x, y, nn.MSELoss(), device="cpu", steps=30, max_steps=30)
    assert not capped.passed and capped.steps == 30
    assert "more steps to reach the target" in capped.outcome


def test_a_plateau_is_not_extended(digits20):
    x, y = digits20
    report = check_overfit(Detached(), x, y, nn.CrossEntropyLoss(), device="cpu", steps=100)
    assert not report.passed and report.extended_from is None and report.steps == 100
    assert "the loss stopped falling" in report.outcome


def test_softmax_before_cross_entropy_plateau_is_named(digits20):
    x, y = digits20
    model = nn.Sequential(mlp(), nn.Softmax(dim=1))
    report = check_overfit(model, x, y, nn.CrossEntropyLoss(), device="cpu")
    assert not report.passed and report.accuracy == 1.0
    plateau = math.log(math.e + 9) - 1
    assert report.final_loss == pytest.approx(plateau, rel=0.05)
    assert "softmax before CrossEntropyLoss" in report.render() and f"{plateau:.4g}" in report.render()


class TrainsItself(nn.Module):
    """A model class with its own training loop named ``train``, as some tutorials write it."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
        self.loops_run = 0

    def forward(self, x):
        return self.net(x)

    def train(self, x, y):
        self.loops_run += 1


def test_a_train_method_with_another_signature_is_not_called(digits20):
    x, y = digits20
    model = TrainsItself()
    report = check_overfit(model, x, y, nn.CrossEntropyLoss(), device="cpu")
    assert report.passed, report.render()
    assert model.loops_run == 0


def test_the_users_optimizer_instance_is_rebuilt_on_the_copy(digits20):
    x, y = digits20
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e3)
    before = snapshot([model])
    report = check_overfit(model, x, y, nn.CrossEntropyLoss(), device="cpu", optimizer=optimizer)
    assert not report.passed and "diverged" in report.problems[0]  # its own lr, not Adam's
    assert_unchanged(before, snapshot([model]))
    assert optimizer.state_dict()["state"] == {}
    good = torch.optim.Adam(model.parameters(), lr=1e-2)
    assert check_overfit(model, x, y, nn.CrossEntropyLoss(), device="cpu", optimizer=good).passed


def test_an_optimizer_over_part_of_the_model_fails(digits20):
    x, y = digits20
    model = mlp()
    partial = torch.optim.Adam(model[3].parameters(), lr=1e-2)
    report = check_overfit(model, x, y, nn.CrossEntropyLoss(), device="cpu", optimizer=partial)
    assert not report.passed
    assert "does not train 2 of the model's 4 trainable parameters (0.weight, 0.bias)" in report.render()
    weights_only = check_overfit(model, x, y, nn.CrossEntropyLoss(), device="cpu",
                                 optimizer=lambda ps: torch.optim.Adam([p for p in ps if p.dim() > 1]))
    assert not weights_only.passed and "0.bias, 3.bias" in weights_only.render()


def test_an_optimizer_built_for_another_instance_fails(digits20):
    x, y = digits20
    model = mlp()
    stale = torch.optim.Adam(mlp().parameters(), lr=1e-2)
    report = check_overfit(model, x, y, nn.CrossEntropyLoss(), device="cpu", optimizer=stale,
                           steps=20)
    assert not report.passed and "none of them is this model's" in report.render()
    assert report.losses[0] == report.losses[-1]


def test_mse_on_an_n_by_1_output_and_n_targets_is_named():
    torch.manual_seed(0)
    x = torch.randn(16, 4)
    y = x.sum(dim=1)
    report = check_overfit(nn.Linear(4, 1), x, y, nn.MSELoss(), device="cpu")
    assert not report.passed and report.steps == 1
    assert "(16, 1)" in report.render() and "(16,)" in report.render()
    assert "broadcast to (16, 16)" in report.render()
    assert check_overfit(nn.Linear(4, 1), x, y[:, None], nn.MSELoss(), device="cpu").passed


@pytest.mark.parametrize("loss_fn, targets, message", [
    (nn.BCEWithLogitsLoss(), lambda y: (y > 4).float(),
     r"outputs of shape \(20, 1\) and targets of shape \(20,\).*squeeze the outputs"),
    (nn.MSELoss(), lambda y: F.one_hot(y % 8).float(),
     r"one-hot of width 8 \(20, 8\).*10 classes.*num_classes=10"),
    (nn.CrossEntropyLoss(), lambda y: y[:, None], r"class indices of shape \(20, 1\).*squeeze\(1\)"),
])
def test_shapes_the_loss_rejects_get_one_line_naming_them(digits20, loss_fn, targets, message):
    x, y = digits20
    torch.manual_seed(0)
    outputs = 1 if isinstance(loss_fn, nn.BCEWithLogitsLoss) else 10
    model = nn.Linear(64, outputs)
    with pytest.raises(NNCheckError, match=message):
        check_overfit(model, x, targets(y), loss_fn, device="cpu")


def test_empty_batches_and_unlabelled_targets_are_one_line(digits20):
    x, y = digits20
    with pytest.raises(NNCheckError, match=r"the batch is empty: input\[0\] has shape \(0, 64\)"):
        check_overfit(mlp(), x[:0], y[:0], nn.CrossEntropyLoss(), device="cpu")
    with pytest.raises(NNCheckError, match="every target is ignore_index"):
        check_overfit(mlp(), x, torch.full_like(y, -100), nn.CrossEntropyLoss(), device="cpu")
    with pytest.raises(NNCheckError, match=r"pass CrossEntropyLoss\(\)"):
        check_overfit(mlp(), x, y, nn.CrossEntropyLoss, device="cpu")
    with pytest.raises(NNCheckError, match=r"model is the class Linear"):
        check_overfit(nn.Linear, x, y, nn.CrossEntropyLoss(), device="cpu")


def test_a_nan_before_any_update_does_not_blame_the_learning_rate(digits20):
    x, y = digits20
    poisoned = x.clone()
    poisoned[3, 5] = math.nan
    report = check_overfit(mlp(), poisoned, y, nn.CrossEntropyLoss(), device="cpu")
    assert not report.passed and report.steps == 1
    assert "the learning rate is not the cause" in report.problems[0]
    assert "lower the lr" not in report.render()

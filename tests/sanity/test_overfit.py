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
    with pytest.raises(NNCheckError, match="pass a factory"):
        check_overfit(model, x, y, nn.CrossEntropyLoss(),
                      optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
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

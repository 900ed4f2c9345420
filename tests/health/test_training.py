import json

import pytest
import torch
from torch import nn

from pytest_nncheck import (NNCheckError, TrainingReport, assert_training, check_training)
from tests.health.zoo import LogOfRelu, _vectors, handwritten_cross_entropy, mlp, scaled, teacher_data


def _mlp_run(**options):
    torch.manual_seed(0)
    model, x, y, loss_fn, _, _ = _vectors(mlp(), None)
    return model, check_training(model, x, y, loss_fn, device="cpu", steps=12, **options)


def test_report_holds_per_layer_series_and_renders():
    _, report = _mlp_run()
    assert isinstance(report, TrainingReport) and report.passed
    weight = report.parameters["0.weight"]
    assert weight.steps == list(range(12)) and len(weight.grad_norm) == 12
    assert all(r is not None and 1e-4 < r < 1 for r in weight.update_ratio)
    assert sorted(weight.gradient_histograms) == [0, 11]
    assert [s.kind for s in report.activations.values()] == ["relu", "relu"]
    assert report.layer_order[:2] == ["model", "0"]
    text = report.render()
    assert text.startswith("training health PASSED: 12 steps on cpu") and "▁" in text
    assert str(report) == text
    plain = json.loads(json.dumps(report.to_dict()))
    assert plain["passed"] is True and plain["parameters"][0]["name"] == "0.weight"


def test_optimizer_instance_is_rebuilt_on_the_copy():
    torch.manual_seed(0)
    model, x, y, loss_fn, _, _ = _vectors(mlp(), None)
    optimizer = torch.optim.SGD([{"params": model[0].parameters(), "lr": 0.0},
                                 {"params": list(model[2].parameters()) + list(model[4].parameters())}],
                                lr=0.05, momentum=0.9)
    report = check_training(model, x, y, loss_fn, optimizer=optimizer, device="cpu", steps=6)
    assert report.parameters["0.weight"].update_ratio == [0.0] * 6   # its group has lr 0
    assert all(r > 0 for r in report.parameters["2.weight"].update_ratio)
    assert optimizer.state == {} and model[0].weight.grad is None


def test_functional_nonlinearities_are_named_after_their_module():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = nn.Linear(16, 16)

        def forward(self, x):
            return torch.tanh(self.inner(x)).relu() + torch.relu(x)

    torch.manual_seed(0)
    model = nn.Sequential(Block(), nn.Linear(16, 4))
    x, y = teacher_data()
    report = check_training(model, x, y, nn.CrossEntropyLoss(), device="cpu", steps=3)
    assert {n: s.kind for n, s in report.activations.items()} == {
        "0:tanh": "tanh", "0:relu": "relu", "0:relu#2": "relu"}


@pytest.mark.parametrize("model_loss, where, words", [
    (lambda: (scaled(mlp(), weight_scale=30.0), handwritten_cross_entropy), "loss_fn", "log"),
    (lambda: (LogOfRelu(), nn.CrossEntropyLoss()), "model", "before head"),
])
def test_nan_is_located(model_loss, where, words):
    torch.manual_seed(0)
    model, loss_fn = model_loss()
    x, y = teacher_data()
    report = check_training(model, x, y, loss_fn, device="cpu", steps=5)
    nan = [p for p in report.problems if p.code == "nan"]
    assert nan and nan[0].where == where and words in nan[0].message and nan[0].step == 0


def test_assert_training_raises_the_rendered_report():
    torch.manual_seed(0)
    model, x, y, loss_fn, _, _ = _vectors(mlp(), None)
    with pytest.raises(AssertionError, match="update-ratio-low"):
        assert_training(model, x, y, loss_fn, device="cpu", steps=12,
                        optimizer=lambda p: torch.optim.Adam(p, lr=1e-8))


def test_bad_arguments_get_one_clear_line():
    torch.manual_seed(0)
    model, x, y, loss_fn, _, _ = _vectors(mlp(), None)
    with pytest.raises(NNCheckError, match="steps=0"):
        check_training(model, x, y, loss_fn, steps=0)
    with pytest.raises(NNCheckError, match="pair"):
        check_training(model, x, y, loss_fn, validation=x)
    stranger = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)
    with pytest.raises(NNCheckError, match="not this model's parameters"):
        check_training(model, x, y, loss_fn, optimizer=stranger)
    with pytest.raises(NNCheckError, match="not one of"):
        check_training(model, x, y, loss_fn, device="tpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda():
    model, report = _mlp_run(device="cuda")
    assert report.device.startswith("cuda") and report.passed
    assert next(model.parameters()).device.type == "cpu"

import copy
import math

import pytest
import torch
from torch import nn

from pytest_nncheck import NNCheckError, assert_initial_loss, check_initial_loss
from pytest_nncheck.gradients.seeded import seeded
from tests.sanity.conftest import cnn, mlp
from tests.state import assert_unchanged, snapshot


def test_correct_model_starts_at_ln_c(digits20):
    x, y = digits20
    report = check_initial_loss(mlp(), x, y, nn.CrossEntropyLoss())
    assert report.passed, report.render()
    assert report.expected == pytest.approx(math.log(10))
    assert abs(report.observed - math.log(10)) < 0.1
    assert str(report) == report.render() and report.render().startswith("initial loss PASSED")


def test_last_layer_scaled_up_is_over_confident(digits20):
    x, y = digits20
    model = mlp()
    with torch.no_grad():
        model[3].weight.mul_(100)
    report = check_initial_loss(model, x, y, nn.CrossEntropyLoss())
    assert not report.passed
    assert "over-confident at init" in report.render()
    assert report.output_scale > 5
    with pytest.raises(AssertionError, match="over-confident"):
        assert_initial_loss(model, x, y, nn.CrossEntropyLoss())


def test_nll_loss_on_raw_logits_is_caught(digits20):
    x, y = digits20
    report = check_initial_loss(mlp(), x, y, nn.NLLLoss())
    assert not report.passed
    assert any("expects log-probabilities" in p for p in report.problems)
    model = nn.Sequential(mlp(), nn.LogSoftmax(dim=1))
    assert check_initial_loss(model, x, y, nn.NLLLoss()).passed


def test_targets_leaking_into_inputs_read_as_far_below(digits20):
    x, y = digits20
    torch.manual_seed(0)
    leaky = nn.Linear(74, 10)
    with torch.no_grad():
        leaky.weight.zero_()
        leaky.weight[:, 64:] = torch.eye(10) * 8
    inputs = torch.cat([x, nn.functional.one_hot(y, 10).float()], dim=1)
    report = check_initial_loss(leaky, inputs, y, nn.CrossEntropyLoss())
    assert any("far below" in p for p in report.problems)


def test_cnn_and_binary_losses(digits20):
    x, y = digits20
    assert check_initial_loss(cnn(), x, y, nn.CrossEntropyLoss()).passed
    torch.manual_seed(0)
    multi = nn.Sequential(nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, 3))
    labels = (torch.rand(20, 3) > 0.5).float()
    report = check_initial_loss(multi, x, labels, nn.BCEWithLogitsLoss())
    assert report.passed and report.expected == pytest.approx(math.log(2))


def test_prior_expectation(digits20):
    x, y = digits20
    model = mlp()
    y_skewed = torch.where(y < 5, torch.zeros_like(y), y)
    counts = torch.bincount(y_skewed, minlength=10).double()
    prior = counts / counts.sum()
    with torch.no_grad():
        model[3].weight.mul_(0.01)
        model[3].bias.copy_(torch.log(prior.clamp(min=1e-6)).float())
    report = check_initial_loss(model, x, y_skewed, nn.CrossEntropyLoss(), expected="prior")
    entropy = float(-(prior[prior > 0] * prior[prior > 0].log()).sum())
    assert report.expected == pytest.approx(entropy)
    assert report.passed, report.render()


def test_regularization_must_raise_the_loss(digits20):
    x, y = digits20
    report = check_initial_loss(mlp(), x, y, nn.CrossEntropyLoss(), regularization=1e-2)
    assert report.passed and report.with_regularization > report.observed
    assert "regularization is left out" in report.render()
    custom = check_initial_loss(mlp(), x, y, nn.CrossEntropyLoss(),
                                regularization=lambda m: sum((p ** 2).sum() for p in m.parameters()))
    assert custom.with_regularization > custom.observed
    zero = check_initial_loss(mlp(), x, y, nn.CrossEntropyLoss(), regularization=0.0)
    assert not zero.passed and "did not raise the loss" in zero.render()


def test_unknown_loss_asks_for_expected(digits20):
    x, y = digits20
    with pytest.raises(NNCheckError, match="pass expected="):
        check_initial_loss(mlp(), x, y, lambda out, t: (out.softmax(1) - 0.1).abs().sum())
    report = check_initial_loss(mlp(), x, y, lambda out, t: out.abs().mean(), expected=0.0, rtol=1)
    assert report.expected == 0.0


def test_reduction_none_is_refused(digits20):
    x, y = digits20
    with pytest.raises(NNCheckError, match="scalar"):
        check_initial_loss(mlp(), x, y, nn.CrossEntropyLoss(reduction="none"))


@pytest.mark.parametrize("train", [True, False])
def test_callers_model_and_state_are_unchanged(digits20, train):
    x, y = digits20
    model = cnn().train(train)
    before = snapshot([model, x, y])
    check_initial_loss(model, x, y, nn.CrossEntropyLoss(), regularization=1e-3)
    assert_unchanged(before, snapshot([model, x, y]))


def test_regression_accepts_zero_output_and_a_bias_at_the_target_mean():
    torch.manual_seed(0)
    x, y = torch.randn(32, 4), torch.randn(32, 2) * 0.5 + 3.0
    head = nn.Linear(4, 2)
    with torch.no_grad():
        head.weight.mul_(0.01)
        head.bias.zero_()
    zero = check_initial_loss(head, x, y, nn.MSELoss())
    assert zero.passed and zero.expected == pytest.approx(float((y.double() ** 2).mean()))
    with torch.no_grad():
        head.bias.copy_(y.mean(0))
    centred = check_initial_loss(head, x, y, nn.MSELoss())
    assert centred.passed, centred.render()
    assert centred.expected == pytest.approx(float(y.double().var(0, unbiased=False).mean()))
    assert "target mean" in centred.render()


def _head(model: nn.Module) -> nn.Linear:
    return model[3]


def test_constant_output_is_not_called_over_confident(digits20):
    x, y = digits20
    model = mlp()
    with torch.no_grad():
        model[0].bias.fill_(-100.0)  # every hidden ReLU dead: the output is the last bias alone
        _head(model).bias.copy_(torch.linspace(-3, 3, 10))
    report = check_initial_loss(model, x, y, nn.CrossEntropyLoss())
    assert not report.passed and report.cause == "constant"
    assert "the same for every example" in report.render()
    assert "over-confident" not in report.render()


def test_offset_is_told_apart_from_scale(digits20):
    x, y = digits20
    model = mlp()
    with torch.no_grad():
        _head(model).bias.copy_(torch.linspace(-4, 4, 10))
    report = check_initial_loss(model, x, y, nn.CrossEntropyLoss())
    assert not report.passed and report.cause == "offset"
    assert "bias to 0" in report.render() and "over-confident" not in report.render()


def test_scale_quotes_losses_measured_on_the_parts_of_the_output(digits20):
    x, y = digits20
    model = mlp()
    with torch.no_grad():
        _head(model).weight.mul_(100)
    report = check_initial_loss(model, x, y, nn.CrossEntropyLoss())
    assert report.cause == "scale"
    outputs = check_outputs(model, x)
    shared = outputs.mean(dim=0, keepdim=True)
    spread_loss = float(nn.functional.cross_entropy(outputs - shared, y))
    offset_loss = float(nn.functional.cross_entropy(shared.expand_as(outputs), y))
    text = report.render()
    assert f"that spread alone scores {spread_loss:.4g}" in text
    assert f"the shared offset scores {offset_loss:.4g}" in text
    assert "predict an excess" not in text


def check_outputs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The outputs the check sees: the model in its own mode, from seed 0 (dropout included)."""
    with seeded(0), torch.no_grad():
        return copy.deepcopy(model)(x)


def test_regression_offset_and_scale():
    torch.manual_seed(0)
    x, y = torch.randn(32, 4), torch.randn(32, 2)
    head = nn.Linear(4, 2)
    with torch.no_grad():
        head.weight.mul_(0.01)
        head.bias.fill_(5.0)
    shifted = check_initial_loss(head, x, y, nn.MSELoss())
    assert shifted.cause == "offset" and "target mean" in shifted.render()
    with torch.no_grad():
        head.weight.mul_(1000)
        head.bias.zero_()
    assert check_initial_loss(head, x, y, nn.MSELoss()).cause == "scale"


def test_zero_initialised_head_passes_with_a_note(digits20):
    x, y = digits20
    model = mlp()
    with torch.no_grad():
        _head(model).weight.zero_()
        _head(model).bias.zero_()
    report = check_initial_loss(model, x, y, nn.CrossEntropyLoss())
    assert report.passed and "identical for every example" in report.render()


def test_softmax_before_cross_entropy_is_named_at_init(digits20):
    x, y = digits20
    report = check_initial_loss(nn.Sequential(mlp(), nn.Softmax(dim=1)), x, y, nn.CrossEntropyLoss())
    assert report.observed == pytest.approx(math.log(10), rel=0.01)
    assert not report.passed and "softmax before CrossEntropyLoss" in report.render()


def test_prior_is_suggested_only_where_it_applies(digits20):
    x, y = digits20
    custom = lambda out, t: out.abs().mean()  # noqa: E731
    with pytest.raises(NNCheckError, match="pass expected=<value>") as unknown:
        check_initial_loss(mlp(), x, y, custom)
    assert "prior" not in str(unknown.value)
    with pytest.raises(NNCheckError, match="expected='prior' needs a class-target loss.*pass "
                                           "expected=<value>"):
        check_initial_loss(mlp(), x, y, custom, expected="prior")
    torch.manual_seed(0)
    with pytest.raises(NNCheckError, match="pass a number"):
        check_initial_loss(nn.Linear(64, 1), x, y[:, None].float(), nn.MSELoss(), expected="prior")


def test_bad_inputs_are_one_line_each(digits20):
    x, y = digits20
    with pytest.raises(NNCheckError, match=r"the batch is empty: input\[0\] has shape \(0, 64\)"):
        check_initial_loss(mlp(), x[:0], y[:0], nn.CrossEntropyLoss())
    with pytest.raises(NNCheckError, match=r"the batch is empty: targets has shape \(0,\)"):
        check_initial_loss(mlp(), x, y[:0], nn.CrossEntropyLoss())
    with pytest.raises(NNCheckError, match="every target is ignore_index"):
        check_initial_loss(mlp(), x, torch.full_like(y, -100), nn.CrossEntropyLoss())
    with pytest.raises(NNCheckError, match=r"loss_fn is the class CrossEntropyLoss.*pass "
                                           r"CrossEntropyLoss\(\)"):
        check_initial_loss(mlp(), x, y, nn.CrossEntropyLoss)


def test_broadcasting_regression_shapes_fail_and_are_named():
    torch.manual_seed(0)
    x = torch.randn(16, 4)
    y = torch.randn(16)
    head = nn.Linear(4, 1)
    with torch.no_grad():
        head.weight.mul_(0.01)
        head.bias.zero_()
    report = check_initial_loss(head, x, y, nn.MSELoss())
    assert not report.passed
    assert "(16, 1)" in report.render() and "(16,)" in report.render()
    assert "broadcast to (16, 16)" in report.render()
    assert check_initial_loss(head, x, y[:, None], nn.MSELoss()).passed

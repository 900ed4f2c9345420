"""The checks a model repository runs before spending GPU time."""
import math

import pytest
import torch
from torch import nn

from digits.data import load
from digits.layers import DigitsNet, SwishBlock, SwishFunction
from pytest_nncheck import assert_gradients, assert_initial_loss


@pytest.fixture(scope="module")
def tiny_set():
    train_x, train_y, _, _ = load()
    return train_x[:20], train_y[:20]


def test_swish_backward_matches_central_differences():
    x = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    assert_gradients(SwishFunction, x)


def test_block_gradients_with_dropout_in_train_mode():
    torch.manual_seed(0)
    block = SwishBlock(6, 5, dropout=0.3).train()
    assert_gradients(block, torch.randn(4, 6, requires_grad=True))


def test_loss_at_init_is_ln_10(tiny_set):
    x, y = tiny_set
    torch.manual_seed(0)
    report = assert_initial_loss(DigitsNet(), x, y, nn.CrossEntropyLoss())
    assert report.expected == pytest.approx(math.log(10))


def test_weight_decay_raises_the_loss(tiny_set):
    x, y = tiny_set
    torch.manual_seed(0)
    report = assert_initial_loss(DigitsNet(), x, y, nn.CrossEntropyLoss(), regularization=1e-2)
    assert report.with_regularization > report.observed


@pytest.mark.nncheck
def test_memorises_twenty_digits(tiny_set, nncheck):
    x, y = tiny_set
    torch.manual_seed(0)
    report = nncheck.assert_overfit(DigitsNet(), x, y, nn.CrossEntropyLoss())
    assert report.accuracy == 1.0

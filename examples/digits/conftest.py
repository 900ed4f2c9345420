"""The digits classifier, declared once: ``pytest --nncheck`` runs the sanity and recipe checks on
it (loss at init, memorising 20 digits, batch independence, the input-independent baseline, and
parameters that the optimizer owns and updates)."""


def _twenty_digits():
    from digits.data import load

    train_x, train_y, _, _ = load()
    return train_x[:20], train_y[:20]


def _optimizer(model):
    import torch

    return torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)  # as in digits.train


def pytest_nncheck_models(config):
    from torch import nn

    import pytest_nncheck
    from digits.layers import DigitsNet

    return [pytest_nncheck.ModelSpec(factory=DigitsNet, batch=_twenty_digits,
                                     loss_fn=nn.CrossEntropyLoss(), optimizer=_optimizer,
                                     name="digits.layers.DigitsNet")]

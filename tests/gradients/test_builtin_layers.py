"""No false alarms on torch's own layers: their backwards are right, so every check must pass.

Dropout in train mode, kinks (ReLU, max pooling, sort, topk, median) and BatchNorm in train mode
are all in here on purpose.
"""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pytest_nncheck import check_gradients


def _x(*shape):
    return torch.randn(*shape, dtype=torch.float64, requires_grad=True)


def _zoo():
    torch.manual_seed(0)
    return [
        ("Conv2d", nn.Conv2d(3, 4, 3, padding=1), (_x(2, 3, 6, 6),)),
        ("ConvTranspose2d", nn.ConvTranspose2d(3, 2, 3, stride=2), (_x(2, 3, 4, 4),)),
        ("LSTM", nn.LSTM(4, 5, batch_first=True), (_x(2, 3, 4),)),
        ("GRU", nn.GRU(4, 5), (_x(3, 2, 4),)),
        ("MultiheadAttention", nn.MultiheadAttention(8, 2, batch_first=True),
         (_x(2, 3, 8), _x(2, 3, 8), _x(2, 3, 8))),
        ("TransformerEncoderLayer in train mode",
         nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), (_x(2, 4, 8),)),
        ("Embedding", nn.Embedding(10, 4), (torch.tensor([[1, 2, 3], [4, 5, 9]]),)),
        ("EmbeddingBag max", nn.EmbeddingBag(10, 3, mode="max"), (torch.tensor([[1, 2, 3], [4, 5, 9]]),)),
        ("LayerNorm", nn.LayerNorm(5), (_x(3, 5),)),
        ("GroupNorm", nn.GroupNorm(2, 4), (_x(2, 4, 3, 3),)),
        ("BatchNorm2d in train mode", nn.BatchNorm2d(3), (_x(4, 3, 3, 3),)),
        ("InstanceNorm1d", nn.InstanceNorm1d(3, affine=True), (_x(2, 3, 5),)),
        ("MaxPool2d", nn.MaxPool2d(2), (_x(2, 2, 4, 4),)),
        ("AdaptiveMaxPool2d", nn.AdaptiveMaxPool2d(2), (_x(1, 2, 5, 5),)),
        ("Conv + Dropout2d in train mode", nn.Sequential(nn.Conv2d(2, 3, 3), nn.Dropout2d(0.5)),
         (_x(2, 2, 5, 5),)),
        ("Softplus", nn.Softplus(beta=5), (_x(3, 5),)),
        ("Hardswish", nn.Hardswish(), (_x(3, 5) * 3,)),
        ("PReLU", nn.PReLU(), (_x(3, 5),)),
        ("ReLU6", nn.ReLU6(), (_x(3, 5) * 4,)),
        ("Bilinear", nn.Bilinear(3, 4, 2), (_x(2, 3), _x(2, 4))),
        ("cross_entropy", lambda o: F.cross_entropy(o, torch.tensor([0, 2, 1])), (_x(3, 4),)),
        ("interpolate bilinear", lambda a: F.interpolate(a, scale_factor=2, mode="bilinear"),
         (_x(1, 2, 3, 3),)),
        ("cdist", torch.cdist, (_x(3, 4), _x(5, 4))),
        ("topk", lambda a: a.topk(2, dim=1).values, (_x(3, 5),)),
        ("sort", lambda a: a.sort(dim=1).values, (_x(3, 5),)),
        ("median", lambda a: a.median(dim=1).values, (_x(3, 5),)),
        ("exp of large values", lambda a: (a * 5).exp().sum(), (_x(3, 5),)),
        ("logsumexp", lambda a: torch.logsumexp(a * 10, 1), (_x(3, 5),)),
    ]


ZOO = _zoo()


@pytest.mark.parametrize("name, fn, inputs", ZOO, ids=[z[0] for z in ZOO])
def test_builtin_layer_passes(name, fn, inputs):
    report = check_gradients(fn, *inputs)
    assert report.passed, report.render()

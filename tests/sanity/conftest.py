import pytest
import torch
from torch import nn


@pytest.fixture(scope="session")
def digits20():
    """The first 20 of scikit-learn's bundled 8x8 digits, scaled to [0, 1]."""
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()
    return (torch.tensor(digits.data[:20], dtype=torch.float32) / 16,
            torch.tensor(digits.target[:20]))


def mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 10))


def cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, 8, 3, padding=1),
                         nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(16 * 16, 10))


class Detached(nn.Module):
    """A bottleneck whose first layer is cut off from the graph: only the last layer learns."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.encoder = nn.Linear(64, 3)
        self.head = nn.Linear(3, 10)

    def forward(self, x):
        return self.head(torch.relu(self.encoder(x)).detach())

import pytest
import torch


@pytest.fixture(autouse=True)
def seeded_models():
    """Models built directly in a test start from the same weights whatever ran before it."""
    torch.manual_seed(0)

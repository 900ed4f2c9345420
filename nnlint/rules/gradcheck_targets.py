"""Which calls are numerical gradient checks, shared by the NN1xx rules."""
from __future__ import annotations

from typing import Optional

TORCH_GRADCHECKS = {
    "torch.autograd.gradcheck", "torch.autograd.gradgradcheck",
    "torch.autograd.gradcheck.gradcheck", "torch.autograd.gradcheck.gradgradcheck",
    "torch.testing.gradcheck", "torch.testing.gradgradcheck",
}
NNCHECK_GRADCHECKS = {
    "pytest_nncheck.check_gradients", "pytest_nncheck.assert_gradients",
    "pytest_nncheck.gradients.check_gradients", "pytest_nncheck.gradients.assert_gradients",
}


def gradcheck_kind(qualified: Optional[str]) -> Optional[str]:
    """'torch' for torch's gradcheck family, 'nncheck' for ours, else None."""
    if qualified in TORCH_GRADCHECKS:
        return "torch"
    if qualified in NNCHECK_GRADCHECKS:
        return "nncheck"
    return None

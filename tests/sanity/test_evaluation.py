import subprocess
import sys

from torch import nn

from pytest_nncheck.sanity.evaluation import set_mode
from tests.sanity.test_overfit import TrainsItself


class FrozenStatistics(nn.Module):
    """Overrides train(mode) the way nn.Module does, to keep its BatchNorm in eval mode."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 4)
        self.norm = nn.BatchNorm1d(4)

    def train(self, mode: bool = True):
        super().train(mode)
        self.norm.eval()
        return self


def test_overrides_with_the_train_mode_signature_are_honoured():
    model = set_mode(nn.Sequential(FrozenStatistics()).eval(), True)
    assert model.training and model[0].training and model[0].linear.training
    assert not model[0].norm.training


def test_a_train_method_that_is_a_training_loop_is_bypassed():
    model = set_mode(TrainsItself(), False)
    assert set_mode(model, True) is model
    assert all(m.training for m in model.modules()) and model.loops_run == 0
    set_mode(model, False)
    assert not any(m.training for m in model.modules()) and model.loops_run == 0


def test_deterministic_kernels_are_restored_without_importing_inductor():
    script = ("import sys, torch\n"
              "from pytest_nncheck.sanity.evaluation import deterministic\n"
              "with deterministic():\n"
              "    assert torch.are_deterministic_algorithms_enabled()\n"
              "assert not torch.are_deterministic_algorithms_enabled()\n"
              "print('torch._inductor' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"

"""Steps and seconds to memorise 20 digits with default settings, next to the alternatives.

    python benchmarks/overfit_speed.py [--repeat N] [--device auto|cpu|cuda]

Models: a 64-32-10 MLP and a two-conv CNN on the first 20 of scikit-learn's bundled 8x8 digits.
pytest_nncheck.check_overfit runs with its defaults (Adam 1e-2, stop at 2% of the way from the
loss floor to the initial loss and 100% training accuracy). pytest-torch's
assert_overfits_one_batch (stop at 5% of the initial loss) and torchtest2's
ModelTester.test_overfit (train until 10 steps without improvement, loss <= 0.01) run with the
same Adam 1e-2 when they are installed. Seconds are the median of N runs.
"""
from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from typing import Callable, Dict, List

import torch
import torch.nn.functional as F
from torch import nn

from pytest_nncheck import check_overfit


def _digits():
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (torch.tensor(digits.data[:20], dtype=torch.float32) / 16,
            torch.tensor(digits.target[:20]))


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                         nn.Flatten(), nn.Linear(32 * 16, 10))


def _nncheck(model, x, y, device) -> Dict[str, object]:
    report = check_overfit(model, x, y, nn.CrossEntropyLoss(), device=device)
    return {"passed": report.passed, "steps": report.steps, "final": report.final_loss}


def _pytest_torch(model, x, y, device) -> Dict[str, object]:
    from pytest_torch.training import assert_overfits_one_batch

    try:
        run = assert_overfits_one_batch(model, x, lambda out: F.cross_entropy(out, y), lr=1e-2)
        return {"passed": True, "steps": len(run.losses) - 1, "final": run.losses[-1]}
    except AssertionError:
        return {"passed": False, "steps": "-", "final": float("nan")}


def _torchtest2(model, x, y, device) -> Dict[str, object]:
    from torchtest2 import ModelTester

    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    tester = ModelTester(model, nn.CrossEntropyLoss(), optimizer, (x, y), device="cpu")
    try:
        best = tester.test_overfit()
        return {"passed": True, "steps": "-", "final": best}
    except Exception:
        return {"passed": False, "steps": "-", "final": float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    x, y = _digits()
    tools: Dict[str, Callable] = {"pytest_nncheck.check_overfit": _nncheck}
    if importlib.util.find_spec("pytest_torch"):
        tools["pytest_torch.assert_overfits_one_batch"] = _pytest_torch
    else:
        print("pytest-torch not installed: skipped (pip install pytest-torch)")
    if importlib.util.find_spec("torchtest2"):
        tools["torchtest2 ModelTester.test_overfit"] = _torchtest2
    else:
        print("torchtest2 not installed: skipped (pip install torchtest2)")
    _nncheck(mlp(), x, y, args.device)  # warm-up
    rows: List[str] = []
    for model_name, factory in (("MLP 64-32-10", mlp), ("CNN 2 conv", cnn)):
        for tool, run in tools.items():
            times, result = [], {}
            for _ in range(args.repeat):
                model = factory()
                start = time.perf_counter()
                result = run(model, x, y, args.device)
                times.append(time.perf_counter() - start)
            rows.append(f"{model_name:14} {tool:40} {str(result['passed']):>6} "
                        f"{str(result['steps']):>6} {result['final']:>9.4f} "
                        f"{statistics.median(times):>8.2f}")
    print(f"\n20 digits, device {args.device}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads\n")
    print(f"{'model':14} {'tool':40} {'passed':>6} {'steps':>6} {'loss':>9} {'seconds':>8}")
    print("\n".join(rows))


if __name__ == "__main__":
    main()

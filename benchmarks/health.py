"""Training-health detection on the zoo, against AUTOTRAINER's published rules, and watch's overhead.

    python benchmarks/health.py [--skip-overhead] [--repeats N] [--threads T]

Detection: every run of ``tests/health/zoo.py`` (healthy and sick) is trained by
``check_training`` (60 full-batch steps) and, separately, by a loop that applies AUTOTRAINER's
rules (Zhang et al., ICSE 2021, ``AutoTrainer/utils/monitor.py``: beta_1 1e-3, beta_2 1e-4,
beta_3 70, gamma 0.7, zeta 0.03, eta 0.2, delta 0.01, Theta 0.7) every 5 steps, each check
standing for one of its epochs; its validation accuracy is measured on the run's validation set,
or on the training set when the run has none. AUTOTRAINER's symptoms map to our codes as: explode
-> exploding-gradient, nan, loss-diverged; vanish -> vanishing-gradient; relu -> dead-relu;
not_converge -> loss-not-decreasing; unstable -> loss-oscillating. It has no rule for the other codes.

Overhead: two realistic CPU models (an MLP 784-512-256-10, 535k parameters, batch 128; a CNN
on 3x16x16, 4 conv layers, 132k parameters, batch 64) train with and without ``watch`` at its
defaults; blocks of steps alternate between the two, and the overhead is the median over blocks
of (watched - plain) / plain. The machine these figures were taken on was shared and loaded.
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Dict, List, Sequence, Set

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_nncheck import TrainingHealthWarning, check_training, watch  # noqa: E402
from pytest_nncheck.health.watch import DEFAULT_EVERY  # noqa: E402
from tests.health.zoo import HEALTHY, SICK, Run  # noqa: E402

STEPS = 60
AUTOTRAINER_CHECK_EVERY = 5
AUTOTRAINER = {"beta_1": 1e-3, "beta_2": 1e-4, "beta_3": 70.0, "gamma": 0.7, "zeta": 0.03,
               "eta": 0.2, "delta": 0.01, "Theta": 0.7, "judgment_point": 0.3}
AUTOTRAINER_CODES = {"explode": {"exploding-gradient", "nan", "loss-diverged"},
                     "vanish": {"vanishing-gradient"}, "relu": {"dead-relu"},
                     "not_converge": {"loss-not-decreasing"}, "unstable": {"loss-oscillating"}}


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    was_training = model.training
    model.eval()
    with torch.no_grad():
        right = float((model(x).argmax(1) == y).float().mean())
    model.train(was_training)
    return right


def _oscillates(accuracies: Sequence[float], threshold: float, rate: float) -> bool:
    """AUTOTRAINER's ol_judge: pairs of local maxima and minima at least ``threshold`` apart."""
    maxima = [a for i, a in enumerate(accuracies[1:-1], 1)
              if a >= accuracies[i - 1] and a >= accuracies[i + 1]]
    minima = [a for i, a in enumerate(accuracies[1:-1], 1)
              if a <= accuracies[i - 1] and a <= accuracies[i + 1]]
    count = sum(1 for high, low in zip(maxima, minima) if high - low >= threshold)
    return count >= rate * len(accuracies)


def _largest_rise(values: Sequence[float]) -> float:
    return max((b - a for a, b in zip(values, values[1:])), default=0.0)


def autotrainer(run: Run) -> Set[str]:
    """AUTOTRAINER's issue list for one zoo run, mapped to our codes."""
    torch.manual_seed(0)
    model, x, y, loss_fn, factory, validation = run.build()
    x_val, y_val = validation if validation is not None else (x, y)
    optimizer = (factory or (lambda p: torch.optim.Adam(p, lr=1e-3)))(model.parameters())
    features = {"died_relu": 0, "vanish_gradient": 0, "explode_gradient": 0, "nan": False}
    losses, train_acc, val_acc = [], [], []
    checks = STEPS // AUTOTRAINER_CHECK_EVERY
    for step in range(STEPS):
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        if step % AUTOTRAINER_CHECK_EVERY == 0:
            grads = [p.grad if p.grad is not None else torch.zeros_like(p)
                     for p in model.parameters()]
            kernels = [g for g in grads if g.dim() >= 2]
            if not all(bool(torch.isfinite(g).all()) for g in grads) or \
                    not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
                features["nan"] = True
            else:
                first, last = float(kernels[0].norm()), float(kernels[-1].norm())
                rate = first / last if last > 0 else math.inf
                zeros = sum(int((g == 0).sum()) for g in grads) / sum(g.numel() for g in grads)
                features["vanish_gradient"] += rate < AUTOTRAINER["beta_1"] and first < AUTOTRAINER["beta_2"]
                features["explode_gradient"] += rate > AUTOTRAINER["beta_3"]
                features["died_relu"] += zeros >= AUTOTRAINER["gamma"]
            losses.append(float(loss.detach()))
            train_acc.append(_accuracy(model, x, y))
            val_acc.append(_accuracy(model, x_val, y_val))
        optimizer.step()
    if features["nan"] or any(not math.isfinite(v) or v >= 1e5 for v in losses):
        return set(AUTOTRAINER_CODES["explode"])
    issues: List[str] = []
    if len(losses) >= AUTOTRAINER["judgment_point"] * checks:
        not_converge = max(val_acc) < AUTOTRAINER["Theta"] or max(train_acc) < AUTOTRAINER["Theta"]
        slow = (_largest_rise(val_acc) < AUTOTRAINER["delta"]
                and _largest_rise(train_acc) < AUTOTRAINER["delta"])
        if not_converge or slow:
            for feature, issue in (("died_relu", "relu"), ("explode_gradient", "explode"),
                                   ("vanish_gradient", "vanish")):
                if features[feature] >= 1:
                    issues.append(issue)
                    break
            else:
                if slow:
                    issues.append("not_converge")
        elif _oscillates(train_acc, AUTOTRAINER["zeta"], AUTOTRAINER["eta"]):
            issues.append("unstable")
    return {code for issue in issues for code in AUTOTRAINER_CODES[issue]}


def nncheck(run: Run) -> Set[str]:
    model, x, y, loss_fn, optimizer, validation = run.build()
    report = check_training(model, x, y, loss_fn, optimizer=optimizer, validation=validation,
                            steps=STEPS, device="cpu")
    return {p.code for p in report.problems}


def detection_table() -> None:
    tools = {"nncheck": nncheck, "AUTOTRAINER rules": autotrainer}
    found: Dict[str, Dict[str, Set[str]]] = {name: {} for name in tools}
    for run in HEALTHY + SICK:
        for name, tool in tools.items():
            found[name][run.name] = tool(run)
    print("sick run                    expected code           " +
          "  ".join(f"{name:>18}" for name in tools))
    for run in SICK:
        marks = ["caught" if run.expected in found[name][run.name] else
                 ("other: " + ",".join(sorted(found[name][run.name]))[:11] if found[name][run.name]
                  else "missed") for name in tools]
        print(f"{run.name:27} {run.expected:23} " + "  ".join(f"{m:>18}" for m in marks))
    print()
    for name in tools:
        caught = sum(run.expected in found[name][run.name] for run in SICK)
        alarms = [run.name for run in HEALTHY if found[name][run.name]]
        print(f"{name}: {caught}/{len(SICK)} sick runs caught with the right code, "
              f"{len(alarms)}/{len(HEALTHY)} healthy runs with a false alarm"
              + (f" ({', '.join(alarms)})" if alarms else ""))
        codes = sorted({run.expected for run in SICK})
        per_code = ", ".join(f"{c} {sum(r.expected == c and c in found[name][r.name] for r in SICK)}/"
                             f"{sum(r.expected == c for r in SICK)}" for c in codes)
        print(f"  per code: {per_code}")


def _mlp() -> tuple:
    model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
                          nn.Linear(256, 10))
    return model, torch.randn(128, 784), torch.randint(0, 10, (128,))


def _cnn() -> tuple:
    model = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                          nn.Conv2d(32, 64, 3, padding=1, stride=2), nn.BatchNorm2d(64), nn.ReLU(),
                          nn.Conv2d(64, 64, 3, padding=1, stride=2), nn.ReLU(),
                          nn.Conv2d(64, 128, 3, padding=1, stride=2), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 10))
    return model, torch.randn(64, 3, 16, 16), torch.randint(0, 10, (64,))


def _block(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
           steps: int, watched: bool) -> float:
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    if watched:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TrainingHealthWarning)
            with watch(model, optimizer) as watcher:
                for _ in range(steps):
                    optimizer.zero_grad()
                    loss = loss_fn(model(x), y)
                    loss.backward()
                    optimizer.step()
                    watcher.record(loss)
    else:
        for _ in range(steps):
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
    return time.perf_counter() - start


def overhead_table(repeats: int) -> None:
    steps = 2 * DEFAULT_EVERY
    print(f"\nwatch overhead at defaults (every={DEFAULT_EVERY}); blocks of {steps} steps, "
          f"{repeats} interleaved pairs, {torch.get_num_threads()} thread(s)")
    print("model                         params   ms/step plain   ms/step watched   overhead (median)")
    for name, build in (("MLP 784-512-256-10, batch 128", _mlp), ("CNN 4 conv on 3x16x16, batch 64", _cnn)):
        torch.manual_seed(0)
        model, x, y = build()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        _block(model, optimizer, x, y, 5, False)
        plain, watched, ratios = [], [], []
        for index in range(repeats):
            order = (False, True) if index % 2 == 0 else (True, False)
            times = {w: _block(model, optimizer, x, y, steps, w) for w in order}
            plain.append(times[False])
            watched.append(times[True])
            ratios.append(times[True] / times[False] - 1)
        params = sum(p.numel() for p in model.parameters())
        print(f"{name:29} {params:7d}   {1e3 * statistics.median(plain) / steps:13.2f}   "
              f"{1e3 * statistics.median(watched) / steps:15.2f}   {statistics.median(ratios):+17.2%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--skip-detection", action="store_true")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not args.skip_detection:
        detection_table()
    if not args.skip_overhead:
        overhead_table(args.repeats)


if __name__ == "__main__":
    main()

"""Gradient checks of whole models: cost against the number of tensors, and detection of bugs.

    python benchmarks/scaling.py                 # everything (several minutes on 2 cores)
    python benchmarks/scaling.py --trials 20     # fewer detection trials

Prints three tables:
1. cost: forwards run, seconds and "forwards' worth" (seconds over one float64 forward of the same
   model) of a passing check, per-tensor probes against joint probes, for 1-16 layer
   TransformerEncoders (d=128, batch 2x16) and a ResNet-18-like CNN;
2. detection: a single parameter tensor anywhere in a 2-layer transformer made wrong by 10% and by
   1%, the whole tensor or one entry, through an identity tap whose backward rewrites the gradient;
   caught (the check fails) and named (the failing tensor is the tapped one), per strategy;
3. switch-over: per-tensor and joint probes on MLPs of 2-16 tensors, to choose where "auto"
   switches (JOINT_FROM in pytest_nncheck/gradients/joint.py).
Runs on one thread (torch.set_num_threads(1)) so that figures compare across machines.
"""
from __future__ import annotations

import argparse
import random
import statistics
import time
from typing import Callable, List, Tuple

import torch
from torch import nn
from torch.nn.utils import parametrize

from pytest_nncheck import check_gradients


class _Rewrite(torch.autograd.Function):
    """Identity forward; the backward multiplies the gradient by ``factor`` (a scalar or tensor)."""

    @staticmethod
    def forward(ctx, weight, factor):
        ctx.factor = factor
        return weight.view_as(weight)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.factor.to(grad.dtype), None


class Tap(nn.Module):
    """A parametrization that leaves the weight alone and makes its gradient wrong."""

    def __init__(self, factor: torch.Tensor) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, weight):
        return _Rewrite.apply(weight, self.factor)


def transformer(layers: int, width: int = 128, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    layer = nn.TransformerEncoderLayer(width, 4, 2 * width, dropout=0.1, batch_first=True)
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


class BasicBlock(nn.Module):
    def __init__(self, inputs: int, outputs: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(outputs)
        self.conv2 = nn.Conv2d(outputs, outputs, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(outputs)
        self.shortcut = nn.Sequential()
        if stride != 1 or inputs != outputs:
            self.shortcut = nn.Sequential(nn.Conv2d(inputs, outputs, 1, stride, bias=False),
                                          nn.BatchNorm2d(outputs))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


def resnet18_like(seed: int = 0) -> nn.Module:
    """ResNet-18's layout (4 stages of 2 basic blocks) at widths 8-64, for 16x16 inputs."""
    torch.manual_seed(seed)
    widths, blocks, inputs = (8, 16, 32, 64), [], 8
    for stage, width in enumerate(widths):
        for block in range(2):
            blocks.append(BasicBlock(inputs, width, 2 if stage and not block else 1))
            inputs = width
    return nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                         *blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))


def mlp(tensors: int, width: int = 32, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    layers: List[nn.Module] = []
    for _ in range(tensors // 2):
        layers += [nn.Linear(width, width), nn.Tanh()]
    return nn.Sequential(*layers)


def _forward_seconds(model: nn.Module, x: torch.Tensor) -> float:
    model = model.double()
    x = x.detach().double()
    with torch.no_grad():
        model(x)
        times = []
        for _ in range(5):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def cost_table(max_per_tensor_layers: int) -> None:
    print("1. cost of a passing check (float64, one thread)")
    print(f"{'model':<22}{'tensors':>8}  {'strategy':<11}{'forwards':>9}{'seconds':>9}"
          f"{'forwards worth':>16}  verdict")
    cases: List[Tuple[str, Callable[[], nn.Module], Callable[[], torch.Tensor], bool]] = []
    for layers in (1, 2, 4, 8, 16):
        cases.append((f"transformer, {layers} layer{'s' if layers > 1 else ''}",
                      lambda layers=layers: transformer(layers),
                      lambda: torch.randn(2, 16, 128, dtype=torch.float64),
                      layers <= max_per_tensor_layers))
    cases.append(("ResNet-18-like CNN", resnet18_like,
                  lambda: torch.randn(2, 3, 16, 16, dtype=torch.float64), True))
    for name, build, make_input, run_per_tensor in cases:
        model, x = build(), make_input().requires_grad_()
        forward = _forward_seconds(build(), x)
        for strategy in ("per-tensor", "joint"):
            if strategy == "per-tensor" and not run_per_tensor:
                continue
            start = time.perf_counter()
            report = check_gradients(model, x, strategy=strategy)
            seconds = time.perf_counter() - start
            print(f"{name:<22}{len(report.entries):>8}  {strategy:<11}{report.forwards:>9}"
                  f"{seconds:>9.2f}{seconds / forward:>16.0f}  {report.verdict}")


def _tap(model: nn.Module, rng: random.Random, size: float, whole: bool) -> str:
    """Tap one parameter chosen at random; returns the checked tensor's name."""
    names = [name for name, _ in model.named_parameters()]
    name = rng.choice(names)
    owner_name, _, attribute = name.rpartition(".")
    owner = model.get_submodule(owner_name)
    parameter = getattr(owner, attribute)
    if whole:
        factor = torch.tensor(1.0 + size)
    else:
        factor = torch.ones_like(parameter.detach())
        factor.view(-1)[rng.randrange(parameter.numel())] = 1.0 + size
    parametrize.register_parametrization(owner, attribute, Tap(factor))
    return f"{owner_name}.parametrizations.{attribute}.original".lstrip(".")


def detection_table(trials: int) -> None:
    print(f"\n2. detection: one wrong tensor anywhere in a 2-layer transformer (d=64), "
          f"{trials} trials per cell")
    print(f"{'bug':<24}{'strategy':<12}{'caught':>8}{'named':>8}{'forwards':>10}")
    x = torch.randn(2, 8, 64, dtype=torch.float64, requires_grad=True)
    for size in (0.10, 0.01):
        for whole in (True, False):
            label = f"{'whole tensor' if whole else 'one entry'} {size:.0%}"
            for strategy in ("per-tensor", "joint"):
                caught = named = 0
                forwards = []
                rng = random.Random(0)
                for trial in range(trials):
                    model = transformer(2, width=64, seed=trial)
                    tapped = _tap(model, rng, size, whole)
                    report = check_gradients(model, x, strategy=strategy, seed=trial)
                    forwards.append(report.forwards)
                    failing = {e.name for e in report.entries
                               if e.verdict in ("wrong", "suspicious")}
                    caught += report.failed
                    named += failing == {tapped}
                print(f"{label:<24}{strategy:<12}{caught:>8}{named:>8}"
                      f"{statistics.median(forwards):>10.0f}")


def switch_over_table(trials: int) -> None:
    print(f"\n3. switch-over: MLPs (width 32), a correct model and one entry off in a random "
          f"tensor, {trials} trials each")
    print(f"{'tensors':>8}  {'strategy':<12}{'passing forwards':>17}{'caught 10%':>11}"
          f"{'caught 1%':>10}{'failing forwards':>17}")
    x = torch.randn(4, 32, dtype=torch.float64, requires_grad=True)
    for tensors in (2, 4, 6, 8, 12, 16):
        for strategy in ("per-tensor", "joint"):
            passing = check_gradients(mlp(tensors), x, strategy=strategy).forwards
            caught, forwards = {}, []
            for size in (0.10, 0.01):
                rng, caught[size] = random.Random(1), 0
                for trial in range(trials):
                    model = mlp(tensors, seed=trial)
                    _tap(model, rng, size, whole=False)
                    report = check_gradients(model, x, strategy=strategy, seed=trial)
                    forwards.append(report.forwards)
                    caught[size] += report.failed
            print(f"{tensors + 1:>8}  {strategy:<12}{passing:>17}{caught[0.10]:>11}"
                  f"{caught[0.01]:>10}{statistics.median(forwards):>17.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--max-per-tensor-layers", type=int, default=8,
                        help="largest transformer checked with per-tensor probes (slow)")
    parser.add_argument("--only", choices=("cost", "detection", "switch"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.only in (None, "cost"):
        cost_table(args.max_per_tensor_layers)
    if args.only in (None, "detection"):
        detection_table(args.trials)
    if args.only in (None, "switch"):
        switch_over_table(args.trials)


if __name__ == "__main__":
    main()

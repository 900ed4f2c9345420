"""Fused kernels against a reference: bugs caught, false alarms and seconds per dtype, per rule.

    python benchmarks/reference.py [--seeds N]

The cases are tests/reference/fused_layers.py (4 correct hand-fused layers, 5 subtly wrong
variants), each built from N seeds (weights and inputs) and checked in bfloat16, float16 and
float32. Rules, each applied to the output and to the gradient of every input and parameter for
the same random upstream gradient:

- ``check_against_reference``: the check with its defaults (k=2, floor by precision).
- ``assert_close`` vs the reference in fn's dtype: torch.testing.assert_close with its default
  tolerances for that dtype, the usual kernel unit test.
- ``assert_close`` vs the upcast reference: against the reference computed in float32 (float64
  for float32 layers) from the same rounded inputs, rounded to fn's dtype, default tolerances.
- FlashAttention's rule as its tests write it: max|fn - up| <= 2 max|low - up| + 2 max|up + 0.3
  - 0.3 - up|, with ``up`` the upcast reference rounded to fn's dtype and ``low`` the reference
  in fn's dtype.

A bug caught is a failing verdict on a variant that is wrong in that dtype; a false alarm is a
failing verdict on a correct kernel. Seconds are the total over cases and seeds: the check's own
wall time, and for the other rules the runs they need (fn, and the reference in fn's dtype
and/or upcast) plus the comparison. The last two tables sweep the check's k and floor.
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence, Tuple

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_nncheck import registered_reference  # noqa: E402
from pytest_nncheck.reports import ReferenceReport, format_table  # noqa: E402
from tests.reference.fused_layers import ALL_DTYPES, CASES, FusedCase  # noqa: E402

RULES = ("check_against_reference", "assert_close vs reference in fn's dtype",
         "assert_close vs upcast reference", "FlashAttention's rule as written")
K_SWEEP = (1.5, 2.0, 3.0)
FLOOR_SWEEP = (0.0, 0.5, 1.0, 2.0, 4.0)  # multiples of the default floor


def _name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def _in_dtype(value: Any, dtype: torch.dtype) -> Any:
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.detach().to(dtype).requires_grad_(value.requires_grad)
    return value


def _reference_module(fn: nn.Module, dtype: torch.dtype) -> Callable:
    """The registered reference built from ``fn``, sharing its parameters, as a test writes it."""
    registered = registered_reference(fn)
    built = registered.reference(fn).to(dtype)
    names = registered.options.get("parameters", {})
    for name, parameter in fn.named_parameters():
        setattr(built, names.get(name, name), parameter)
    return built


def _tensors_of(fn: Any, inputs: Sequence[Any], dtype: torch.dtype, reference: bool,
                upstream_seed: int) -> List[torch.Tensor]:
    """[output, gradient of each input that requires grad, of each parameter], in ``dtype``."""
    layer = copy.deepcopy(fn).to(dtype) if isinstance(fn, nn.Module) else fn
    inputs = [_in_dtype(value, dtype) for value in inputs]
    if reference:
        call = _reference_module(layer, dtype) if isinstance(layer, nn.Module) else \
            registered_reference(fn).reference
    else:
        call = layer if isinstance(layer, nn.Module) else layer.apply
    leaves = [value for value in inputs if isinstance(value, torch.Tensor) and value.requires_grad]
    if isinstance(layer, nn.Module):
        leaves += list(layer.parameters())
    output = call(*inputs)
    generator = torch.Generator().manual_seed(upstream_seed)
    upstream = torch.randn(output.shape, generator=generator).to(output.dtype)
    return [output.detach(), *torch.autograd.grad(output, leaves, upstream)]


def _assert_close_fails(actual: Sequence[torch.Tensor], expected: Sequence[torch.Tensor]) -> bool:
    try:
        for a, e in zip(actual, expected):
            torch.testing.assert_close(a, e.to(a.dtype))
    except AssertionError:
        return True
    return False


def _flash_attention_fails(fn: Sequence[torch.Tensor], low: Sequence[torch.Tensor],
                           up: Sequence[torch.Tensor]) -> bool:
    for value, low_value, up_value in zip(fn, low, up):
        up_value = up_value.to(value.dtype)
        atol = 2 * (up_value + 0.3 - 0.3 - up_value).abs().max().item()
        if (value - up_value).abs().max().item() > \
                2 * (low_value - up_value).abs().max().item() + atol:
            return True
    return False


def _timed(run: Callable[[], Any]) -> Tuple[Any, float]:
    start = time.perf_counter()
    result = run()
    return result, time.perf_counter() - start


def _fails_with(report: ReferenceReport, k: float, floor_factor: float) -> bool:
    """Whether the report fails under another k and floor (its entries keep both error terms)."""
    return any(e.error > k * e.reference_error + floor_factor * (e.allowed - report.k *
                                                                 e.reference_error)
               for e in report.entries if e.verdict != "inconclusive")


def _evaluate_case(case: FusedCase, dtype: torch.dtype, seed: int,
                   seconds: Dict[str, float]) -> Tuple[List[bool], ReferenceReport]:
    fn, inputs = case.build(seed)
    report, elapsed = _timed(lambda: registered_reference(fn).check(fn, *inputs, dtype=dtype))
    seconds[RULES[0]] += elapsed
    upcast = torch.float64 if dtype == torch.float32 else torch.float32
    rounded = [_in_dtype(value, dtype) for value in inputs]
    layer = copy.deepcopy(fn).to(dtype) if isinstance(fn, nn.Module) else fn
    fn_values, t_fn = _timed(lambda: _tensors_of(layer, rounded, dtype, False, seed))
    low, t_low = _timed(lambda: _tensors_of(layer, rounded, dtype, True, seed))
    up, t_up = _timed(lambda: _tensors_of(layer, rounded, upcast, True, seed))
    same, t_same = _timed(lambda: _assert_close_fails(fn_values, low))
    against_up, t_against = _timed(lambda: _assert_close_fails(fn_values, up))
    flash, t_flash = _timed(lambda: _flash_attention_fails(fn_values, low, up))
    seconds[RULES[1]] += t_fn + t_low + t_same
    seconds[RULES[2]] += t_fn + t_up + t_against
    seconds[RULES[3]] += t_fn + t_low + t_up + t_flash
    return [report.failed, same, against_up, flash], report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    seeds = range(parser.parse_args().seeds)
    summary, sweeps = [], defaultdict(lambda: [0, 0])
    for dtype in ALL_DTYPES:
        seconds: Dict[str, float] = defaultdict(float)
        caught, alarms = [0] * len(RULES), [0] * len(RULES)
        detail = []
        bugs = sum(not case.correct_in(dtype) for case in CASES) * len(seeds)
        correct = len(CASES) * len(seeds) - bugs
        for case in CASES:
            failures = [0] * len(RULES)
            for seed in seeds:
                verdicts, report = _evaluate_case(case, dtype, seed, seconds)
                for position, failed in enumerate(verdicts):
                    failures[position] += failed
                    counter = alarms if case.correct_in(dtype) else caught
                    counter[position] += failed
                for setting in [("k", k) for k in K_SWEEP] + [("floor", f) for f in FLOOR_SWEEP]:
                    k, factor = (setting[1], 1.0) if setting[0] == "k" else (2.0, setting[1])
                    failed = _fails_with(report, k, factor)
                    sweeps[(setting, _name(dtype))][0 if case.correct_in(dtype) else 1] += failed
            expected = "correct" if case.correct_in(dtype) else "wrong"
            detail.append([case.name, expected, *(f"{n}/{len(seeds)}" for n in failures)])
        print(f"\n{_name(dtype)}: failing verdicts per case, out of {len(seeds)} seeds")
        print(format_table(["case", "kernel", *RULES], detail))
        for position, rule in enumerate(RULES):
            summary.append([_name(dtype), rule, f"{caught[position]}/{bugs}",
                            f"{alarms[position]}/{correct}", f"{seconds[rule]:.2f}"])
    print("\nsummary")
    print(format_table(["dtype", "rule", "bugs caught", "false alarms", "seconds"], summary))
    for kind, values, unit in (("k", K_SWEEP, "k (floor: default)"),
                               ("floor", FLOOR_SWEEP, "floor x default (k=2)")):
        rows = [[f"{value:g}", *(f"caught {sweeps[((kind, value), _name(d))][1]}, false alarms "
                                 f"{sweeps[((kind, value), _name(d))][0]}" for d in ALL_DTYPES)]
                for value in values]
        print(f"\ncheck_against_reference, {unit}")
        print(format_table([unit, *map(_name, ALL_DTYPES)], rows))


if __name__ == "__main__":
    main()

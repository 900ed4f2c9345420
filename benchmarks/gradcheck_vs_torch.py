"""Gradient checkers on our layer suite and on a corpus of real custom autograd code: bugs caught,
false alarms, time.

    python benchmarks/gradcheck_vs_torch.py [--repeat N] [--part all|suite|corpus]
        [--only nncheck|gradcheck|fast] [--case SUBSTRING] [--json PATH] [--limit SECONDS]

The corpus (benchmarks/gradient_corpus/) imports these packages; install them first, pinned to
the CPU torch (torchsort compiles a C++ extension: no build isolation, and no CUDA compiler on
PATH), and the buggy entmax release beside the installed one:

    pip install -c benchmarks/constraints.txt entmax sparsemax qpth cvxpylayers snntorch \
        torchdiffeq vector-quantize-pytorch kornia x-transformers monai torch-geometric==2.8.1 && \
    PATH=$VIRTUAL_ENV/bin:/usr/bin:/bin pip install -c benchmarks/constraints.txt \
        --no-build-isolation torchsort && \
    pip install --no-deps --no-build-isolation \
        --target /tmp/gradient-corpus-releases/entmax-1.0 entmax==1.0

Suite: total time is the sum over tests/gradients/layer_suite.py of each layer's median time over
N runs. Tools: pytest_nncheck.check_gradients; torch.autograd.gradcheck in its default (slow)
mode and with fast_mode=True, called the way users call them (the module or function and its
input tuple, in float64); pytest_torch.assert_gradcheck when pytest-torch is installed. The cost
model is (2k+1) forwards + 1 backward for the k probes a check evaluated, timed on the same layer;
the overhead is the check's wall time over it.

Corpus: every case and mutant is run once per tool, each call in a forked process on one thread
under --limit seconds (a hang is a time-out, a crash an error). A bug counts as failed only on a
failed verdict (inconclusive, errors and time-outs do not); a false alarm is a failed verdict or
an error on correct code.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Callable, Dict, List

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.gradient_corpus.tally import corpus_main  # noqa: E402
from pytest_nncheck import check_gradients  # noqa: E402
from tests.gradients.layer_suite import all_cases  # noqa: E402


def _torch_gradcheck(fast: bool) -> Callable:
    def run(case) -> bool:
        fn, inputs = case.torch_call()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return not torch.autograd.gradcheck(fn, inputs, fast_mode=fast,
                                                    raise_exception=False)
            except Exception:
                return True
    return run


def _pytest_torch() -> Callable:
    from pytest_torch.training import assert_gradcheck

    def run(case) -> bool:
        fn, inputs = case.torch_call()
        try:
            assert_gradcheck(fn, inputs)
            return False
        except Exception:
            return True
    return run


def _nncheck(case) -> bool:
    fn, inputs, options = case.build()
    return check_gradients(fn, *inputs, **options).failed


def _timed(function: Callable, *args, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function(*args)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _cost_model(fn, inputs, options) -> Dict[str, float]:
    """Check seconds, model seconds and probes for one layer under check_gradients.

    One forward of the model is what an evaluation cannot avoid: the call, the reduction of its
    outputs to the scalar that is differentiated, and reading that scalar.
    """
    report = check_gradients(fn, *inputs, **options)
    copy = fn.double() if isinstance(fn, torch.nn.Module) else fn
    call = copy.apply if isinstance(copy, type) else copy
    inputs = [t.double() if isinstance(t, torch.Tensor) and t.is_floating_point() else t
              for t in inputs]
    parameters = list(copy.parameters()) if isinstance(copy, torch.nn.Module) else []
    leaves = [t for t in [*inputs, *parameters] if isinstance(t, torch.Tensor) and t.requires_grad]

    def scalar(out):
        out = out[0] if isinstance(out, tuple) else out
        return out.sum()

    def forward():
        with torch.no_grad():
            float(scalar(call(*inputs)))

    def forward_backward():
        torch.autograd.grad(scalar(call(*inputs)), leaves, allow_unused=True)

    parts = 2 if options.get("regularization") else 1
    t_forward = _timed(forward, repeat=50)
    t_backward = max(_timed(forward_backward, repeat=50) - t_forward, 0.0)
    model = parts * ((2 * report.checked / parts + 1) * t_forward + t_backward)
    check = _timed(lambda: check_gradients(fn, *inputs, **options), repeat=7)
    # Every probe is two forwards; each part (data, regularization) adds an analytic pass and one
    # forward that proves the forward deterministic.
    evaluations = 2 * report.checked + 2 * parts
    return {"check": check, "model": model, "probes": report.checked, "evaluations": evaluations}


def _larger_layers() -> List[tuple]:
    """Layers of realistic size, where the forward itself costs more than the bookkeeping."""
    torch.manual_seed(0)
    x = torch.randn(64, 256, dtype=torch.float64, requires_grad=True)
    images = torch.randn(8, 16, 32, 32, dtype=torch.float64, requires_grad=True)
    mlp = torch.nn.Sequential(torch.nn.Linear(256, 512), torch.nn.GELU(), torch.nn.Linear(512, 256),
                              torch.nn.LayerNorm(256)).double()
    conv = torch.nn.Sequential(torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.BatchNorm2d(32),
                               torch.nn.Tanh(), torch.nn.Conv2d(32, 16, 3, padding=1)).double()
    attention = torch.nn.MultiheadAttention(64, 4, batch_first=True).double()
    tokens = torch.randn(8, 32, 64, dtype=torch.float64, requires_grad=True)
    return [("MLP block 256-512-256, batch 64", mlp, (x,)),
            ("conv block 16-32-16 on 8x16x32x32", conv, (images,)),
            ("multi-head attention 64/4 heads, 8x32 tokens",
             lambda q: attention(q, q, q, need_weights=False)[0], (tokens,))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs per layer (median taken)")
    parser.add_argument("--part", choices=("all", "suite", "corpus"), default="all")
    parser.add_argument("--only", choices=("nncheck", "gradcheck", "fast"),
                        help="run one tool on the corpus")
    parser.add_argument("--case", default="", help="corpus cases whose name contains this")
    parser.add_argument("--json", type=Path, help="write one record per (corpus case, tool)")
    parser.add_argument("--limit", type=float, default=60.0,
                        help="seconds per tool call on a corpus case")
    args = parser.parse_args()
    if args.part in ("all", "suite"):
        suite_main(args.repeat)
    if args.part in ("all", "corpus"):
        corpus_main(args.only, args.case, args.json, args.limit)


def suite_main(repeat: int) -> None:
    torch.manual_seed(0)
    cases = all_cases()
    tools: Dict[str, Callable] = {
        "pytest_nncheck.check_gradients": _nncheck,
        "torch gradcheck (slow)": _torch_gradcheck(fast=False),
        "torch gradcheck (fast_mode)": _torch_gradcheck(fast=True),
    }
    try:
        tools["pytest_torch.assert_gradcheck"] = _pytest_torch()
    except ImportError:
        print("pytest-torch not installed: skipped (pip install pytest-torch)")
    for run in tools.values():  # warm up imports and kernels
        run(cases[0])
    bugs = [c for c in cases if not c.correct]
    correct = [c for c in cases if c.correct]
    rows: List[List[str]] = []
    missed: Dict[str, List[str]] = {}
    seconds = {name: 0.0 for name in tools}
    for case in cases:  # tools interleaved per layer, so a busy moment does not favour one tool
        for name, run in tools.items():
            seconds[name] += _timed(run, case, repeat=repeat)
    for name, run in tools.items():
        detected = [c for c in bugs if run(c)]
        alarms = [c for c in correct if run(c)]
        rows.append([name, f"{len(detected)}/{len(bugs)}", f"{len(alarms)}/{len(correct)}",
                     f"{seconds[name] * 1000:.0f} ms"])
        missed[name] = [c.name + ": " + c.bug for c in bugs if c not in detected] + \
            [c.name + ": false alarm" for c in alarms]
    print(f"\nSuite: {len(bugs)} wrong backwards, {len(correct)} correct ones "
          f"(torch {torch.__version__}, {torch.get_num_threads()} threads)\n")
    print(f"{'tool':34} {'bugs caught':>12} {'false alarms':>13} {'total time':>11}")
    for row in rows:
        print(f"{row[0]:34} {row[1]:>12} {row[2]:>13} {row[3]:>11}")
    for name, problems in missed.items():
        for problem in problems:
            print(f"  {name}: missed or wrong on {problem}")
    # One intra-op thread: on a 2-core machine two threads make the timings of large layers swing
    # by 2x from run to run, which hides the overhead being measured.
    torch.set_num_threads(1)
    print("\nCost model for check_gradients: (2k+1) forwards + 1 backward for k probes "
          "(1 thread)")
    print(f"{'layer':52} {'probes':>6} {'forwards':>8} {'check':>9} {'model':>9} {'ratio':>6}")
    ratios = []
    for case in cases:
        fn, inputs, options = case.build()
        cost = _cost_model(fn, inputs, options)
        ratios.append(cost["check"] / cost["model"])
        print(f"{case.name:52} {cost['probes']:>6} {cost['evaluations']:>8} "
              f"{cost['check'] * 1000:>7.2f}ms {cost['model'] * 1000:>7.2f}ms {ratios[-1]:>5.2f}x")
    print(f"suite: median overhead {statistics.median(ratios):.2f}x, max {max(ratios):.2f}x")
    larger = []
    for name, fn, inputs in _larger_layers():
        cost = _cost_model(fn, inputs, {})
        larger.append(cost["check"] / cost["model"])
        print(f"{name:52} {cost['probes']:>6} {cost['evaluations']:>8} "
              f"{cost['check'] * 1000:>7.2f}ms {cost['model'] * 1000:>7.2f}ms {larger[-1]:>5.2f}x")
    print(f"realistic layers: max overhead {max(larger):.2f}x")


if __name__ == "__main__":
    main()

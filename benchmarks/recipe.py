"""The recipe and sanity checks on the zoo, next to neural_net_checklist; the overfit verdict by seed.

    python benchmarks/recipe.py [--seeds N] [--checklist-overfit-steps N] [--skip-checklist]
                                [--skip-overfit]

1. Every zoo case (tests/recipe/zoo.py: buggy models and correct look-alikes) through every check
   of MODEL_CHECKS that applies to it, with its defaults: bugs caught (the case's own check fails),
   false alarms (any check failing on a correct model), seconds per check (median and max).
2. The same cases through neural_net_checklist's equivalents, called as its own
   assert_all_for_* functions call them (defaults; its overfit's 65,536-step budget is cut to
   --checklist-overfit-steps). A check that raises anything but AssertionError is counted as an
   error: it could not run on that model.
3. The margins the tolerances were chosen from: the largest disallowed dependence on correct
   models against the smallest leak on buggy ones, and the baseline's loss ratios.
4. check_overfit on correct classifiers of the first 20 scikit-learn digits over --seeds seeds:
   how many the old rule (2% of the initial loss and 100% accuracy within 300 steps) failed, and
   what the verdict rests on now; and the window drop of the loss where a run stopped.

Timings run on one thread (torch.set_num_threads(1)) after a warm-up; they are printed so they can
be re-run on a quiet machine.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import io
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_nncheck import check_overfit  # noqa: E402
from pytest_nncheck import NNCheckError  # noqa: E402
from pytest_nncheck.recipe.models import MODEL_CHECKS  # noqa: E402
from pytest_nncheck.sanity.trend import loss_trend  # noqa: E402
from tests.recipe.zoo import Case, all_cases  # noqa: E402


def _row(cells: List[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(headers: List[str], rows: List[List[str]]) -> str:
    return "\n".join([_row(headers), _row(["---"] * len(headers))] + [_row(r) for r in rows])


def _seconds(values: List[float]) -> str:
    return f"{statistics.median(values):.3f} / {max(values):.3f}" if values else "-"


# --------------------------------------------------------------------------- pytest_nncheck

def run_nncheck(cases: List[Case]) -> Tuple[Dict[str, Dict[str, Any]], Dict[str, List[Any]]]:
    results: Dict[str, Dict[str, Any]] = {name: {"caught": 0, "bugs": 0, "false": 0, "correct": 0,
                                                 "seconds": [], "correct_seconds": [],
                                                 "missed": [], "alarms": []}
                                          for name in MODEL_CHECKS}
    reports: Dict[str, List[Any]] = {name: [] for name in MODEL_CHECKS}
    for case in cases:
        for name, check in MODEL_CHECKS.items():
            if not check.applies(case.spec):
                continue
            start = time.perf_counter()
            entry = results[name]
            try:
                report = check.run(case.spec, 0, "cpu")
            except NNCheckError:
                # a one-line error on the user's input (an optimizer over another model's
                # parameters) fails their test: it counts as failing this check
                report = None
            entry["seconds"].append(time.perf_counter() - start)
            if report is None:
                if case.bug == name:
                    entry["bugs"] += 1
                    entry["caught"] += 1
                elif case.bug is None:
                    entry["correct"] += 1
                    entry["false"] += 1
                    entry["alarms"].append(case.name)
                continue
            if case.bug is None:
                entry["correct_seconds"].append(entry["seconds"][-1])
            entry["slowest"] = max(entry.get("slowest", (0.0, "")), (entry["seconds"][-1], case.name))
            reports[name].append((case, report))
            if case.bug == name:
                entry["bugs"] += 1
                entry["caught"] += not report.passed
                if report.passed:
                    entry["missed"].append(case.name)
            elif case.bug is None:
                entry["correct"] += 1
                entry["false"] += not report.passed
                if not report.passed:
                    entry["alarms"].append(case.name)
    return results, reports


# --------------------------------------------------------------------------- neural_net_checklist

def _classes(case: Case) -> int:
    model, inputs, _, _ = case.spec.build(0, "cpu")
    with torch.no_grad():
        return copy.deepcopy(model).eval()(inputs).shape[-1]


class NoEquivalent(Exception):
    """neural_net_checklist has no form of this check for this model (counted as n/a)."""


def checklist_equivalents(overfit_steps: int) -> Dict[str, Callable[[Case], None]]:
    """neural_net_checklist's function(s) for each check, called on one zoo case."""
    import neural_net_checklist.torch_diagnostics as nnc

    def built(case: Case) -> Tuple[nn.Module, tuple]:
        model, inputs, targets, _ = case.spec.build(0, "cpu")
        return model, (inputs, targets)

    def factory(case: Case) -> Callable[[], nn.Module]:
        return lambda: case.spec.build(0, "cpu")[0]

    def initial_loss(case: Case) -> None:
        if isinstance(case.spec.loss_fn, nn.MSELoss):
            raise NoEquivalent("cross-entropy only")
        model, batch = built(case)
        nnc.assert_balanced_classification_cross_entropy_loss_at_init(
            model, batch, num_classes=_classes(case), loss_fn=case.spec.loss_fn)

    def overfit(case: Case) -> None:
        model, batch = built(case)
        nnc.assert_overfit_to_batch(model, batch, loss_fn=case.spec.loss_fn, max_steps=overfit_steps)

    def batch_independence(case: Case) -> None:
        nnc.assert_forward_batch_independence(factory(case), built(case)[1])
        nnc.assert_backward_batch_independence(factory(case), built(case)[1])

    def causality(case: Case) -> None:
        nnc.assert_forward_causal_property(factory(case), built(case)[1])
        nnc.assert_backward_causal_property(factory(case), built(case)[1])

    def baseline(case: Case) -> None:
        nnc.assert_input_independent_baseline_worse(factory(case), built(case)[1],
                                                    loss_fn=case.spec.loss_fn)

    def parameters_update(case: Case) -> None:
        model, batch = built(case)
        nnc.assert_non_zero_gradients(model, batch)

    return {"initial_loss": initial_loss, "overfit": overfit,
            "batch_independence": batch_independence, "causality": causality,
            "baseline": baseline, "parameters_update": parameters_update}


def run_checklist(cases: List[Case], overfit_steps: int) -> Dict[str, Dict[str, Any]]:
    equivalents = checklist_equivalents(overfit_steps)
    results = {name: {"caught": 0, "bugs": 0, "false": 0, "correct": 0, "errors": 0,
                      "seconds": [], "na": 0, "seen": []} for name in MODEL_CHECKS}
    for case in cases:
        for name, check in MODEL_CHECKS.items():
            if not check.applies(case.spec):
                continue
            entry = results[name]
            start = time.perf_counter()
            outcome = "passed"
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                try:
                    equivalents[name](case)
                except AssertionError:
                    outcome = "failed"
                except NoEquivalent:
                    outcome = "n/a"
                except Exception:  # noqa: BLE001 - any other error: it could not run here
                    outcome = "error"
            entry["seconds"].append(time.perf_counter() - start)
            kind = "bug" if case.bug == name else "correct" if case.bug is None else None
            if (outcome == "error" or (outcome == "failed" and kind == "correct")
                    or (outcome == "passed" and kind == "bug")):
                entry["seen"].append(f"{case.name} {outcome}")
            if outcome == "n/a":
                entry["na"] += 1
                continue
            entry["errors"] += outcome == "error"
            if case.bug == name:
                entry["bugs"] += 1
                entry["caught"] += outcome == "failed"
            elif case.bug is None:
                entry["correct"] += 1
                entry["false"] += outcome == "failed"
    return results


# --------------------------------------------------------------------------- margins

def margins(reports: Dict[str, List[Any]]) -> List[List[str]]:
    rows = []
    for check in ("batch_independence", "causality"):
        for form in ("backward", "forward"):
            key = f"{form}_largest_disallowed"
            correct = [r.figures.get(key, 0.0) for c, r in reports[check] if c.bug is None]
            buggy = [r.figures[key] for c, r in reports[check] if c.bug == check and key in r.figures]
            rows.append([f"{check} ({form} form, relative to its scale)",
                         f"{max(correct, default=0.0):.2e}", f"{min(buggy, default=0.0):.2e}"])
    correct = [r.figures["ratio"] for c, r in reports["baseline"] if c.bug is None]
    buggy = [r.figures["ratio"] for c, r in reports["baseline"] if c.bug == "baseline"]
    rows.append(["baseline loss ratio (real / zeroed inputs)",
                 f"{max(correct):.3f} (largest)", f"{min(buggy):.3f} (smallest)"])
    return rows


# --------------------------------------------------------------------------- overfit verdicts

def _digits() -> Tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (torch.tensor(digits.data[:20], dtype=torch.float32) / 16,
            torch.tensor(digits.target[:20]))


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def _cnn() -> nn.Module:
    return nn.Sequential(nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 16, 10))


class _Detached(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder, self.head = nn.Linear(64, 3), nn.Linear(3, 10)

    def forward(self, x):
        return self.head(torch.relu(self.encoder(x)).detach())


def _sgd(lr: float) -> Callable:
    return lambda params: torch.optim.SGD(params, lr=lr)


OVERFIT_MODELS: List[Tuple[str, Callable[[], nn.Module], Optional[Callable], bool]] = [
    ("MLP, Adam 1e-2", _mlp, None, True),
    ("MLP, SGD 0.1", _mlp, _sgd(0.1), True),
    ("logistic, Adam 1e-2", lambda: nn.Linear(64, 10), None, True),
    ("logistic, SGD 0.03", lambda: nn.Linear(64, 10), _sgd(0.03), True),
    ("CNN, Adam 1e-2", _cnn, None, True),
    ("detached encoder", _Detached, None, False),
    ("softmax before CrossEntropyLoss", lambda: nn.Sequential(_mlp(), nn.Softmax(dim=1)), None, False),
]


def overfit_verdicts(seeds: int) -> List[List[str]]:
    x, y = _digits()
    rows = []
    for name, build, optimizer, correct in OVERFIT_MODELS:
        old = new = extended = falling = 0
        steps, drops, seconds = [], [], []
        for seed in range(seeds):
            torch.manual_seed(seed)
            model = build()
            start = time.perf_counter()
            report = check_overfit(model, x, y, nn.CrossEntropyLoss(), optimizer=optimizer,
                                   device="cpu", seed=seed)
            seconds.append(time.perf_counter() - start)
            old += report.outcome.startswith("memorised: the loss reached") and report.steps <= 300
            new += report.passed
            extended += report.extended_from is not None
            falling += "loss still falling" in report.outcome
            steps.append(report.steps)
            if len(report.losses) > 1 and "reached its target" not in report.outcome:
                trend = loss_trend(report.losses, 0.0, report.target_loss)
                drops.append(1 - trend.end / trend.start)
        verdict = "passed" if correct else "failed (caught)"
        rows.append([name, "correct" if correct else "bug", f"{old}/{seeds}", f"{new}/{seeds} {verdict}",
                     str(extended), str(falling), f"{statistics.median(steps):.0f} / {max(steps)}",
                     f"{min(drops):.1%}..{max(drops):.1%}" if drops else "-",
                     f"{statistics.median(seconds):.2f}"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20, help="seeds per model in the overfit table")
    parser.add_argument("--checklist-overfit-steps", type=int, default=4500,
                        help="neural_net_checklist's overfit budget (its default is 65536)")
    parser.add_argument("--skip-checklist", action="store_true")
    parser.add_argument("--skip-overfit", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cases = all_cases()
    run_nncheck(cases[:1])  # warm-up: first-call costs are not the checks'
    results, reports = run_nncheck(cases)
    print(f"pytest_nncheck on the zoo ({sum(c.bug is not None for c in cases)} buggy models, "
          f"{sum(c.bug is None for c in cases)} correct look-alikes; torch {torch.__version__}, "
          f"1 thread)\n")
    print(_table(["check", "bugs caught", "false alarms", "seconds, correct models (median / max)",
                  "seconds, all (median / max)", "slowest"],
                 [[name, f"{r['caught']}/{r['bugs']}", f"{r['false']}/{r['correct']}",
                   _seconds(r["correct_seconds"]), _seconds(r["seconds"]), r["slowest"][1]]
                  for name, r in results.items()]))
    missed = [f"{name}: {', '.join(r['missed'])}" for name, r in results.items() if r["missed"]]
    alarms = [f"{name}: {', '.join(r['alarms'])}" for name, r in results.items() if r["alarms"]]
    print("\nmissed: " + ("; ".join(missed) or "none") + "\nfalse alarms: " + ("; ".join(alarms) or "none"))
    print("\nmargins (correct models: largest; buggy models: smallest)\n")
    print(_table(["measure", "correct models", "buggy models"], margins(reports)))
    if not args.skip_checklist:
        import importlib.metadata

        version = importlib.metadata.version("neural-net-checklist")
        checklist = run_checklist(cases, args.checklist_overfit_steps)
        print(f"\nneural_net_checklist {version} on the same zoo (overfit budget "
              f"{args.checklist_overfit_steps} steps)\n")
        print(_table(["check", "bugs caught", "false alarms", "errors (could not run)", "not applicable",
                      "seconds per check (median / max)"],
                     [[name, f"{r['caught']}/{r['bugs']}", f"{r['false']}/{r['correct']}",
                       str(r["errors"]), str(r["na"]), _seconds(r["seconds"])]
                      for name, r in checklist.items()]))
        for name, r in checklist.items():
            if r["seen"]:
                print(f"{name}: " + ", ".join(r["seen"]))
    if not args.skip_overfit:
        print(f"\ncheck_overfit on the first 20 digits, {args.seeds} seeds per model\n")
        print(_table(["model", "kind", "old rule passed", "now", "extended", "passed on accuracy + falling loss",
                      "steps (median / max)", "loss drop over the last window", "seconds (median)"],
                     overfit_verdicts(args.seeds)))


if __name__ == "__main__":
    main()

"""The gradient checkers compared on the corpus, each called the way its users call it, each call
in a forked process of its own under a time limit.

A process per call is what makes a hang (a solver that never converges, inside C code) a
time-out and a crash (a reversible layer that frees its input's storage makes gradcheck
segfault) an error of that case, instead of a stuck or dead benchmark. Children run torch on one
thread, so every tool is timed alike.

``check_gradients(fn, *inputs, **case.options)``; ``torch.autograd.gradcheck(fn, inputs)`` in
its default (slow) mode and with ``fast_mode=True``, on the same float64 inputs (a Function's
``apply`` for a Function, the module itself for a layer: gradcheck perturbs inputs only).
"""
from __future__ import annotations

import multiprocessing
import os
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Dict, Tuple

import torch
from torch.autograd.gradcheck import GradcheckError

from .case import Case, callable_of

PASSED, FAILED, INCONCLUSIVE, ERROR, TIMEOUT = "passed", "failed", "inconclusive", "error", "timeout"


@dataclass
class Outcome:
    """One tool on one case: its verdict, the time it took and the one line it gave."""

    verdict: str
    seconds: float
    reason: str = ""
    text: str = ""


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _nncheck_reason(report: Any) -> str:
    """The entry that decided the report, in one line."""
    bad = [e for e in report.entries if e.verdict not in ("ok", "excellent")]
    if getattr(report, "nondeterministic", None):
        return _first_line(report.nondeterministic)
    if not bad:
        return _first_line(report.render())
    worst = max(bad, key=lambda e: e.max_rel_error if e.verdict != "inconclusive" else -1.0)
    notes = "; ".join(report.notes)
    return (f"{worst.name}: {worst.verdict}, rel error {worst.max_rel_error:.3g} at "
            f"{worst.worst_probe} (analytic {worst.analytic:.4g}, numeric {worst.numeric:.4g})"
            + (f"; {notes}" if notes else ""))


def run_nncheck(fn: Any, inputs: Tuple[Any, ...], options: Dict[str, Any]) -> Outcome:
    from pytest_nncheck import check_gradients

    report = check_gradients(fn, *inputs, **options)
    if report.failed:
        verdict = FAILED
    elif report.passed:
        verdict = PASSED
    else:
        verdict = INCONCLUSIVE
    reason = _first_line(report.render()) if verdict == PASSED else _nncheck_reason(report)
    return Outcome(verdict, 0.0, reason, report.render())


def _gradcheck(fast: bool) -> Callable[[Any, Tuple[Any, ...], Dict[str, Any]], Outcome]:
    def run(fn: Any, inputs: Tuple[Any, ...], options: Dict[str, Any]) -> Outcome:
        try:
            torch.autograd.gradcheck(callable_of(fn), inputs, fast_mode=fast)
        except GradcheckError as error:
            return Outcome(FAILED, 0.0, _first_line(str(error)), str(error))
        return Outcome(PASSED, 0.0)
    return run


TOOLS: Dict[str, Callable[[Any, Tuple[Any, ...], Dict[str, Any]], Outcome]] = {
    "nncheck": run_nncheck,
    "gradcheck": _gradcheck(fast=False),
    "fast": _gradcheck(fast=True),
}

TOOL_NAMES = {
    "nncheck": "pytest_nncheck.check_gradients",
    "gradcheck": "torch gradcheck (slow)",
    "fast": "torch gradcheck (fast_mode)",
}


def run_tool(tool: str, case: Case) -> Outcome:
    """Build the case afresh and run one tool on it, in this process; crashes become verdicts."""
    try:
        fn, *inputs = case.build()
    except Exception as error:  # a case that cannot be built is the corpus's failure, not a tool's
        return Outcome(ERROR, 0.0, f"case did not build: {type(error).__name__}: {error}")
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            outcome = TOOLS[tool](fn, tuple(inputs), dict(case.options))
    except Exception as error:  # every crash is recorded, with its message
        message = f"{type(error).__name__}: {_first_line(str(error))}"
        return Outcome(ERROR, time.perf_counter() - start, message, message)
    outcome.seconds = time.perf_counter() - start
    return outcome


def _child(tool: str, case: Case, sender: Any) -> None:
    torch.set_num_threads(1)
    sender.send(run_tool(tool, case))
    sender.close()
    os._exit(0)  # no atexit handlers of the parent's libraries in the child


def run_isolated(tool: str, case: Case, limit: float) -> Outcome:
    """``run_tool`` in a forked child that is killed after ``limit`` seconds."""
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(tool, case, sender), daemon=True)
    start = time.perf_counter()
    process.start()
    sender.close()
    try:
        if not receiver.poll(limit):
            process.kill()
            return Outcome(TIMEOUT, time.perf_counter() - start, f"no verdict within {limit:g} s")
        return receiver.recv()
    except EOFError:  # the child died without an answer
        process.join()
        return Outcome(ERROR, time.perf_counter() - start,
                       f"the process crashed (exit code {process.exitcode})")
    finally:
        process.join()
        receiver.close()

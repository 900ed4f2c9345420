"""Narrowing a disagreement down to one tensor and one entry, by halving the probe's support.

A direction (or a joint direction over many tensors) that disagrees says that something is wrong
somewhere in its support. Directional derivatives are linear in the direction, so the discrepancy
between analytic and numeric values splits over the two halves of the support: one central
difference on one half gives both halves' discrepancies, and the half with the larger one is
followed. A single wrong entry in n is found in log2(n) steps of two forwards each (group testing).
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

from .finite_differences import central_difference
from .judge import Judge, ProbeResult, Tolerance
from .probes import Probe


def narrow(judge: Judge, result: ProbeResult, tolerance: Tolerance, names: Sequence[str],
           final_tolerance: Optional[Tolerance] = None) -> Tuple[Optional[ProbeResult], int]:
    """The coordinate (or smallest sub-probe) that carries ``result``'s disagreement.

    Halving runs at ``tolerance``'s step; the sub-probe found is judged at ``final_tolerance``
    (default ``tolerance``). Returns (that verdict, or None when the probe cannot be split;
    forwards spent).
    """
    current: Probe = result.probe
    discrepancy = result.analytic - result.central
    forwards = 0
    while True:
        halves = current.halves(names)
        if halves is None:
            break
        first, second = halves
        plus, minus = judge.values(first, (tolerance.step, -tolerance.step))
        forwards += 2
        first_discrepancy = first.analytic(judge.gradients) - central_difference(
            plus, minus, tolerance.step)
        second_discrepancy = discrepancy - first_discrepancy
        if abs(first_discrepancy) >= abs(second_discrepancy):
            current, discrepancy = first, first_discrepancy
        else:
            current, discrepancy = second, second_discrepancy
    if current is result.probe:
        return None, forwards
    final = judge.judge(current, final_tolerance or tolerance)
    forwards += 2
    return final, forwards


# Sub-probes judged at most when splitting a probe around the kinks it sits on.
SPLIT_BUDGET = 32


def split_around_kinks(judge: Judge, result: ProbeResult, tolerance: Tolerance,
                       names: Sequence[str]) -> ProbeResult:
    """Settle a direction left inconclusive because x sits on a kink of some of its entries.

    Halving the support separates the entries on the kink from the rest: a half that disagrees
    is a bug the kink was hiding (returned, so the tensor fails); when every half agrees or is
    itself a lone entry on the kink, the direction agrees as far as can be told.
    """
    pending, spent, settled = [result.probe], 0, []
    while pending and spent < SPLIT_BUDGET:
        halves = pending.pop(0).halves(names)
        if halves is None:
            continue
        for half in halves:
            verdict = judge.judge(half, tolerance)
            spent += 1
            if verdict.status == "disagree":
                return verdict
            if verdict.status == "inconclusive":
                pending.append(half)
            else:
                settled.append(verdict)
    agreeing = [r for r in settled if r.status == "agree"]
    if pending or not agreeing:
        return result
    worst = max(agreeing, key=lambda r: r.error)
    result.status, result.resolution, result.error = "agree", "halved around the kink", worst.error
    return result

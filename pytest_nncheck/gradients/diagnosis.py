"""Failure text that points at the bug: a constant factor, a flipped sign, a dropped gradient."""
from __future__ import annotations

import statistics
from typing import List, Optional

from .judge import ProbeResult

# Ratios this close to each other on every disagreeing probe are one constant factor.
SAME_RATIO = 0.02

_NAMED_RATIOS = ((0.5, "a missing factor of 2?"), (2.0, "an extra factor of 2?"),
                 (-1.0, "the sign is flipped?"), (-0.5, "the sign is flipped and a factor of 2 is "
                                                        "missing?"))


def constant_factor(results: List[ProbeResult]) -> Optional[str]:
    """'analytic ≈ 0.5 × numeric on every probe: ...' when one ratio explains every failure."""
    measured = [r for r in results if r.status in ("agree", "disagree") and r.numeric != 0]
    if len(measured) < 2 or any(r.status != "disagree" for r in measured):
        return None
    ratios = [r.analytic / r.numeric for r in measured]
    ratio = statistics.median(ratios)
    if abs(ratio) < 1e-3:
        return ("the analytic gradient is zero on every probe where the numeric one is not: is "
                "the tensor detached, or its gradient dropped in the backward?")
    if any(abs(r / ratio - 1) > SAME_RATIO for r in ratios):
        return None
    for value, meaning in _NAMED_RATIOS:
        if abs(ratio / value - 1) <= SAME_RATIO:
            return f"analytic ≈ {value:g} × numeric on every probe: {meaning}"
    return (f"analytic ≈ {ratio:.3g} × numeric on every probe: a constant factor (a scale, a "
            f"temperature, 1/(1-p), a mean over the wrong count?)")


def kink_summary(results: List[ProbeResult]) -> Optional[str]:
    """How the probes that sat at kinks were resolved."""
    at_kinks = [r for r in results if r.kink]
    if not at_kinks:
        return None
    one_sided = sum(r.status in ("agree", "disagree") for r in at_kinks)
    open_ = sum(r.status == "inconclusive" for r in at_kinks)
    text = f"{len(at_kinks)} probe{'s' if len(at_kinks) > 1 else ''} sat at kinks: {one_sided} " \
           f"compared one-sided (the side whose decisions match x)"
    return text + (f", {open_} left inconclusive (x on the kink)" if open_ else "")

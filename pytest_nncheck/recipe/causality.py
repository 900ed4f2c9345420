"""check_causality: in a sequence model, the output at position t depends on no input after t.

An autoregressive model that sees the future trains beautifully and generates garbage. The bugs
it catches: a mask off by one, ``triu`` where ``tril`` was meant, a "causal" convolution padded on
both sides, a summary of the whole sequence added to every position. The first leaking position
is named. See ``influence`` for the two forms (backward and forward) it is measured by.
"""
from __future__ import annotations

import time
from typing import Any, Callable, List, Optional, Tuple

from torch import nn

from ..reports import Problem, RecipeReport, require_passed
from .influence import Influence, measure

# Likely causes, by how far ahead the furthest leak looks: the first whose test holds is named.
CAUSES: Tuple[Tuple[Callable[[int, int], bool], str], ...] = (
    (lambda ahead, length: ahead == 1,
     "off by one: a position sees the next one (a mask shifted by one diagonal, or a kernel-3 "
     "convolution padded on both sides)"),
    (lambda ahead, length: ahead >= length - 1,
     "the whole future is visible: the mask is inverted (triu where tril was meant) or missing, "
     "or the sequence is pooled over every position"),
    (lambda ahead, length: True,
     "a position sees up to {ahead} positions ahead: a mask or padding that lets later positions "
     "in (a convolution padded on both sides: pad the left only, F.pad(x, (kernel_size - 1, 0)))"),
)


def _cause(ahead: int, length: int) -> str:
    return next(text for test, text in CAUSES if test(ahead, length)).format(ahead=ahead)


def _problems(influence: Influence) -> List[Problem]:
    return [Problem("causality-leak", f"position {leak.output} <- position {leak.source}", None,
                    leak.value,
                    f"the output at position {leak.output} depends on the input at position "
                    f"{leak.source}, {leak.source - leak.output} ahead ({leak.value:.3g} of its "
                    f"dependence on positions up to {leak.output}; seen by the "
                    f"{' and '.join(leak.forms)} form)")
            for leak in influence.leaks]


def check_causality(model: nn.Module, inputs: Any, *, dim: int = 1, seed: int = 0,
                    output_dim: Optional[int] = None) -> RecipeReport:
    """Report the first output position that depends on a later input, and every such pair.

    Every tensor input with the sequence length along ``dim`` is sliced; the outputs along
    ``output_dim`` (default: ``dim``). The model runs on a private copy in train mode, dropout
    under a fixed seed, BatchNorm in eval mode.
    """
    start = time.perf_counter()
    influence = measure(model, inputs, in_dim=dim, out_dim=output_dim,
                        allowed=lambda output, source: source <= output, what="positions",
                        seed=seed)
    report = RecipeReport(check="causality", summary="", problems=_problems(influence),
                          notes=influence.notes)
    length = influence.length
    forms = " and ".join(influence.forms)
    if report.passed:
        report.summary = f"no position depends on a later one ({length} positions, {forms} form)"
    else:
        first = min(influence.leaks, key=lambda leak: (leak.output, leak.source))
        ahead = max(leak.source - leak.output for leak in influence.leaks)
        report.summary = (f"the output at position {first.output} already depends on position "
                          f"{first.source}; {len(influence.leaks)} leaking pairs; "
                          f"{_cause(ahead, length)}")
        report.figures["first_leaking_position"] = first.output
        report.figures["lookahead"] = ahead
    report.figures.update(influence.figures("positions"))
    report.seconds = time.perf_counter() - start
    return report


def assert_causality(model: nn.Module, inputs: Any, **options: Any) -> RecipeReport:
    """``check_causality`` that raises ``AssertionError(report.render())`` when it fails."""
    __tracebackhide__ = True
    return require_passed(check_causality(model, inputs, **options))

"""check_batch_independence: the output for sample i depends on sample i alone.

Karpathy's recipe, "use backprop to chart dependencies": the gradient of sample i's output must be
zero on every other sample. The bugs it catches mix samples silently and still train: a
``view`` where a ``permute``/``transpose`` was meant, softmax or normalisation over the batch axis,
``x - x.mean(0)``. See ``influence`` for the two forms (backward and forward) it is measured by.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

from torch import nn

from ..reports import Problem, RecipeReport, require_passed
from .influence import Influence, Leak, measure


def _everyone(leaks: Sequence[Leak], samples: int) -> bool:
    sources: Dict[int, Set[int]] = {}
    for leak in leaks:
        sources.setdefault(leak.output, set()).add(leak.source)
    return all(len(found) == samples - 1 for found in sources.values())


# Likely causes, by the pattern of the leaks: the first whose test holds is named.
CAUSES: Tuple[Tuple[Callable[[Sequence[Leak], int], bool], str], ...] = (
    (_everyone, "every output depends on every other sample: a reduction over the batch axis (a "
                "mean, softmax or normalisation over dim 0, x - x.mean(0), a hand-written "
                "BatchNorm)"),
    (lambda leaks, samples: True,
     "some outputs depend on other samples: a reshape that mixes the batch with another axis "
     "(view or reshape where permute/transpose was meant, a sequence-first RNN fed batch-first)"),
)


def _cause(leaks: Sequence[Leak], samples: int) -> str:
    return next(text for test, text in CAUSES if test(leaks, samples))


def _problems(influence: Influence) -> List[Problem]:
    return [Problem("batch-leak", f"output {leak.output} <- sample {leak.source}", None, leak.value,
                    f"the output for sample {leak.output} depends on sample {leak.source} "
                    f"({leak.value:.3g} of its dependence on its own input; "
                    f"seen by the {' and '.join(leak.forms)} form)")
            for leak in influence.leaks]


def check_batch_independence(model: nn.Module, inputs: Any, *, dim: int = 0, seed: int = 0,
                             output_dim: Optional[int] = None) -> RecipeReport:
    """Report the sample pairs whose outputs depend on each other, and by how much.

    Every tensor input with the batch size along ``dim`` is sliced; the outputs are sliced along
    ``output_dim`` (default: ``dim``). The model runs on a private copy in train mode, dropout
    under a fixed seed, BatchNorm in eval mode (it mixes the batch by design in train mode).
    """
    start = time.perf_counter()
    influence = measure(model, inputs, in_dim=dim, out_dim=output_dim,
                        allowed=lambda output, source: output == source, what="samples", seed=seed)
    report = RecipeReport(check="batch independence", summary="", problems=_problems(influence),
                          notes=influence.notes)
    samples = influence.length
    forms = " and ".join(influence.forms)
    if report.passed:
        report.summary = f"no output depends on another sample ({samples} samples, {forms} form)"
    else:
        worst = max(influence.leaks, key=lambda leak: leak.value)
        report.summary = (f"{len(influence.leaks)} sample pairs leak (worst: output {worst.output} "
                          f"<- sample {worst.source}, {worst.value:.3g}); "
                          f"{_cause(influence.leaks, samples)}")
    report.figures = influence.figures("samples")
    report.seconds = time.perf_counter() - start
    return report


def assert_batch_independence(model: nn.Module, inputs: Any, **options: Any) -> RecipeReport:
    """``check_batch_independence`` that raises ``AssertionError(report.render())`` when it fails."""
    __tracebackhide__ = True
    return require_passed(check_batch_independence(model, inputs, **options))

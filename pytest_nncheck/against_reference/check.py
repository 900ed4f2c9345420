"""check_against_reference: a fused or low-precision kernel against a float64 reference.

Three runs from the same inputs and the same seed, each on private copies: fn as it is (or
converted to ``dtype``), the reference in float64 (the truth) and the reference in fn's precision
(the round-off any implementation in that precision pays). The float64 run gets fn's inputs and
parameters upcast, so rounding the inputs to fn's precision is not counted as fn's error.
"""
from __future__ import annotations

import math
from typing import Any, List, Mapping, Optional, Union

import torch

from ..devices import resolve_device
from ..errors import NNCheckError
from ..gradients.seeded import preserved_rng_state
from ..gradients.subject import Subject
from ..reports import CheckFailed, ReferenceEntry, ReferenceReport
from .comparison import DEFAULT_K, compare, default_floor
from .construction import build_reference
from .evaluation import Evaluation, evaluate


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def resolve_dtype(dtype: Union[None, str, torch.dtype]) -> Optional[torch.dtype]:
    """``dtype`` as given to the check: None (fn's own), a floating dtype or its name."""
    resolved = getattr(torch, dtype, None) if isinstance(dtype, str) else dtype
    if dtype is None or (isinstance(resolved, torch.dtype) and resolved.is_floating_point):
        return resolved
    raise NNCheckError(f"dtype={dtype!r} is not a floating dtype; use None (fn's own precision), "
                       f"torch.bfloat16, torch.float16 or torch.float32")


def _lowest_precision(run: Evaluation, subject: Subject) -> torch.dtype:
    """The coarsest floating dtype among fn's outputs and the tensors it differentiates."""
    dtypes = [value.dtype for _, value in run.outputs] + [c.tensor.dtype for c in subject.checked]
    return max(dtypes, key=lambda dtype: torch.finfo(dtype).eps)


def _parameter_names(subject: Subject) -> set:
    return {name for name, _ in subject.module.named_parameters()} if subject.module else set()


def _require_parameters_reached(subject: Subject, fn_run: Evaluation, truth: Evaluation) -> None:
    """A parameter fn uses and the reference never touches is a wiring mistake, not a bug in fn."""
    parameters = _parameter_names(subject)
    for checked, gradient, reference in zip(subject.checked, fn_run.gradients, truth.gradients):
        if checked.name in parameters and gradient is not None and reference is None:
            raise NNCheckError(
                f"the reference never uses fn's parameter {checked.name!r} (no gradient reaches "
                f"it): give the reference a parameter of that name, map one onto it with "
                f"parameters={{{checked.name!r}: '<reference parameter>'}}, or pass a factory "
                f"that builds the reference from layer.{checked.name}")


def _entries(subject: Subject, runs: List[Evaluation], k: float,
             floor: float) -> List[ReferenceEntry]:
    fn_run, truth, low = runs
    entries = [compare(name, value, truth_value, low_value, k, floor)
               for (name, value), (_, truth_value), (_, low_value)
               in zip(fn_run.outputs, truth.outputs, low.outputs)]
    for position, checked in enumerate(subject.checked):
        tensor = checked.tensor
        value, truth_value, low_value = (
            torch.zeros_like(tensor) if run.gradients[position] is None
            else run.gradients[position] for run in runs)
        entries.append(compare(f"{checked.name}.grad", value, truth_value, low_value, k, floor))
    return entries


def _notes(precision: torch.dtype, truth: Evaluation) -> List[str]:
    """What limits the verdicts: a float64 fn, or a reference that is not float64 inside."""
    notes = []
    if precision == torch.float64:
        notes.append("fn ran in float64, where the reference's own run is the truth and only the "
                     "floor bounds fn; pass dtype=torch.bfloat16 (or the precision the kernel is "
                     "meant for) to check its round-off")
    lower = [f"{name} ({_dtype_name(value.dtype)})" for name, value in truth.outputs
             if value.dtype != torch.float64]
    if lower:
        notes.append(f"the reference's float64 run returned {', '.join(lower)}: it rounds inside, "
                     f"so its errors are not measured against float64; make it compute in its "
                     f"inputs' dtype")
    return notes


def check_against_reference(fn: Any, reference: Any, *inputs: Any,
                            dtype: Union[None, str, torch.dtype] = None, device: str = "auto",
                            seed: int = 0, parameters: Optional[Mapping[str, str]] = None,
                            k: float = DEFAULT_K, floor: Optional[float] = None) -> ReferenceReport:
    """Compare ``fn``'s outputs and gradients with ``reference`` in float64, per tensor.

    ``fn`` runs as it is (its dtypes), or converted to ``dtype``; the reference runs in float64
    and in fn's precision (the coarsest dtype among fn's outputs and differentiated tensors, or
    ``dtype``). A tensor passes when fn's largest error against float64 is at most ``k`` times
    the low-precision reference's plus ``floor`` times the tensor's largest |float64| value
    (default by precision: half an epsilon in bfloat16 and float16, 1e-5 in float32).
    Gradients are those of every input that requires grad and every parameter of a module fn,
    for a fixed random projection of the outputs. ``reference`` is built as
    ``against_reference.construction`` describes; ``parameters`` maps fn's parameter names onto
    the reference module's where they differ. ``device="auto"`` runs on CUDA when present. The
    caller's objects and random states are never changed.
    """
    precision = resolve_dtype(dtype)
    if not (k > 0 and math.isfinite(k)):
        raise NNCheckError(f"k={k} must be a positive number (FlashAttention's tests use 2)")
    if floor is not None and not (floor >= 0 and math.isfinite(floor)):
        raise NNCheckError(f"floor={floor} must be >= 0 (a fraction of each tensor's largest "
                           f"value) or None for the precision's default")
    mapping = dict(parameters or {})
    target = resolve_device(device)
    with preserved_rng_state():
        subject = Subject(fn, inputs, precision, seed, device=target, forward_only_ok=True)
        # The reference runs copy fn's inputs and layer before fn runs: fn may write into them.
        origin = subject.module if subject.module is not None else fn
        truth_subject = Subject(origin, subject.inputs, torch.float64, seed, device=target,
                                forward_only_ok=True)
        low_subject = Subject(origin, subject.inputs, None, seed, device=target,
                              forward_only_ok=True)
        fn_run = evaluate(subject, "fn")
        precision = precision or _lowest_precision(fn_run, subject)
        runs = [fn_run]
        for run_subject, run_dtype in ((truth_subject, torch.float64), (low_subject, precision)):
            call = build_reference(reference, run_subject.module, run_dtype, target, mapping)
            runs.append(evaluate(run_subject.with_function(call),
                                 f"the reference in {_dtype_name(run_dtype)}", fn_run))
        _require_parameters_reached(subject, fn_run, runs[1])
        floor = default_floor(precision) if floor is None else float(floor)
        entries = _entries(subject, runs, k, floor)
    return ReferenceReport(entries=entries, dtype=_dtype_name(precision), device=str(target),
                           k=k, floor=floor, notes=_notes(precision, runs[1]))


def assert_against_reference(fn: Any, reference: Any, *inputs: Any,
                             **options: Any) -> ReferenceReport:
    """``check_against_reference`` that raises ``AssertionError(report.render())`` on failure.

    An inconclusive report (the low-precision reference itself overflowed) is returned, not
    raised; ``report.passed`` is False.
    """
    __tracebackhide__ = True
    report = check_against_reference(fn, reference, *inputs, **options)
    if report.failed:
        raise CheckFailed(report)
    return report

"""Inferring an example for a layer nobody registered one for: the first candidate that runs wins.

Each candidate (see ``candidates``) is built and its forward run once, cheaply (float64, no
grad); a candidate whose constructor or forward raises, or whose output is not a finite floating
tensor, is passed over. When none runs, CannotBuild says what was tried, the last error, the
forward's signature and the registration line to add.
"""
from __future__ import annotations

import inspect
import itertools
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from torch import nn

from ..gradients.seeded import preserved_rng_state
from .candidates import (CONSTRUCTIONS, ROLES_NEEDED_DESPITE_DEFAULT, constructor_arguments,
                         fillable, input_candidates, plan_inputs, role_of)
from .examples import Example, is_function_class, tensors_by_path
from .layers import Layer

# Forwards tried per layer before giving up, shared equally by its distinct constructions: 32 covers
# the seven layouts under each of four constructions, or every layout and channel count of a
# parameter-free layer; a failing forward of a small layer costs about a millisecond
# (benchmarks/real_libraries.py prints the seconds spent per library).
MAX_CANDIDATES = 32
# Candidates named in a skip message, besides the last one.
LISTED_CANDIDATES = 4


class CannotBuild(Exception):
    """No example could be inferred. The message lists what is missing or what was tried, the
    forward's signature and the line that registers an example; ``missing`` holds the
    constructor arguments nothing could fill, ``tried`` the candidates that were run."""

    def __init__(self, message: str, missing: Sequence[str] = (),
                 tried: Sequence[str] = (), last_error: Optional[str] = None) -> None:
        super().__init__(message)
        self.missing = tuple(missing)
        self.tried = tuple(tried)
        self.last_error = last_error


@dataclass(frozen=True)
class ForwardSignature:
    """What a layer's forward takes: the text shown to users, and the inputs to build."""

    text: str
    inputs: Tuple[str, ...]  # required positional parameters (one for a bare *args), and
    # defaulted ones a layer cannot run without (a relational convolution's edge_type)
    keyword_only: Tuple[str, ...]  # required keyword-only parameters, which nothing fills


def _parameter_text(parameter: inspect.Parameter) -> str:
    prefix = {parameter.VAR_POSITIONAL: "*", parameter.VAR_KEYWORD: "**"}.get(parameter.kind, "")
    if parameter.default is parameter.empty:
        return f"{prefix}{parameter.name}"
    default = repr(parameter.default)
    return f"{parameter.name}={default if len(default) <= 20 else '...'}"


def _signature_text(name: str, parameters: Sequence[inspect.Parameter]) -> str:
    texts: List[str] = []
    for parameter in parameters:
        if parameter.kind == parameter.KEYWORD_ONLY and not any(
                t.startswith("*") for t in texts):
            texts.append("*")
        texts.append(_parameter_text(parameter))
    return f"{name}({', '.join(texts)})"


def _own_parameters(function: Any, bound: bool) -> List[inspect.Parameter]:
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):  # builtins without a signature
        return []
    return parameters[1:] if bound and parameters else parameters


def forward_signature(layer: Layer) -> ForwardSignature:
    """The forward's parameters after ``self`` (or ``ctx``, unless ``setup_context`` is used)."""
    takes_ctx = layer.kind == "module" or getattr(layer.cls, "setup_context", None) is getattr(
        torch.autograd.Function, "setup_context", None)
    parameters = _own_parameters(layer.cls.forward, bound=takes_ctx)
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = tuple(p.name for p in positional if p.default is p.empty)
    for parameter in positional[len(required):]:  # defaulted ones the layer cannot run without
        if role_of(parameter.name) not in ROLES_NEEDED_DESPITE_DEFAULT:
            break
        required += (parameter.name,)
    if not required and any(p.kind == p.VAR_POSITIONAL for p in parameters):
        required = ("input",)
    keyword_only = tuple(p.name for p in parameters
                         if p.kind == p.KEYWORD_ONLY and p.default is p.empty)
    return ForwardSignature(_signature_text("forward", parameters), required, keyword_only)


def constructor_parameters(cls: type) -> List[inspect.Parameter]:
    return [p for p in _own_parameters(cls.__init__, bound=True)
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def _output_problem(output: Any) -> Optional[str]:
    tensors = [t for _, t in tensors_by_path(output, "output")]
    floating = [t for t in tensors if t.is_floating_point() and t.numel() > 0]
    if not floating:
        return f"the output has no non-empty floating tensor (got {type(output).__name__})"
    if not all(bool(torch.isfinite(t).all()) for t in floating):
        return "the output contains NaN or Inf"
    return None


def error_line(error: BaseException) -> str:
    """``Type: first line of the message``, for one-line reports of the user's exceptions."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:200] if text else ''}".rstrip(": ")


def forward_problem(example: Example) -> Optional[str]:
    """Why one forward of ``example`` (no grad) gives nothing to check, or None when it runs.

    The caller's random states are restored; the forward may still update the example's own
    buffers (BatchNorm statistics), which the gradient check restores before every evaluation.
    """
    fn = example.function()
    call = fn.apply if is_function_class(fn) else fn
    try:
        with preserved_rng_state(), torch.no_grad():
            output = call(*example.inputs)
    except Exception as error:  # the layer's forward may raise anything
        return error_line(error)
    return _output_problem(output)


def _instantiate(cls: type, parameters: Sequence[inspect.Parameter], arguments: Mapping[str, Any],
                 dtype: torch.dtype) -> nn.Module:
    positional_only = [p.name for p in parameters if p.kind == p.POSITIONAL_ONLY]
    positional = [arguments[name] for name in positional_only if name in arguments]
    keywords = {k: v for k, v in arguments.items() if k not in positional_only}
    return cls(*positional, **keywords).to(dtype)


def _call_text(name: str, arguments: Mapping[str, Any]) -> str:
    return f"{name}({', '.join(f'{k}={v!r}' for k, v in arguments.items())})"


def _distinct_arguments(parameters: Sequence[inspect.Parameter]) -> List[Dict[str, Any]]:
    """The constructor arguments of each construction, those equal to an earlier one left out."""
    distinct: List[Dict[str, Any]] = []
    for construction in CONSTRUCTIONS:
        arguments = constructor_arguments(parameters, construction)
        if not any(_same_arguments(arguments, earlier) for earlier in distinct):
            distinct.append(arguments)
    return distinct


def _same_arguments(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return a.keys() == b.keys() and all(repr(a[k]) == repr(b[k]) for k in a)


# What the registration line shows for each forward argument, by its role.
HINT_VALUES = {
    "like input": "torch.randn(..., dtype=torch.float64, requires_grad=True)",
    "edges": "torch.randint(0, num_nodes, (2, num_edges))",
    "relations": "torch.randint(0, num_relations, (num_edges,))",
    "positions": "torch.randn(num_nodes, 3, dtype=torch.float64)",
    "target": "target",
}


def registration_hint(layer: Layer, forward: ForwardSignature,
                      constructor_missing: Sequence[str] = ()) -> str:
    """The line that registers an example; a Function is given as its class, not an instance,
    and required keyword-only forward arguments as ``forward_kwargs``."""
    roles = ["like input"] + [role_of(name) for name in forward.inputs[1:]]
    inputs = ", ".join(HINT_VALUES[role] for role in roles)
    if layer.kind == "function":
        built = layer.name
    else:
        arguments = ", ".join(f"{name}=..." for name in constructor_missing) or "..."
        built = f"{layer.name}({arguments})"
    keywords = ""
    if forward.keyword_only:
        listed = ", ".join(f"{name!r}: ..." for name in forward.keyword_only)
        keywords = f", forward_kwargs={{{listed}}}"
    return (f"register one: @pytest_nncheck.example(lambda: ({built}, {inputs}){keywords}) on the "
            f"class, or return {{\"{layer.qualified}\": factory}} from "
            f"pytest_nncheck_examples(config) in conftest.py")


def _cannot_build(layer: Layer, forward: ForwardSignature, reason: str,
                  constructor_missing: Sequence[str] = (), **details: Any) -> CannotBuild:
    message = (f"cannot infer an example for {layer.qualified}: {reason}; {forward.text}; "
               f"{registration_hint(layer, forward, constructor_missing)}")
    return CannotBuild(message, **details)


def _tried_text(tried: Sequence[str], last_error: Optional[str]) -> str:
    listed = list(tried[:LISTED_CANDIDATES])
    more = len(tried) - len(listed)
    text = f"no candidate ran (tried {len(tried)}: {'; '.join(listed)}"
    text += f"; ... {more} more" if more > 0 else ""
    return text + (f"; last error: {last_error})" if last_error else ")")


def infer_example(layer: Layer, options: Mapping[str, Any]) -> Example:
    """The first candidate example that runs, carrying ``options``; CannotBuild when none does.

    Each distinct construction gets an equal share of MAX_CANDIDATES input candidates, so that a
    constructor that only works in its alternative form is still reached.
    """
    forward = forward_signature(layer)
    if forward.keyword_only:
        raise _cannot_build(layer, forward, f"its forward needs keyword-only "
                                            f"{', '.join(forward.keyword_only)}",
                            missing=forward.keyword_only)
    parameters = constructor_parameters(layer.cls) if layer.kind == "module" else []
    missing = [p.name for p in parameters if p.default is p.empty and not fillable(p.name)]
    if missing:
        raise _cannot_build(layer, forward, f"its constructor needs {', '.join(missing)} (no "
                                            f"default, and not a size, head count or other "
                                            f"argument nncheck fills in)",
                            constructor_missing=missing, missing=missing)
    dtype = options.get("dtype", torch.float64)
    defaults = {p.name: p.default for p in parameters if p.default is not p.empty}
    roles = [role_of(name) for name in forward.inputs]
    calls = _distinct_arguments(parameters) if layer.kind == "module" else [{}]
    share = max(1, MAX_CANDIDATES // len(calls))
    tried: List[str] = []
    last_error: Optional[str] = None
    for arguments in calls:
        if layer.kind == "function":
            fn, call = layer.cls, layer.name
        else:
            call = _call_text(layer.name, arguments)
            try:
                fn = _instantiate(layer.cls, parameters, arguments, dtype)
            except Exception as error:  # a constructor may raise anything
                tried.append(f"{call} raised {error_line(error)}")
                continue
        parameter_free = isinstance(fn, nn.Module) and next(fn.parameters(), None) is None
        plan = plan_inputs(layer.name, fn, {**defaults, **arguments}, roles, parameter_free,
                           dtype)
        for inputs, shown in itertools.islice(input_candidates(plan, forward.inputs), share):
            example = Example(fn, inputs, dict(options), explicit=False,
                              description=f"{call} on {shown}")
            last_error = forward_problem(example)
            if last_error is None:
                return example
            tried.append(example.description)
    raise _cannot_build(layer, forward, _tried_text(tried, last_error or tried[-1]), tried=tried,
                        last_error=last_error or tried[-1])

"""The thing under check: a private, dtype-converted copy of ``fn`` and its inputs.

The checker perturbs tensors in place and runs many forwards; doing that on copies is what keeps
the caller's module, tensors, buffers, dtype and device exactly as they were. Every evaluation
starts from the same state: buffers restored (BatchNorm running statistics), random generators
reseeded, inputs handed over in fresh containers with fresh copies of the tensors that are not
checked (a forward that pops from an input list or writes into a mask sees the original each time),
and the default dtype set to the check's, so tensors the forward creates (``torch.zeros(n)``,
``torch.Tensor(ndarray)``) are in the check's precision too.
"""
from __future__ import annotations

import contextlib
import copy
import inspect
import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import torch
from torch import nn

from ..errors import NNCheckError, NNCheckInternalError
from .observer import ForwardObserver
from .seeded import generators_used, reseed, rng_fingerprint


@dataclass
class CheckedTensor:
    """A leaf tensor whose gradient is checked, with the name the report shows."""

    name: str
    tensor: torch.Tensor


class _Fresh:
    """A tensor that is not checked: every evaluation gets its own copy of it."""

    def __init__(self, tensor: torch.Tensor) -> None:
        self.tensor = tensor


# Every message torch (and common kernels) give for a float64 tensor meeting a float32 one.
_DTYPE_MISMATCH = re.compile(
    r"(double|float64).*(float\b|float32|floattensor|half)|(float\b|float32|floattensor).*"
    r"(double|float64)|same dtype|scalar type|to type float|dtype mismatch|expected float",
    re.IGNORECASE)


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {getattr(value, 'dtype', '')}".strip()


def _as_callable(fn: Any) -> Tuple[Callable, Optional[nn.Module]]:
    if isinstance(fn, nn.Module):
        return fn, fn
    if inspect.isclass(fn) and issubclass(fn, torch.autograd.Function):
        return fn.apply, None
    if isinstance(fn, torch.autograd.Function):
        raise NNCheckError(f"fn is an instance of {type(fn).__name__}; pass the class itself "
                           f"(check_gradients({type(fn).__name__}, ...)), whose .apply is called")
    if callable(fn):
        return fn, None
    raise NNCheckError(f"fn must be an nn.Module, an autograd.Function subclass or a callable, "
                       f"got {type(fn).__name__}")


def _converted(tensor: torch.Tensor, dtype: Optional[torch.dtype],
               device: Optional[torch.device] = None) -> torch.Tensor:
    """``tensor`` on ``device``, and in ``dtype`` when floating (None keeps its own dtype)."""
    return tensor.to(device=device, dtype=dtype if tensor.is_floating_point() else None)


def _private_module(module: nn.Module, dtype: Optional[torch.dtype],
                    device: Optional[torch.device] = None):
    """(callable, copy or None, named parameters, buffers) of a private copy in ``dtype``.

    A module that cannot be deep-copied (a custom ``__new__``, an open file, a lock) is called
    functionally instead: its own parameters and buffers are swapped for private copies during
    each call, and put back after it.
    """
    for name, tensor in [*module.named_parameters(), *module.named_buffers()]:
        if tensor.device.type == "meta":
            raise NNCheckError(f"{name} is on the meta device and holds no values; materialise "
                               f"the module first (module.to_empty(device='cpu') and initialise it)")
    try:
        duplicate = copy.deepcopy(module)
    except Exception:  # deepcopy failures come in every type; fall back to a functional call
        return _functional_copy(module, dtype, device)
    duplicate = duplicate.to(device=device, dtype=dtype)
    return duplicate, duplicate, list(duplicate.named_parameters()), list(duplicate.buffers())


def copy_module(module: nn.Module) -> nn.Module:
    """A deep copy of ``module``, or one clear line saying why there cannot be one."""
    try:
        return copy.deepcopy(module)
    except Exception as error:  # deepcopy failures come in every type
        raise NNCheckError(f"could not copy {type(module).__name__} ({error}); make it "
                           f"deep-copyable or pass a factory that builds it") from error


def _functional_copy(module: nn.Module, dtype: Optional[torch.dtype],
                     device: Optional[torch.device]):
    from torch.func import functional_call

    with torch.no_grad():
        parameters = {name: _converted(p.detach(), dtype, device).clone()
                      .requires_grad_(p.requires_grad) for name, p in module.named_parameters()}
        buffers = {name: _converted(b.detach(), dtype, device).clone()
                   for name, b in module.named_buffers()}
    tensors = {**parameters, **buffers}

    def call(*args: Any, **kwargs: Any) -> Any:
        return functional_call(module, tensors, args, kwargs)

    return call, None, list(parameters.items()), list(buffers.values())


def _prepare_input(name: str, value: Any, dtype: Optional[torch.dtype],
                   checked: List[CheckedTensor], device: Optional[torch.device] = None) -> Any:
    """A private template of one input; floating tensors that require grad join ``checked``.

    ``dtype=None`` keeps each tensor's own dtype; ``device`` moves it (None: it stays). Lists,
    tuples (named ones too) and dicts are copied element by element, so a layer that takes
    ``{"query": q, "key": k}`` has ``input[0]['query']`` checked.
    """
    if isinstance(value, torch.Tensor):
        if value.device.type == "meta":
            raise NNCheckError(f"{name} is on the meta device and holds no values; create it on a "
                               f"real device, e.g. torch.randn(..., dtype=torch.float64)")
        if value.is_complex():
            raise NNCheckError(f"{name} is complex ({value.dtype}); check the real and "
                               f"imaginary parts as separate real inputs")
        if value.layout != torch.strided:
            value = value.to_dense()
        if not value.is_floating_point() or not value.requires_grad:
            return _Fresh(_converted(value.detach(), dtype, device).clone())
        if value.numel() == 0:
            raise NNCheckError(f"{name} is empty (shape {tuple(value.shape)}): there is nothing to "
                               f"perturb; give it at least one element")
        private = _converted(value.detach(), dtype, device).clone().requires_grad_()
        checked.append(CheckedTensor(name, private))
        return private
    if isinstance(value, dict):
        return type(value)((key, _prepare_input(f"{name}[{key!r}]", item, dtype, checked, device))
                           for key, item in value.items())
    if isinstance(value, (list, tuple)):
        items = [_prepare_input(f"{name}[{i}]", item, dtype, checked, device)
                 for i, item in enumerate(value)]
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
    return value


def _fresh(template: Any, replace: Optional[Dict[int, torch.Tensor]] = None) -> Any:
    """A new instance of the input structure: new containers, new copies of every tensor.

    ``replace`` maps ``id`` of a checked tensor to what to pass instead (a forward-mode dual).
    """
    if isinstance(template, _Fresh):
        return template.tensor.clone()
    if isinstance(template, torch.Tensor):
        # A checked input goes in as a clone joined to it by the graph: a forward that writes
        # into its input, or frees it to save memory (invertible blocks), leaves ours intact.
        return replace[id(template)] if replace and id(template) in replace else template.clone()
    if isinstance(template, dict):
        return type(template)((key, _fresh(item, replace)) for key, item in template.items())
    if isinstance(template, (list, tuple)):
        items = [_fresh(item, replace) for item in template]
        return type(template)(*items) if hasattr(template, "_fields") else type(template)(items)
    return template


def _flatten_outputs(result: Any, found: List[Any]) -> None:
    if isinstance(result, dict):
        for value in result.values():
            _flatten_outputs(value, found)
    elif isinstance(result, (tuple, list)):
        for value in result:
            _flatten_outputs(value, found)
    else:
        found.append(result)


_NO_CONTEXT = contextlib.nullcontext()


@contextlib.contextmanager
def _default_dtype(dtype: Optional[torch.dtype]) -> Iterator[None]:
    previous = torch.get_default_dtype()
    if dtype is None or dtype == previous:
        yield
        return
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def _grad_mode(enabled: bool) -> Any:
    return _NO_CONTEXT if torch.is_grad_enabled() == enabled else torch.set_grad_enabled(enabled)


class Subject:
    """``fn`` prepared for checking: copies in ``dtype``, the tensors to check, seeded forwards.

    ``dtype=None`` keeps every tensor's own dtype; ``device`` moves the copies (None: they stay).
    With ``forward_only_ok``, having no tensor to differentiate is not an error.
    """

    def __init__(self, fn: Any, inputs: Sequence[Any], dtype: Optional[torch.dtype], seed: int,
                 forward_kwargs: Optional[Dict[str, Any]] = None,
                 device: Optional[torch.device] = None, forward_only_ok: bool = False) -> None:
        call, module = _as_callable(fn)
        self.seed = seed
        self.dtype = dtype
        self.is_function = inspect.isclass(fn) and issubclass(fn, torch.autograd.Function)
        self.function_class = fn if self.is_function else None
        self.checked: List[CheckedTensor] = []
        self._template: List[Any] = [_prepare_input(f"input[{index}]", value, dtype, self.checked,
                                                    device) for index, value in enumerate(inputs)]
        self._kwargs = _prepare_input("kwargs", dict(forward_kwargs or {}), dtype, self.checked,
                                      device)
        buffers: List[torch.Tensor] = []
        self.module: Optional[nn.Module] = None
        self.call = call
        self.integer_inputs = [f"input[{i}] is {v.dtype}" for i, v in enumerate(inputs)
                               if isinstance(v, torch.Tensor) and not v.is_floating_point()
                               and not v.is_complex()]
        if module is not None:
            self.call, self.module, parameters, buffers = _private_module(module, dtype, device)
            self.checked += [CheckedTensor(name, p) for name, p in parameters
                             if p.requires_grad and p.numel() > 0]
        self._buffers = [(b, b.detach().clone()) for b in buffers]
        if not self.checked and not forward_only_ok:
            self._raise_nothing_to_check(inputs)
        self._checked_values = [c.tensor.detach().clone() for c in self.checked]
        self.projection: Optional[List[Optional[torch.Tensor]]] = None
        # (torch, numpy, random): until a forward is seen not to draw from a generator, every
        # evaluation reseeds it.
        self.generators = (True, True, True)
        # Forwards that call autograd inside (a Function using autograd.grad, a gradient penalty)
        # need grad mode in every evaluation.
        self.grad_in_forward = False
        self._forwards = [0]  # shared with the copies made by with_function and reprojected
        # The output projection's seed; reprojected() draws another.
        self.projection_seed = seed + 7919
        self.output_name = "fn's output"
        self.graph_breakers = "a .detach(), .item(), .numpy() or torch.no_grad in the forward?"

    @property
    def inputs(self) -> List[Any]:
        """A fresh instance of the inputs, for callers that run ``call`` themselves."""
        return _fresh(self._template)

    @property
    def names(self) -> List[str]:
        return [c.name for c in self.checked]

    @property
    def tensors(self) -> List[torch.Tensor]:
        return [c.tensor for c in self.checked]

    def _raise_nothing_to_check(self, inputs: Sequence[Any]) -> None:
        if self.integer_inputs:
            raise NNCheckError(
                f"nothing to check: {self.integer_inputs[0]}, and gradients exist only for "
                f"floating tensors; pass x.double().requires_grad_() for the inputs to check")
        raise NNCheckError("nothing to check: no input requires grad and fn has no parameters "
                           "that require grad; call .requires_grad_() on the inputs to check")

    def with_function(self, call: Callable) -> "Subject":
        """The same copies and checked tensors, evaluated through another callable."""
        other = copy.copy(self)
        other.call = call
        other.projection = None
        return other

    def reprojected(self, number: int) -> "Subject":
        """The same copies and checked tensors under another random projection of the outputs."""
        other = copy.copy(self)
        other.projection = None
        other.projection_seed = self.projection_seed + 104729 * number
        return other

    @property
    def forwards(self) -> int:
        """Evaluations of fn so far, by this subject and the copies made from it."""
        return self._forwards[0]

    def changed_by_forward(self) -> Optional[str]:
        """The name of a checked tensor the forward wrote into, if any."""
        for checked, saved in zip(self.checked, self._checked_values):
            if not torch.equal(checked.tensor.detach(), saved):
                return checked.name
        return None

    def _restore_buffers(self) -> None:
        with torch.no_grad():
            for buffer, saved in self._buffers:
                buffer.copy_(saved)

    def outputs(self, watchers: Optional[List[Any]] = None, grad: bool = False,
                detect_randomness: bool = False,
                replace: Optional[Dict[int, torch.Tensor]] = None) -> List[torch.Tensor]:
        """Run the forward from the frozen seed and return its floating outputs, flattened.

        ``watchers`` see every op (decisions, precision). With ``detect_randomness``, also learn
        which generators the forward draws from; later evaluations reseed only those.
        ``replace`` swaps checked input tensors for others (forward-mode duals).
        """
        self._forwards[0] += 1
        if self._buffers:
            self._restore_buffers()
        if any(self.generators):
            reseed(self.seed, self.generators)
        before = rng_fingerprint() if detect_randomness else None
        observer = ForwardObserver(watchers) if watchers else None
        try:
            # The inputs are copied inside the grad mode and the observer, so that the copies stay
            # joined to the checked tensors, and the watchers follow them through the copy. The
            # modes are only switched when they differ: this runs for every probe.
            with _default_dtype(self.dtype), _grad_mode(grad or self.grad_in_forward), \
                    observer if observer is not None else _NO_CONTEXT:
                result = self.call(*_fresh(self._template, replace),
                                   **_fresh(self._kwargs, replace))
        except (NNCheckError, NNCheckInternalError):
            raise
        except Exception as error:
            if observer is not None and observer.failure is not None:
                raise NNCheckInternalError("watching the forward", observer.failure) from error
            raise self.forward_error(error) from error
        if observer is not None and observer.failure is not None:
            raise NNCheckInternalError("watching the forward", observer.failure)
        if before is not None:
            self.generators = generators_used(before, rng_fingerprint())
        return self._floating_outputs(result)

    def value(self, watchers: Optional[List[Any]] = None) -> float:
        """The projected scalar of one evaluation, without gradients."""
        with _grad_mode(self.grad_in_forward):
            return float(self.scalar(self.outputs(watchers)).detach())

    def forward_error(self, error: Exception, where: str = "forward") -> NNCheckError:
        text = str(error).strip().splitlines()[0] if str(error).strip() else ""
        if _DTYPE_MISMATCH.search(text):
            if self.integer_inputs:
                return NNCheckError(
                    f"fn raised {type(error).__name__} in the {where} ({text}); "
                    f"{self.integer_inputs[0]}, which is passed through unchanged: if the layer "
                    f"expects a floating input, pass x.double(); if it expects indices, make sure "
                    f"the layer casts them itself")
            if self.dtype == torch.float64:
                return NNCheckError(
                    f"fn cannot run in float64 ({type(error).__name__}: {text}); pass "
                    f"dtype=torch.float32 to check in single precision (looser eps and tolerance, "
                    f"report marked low precision)")
        return NNCheckError(f"fn raised {type(error).__name__} in the {where}: {text}")

    @staticmethod
    def _floating_outputs(result: Any) -> List[torch.Tensor]:
        values: List[Any] = []
        _flatten_outputs(result, values)
        floating = [v if v.layout == torch.strided else v.to_dense() for v in values
                    if isinstance(v, torch.Tensor) and v.is_floating_point()]
        if not floating:
            raise NNCheckError(f"fn returned {', '.join(_describe(v) for v in values) or 'nothing'}; "
                               f"a gradient check needs a floating tensor output (or a tuple of them)")
        return floating

    def weights(self, outputs: List[torch.Tensor]) -> List[Optional[torch.Tensor]]:
        """The fixed random projection of the outputs (None keeps a lone scalar output as is)."""
        if self.projection is None:
            generator = torch.Generator().manual_seed(self.projection_seed)
            self.projection = [None if o.numel() == 1 and len(outputs) == 1 else
                               torch.randn(o.shape, generator=generator, dtype=torch.float64)
                               .to(dtype=o.dtype, device=o.device) for o in outputs]
        if len(self.projection) != len(outputs):
            raise NNCheckError(f"fn returned {len(outputs)} floating outputs here and "
                               f"{len(self.projection)} at the unperturbed input: its outputs must "
                               f"not depend on the input values")
        return self.projection

    def scalar(self, outputs: List[torch.Tensor]) -> torch.Tensor:
        """A fixed random projection of all outputs into one scalar (a scalar output is kept)."""
        weights = self.weights(outputs)
        if len(outputs) == 1:
            return outputs[0].sum() if weights[0] is None else torch.vdot(
                outputs[0].reshape(-1), weights[0].reshape(-1))
        return sum((o if w is None else o * w).sum() for o, w in zip(outputs, weights))

    def output_scale(self, outputs: List[torch.Tensor]) -> float:
        """Sum of |projected output terms|: the magnitude round-off in the scalar is relative to."""
        weights = self.weights(outputs)
        return float(sum((o if w is None else o * w).detach().abs().sum()
                         for o, w in zip(outputs, weights)))

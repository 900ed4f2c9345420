"""The thing under check: a private, dtype-converted copy of ``fn`` and its inputs.

The checker perturbs tensors in place and runs many forwards; doing that on copies is what keeps
the caller's module, tensors, buffers, dtype and device exactly as they were. Buffers are restored
before every evaluation so that no evaluation sees another's side effects (BatchNorm running
statistics, in-place counters).
"""
from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence, Tuple

import torch
from torch import nn

from ..errors import NNCheckError
from .kinks import DecisionRecord, DecisionRecorder
from .seeded import generators_used, reseed, rng_fingerprint


@dataclass
class CheckedTensor:
    """A leaf tensor whose gradient is checked, with the name the report shows."""

    name: str
    tensor: torch.Tensor


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {getattr(value, 'dtype', '')}".strip()


def _as_callable(fn: Any) -> Tuple[Callable, Optional[nn.Module]]:
    if isinstance(fn, nn.Module):
        return fn, fn
    if inspect.isclass(fn) and issubclass(fn, torch.autograd.Function):
        return fn.apply, None
    if callable(fn):
        return fn, None
    raise NNCheckError(f"fn must be an nn.Module, an autograd.Function subclass or a callable, "
                       f"got {type(fn).__name__}")


def _copy_module(module: nn.Module, dtype: Optional[torch.dtype],
                 device: Optional[torch.device] = None) -> nn.Module:
    try:
        duplicate = copy.deepcopy(module)
    except Exception as error:  # deepcopy failures come in every type
        raise NNCheckError(f"could not copy {type(module).__name__} to check it ({error}); "
                           f"make the module deep-copyable") from error
    return duplicate.to(device=device, dtype=dtype)


def _prepare_input(name: str, value: Any, dtype: Optional[torch.dtype],
                   checked: List[CheckedTensor], device: Optional[torch.device] = None) -> Any:
    """A private copy of one input on ``device``; floating tensors that require grad join
    ``checked``.

    ``dtype=None`` keeps each tensor's own dtype.

    Lists, tuples (named ones too) and dicts are copied element by element, so a layer that takes
    ``{"query": q, "key": k}`` has ``input[0]['query']`` checked.
    """
    if isinstance(value, torch.Tensor):
        if value.is_complex():
            raise NNCheckError(f"{name} is complex ({value.dtype}); check the real and "
                               f"imaginary parts as separate real inputs")
        if not value.is_floating_point():
            return value.to(device).clone()
        copy_ = value.detach().to(device=device, dtype=dtype).clone().requires_grad_(
            value.requires_grad)
        if value.requires_grad:
            checked.append(CheckedTensor(name, copy_))
        return copy_
    if isinstance(value, dict):
        return type(value)((key, _prepare_input(f"{name}[{key!r}]", item, dtype, checked, device))
                           for key, item in value.items())
    if isinstance(value, (list, tuple)):
        items = [_prepare_input(f"{name}[{i}]", item, dtype, checked, device)
                 for i, item in enumerate(value)]
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
    return value


class Subject:
    """``fn`` prepared for checking: copies in ``dtype``, the tensors to check, seeded forwards.

    ``dtype=None`` keeps every tensor's own dtype; ``device`` moves the copies (None: stay put).
    With ``forward_only_ok``, having no tensor to differentiate is not an error.
    """

    def __init__(self, fn: Any, inputs: Sequence[Any], dtype: Optional[torch.dtype], seed: int,
                 device: Optional[torch.device] = None, forward_only_ok: bool = False) -> None:
        call, module = _as_callable(fn)
        self.seed = seed
        self.dtype = dtype
        self.module = _copy_module(module, dtype, device) if module is not None else None
        self.call = self.module if self.module is not None else call
        self.checked: List[CheckedTensor] = []
        self.inputs: List[Any] = [_prepare_input(f"input[{index}]", value, dtype, self.checked,
                                                 device)
                                  for index, value in enumerate(inputs)]
        if self.module is not None:
            self.checked += [CheckedTensor(name, p) for name, p in self.module.named_parameters()
                             if p.requires_grad]
        self._buffers = ([(b, b.detach().clone()) for b in self.module.buffers()]
                         if self.module is not None else [])
        if not self.checked and not forward_only_ok:
            self._raise_nothing_to_check(inputs)
        self.projection: Optional[List[Optional[torch.Tensor]]] = None
        # (torch, numpy, random): until a forward is seen not to draw from a generator, every
        # evaluation reseeds it.
        self.generators = (True, True, True)

    @staticmethod
    def _raise_nothing_to_check(inputs: Sequence[Any]) -> None:
        for index, value in enumerate(inputs):
            if isinstance(value, torch.Tensor) and not value.is_floating_point():
                raise NNCheckError(
                    f"nothing to check: input[{index}] is {value.dtype}, and gradients exist only "
                    f"for floating tensors; pass x.double().requires_grad_() for the inputs to check")
        raise NNCheckError("nothing to check: no input requires grad and fn has no parameters "
                           "that require grad; call .requires_grad_() on the inputs to check")

    def with_function(self, call: Callable) -> "Subject":
        """The same copies and checked tensors, evaluated through another callable."""
        other = copy.copy(self)
        other.call = call
        other.projection = None
        return other

    def _restore_buffers(self) -> None:
        with torch.no_grad():
            for buffer, saved in self._buffers:
                buffer.copy_(saved)

    def outputs(self, record: Optional[DecisionRecord] = None,
                detect_randomness: bool = False) -> List[torch.Tensor]:
        """Run the forward from the frozen seed and return its floating outputs.

        With ``detect_randomness``, also learn which generators the forward draws from; later
        evaluations reseed only those (reseeding costs more than a small forward).
        """
        if self._buffers:
            self._restore_buffers()
        if any(self.generators):
            reseed(self.seed, self.generators)
        before = rng_fingerprint() if detect_randomness else None
        try:
            if record is None:
                result = self.call(*self.inputs)
            else:
                with DecisionRecorder(record):
                    result = self.call(*self.inputs)
        except NNCheckError:
            raise
        except Exception as error:
            raise self._forward_error(error) from error
        if before is not None:
            self.generators = generators_used(before, rng_fingerprint())
        return self._floating_outputs(result)

    def _forward_error(self, error: Exception) -> NNCheckError:
        text = str(error).strip().splitlines()[0] if str(error).strip() else ""
        if self.dtype == torch.float64 and any(w in text for w in ("Double", "double", "dtype", "Float")):
            return NNCheckError(f"fn cannot run in float64 ({type(error).__name__}: {text}); "
                                f"pass dtype=torch.float32 to check in single precision "
                                f"(looser eps and tolerance, report marked low precision)")
        return NNCheckError(f"fn raised {type(error).__name__} in the forward: {text}")

    @staticmethod
    def _floating_outputs(result: Any) -> List[torch.Tensor]:
        if isinstance(result, dict):
            values = list(result.values())
        else:
            values = list(result) if isinstance(result, (tuple, list)) else [result]
        floating = [v for v in values if isinstance(v, torch.Tensor) and v.is_floating_point()]
        if not floating:
            raise NNCheckError(f"fn returned {', '.join(_describe(v) for v in values) or 'nothing'}; "
                               f"a gradient check needs a floating tensor output (or a tuple of them)")
        return floating

    def scalar(self, outputs: List[torch.Tensor]) -> torch.Tensor:
        """A fixed random projection of all outputs into one scalar (a scalar output is kept)."""
        if self.projection is None:
            generator = torch.Generator().manual_seed(self.seed + 7919)
            self.projection = [None if o.numel() == 1 and len(outputs) == 1 else
                               torch.randn(o.shape, generator=generator, dtype=torch.float64)
                               .to(dtype=o.dtype, device=o.device) for o in outputs]
        if len(outputs) == 1:
            weight = self.projection[0]
            return outputs[0].sum() if weight is None else torch.vdot(
                outputs[0].reshape(-1), weight.reshape(-1))
        return sum((o if w is None else o * w).sum() for o, w in zip(outputs, self.projection))

    def output_scale(self, outputs: List[torch.Tensor]) -> float:
        """Sum of |projected output terms|: the magnitude round-off in the scalar is relative to."""
        self.scalar(outputs)
        return float(sum((o if w is None else o * w).abs().sum()
                         for o, w in zip(outputs, self.projection)))

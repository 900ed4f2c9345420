"""Models declared once, and the table of checks ``pytest --nncheck`` runs on each of them.

A repository declares a model with ``@pytest_nncheck.model(batch=..., loss_fn=...)`` on its class
or returns ``ModelSpec`` objects from the ``pytest_nncheck_models(config)`` hook. ``MODEL_CHECKS``
maps each check's name to how it runs on a spec and whether it applies (causality only for
sequence models), and a short training run watched by the health monitor; the plugin collects
one item per (model, applicable check).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Tuple

import torch
from torch import nn

from ..devices import resolve_device
from ..errors import NNCheckError
from ..gradients.seeded import seeded
from ..sanity.initial_loss import check_initial_loss
from ..sanity.overfit import check_overfit
from .baseline import check_input_independent_baseline
from .batch_independence import check_batch_independence
from .causality import check_causality
from .parameters_update import check_parameters_update

_SPEC_ATTRIBUTE = "__nncheck_model__"


@dataclass
class ModelSpec:
    """A model to run the sanity and recipe checks on.

    ``factory()`` builds a fresh model (the decorated class itself, by default); ``batch`` is
    ``(inputs, targets)`` or a callable returning it (a small batch: the overfit check memorises
    it); ``optimizer`` is ``model -> Optimizer``, built the way the training script builds it
    (parameter groups included), or None for Adam 1e-2; ``sequence`` marks a model whose outputs
    must not see later positions (the causality check runs on it); ``options`` holds keyword
    options per check name, e.g. ``{"overfit": {"steps": 500}, "causality": {"dim": 1}}``.
    """

    factory: Callable[[], nn.Module]
    batch: Any
    loss_fn: Any
    optimizer: Optional[Callable[[nn.Module], torch.optim.Optimizer]] = None
    sequence: bool = False
    options: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    name: str = ""

    def __post_init__(self) -> None:
        label = self.name or getattr(self.factory, "__qualname__", repr(self.factory))
        if not callable(self.factory):
            raise NNCheckError(f"model {label}: factory must build the model, e.g. factory=MyNet")
        if self.batch is None or self.loss_fn is None:
            raise NNCheckError(f"model {label}: declare batch=(inputs, targets) (or a callable "
                               f"returning it) and loss_fn=, e.g. loss_fn=nn.CrossEntropyLoss()")
        unknown = sorted(set(self.options) - set(MODEL_CHECKS))
        if unknown:
            raise NNCheckError(f"model {label}: options for unknown checks {unknown}; the checks "
                               f"are {', '.join(MODEL_CHECKS)}")
        if not self.name:
            self.name = f"{getattr(self.factory, '__module__', '')}.{label}".lstrip(".")

    def build(self, seed: int, device: str) -> Tuple[nn.Module, Any, Any, Any]:
        """(model, inputs, targets, optimizer) built from ``seed`` on ``device``.

        The caller's random state is left as it was.
        """
        where = resolve_device(device)
        with seeded(seed):
            model = self.factory().to(where)
            batch = self.batch() if callable(self.batch) else self.batch
            if not isinstance(batch, (tuple, list)) or len(batch) != 2:
                raise NNCheckError(f"model {self.name}: batch must be (inputs, targets), got "
                                   f"{type(batch).__name__}")
            optimizer = self.optimizer(model) if self.optimizer is not None else None
        inputs, targets = (_to(value, where) for value in batch)
        return model, inputs, targets, optimizer


def _to(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, (tuple, list)):
        return type(value)(_to(v, device) for v in value)
    return value


def model(**fields: Any) -> Callable[[type], type]:
    """Class decorator declaring a model: ``@pytest_nncheck.model(batch=..., loss_fn=...)``.

    Takes ModelSpec's fields; ``factory`` defaults to the class and ``name`` to its import path.
    """
    def declare(cls: type) -> type:
        spec = ModelSpec(**{"factory": cls, "name": f"{cls.__module__}.{cls.__qualname__}",
                            **fields})
        setattr(cls, _SPEC_ATTRIBUTE, spec)
        return cls
    return declare


def declared_model(cls: type) -> Optional[ModelSpec]:
    """The spec declared on ``cls`` itself by ``@model`` (not inherited from a base); else None."""
    return vars(cls).get(_SPEC_ATTRIBUTE)


@dataclass(frozen=True)
class ModelCheck:
    """How one check runs on a declared model, and whether it applies to it."""

    run: Callable[[ModelSpec, int, str], Any]
    applies: Callable[[ModelSpec], bool]


def _options(spec: ModelSpec, check: str, seed: int) -> Dict[str, Any]:
    return {"seed": seed, **spec.options.get(check, {})}


def _initial_loss(spec: ModelSpec, seed: int, device: str) -> Any:
    model_, inputs, targets, _ = spec.build(seed, device)
    options = spec.options.get("initial_loss", {})
    return check_initial_loss(model_, inputs, targets, spec.loss_fn, **options)


def _overfit(spec: ModelSpec, seed: int, device: str) -> Any:
    model_, inputs, targets, optimizer = spec.build(seed, device)
    options = {"optimizer": optimizer, "device": device, **_options(spec, "overfit", seed)}
    return check_overfit(model_, inputs, targets, spec.loss_fn, **options)


def _batch_independence(spec: ModelSpec, seed: int, device: str) -> Any:
    model_, inputs, _, _ = spec.build(seed, device)
    return check_batch_independence(model_, inputs, **_options(spec, "batch_independence", seed))


def _causality(spec: ModelSpec, seed: int, device: str) -> Any:
    model_, inputs, _, _ = spec.build(seed, device)
    return check_causality(model_, inputs, **_options(spec, "causality", seed))


def _baseline(spec: ModelSpec, seed: int, device: str) -> Any:
    model_, inputs, targets, optimizer = spec.build(seed, device)
    options = {"optimizer": optimizer, **_options(spec, "baseline", seed)}
    return check_input_independent_baseline(model_, inputs, targets, spec.loss_fn, **options)


def _parameters_update(spec: ModelSpec, seed: int, device: str) -> Any:
    model_, inputs, targets, optimizer = spec.build(seed, device)
    options = {"optimizer": optimizer, **_options(spec, "parameters_update", seed)}
    return check_parameters_update(model_, inputs, targets, spec.loss_fn, **options)


def _training(spec: ModelSpec, seed: int, device: str) -> Any:
    from ..health.training import check_training
    model_, inputs, targets, optimizer = spec.build(seed, device)
    options = {"optimizer": optimizer, "device": device, **_options(spec, "training", seed)}
    return check_training(model_, inputs, targets, spec.loss_fn, **options)


def _always(spec: ModelSpec) -> bool:
    return True


MODEL_CHECKS: Dict[str, ModelCheck] = {
    "initial_loss": ModelCheck(_initial_loss, _always),
    "overfit": ModelCheck(_overfit, _always),
    "batch_independence": ModelCheck(_batch_independence, _always),
    "causality": ModelCheck(_causality, lambda spec: spec.sequence),
    "baseline": ModelCheck(_baseline, _always),
    "parameters_update": ModelCheck(_parameters_update, _always),
    "training": ModelCheck(_training, _always),
}

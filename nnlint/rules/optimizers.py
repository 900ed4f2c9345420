"""Recognising optimizers and learning-rate schedulers (NN201, NN202, NN203, NN209, NN301)."""
from __future__ import annotations

import re
from typing import Callable, Optional

import libcst as cst

from ..expressions import argument, descendants, text

_OTHER_OPTIMIZERS = {"transformers.AdamW", "transformers.optimization.AdamW",
                     "transformers.Adafactor", "timm.optim.create_optimizer_v2"}
# transformers' get_linear_schedule_with_warmup, get_cosine_schedule, get_scheduler; timm's
# create_scheduler / create_scheduler_v2.
_SCHEDULE_FACTORY = re.compile(r"(^|\.)(get_\w+_schedule(_with_warmup)?|get_scheduler|"
                               r"create_scheduler(_v\d+)?)$")
# A project's own optimizer factory: model.configure_optimizers(...), build_optimizer(cfg, model).
_OPTIMIZER_FACTORY = re.compile(r"(^|\.)(configure|build|create|make|get|init|setup)_optimi[sz]ers?$")


def is_optimizer(qualified: Optional[str]) -> bool:
    """``torch.optim.SGD``, ``torch.optim.adam.Adam``, a few well-known ones from other libraries."""
    if not qualified:
        return False
    if qualified in _OTHER_OPTIMIZERS:
        return True
    parts = qualified.split(".")
    return (len(parts) >= 3 and parts[0] == "torch" and parts[1] == "optim"
            and "lr_scheduler" not in parts and "swa_utils" not in parts
            and parts[-1][:1].isupper() and parts[-1] not in ("Optimizer",))


def is_optimizer_call(call: cst.Call, call_name: Callable[[cst.Call], Optional[str]]) -> bool:
    """An optimizer construction: a known class, ``getattr(torch.optim, name)(...)``, a factory."""
    qualified = call_name(call)
    if is_optimizer(qualified) or (qualified and _OPTIMIZER_FACTORY.search(qualified)):
        return True
    inner = call.func
    return (isinstance(inner, cst.Call) and text(inner.func) == "getattr" and bool(inner.args)
            and (text(inner.args[0].value) or "").split(".")[-1] in ("optim", "torch.optim"))


def is_scheduler(qualified: Optional[str]) -> bool:
    """torch's lr_scheduler classes and ``get_*_schedule*`` factories: schedulers by name alone."""
    if not qualified:
        return False
    last = qualified.rsplit(".", 1)[-1]
    return ("lr_scheduler" in qualified.split(".") and last[:1].isupper()
            or bool(_SCHEDULE_FACTORY.search(qualified)))


def is_scheduler_call(call: cst.Call, qualified: Optional[str]) -> bool:
    """A scheduler construction: a known one, or a ``*Scheduler`` / ``*LR`` class built on an optimizer.

    A class named like ``WarmupLR`` or ``NoamScheduler`` from another library is a scheduler only
    when its first argument is an optimizer (every scheduler wraps one); ``LR()`` alone is more
    often logistic regression.
    """
    if is_scheduler(qualified):
        return True
    last = (qualified or "").rsplit(".", 1)[-1]
    if not (last[:1].isupper() and (last.endswith("Scheduler") or
                                    (last.endswith("LR") and len(last) > 2))):
        return False
    wrapped = argument(call, 0, "optimizer")
    return wrapped is not None and looks_like_optimizer(wrapped)


def looks_like_optimizer(node: cst.BaseExpression) -> bool:
    """``optimizer``, ``self.opt``, ``optim_g``: a name that says it holds an optimizer."""
    name = (text(node) or "").rsplit(".", 1)[-1].lower()
    return "optim" in name or name in ("opt", "optimiser") or name.startswith("opt_") \
        or name.endswith("_opt")


def optimized_inputs(params: Optional[cst.BaseExpression]) -> bool:
    """True when an optimizer is built over tensors listed by name (``Adam([image])``), not weights.

    Style transfer, feature visualisation and adversarial attacks optimise an input; weights come
    from ``.parameters()`` (or a list of parameter groups).
    """
    if not isinstance(params, (cst.List, cst.Tuple)) or not params.elements:
        return False
    for node in descendants(params):
        if isinstance(node, (cst.Call, cst.Dict, cst.ListComp, cst.GeneratorExp)):
            return False
    return True

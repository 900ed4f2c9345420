"""Parameters a forward uses that the model does not register, so no optimizer ever trains them.

Real code gets there three ways: a layer built inside ``forward`` (new random weights on every
call), layers kept in a plain Python list or dict instead of ``nn.ModuleList``/``nn.ModuleDict``,
and a tensor with ``requires_grad=True`` stored as an attribute instead of an ``nn.Parameter``.
Modules are seen as they run (global forward hooks, removed afterwards); bare tensors are found
as the leaves of the loss's autograd graph.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Iterator, List, Optional, Sequence, Set, Tuple

import torch
from torch import nn
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook

_CONTAINERS = {list: "list", tuple: "tuple", dict: "dict"}
_FIXES = {"list": "nn.ModuleList", "tuple": "nn.ModuleList", "dict": "nn.ModuleDict"}


@dataclass
class Unregistered:
    """One unregistered module or tensor: where it is (or who built it) and what to do."""

    where: str
    message: str


@contextlib.contextmanager
def foreign_modules(model: nn.Module) -> Iterator[List[Tuple[str, nn.Module]]]:
    """Collect ``(running submodule, module)`` for modules with trainable parameters that run
    inside ``model``'s forward without being its submodules."""
    known = {id(m): name for name, m in model.named_modules()}
    running: List[str] = []
    found: List[Tuple[str, nn.Module]] = []

    def before(module: nn.Module, args: Any) -> None:
        if id(module) in known:
            running.append(known[id(module)])
        elif any(p.requires_grad for p in module.parameters(recurse=False)) and \
                all(seen is not module for _, seen in found):
            found.append((running[-1] if running else "", module))

    def after(module: nn.Module, args: Any, output: Any) -> None:
        if id(module) in known and running:
            running.pop()

    handles = [register_module_forward_pre_hook(before), register_module_forward_hook(after)]
    try:
        yield found
    finally:
        for handle in handles:
            handle.remove()


def _path(model: nn.Module, target: Any) -> Optional[Tuple[str, str]]:
    """``(attribute path, container kind)`` where ``target`` is stored on a submodule; else None."""
    for name, module in model.named_modules():
        for attribute, value in vars(module).items():
            if attribute.startswith("_"):
                continue
            prefix = f"{name}.{attribute}" if name else attribute
            if value is target:
                return prefix, ""
            kind = _CONTAINERS.get(type(value))
            if kind is None:
                continue
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if item is target:
                    return f"{prefix}[{key!r}]", kind
                if isinstance(item, nn.Module):
                    for sub_name, sub in item.named_modules():
                        if sub is target:
                            return f"{prefix}[{key!r}].{sub_name}", kind
    return None


def graph_leaves(loss: torch.Tensor) -> List[torch.Tensor]:
    """The leaf tensors that require grad and reach ``loss`` (its AccumulateGrad nodes)."""
    leaves, seen, stack = [], set(), [loss.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        variable = getattr(node, "variable", None)
        if isinstance(variable, torch.Tensor):
            leaves.append(variable)
        stack.extend(next_node for next_node, _ in node.next_functions)
    return leaves


def _shape(t: torch.Tensor) -> str:
    return "x".join(str(d) for d in t.shape) or "scalar"


def unregistered(model: nn.Module, leaves: Sequence[torch.Tensor], inputs: Sequence[Any],
                 found: Sequence[Tuple[str, nn.Module]],
                 persistent: Set[int]) -> List[Unregistered]:
    """Modules and tensors that reached the loss without being registered in ``model``.

    ``leaves`` are the loss's :func:`graph_leaves`; ``found`` comes from :func:`foreign_modules`
    on the same forward; ``persistent`` holds the ids of those that ran again on the next forward
    (stored somewhere, not rebuilt on every call).
    """
    results = []
    covered: Set[int] = set()
    for owner, module in found:
        covered.update(id(p) for p in module.parameters())
        kind = type(module).__name__
        located = _path(model, module)
        if located is not None and located[1]:
            where, container = located
            message = (f"{kind} kept in a plain Python {container}: its parameters are not "
                       f"registered, so model.parameters(), the optimizer and state_dict never see "
                       f"them; use {_FIXES[container]}")
        elif id(module) in persistent:
            where = located[0] if located else f"{kind} used by {owner or 'the model'}"
            message = (f"{kind} is used in the forward but is not a submodule (a global, a closure, "
                       f"an attribute hidden from nn.Module): its parameters are never trained; "
                       f"assign it as an attribute in __init__")
        else:
            where = f"{kind} built in {owner + '.' if owner else ''}forward"
            message = (f"{kind} is built inside forward: new random weights on every call, never "
                       f"trained; build it once in __init__")
        results.append(Unregistered(where, message))
    registered = {id(p) for p in model.parameters()}
    given = {id(t) for t in inputs if isinstance(t, torch.Tensor)}
    for leaf in leaves:
        if id(leaf) in registered or id(leaf) in given or id(leaf) in covered:
            continue
        located = _path(model, leaf)
        if located is not None:
            results.append(Unregistered(located[0], "a tensor with requires_grad=True, not an "
                                        "nn.Parameter: it is not registered, so no optimizer built "
                                        "from model.parameters() trains it; wrap it in nn.Parameter"))
        else:
            results.append(Unregistered(f"{_shape(leaf)} tensor made in forward",
                                        f"a {_shape(leaf)} tensor that requires grad is created "
                                        f"during the forward and reaches the loss: it is never "
                                        f"trained; make it an nn.Parameter in __init__"))
    return results

"""How long a training loop runs, read from the source: shared by the NN2xx rules.

A loop over ``range(N)`` runs N times when N is a literal, a name bound to one, or an argparse
option with a literal default (``args.epochs`` with ``add_argument('--epochs', default=90)``). Any
other loop (over a DataLoader, ``range(len(data))``, ``while True``) is a pass over data of unknown
length: at least one epoch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence

import libcst as cst

from ..expressions import keyword, number, text

# Below these a run is a demo, a test or a smoke run: the survey's false alarms of NN201 were
# toy loops of 60 to 1,000 full-batch steps and tutorials of 1 to 9 epochs
# (benchmarks/survey/labels.csv); CS231n's schedules act over tens of epochs.
MIN_EPOCHS = 10
MIN_STEPS = 5000

Resolver = Callable[[cst.BaseExpression], Optional[float]]


class ArgparseDefaults:
    """``dest -> default`` of every ``add_argument`` call seen, for resolving ``args.dest``."""

    def __init__(self) -> None:
        self.defaults: Dict[str, Optional[cst.BaseExpression]] = {}

    def record(self, call: cst.Call) -> None:
        if not (isinstance(call.func, cst.Attribute) and call.func.attr.value == "add_argument"):
            return
        dest = keyword(call, "dest")
        names = [a.value for a in call.args if a.keyword is None
                 and isinstance(a.value, cst.SimpleString)]
        if isinstance(dest, cst.SimpleString):
            name = dest.evaluated_value
        else:
            flags = [n.evaluated_value for n in names if isinstance(n.evaluated_value, str)]
            longest = max(flags, key=len) if flags else None
            name = longest.lstrip("-").replace("-", "_") if longest else None
        if name:
            self.defaults[name] = keyword(call, "default")

    def option(self, node: cst.BaseExpression) -> Optional[str]:
        """``epochs`` for ``args.epochs`` (any receiver) when an option of that name exists."""
        if isinstance(node, cst.Attribute) and node.attr.value in self.defaults:
            return node.attr.value
        return None


def evaluate(node: Optional[cst.BaseExpression], resolve: Resolver) -> Optional[float]:
    """A number for literals and simple arithmetic over names ``resolve`` knows, else None."""
    if node is None:
        return None
    value = number(node)
    if value is not None:
        return value
    if isinstance(node, (cst.Name, cst.Attribute)):
        return resolve(node)
    if isinstance(node, cst.Call) and text(node.func) in ("int", "round") and node.args:
        return evaluate(node.args[0].value, resolve)
    if isinstance(node, cst.BinaryOperation):
        left, right = evaluate(node.left, resolve), evaluate(node.right, resolve)
        if left is None or right is None:
            return None
        operator = type(node.operator)
        if operator is cst.Add:
            return left + right
        if operator is cst.Subtract:
            return left - right
        if operator is cst.Multiply:
            return left * right
        if operator is cst.FloorDivide and right:
            return left // right
    return None


def loop_values(name: str, loops: Sequence[cst.CSTNode]) -> Optional[float]:
    """The largest value a loop variable takes from a literal list (``for n in [10, 20]``)."""
    for loop in reversed(loops):
        if not isinstance(loop, cst.For):
            continue
        target, iterable = loop.target, loop.iter
        if isinstance(iterable, cst.Call) and text(iterable.func) == "enumerate" and iterable.args \
                and isinstance(target, cst.Tuple) and len(target.elements) == 2:
            target, iterable = target.elements[1].value, iterable.args[0].value
        if text(target) != name or not isinstance(iterable, (cst.List, cst.Tuple)):
            continue
        values = [number(e.value) for e in iterable.elements]
        return None if None in values or not values else max(values)
    return None


def loop_count(loop: cst.CSTNode, resolve: Resolver) -> Optional[int]:
    """How many times ``loop`` runs when the source says so; None for a pass over data."""
    if not isinstance(loop, cst.For):
        return None
    iterable = loop.iter
    if isinstance(iterable, cst.Call) and text(iterable.func) in ("tqdm", "trange", "tqdm.tqdm",
                                                                  "tqdm.trange") and iterable.args:
        iterable = iterable.args[0].value
    if isinstance(iterable, cst.Call) and text(iterable.func) == "enumerate" and iterable.args:
        iterable = iterable.args[0].value
    if isinstance(iterable, (cst.List, cst.Tuple)):
        return len(iterable.elements)
    if not (isinstance(iterable, cst.Call) and text(iterable.func) in ("range", "trange")):
        return None
    bounds = [evaluate(a.value, resolve) for a in iterable.args if a.keyword is None]
    if not bounds or None in bounds:
        return None
    start, stop = (0.0, bounds[0]) if len(bounds) == 1 else (bounds[0], bounds[1])
    step = bounds[2] if len(bounds) > 2 and bounds[2] else 1.0
    return max(0, int((stop - start) / step))


@dataclass(frozen=True)
class RunLength:
    """The loops around an optimizer step: how many counted iterations, and any pass over data."""

    counted: Optional[int]  # the product of the counted loops; None when there is none
    over_data: bool
    unbounded: bool

    @property
    def short(self) -> bool:
        """A demo, a test or a smoke run rather than a training run that a schedule would help."""
        if self.unbounded or self.counted is None:
            return False
        return self.counted < (MIN_EPOCHS if self.over_data else MIN_STEPS)


def run_length(loops: Sequence[cst.CSTNode], count: Callable[[cst.CSTNode], Optional[int]],
               unseen: bool = False, epochs: Optional[int] = None) -> RunLength:
    """The length of a run inside ``loops`` (outermost first), each counted by ``count``, and
    inside loops the file does not show when ``unseen`` (a framework's or another module's,
    run for ``epochs`` when the call says how many)."""
    counted: Optional[int] = epochs
    over_data, unbounded = unseen, False
    for loop in loops:
        count_here = count(loop)
        if count_here is None:
            over_data = True
            unbounded = unbounded or _runs_forever(loop)
        else:
            counted = count_here * (1 if counted is None else counted)
    return RunLength(counted, over_data, unbounded)


def _runs_forever(loop: cst.CSTNode) -> bool:
    return isinstance(loop, cst.While) and isinstance(loop.test, cst.Name) and \
        loop.test.value == "True"

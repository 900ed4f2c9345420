"""Recognising evaluation code in source: shared by the NN4xx rules.

An evaluation loop is a loop over held-out data (its iterable names val, valid, test, eval, dev),
or a loop over data inside a function named for evaluation (``evaluate``, ``validate``,
``test``), that runs a model on the loop's batches and never calls ``backward()`` or ``step()``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import List, Optional, Set

import libcst as cst

from ..expressions import descendants, text

_EVALUATION_FUNCTION = re.compile(
    r"^(eval|evaluate|evaluation|validate|validation|valid|val|test|infer|inference|predict|"
    r"(eval|evaluate|validate|val|valid|test)_(epoch|model|loop|step|net|accuracy|loss)|"
    r"run_(eval|evaluation|validation|test)|compute_accuracy|accuracy|check_accuracy)$")
_HELD_OUT = re.compile(r"(^|[^a-z])(val|valid|validation|test|testing|eval|evaluation|dev|"
                       r"holdout)([^a-z]|$)|(val|test|eval)(loader|set|data|_?ds|iter)",
                       re.IGNORECASE)
# What a model is called, or the method that runs one: model(x), self.net(x), G(z), model.loss(b).
_MODEL = re.compile(r"(model|net|encoder|decoder|classifier|discriminator|generator|backbone|"
                    r"module|policy|critic|actor|rnn|lstm|gru|cnn|mlp|transformer|bert|gpt|vae|"
                    r"^[A-Z]$|^forward$|^loss$|^predict|^infer)", re.IGNORECASE)
_NOT_A_MODEL = {"print", "len", "zip", "enumerate", "range", "str", "int", "float", "list",
                "tuple", "dict", "isinstance", "max", "min", "sum", "abs", "round", "sorted",
                "Variable", "append", "extend", "to", "cuda", "cpu", "view", "reshape", "size",
                "float", "long", "numpy", "item", "eq", "argmax", "max", "squeeze", "unsqueeze",
                "format", "update", "write", "add_scalar", "log", "info", "transpose", "permute",
                "detach", "contiguous", "type", "mean", "flatten", "set_description"}


def is_evaluation_function(name: str) -> bool:
    return bool(_EVALUATION_FUNCTION.match(name.lower()))


def data_of(loop: cst.For) -> str:
    """The text of what a loop iterates over, through enumerate() and tqdm()."""
    iterable = loop.iter
    while isinstance(iterable, cst.Call) and (text(iterable.func) or "").split(".")[-1] in (
            "enumerate", "tqdm", "iter", "zip") and iterable.args:
        iterable = iterable.args[0].value
    if isinstance(iterable, cst.Subscript):  # dataloaders['val']
        keys = [e.slice.value for e in iterable.slice if isinstance(e.slice, cst.Index)]
        return " ".join([text(iterable.value) or ""] + [
            str(k.evaluated_value) for k in keys if isinstance(k, cst.SimpleString)])
    return text(iterable) or ""


def holds_out(loop: cst.For) -> bool:
    """A loop over validation or test data."""
    return bool(_HELD_OUT.search(data_of(loop)))


def over_data(loop: cst.For) -> bool:
    """A loop over batches rather than over a counted range."""
    return not (isinstance(loop.iter, cst.Call) and text(loop.iter.func) in ("range", "trange"))


@dataclass
class LoopFacts:
    """What a loop body does, gathered while the traversal is inside it."""

    loop: cst.For
    variables: Set[str]
    function: Optional[str]
    trains: bool = False  # calls backward() or an optimizer step
    runs_model: bool = False  # calls something on the loop's batch
    runs_model_with_grad: bool = False  # ... outside any no_grad block

    def see(self, call: cst.Call, gradients_off: bool) -> None:
        method = call.func.attr.value if isinstance(call.func, cst.Attribute) else ""
        if method in ("backward", "step"):
            self.trains = True
            return
        name = (text(call.func) or "").rsplit(".", 1)[-1]
        if name in _NOT_A_MODEL or not _MODEL.search(name):
            return
        used = {n.value for a in call.args for n in descendants(a.value) if isinstance(n, cst.Name)}
        if used & self.variables:
            self.runs_model = True
            self.runs_model_with_grad = self.runs_model_with_grad or not gradients_off


def loop_facts(loop: cst.For, function: Optional[str]) -> LoopFacts:
    variables = {n.value for n in descendants(loop.target) if isinstance(n, cst.Name)}
    return LoopFacts(loop, variables, function)


def is_evaluation_loop(facts: LoopFacts) -> bool:
    """A loop that runs a model on held-out batches (or on any batches, inside a function named
    for evaluation) and never trains."""
    if facts.trains or not facts.runs_model:
        return False
    if holds_out(facts.loop):
        return True
    return facts.function is not None and is_evaluation_function(facts.function) \
        and over_data(facts.loop)


@dataclass
class CallsUnderNoGrad:
    """Functions of the file called inside a no_grad block: their loops run without autograd."""

    names: Set[str] = field(default_factory=set)

    def see(self, call: cst.Call, gradients_off: bool) -> None:
        if gradients_off:
            self.names.add((text(call.func) or "").rsplit(".", 1)[-1])


def enclosing_function(functions: List[cst.FunctionDef]) -> Optional[str]:
    return functions[-1].name.value if functions else None

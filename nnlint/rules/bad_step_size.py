"""NN103 bad-step-size: a finite-difference step too small (round-off) or too large (truncation)."""
from __future__ import annotations

from typing import Optional

import libcst as cst

from ..expressions import keyword, number
from .base import Rule
from .difference_quotients import quotient
from .gradcheck_targets import gradcheck_kind

SMALLEST = 1e-10
LARGEST = 1e-2


class BadStepSize(Rule):
    code = "NN103"
    name = "bad-step-size"
    message = "finite-difference step `{step}` = {value:g} is {problem}; use 1e-6 to 1e-4 in float64"
    severity = "error"
    what = ("Flags a finite-difference step below 1e-10 or above 1e-2: the `eps=` of "
            "`gradcheck`/`check_gradients`, or the `h` of a difference quotient such as "
            "`(f(x + h) - f(x - h)) / (2 * h)`, when it is a literal, a name bound to one, or a "
            "parameter whose default is one.")
    why = ("The error of a central difference is truncation O(h^2) plus round-off "
           "O(eps_machine / h). Below 1e-10 the round-off dominates (in float64 it is already "
           "1e-6 relative), above 1e-2 the truncation error does, and across a ReLU or max the "
           "step is more likely to cross a kink. CS231n uses h = 1e-5; torch's gradcheck 1e-6.")
    bad = (
        "from torch.autograd import gradcheck\n\ngradcheck(fn, (x,), eps=1e-12)\n",
        "def derivative(f, x):\n    h = 0.1\n    return (f(x + h) - f(x - h)) / (2 * h)\n",
        "from pytest_nncheck import check_gradients\n\ncheck_gradients(layer, x, eps=0.05)\n",
        "def numeric(f, x, ix):\n    step = 1e-14\n    x[ix] += step\n    up = f(x)\n"
        "    x[ix] -= 2 * step\n    down = f(x)\n    return (up - down) / (2 * step)\n",
        "def grad_check_sparse(f, x, analytic, h=0.1):\n"
        "    numeric = (f(x + h) - f(x - h)) / (2 * h)\n    return abs(numeric - analytic)\n",
    )
    good = (
        "from torch.autograd import gradcheck\n\ngradcheck(fn, (x,), eps=1e-6)\n",
        "def derivative(f, x):\n    h = 1e-5\n    return (f(x + h) - f(x - h)) / (2 * h)\n",
        "def derivative(f, x, h):\n    return (f(x + h) - f(x - h)) / (2 * h)\n",
        "scaled = (a - b) / 0.5\n",
        "def count(histogram, keys):\n    for key in keys:\n        histogram[key] += 1\n",
    )

    def _value(self, node: cst.BaseExpression) -> Optional[float]:
        value = number(node)
        if value is None and isinstance(node, cst.Name):
            bound = self.context.binding(node.value)
            value = number(bound) if bound is not None else None
        return value

    def _check(self, where: cst.CSTNode, step: cst.BaseExpression, label: str) -> None:
        value = self._value(step)
        if value is None or value <= 0:
            return
        problem = (f"below {SMALLEST:g} (round-off dominates)" if value < SMALLEST else
                   f"above {LARGEST:g} (truncation dominates)" if value > LARGEST else None)
        if problem:
            self.report(where, self.message.format(step=label, value=value, problem=problem))

    def visit_Call(self, node: cst.Call) -> None:
        if gradcheck_kind(self.context.call_name(node)):
            eps = keyword(node, "eps")
            if eps is not None:
                self._check(node, eps, "eps")

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        found = quotient(node)
        if found is not None and (found.kind is not None or found.doubled):
            self._check(node, found.step, found.step_text)

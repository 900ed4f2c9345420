"""NN102 forward-difference: a numerical derivative from a one-sided difference."""
from __future__ import annotations

from typing import List

import libcst as cst

from .base import Rule
from .difference_quotients import centered, perturbation, quotient


class ForwardDifference(Rule):
    code = "NN102"
    name = "forward-difference"
    message = ("one-sided difference {formula}: its error is O(h); use the centered "
               "(f(x + h) - f(x - h)) / (2 * h), error O(h^2)")
    severity = "error"
    what = ("Flags a numerical derivative computed as (f(x+h) - f(x)) / h or (f(x) - f(x-h)) / h, "
            "written inline or the loop way (perturb `x[ix] += h`, evaluate, subtract the "
            "unperturbed value, divide by `h`). The centered (f(x+h) - f(x-h)) / (2h) is fine.")
    why = ("The forward difference has error O(h) while the centered difference has error "
           "O(h^2): with h = 1e-5 that is 1e-5 against 1e-10 of relative error, so a forward "
           "difference cannot tell a correct gradient from one that is off in the fifth digit. "
           "CS231n: 'Use the centered formula' - it requires two evaluations per dimension but "
           "is much more precise.")
    bad = (
        "def derivative(f, x, h=1e-5):\n    return (f(x + h) - f(x)) / h\n",
        "def derivative(f, x, h=1e-5):\n    return (f(x) - f(x - h)) / h\n",
        "import numpy as np\n\n"
        "def eval_numerical_gradient(f, x):\n"
        "    fx = f(x)\n    grad = np.zeros(x.shape)\n    h = 0.00001\n"
        "    it = np.nditer(x, flags=['multi_index'], op_flags=['readwrite'])\n"
        "    while not it.finished:\n"
        "        ix = it.multi_index\n        old_value = x[ix]\n"
        "        x[ix] = old_value + h\n        fxh = f(x)\n        x[ix] = old_value\n"
        "        grad[ix] = (fxh - fx) / h\n        it.iternext()\n    return grad\n",
        "def slope(loss, w, eps):\n    base = loss(w)\n    return (loss(w + eps) - base) / eps\n",
        "def numeric_grad(f, w, h=1e-5):\n    base = f(w)\n    grad = w * 0\n"
        "    for i in range(w.shape[0]):\n        w[i] += h\n        for j in range(3):\n"
        "            grad[i, j] = (f(w)[j] - base[j]) / h\n        w[i] -= h\n    return grad\n",
    )
    good = (
        "def derivative(f, x, h=1e-5):\n    return (f(x + h) - f(x - h)) / (2 * h)\n",
        "import numpy as np\n\n"
        "def eval_numerical_gradient(f, x, h=1e-5):\n"
        "    grad = np.zeros(x.shape)\n"
        "    it = np.nditer(x, flags=['multi_index'], op_flags=['readwrite'])\n"
        "    while not it.finished:\n"
        "        ix = it.multi_index\n        old_value = x[ix]\n"
        "        x[ix] = old_value + h\n        fxph = f(x)\n"
        "        x[ix] = old_value - h\n        fxmh = f(x)\n        x[ix] = old_value\n"
        "        grad[ix] = (fxph - fxmh) / (2 * h)\n        it.iternext()\n    return grad\n",
        "def mean_step(total_new, total_old, n):\n    return (total_new - total_old) / n\n",
        "velocity = (position_now - position_before) / dt\n",
    )

    def __init__(self, context) -> None:
        super().__init__(context)
        self._loops: List[dict] = []

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        found = quotient(node)
        if found is None or found.doubled:
            return
        if found.kind in ("forward", "backward"):
            formula = ("(f(x + h) - f(x)) / h" if found.kind == "forward"
                       else "(f(x) - f(x - h)) / h")
            self.report(node, self.message.format(formula=formula), fix=centered(found))
        elif found.kind is None and self._loops:
            self._loops[-1]["divisions"].append((node, found.step_text))

    def _loop_statement(self, node: cst.CSTNode) -> None:
        if self._loops:
            shift = perturbation(node)
            if shift is not None:
                self._loops[-1]["+" if shift[0] == "+" else "-"].add(shift[1])

    visit_AugAssign = _loop_statement
    visit_Assign = _loop_statement

    def _enter_loop(self, node: cst.CSTNode) -> None:
        self._loops.append({"+": set(), "-": set(), "divisions": []})

    def _leave_loop(self, node: cst.CSTNode) -> None:
        loop = self._loops.pop()
        parent = self._loops[-1] if self._loops else None
        for division, step in loop["divisions"]:
            if step in loop["+"] and step not in loop["-"]:
                self.report(division, self.message.format(
                    formula=f"(f(x[ix] + {step}) - f(x)) / {step} in a perturbation loop"))
            elif step not in loop["+"] and step not in loop["-"] and parent is not None:
                parent["divisions"].append((division, step))  # perturbed in an outer loop
        if parent is not None:
            parent["+"] |= loop["+"]
            parent["-"] |= loop["-"]

    visit_For = visit_While = _enter_loop
    leave_For = leave_While = _leave_loop

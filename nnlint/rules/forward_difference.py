"""NN102 forward-difference: a numerical derivative from a one-sided difference."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

import libcst as cst

from .base import Rule
from .difference_quotients import Perturbation, Quotient, centered, perturbation, quotient, uses


class ForwardDifference(Rule):
    code = "NN102"
    name = "forward-difference"
    message = ("one-sided difference {formula}: its error is O(h); use the centered "
               "(f(x + h) - f(x - h)) / (2 * h), error O(h^2)")
    severity = "error"
    what = ("Flags a numerical derivative computed as (f(x+h) - f(x)) / h or (f(x) - f(x-h)) / h, "
            "written inline, the loop way (perturb `x[ix] += h`, evaluate, subtract the "
            "unperturbed value, divide by `h`) or on a perturbed copy (`w_plus = w + h * e`). "
            "The centered (f(x+h) - f(x-h)) / (2h) is fine, and so are look-alikes that "
            "evaluate nothing at x + h (the ceiling division `(n + k - 1) / k`) and calculus "
            "demos at a literal point (`(f(3 + h) - f(3)) / h`). `--fix` rewrites an inline "
            "one-sided difference to the centered one.")
    why = ("The forward difference has error O(h) while the centered difference has error "
           "O(h^2): with h = 1e-5 that is 1e-5 against 1e-10 of relative error, so a forward "
           "difference cannot tell a correct gradient from one that is off in the fifth digit. "
           "CS231n: 'Use the centered formula' - it requires two evaluations per dimension but "
           "is much more precise.")
    bad = (
        "def derivative(f, x, h=1e-5):\n    return (f(x + h) - f(x)) / h\n",
        "import numpy as np\n\ndef numeric_gradient(loss, w, h=1e-5):\n    grad = np.zeros_like(w)\n"
        "    for i in range(w.size):\n        direction = np.zeros_like(w)\n"
        "        direction.flat[i] = 1.0\n        w_plus = w + h * direction\n"
        "        grad.flat[i] = (loss(w_plus) - loss(w)) / h\n    return grad\n",
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
        "import numpy as np\n\ndef numeric_gradient(loss, w, h=1e-5):\n    grad = np.zeros_like(w)\n"
        "    for i in range(w.size):\n        direction = np.zeros_like(w)\n"
        "        direction.flat[i] = 1.0\n        w_plus = w + h * direction\n"
        "        w_minus = w - h * direction\n"
        "        grad.flat[i] = (loss(w_plus) - loss(w_minus)) / (2 * h)\n    return grad\n",
        "def per_worker(workers, gpus):\n    return int((workers + gpus - 1) / gpus)\n",
        "def square(x):\n    return x ** 2\n\n"
        "print('slope of x^2 at 3 is about', (square(3.0 + 1e-4) - square(3.0)) / 1e-4)\n",
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
        self._frames: List[_Frame] = []  # the open functions and loops, innermost last

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        found = quotient(node)
        if found is None or found.doubled:
            return
        if found.kind in ("forward", "backward"):
            formula = ("(f(x + h) - f(x)) / h" if found.kind == "forward"
                       else "(f(x) - f(x - h)) / h")
            self.report(node, self.message.format(formula=formula), fix=centered(found))
        elif found.kind is None and self._frames:
            self._frames[-1].divisions.append(found)

    def _statement(self, node: cst.CSTNode) -> None:
        if self._frames:
            moved = perturbation(node)
            if moved is not None:
                self._frames[-1].perturbations.append(moved)

    visit_AugAssign = _statement
    visit_Assign = _statement

    def _enter(self, node: cst.CSTNode) -> None:
        self._frames.append(_Frame(isinstance(node, cst.FunctionDef)))

    def _leave(self, node: cst.CSTNode) -> None:
        frame = self._frames.pop()
        parent = self._frames[-1] if self._frames and not frame.function else None
        for division in frame.divisions:
            side = frame.one_side(division)
            if side is not None:
                self.report(division.node, self.message.format(formula=side))
            elif parent is not None and not frame.moves(division.step_text):
                parent.divisions.append(division)  # perturbed in an outer loop
        if parent is not None:
            parent.perturbations += frame.perturbations

    visit_For = visit_While = visit_FunctionDef = _enter
    leave_For = leave_While = leave_FunctionDef = _leave


@dataclass
class _Frame:
    """A function or loop body: the perturbations made in it and the opaque quotients it holds."""

    function: bool
    perturbations: List[Perturbation] = field(default_factory=list)
    divisions: List[Quotient] = field(default_factory=list)

    def moves(self, step: str) -> bool:
        return any(p.moves_by(step) for p in self.perturbations)

    def one_side(self, division: Quotient) -> Optional[str]:
        """The one-sided formula ``division`` computes, given the perturbations of this frame."""
        step = division.step_text
        numerator = division.node.left
        up = [p for p in self.perturbations if p.up and p.moves_by(step)]
        down = [p for p in self.perturbations if not p.up and p.moves_by(step)]
        in_place = [p for p in up if p.copy is None]
        if in_place and not any(p.copy is None for p in down):
            return f"(f(x[ix] + {step}) - f(x)) / {step} in a perturbation loop"
        copies_up = {p.copy for p in up if p.copy}
        copies_down = {p.copy for p in down if p.copy}
        if any(uses(numerator.left, c) for c in copies_up) and \
                not any(uses(numerator.right, c) for c in copies_down):
            return f"(f(x + {step}) - f(x)) / {step} on a perturbed copy"
        return None

"""NN104 unguarded-relative-error: |a - b| divided by |a|, |b| or |a| + |b| with no guard against 0."""
from __future__ import annotations

from typing import Optional, Set

import libcst as cst

from ..expressions import abbreviated, positional, text
from .base import Rule

_ABS = {"abs", "numpy.abs", "numpy.absolute", "numpy.fabs", "math.fabs", "torch.abs",
        "torch.absolute", "numpy.linalg.norm", "torch.norm", "torch.linalg.norm",
        "torch.linalg.vector_norm"}
_MAX = {"max", "numpy.maximum", "numpy.fmax", "torch.maximum", "torch.max", "torch.fmax"}


class UnguardedRelativeError(Rule):
    code = "NN104"
    name = "unguarded-relative-error"
    message = ("relative error divides by {denominator} with no guard: two zero gradients give "
               "0/0 = nan; use max(|a|, |b|, tiny), e.g. np.maximum(1e-8, ...)")
    severity = "error"
    what = ("Flags a relative error that divides |a - b| by |a|, |b|, |a| + |b| or max(|a|, |b|) "
            "of the same two values with nothing that keeps the denominator away from zero "
            "(`max(..., 1e-8)`, `+ eps`, `.clamp(min=...)`).")
    why = ("Where both gradients are zero (a dead ReLU, an unused weight) the unguarded ratio is "
           "0/0: nan compares false with every threshold, so `assert rel_error < 1e-6` is silently "
           "skipped or a whole check reads as failed. CS231n's rel_error guards with "
           "np.maximum(1e-8, np.abs(x) + np.abs(y)).")
    bad = (
        "import numpy as np\n\ndef rel_error(x, y):\n"
        "    return np.max(np.abs(x - y) / (np.abs(x) + np.abs(y)))\n",
        "def relative(a, n):\n    return abs(a - n) / max(abs(a), abs(n))\n",
        "import torch\n\nerr = (grad - num).norm() / (grad.norm() + num.norm())\n",
        "import torch\n\nrel = torch.abs(analytic - numeric) / torch.abs(numeric)\n",
    )
    good = (
        "import numpy as np\n\ndef rel_error(x, y):\n"
        "    return np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y)))\n",
        "def relative(a, n, tiny=1e-12):\n    return abs(a - n) / max(abs(a), abs(n), tiny)\n",
        "import torch\n\nerr = (grad - num).norm() / (grad.norm() + num.norm() + 1e-12)\n",
        "import torch\n\nrel = (a - b).abs() / a.abs().clamp(min=1e-12)\n",
        "speed_change = abs(v1 - v2) / duration\n",
    )

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if not isinstance(node.operator, cst.Divide):
            return
        operands = self._difference_operands(node.left)
        if operands is None:
            return
        if self._only_magnitudes(node.right, operands):
            self.report(node, self.message.format(denominator=abbreviated(node.right)))

    def _magnitude_argument(self, node: cst.BaseExpression) -> Optional[cst.BaseExpression]:
        """x for abs(x), np.abs(x), x.abs(), x.norm(), np.linalg.norm(x); else None."""
        if not isinstance(node, cst.Call):
            return None
        if isinstance(node.func, cst.Attribute) and node.func.attr.value in ("abs", "norm") \
                and self.context.call_name(node) not in _ABS:
            return node.func.value
        if self.context.call_name(node) in _ABS:
            return positional(node, 0)
        return None

    def _difference_operands(self, node: cst.BaseExpression) -> Optional[Set[str]]:
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) \
                and node.func.attr.value in ("max", "mean", "sum", "item"):
            return self._difference_operands(node.func.value)
        inner = self._magnitude_argument(node)
        if isinstance(inner, cst.BinaryOperation) and isinstance(inner.operator, cst.Subtract):
            left, right = text(inner.left), text(inner.right)
            if left and right:
                return {left, right}
        return None

    def _only_magnitudes(self, node: cst.BaseExpression, operands: Set[str]) -> bool:
        """True when ``node`` is built only from |a|, |b| with + and max: nothing bounds it from 0."""
        inner = self._magnitude_argument(node)
        if inner is not None:
            return text(inner) in operands
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Add):
            return self._only_magnitudes(node.left, operands) and \
                self._only_magnitudes(node.right, operands)
        if isinstance(node, cst.Call) and self.context.call_name(node) in _MAX \
                and all(a.keyword is None for a in node.args) and len(node.args) >= 2:
            return all(self._only_magnitudes(a.value, operands) for a in node.args)
        return False

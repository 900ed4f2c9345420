"""NN504 dropout-without-scaling: a hand-written dropout whose activations are never rescaled."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Set

import libcst as cst

from ..expressions import descendants, number, text
from .base import Rule
from .units import UnitScopes

_UNIFORM = {"numpy.random.rand", "numpy.random.random", "numpy.random.random_sample",
            "numpy.random.uniform", "torch.rand", "torch.rand_like", "torch.empty_like"}
_BERNOULLI = {"numpy.random.binomial", "torch.bernoulli"}


@dataclass
class _Scope:
    masks: List[tuple] = field(default_factory=list)  # (assignment, mask name, probability text)
    scaled: List[tuple] = field(default_factory=list)  # (text, node): divisors and factors
    applied: Set[str] = field(default_factory=set)  # mask names multiplied into something


class DropoutWithoutScaling(UnitScopes, Rule):
    code = "NN504"
    name = "dropout-without-scaling"
    message = ("dropout mask `{mask}` (keep or drop probability `{p}`) is applied without "
               "rescaling: activations are smaller in training than at test time; divide the "
               "mask by the keep probability (inverted dropout)")
    severity = "error"
    what = ("Flags a hand-written dropout: a random mask (`np.random.rand(*x.shape) < p`, "
            "`np.random.binomial(1, p, ...)`, `torch.rand_like(x) > p`) multiplied into the "
            "activations when nothing in the function (or class) rescales by the probability: "
            "no division by it in training (inverted dropout), no multiplication by it at test "
            "time (the original dropout).")
    why = ("Dropping units with probability 1 - p scales the expected activation by p. Unless "
           "training divides by p (CS231n's inverted dropout: `(np.random.rand(*x.shape) < p) / "
           "p`) or test time multiplies by p, the next layer sees activations of a different "
           "size at test time than it was trained on, and accuracy drops for no visible reason.")
    bad = (
        "import numpy as np\n\ndef dropout_forward(x, p, train=True):\n    if train:\n"
        "        mask = np.random.rand(*x.shape) < p\n        return x * mask\n    return x\n",
        "import torch\n\nclass MyDropout(torch.nn.Module):\n    def __init__(self, p):\n"
        "        super().__init__()\n        self.p = p\n\n    def forward(self, x):\n"
        "        if not self.training:\n            return x\n"
        "        keep = (torch.rand_like(x) > self.p).float()\n        return x * keep\n",
        "import numpy as np\n\ndef hidden(h, keep_prob):\n"
        "    m = np.random.binomial(1, keep_prob, size=h.shape)\n    return np.maximum(h, 0) * m\n",
    )
    good = (
        "import numpy as np\n\ndef dropout_forward(x, p, train=True):\n    if train:\n"
        "        mask = (np.random.rand(*x.shape) < p) / p\n        return x * mask\n    return x\n",
        "import numpy as np\n\nclass Dropout:\n    def __init__(self, p=0.2):\n        self.p = p\n\n"
        "    def forward(self, X, training=True):\n        c = 1 - self.p\n        if training:\n"
        "            self.mask = np.random.uniform(size=X.shape) > self.p\n            c = self.mask\n"
        "        return X * c\n",
        "import torch\n\ndef noisy(x):\n    noise = torch.rand_like(x) < 0.5\n"
        "    return x + noise.float() * 0.01\n",
        "import numpy as np\n\ndef mutate(w, rate, scale=1.0):\n"
        "    mask = np.random.binomial(1, p=rate, size=w.shape)\n"
        "    return w + np.random.normal(0, scale, size=w.shape) * mask\n",
    )

    new_unit = _Scope

    def __init__(self, context) -> None:
        super().__init__(context)
        self.open_units()

    def visit_Assign(self, node: cst.Assign) -> None:
        if len(node.targets) != 1 or not text(node.targets[0].target):
            return
        probability = self._mask_probability(node.value)
        if probability is not None:
            self.unit.masks.append((node, text(node.targets[0].target), probability))

    def _mask_probability(self, value: cst.BaseExpression) -> Optional[str]:
        """The probability text of an unscaled random mask, else None (also when it is scaled)."""
        while isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute) \
                and value.func.attr.value in ("float", "astype", "double", "type"):
            value = value.func.value
        if isinstance(value, cst.Comparison) and len(value.comparisons) == 1 \
                and isinstance(value.left, cst.Call) \
                and self.context.call_name(value.left) in _UNIFORM:
            return text(value.comparisons[0].comparator)
        if isinstance(value, cst.Call) and self.context.call_name(value) in _BERNOULLI:
            probability = value.args[1].value if len(value.args) > 1 else value.args[0].value \
                if value.args else None
            return text(probability) if probability is not None else None
        return None

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        scope = self.unit
        if isinstance(node.operator, cst.Divide):
            scope.scaled += [(found, node) for found in _texts(node.right)]
        elif isinstance(node.operator, cst.Multiply):
            for side, other in ((node.left, node.right), (node.right, node.left)):
                # a mask on a constant or on noise (mutations) drops no activation
                if number(other) is None and not self._random(other):
                    scope.applied |= _texts(side)
                if text(side):
                    scope.scaled.append((text(side), node))
        elif isinstance(node.operator, cst.Subtract) and number(node.left) == 1.0 \
                and text(node.right):
            scope.scaled.append((text(node.right), node))

    def _random(self, node: cst.BaseExpression) -> bool:
        name = self.context.call_name(node) if isinstance(node, cst.Call) else None
        return bool(name) and name.startswith(("numpy.random.", "torch.rand", "torch.normal"))

    def close_unit(self, scope: _Scope) -> None:
        for assignment, mask, probability in scope.masks:
            inside = {id(n) for n in descendants(assignment.value)}
            rescaled = any(found == probability and id(node) not in inside
                           for found, node in scope.scaled)
            if mask in scope.applied and not rescaled:
                self.report(assignment, self.message.format(mask=mask, p=probability))


def _texts(node: cst.BaseExpression) -> Set[str]:
    return {text(n) for n in descendants(node) if isinstance(n, (cst.Name, cst.Attribute))
            and text(n)}

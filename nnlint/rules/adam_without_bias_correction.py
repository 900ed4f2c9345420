"""NN212 adam-without-bias-correction: a hand-written Adam whose moments are never de-biased."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Set

import libcst as cst

from ..expressions import number, text
from .base import Rule
from .units import UnitScopes

_SQRT = {"numpy.sqrt", "torch.sqrt", "math.sqrt", "sqrt"}


@dataclass
class _Scope:
    # (node, moment text, beta text, squared, averaged text): m and v of Adam average the same
    # gradient, g and g ** 2; batch norm's running mean and variance average different things
    moments: List[tuple] = field(default_factory=list)
    powers: Set[str] = field(default_factory=set)  # texts raised to a power: beta1 ** t
    updates: List[cst.BinaryOperation] = field(default_factory=list)  # x / (sqrt(v) + eps)


class AdamWithoutBiasCorrection(UnitScopes, Rule):
    code = "NN212"
    name = "adam-without-bias-correction"
    message = ("Adam update from moments `{first}` and `{second}` without bias correction: both "
               "start at zero, so early steps are scaled wrongly; divide them by "
               "(1 - beta1 ** t) and (1 - beta2 ** t) with t the step count")
    severity = "error"
    what = ("Flags a hand-written Adam: a first moment `m = beta1 * m + (1 - beta1) * g`, a "
            "second moment `v = beta2 * v + (1 - beta2) * g ** 2` and an update divided by "
            "`sqrt(v) + eps`, in a function (or class) where neither beta is ever raised to the "
            "step count (`beta1 ** t`). Dividing by the constant `1 - beta1` is not a bias "
            "correction. The two moments must average the same gradient: batch norm's running "
            "mean and variance look alike and are not flagged.")
    why = ("m and v start at zero, so after t steps they are shrunk by (1 - beta ** t): with "
           "beta2 = 0.999 the second moment is a thousand times too small at the first step, "
           "which makes the first updates far larger than the learning rate says (or, with "
           "other betas, far smaller). Kingma and Ba (2015), Algorithm 1 divides both by "
           "(1 - beta ** t); CS231n's Adam includes it ('bias correction ... for the first few "
           "steps').")
    bad = (
        "import numpy as np\n\ndef adam(w, dw, config):\n"
        "    config['m'] = config['beta1'] * config['m'] + (1 - config['beta1']) * dw\n"
        "    config['v'] = config['beta2'] * config['v'] + (1 - config['beta2']) * dw ** 2\n"
        "    next_w = w - config['learning_rate'] * config['m'] / (np.sqrt(config['v']) + 1e-8)\n"
        "    return next_w, config\n",
        "import numpy as np\n\nclass Adam:\n    def update(self, w, grad):\n"
        "        self.m = self.b1 * self.m + (1 - self.b1) * grad\n"
        "        self.v = self.b2 * self.v + (1 - self.b2) * np.power(grad, 2)\n"
        "        m_hat = self.m / (1 - self.b1)\n        v_hat = self.v / (1 - self.b2)\n"
        "        return w - self.lr * m_hat / (np.sqrt(v_hat) + self.eps)\n",
        "import torch\n\ndef step(p, g, m, v, lr=1e-3, b1=0.9, b2=0.999):\n"
        "    m = b1 * m + (1 - b1) * g\n    v = b2 * v + (1 - b2) * g * g\n"
        "    return p - lr * m / (torch.sqrt(v) + 1e-8), m, v\n",
    )
    good = (
        "import numpy as np\n\ndef adam(w, dw, config):\n    config['t'] += 1\n"
        "    config['m'] = config['beta1'] * config['m'] + (1 - config['beta1']) * dw\n"
        "    config['v'] = config['beta2'] * config['v'] + (1 - config['beta2']) * dw ** 2\n"
        "    mt = config['m'] / (1 - config['beta1'] ** config['t'])\n"
        "    vt = config['v'] / (1 - config['beta2'] ** config['t'])\n"
        "    next_w = w - config['learning_rate'] * mt / (np.sqrt(vt) + 1e-8)\n"
        "    return next_w, config\n",
        "import numpy as np\n\ndef rmsprop(w, dw, cache, lr=1e-2, decay=0.99):\n"
        "    cache = decay * cache + (1 - decay) * dw ** 2\n"
        "    return w - lr * dw / (np.sqrt(cache) + 1e-8), cache\n",
        "def momentum(w, dw, v, lr=1e-2, mu=0.9):\n    v = mu * v - lr * dw\n    return w + v, v\n",
        "import numpy as np\n\ndef batchnorm_train(x, gamma, beta, bn, momentum=0.9, eps=1e-5):\n"
        "    mu, std = x.mean(axis=0), x.std(axis=0)\n"
        "    bn['mean'] = momentum * bn['mean'] + (1 - momentum) * mu\n"
        "    bn['var'] = momentum * bn['var'] + (1 - momentum) * std ** 2\n"
        "    return gamma * (x - bn['mean']) / np.sqrt(bn['var'] + eps) + beta\n",
    )

    new_unit = _Scope

    def __init__(self, context) -> None:
        super().__init__(context)
        self.open_units()

    def visit_Assign(self, node: cst.Assign) -> None:
        if len(node.targets) == 1:
            moment = _moment(node.targets[0].target, node.value)
            if moment is not None:
                self.unit.moments.append((node, *moment))

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if isinstance(node.operator, cst.Power) and text(node.left):
            self.unit.powers.add(text(node.left))
        elif isinstance(node.operator, cst.Divide) and self._root_of_sum(node.right):
            self.unit.updates.append(node)

    def visit_Call(self, node: cst.Call) -> None:
        if (text(node.func) or "").split(".")[-1] in ("power", "pow") and node.args \
                and text(node.args[0].value):
            self.unit.powers.add(text(node.args[0].value))

    def _root_of_sum(self, node: cst.BaseExpression) -> bool:
        """sqrt(v) + eps (or the bare sqrt(v)): the denominator of an Adam or RMSprop update."""
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Add):
            return self._root_of_sum(node.left) or self._root_of_sum(node.right)
        if isinstance(node, cst.Call):
            name = self.context.call_name(node) or ""
            return name in _SQRT or name.endswith(".sqrt") or (
                isinstance(node.func, cst.Attribute) and node.func.attr.value == "sqrt")
        return isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Power) \
            and number(node.right) == 0.5

    def close_unit(self, scope: _Scope) -> None:
        seconds = [m for m in scope.moments if m[3]]
        averaged = {m[4] for m in seconds}
        firsts = [m for m in scope.moments if not m[3] and m[4] in averaged]
        if not (firsts and seconds and scope.updates):
            return
        betas = {m[2] for m in scope.moments}
        if betas & scope.powers:
            return
        self.report(scope.updates[-1], self.message.format(first=firsts[0][1], second=seconds[0][1]))


def _moment(target: cst.BaseExpression, value: cst.BaseExpression) -> Optional[tuple]:
    """(moment, beta, squared) for ``m = beta * m + (1 - beta) * g`` (terms in either order)."""
    moment = text(target)
    if not moment or not (isinstance(value, cst.BinaryOperation) and isinstance(value.operator, cst.Add)):
        return None
    for decay, fresh in ((value.left, value.right), (value.right, value.left)):
        factors = _factors(decay)
        if moment not in {text(f) for f in factors}:
            continue
        betas = [text(f) for f in factors if text(f) != moment]
        for beta in betas:
            rest = [f for f in _factors(fresh) if not _one_minus(f, beta)]
            if len(rest) < len(_factors(fresh)) and rest:
                bases = [_square_base(f) for f in rest]
                if len(rest) == 2 and text(rest[0]) == text(rest[1]):  # g * g
                    return moment, beta, True, text(rest[0])
                if len(rest) == 1:
                    squared = bases[0] is not None
                    return moment, beta, squared, text(bases[0] if squared else rest[0])
    return None


def _factors(node: cst.BaseExpression) -> List[cst.BaseExpression]:
    if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Multiply):
        return _factors(node.left) + _factors(node.right)
    return [node]


def _one_minus(node: cst.BaseExpression, beta: Optional[str]) -> bool:
    return isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Subtract) \
        and number(node.left) == 1.0 and text(node.right) == beta


def _square_base(node: cst.BaseExpression) -> Optional[cst.BaseExpression]:
    """g for ``g ** 2``, ``np.square(g)``, ``np.power(g, 2)``; else None."""
    if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Power):
        return node.left if number(node.right) == 2.0 else None
    if isinstance(node, cst.Call) and node.args:
        name = (text(node.func) or "").split(".")[-1]
        if name == "square" or (name in ("power", "pow") and len(node.args) > 1
                                and number(node.args[1].value) == 2.0):
            return node.args[0].value
    return None

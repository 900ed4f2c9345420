"""NN302 linear-scale-sampling: a learning rate or regularization strength sampled uniformly."""
from __future__ import annotations

import math
from typing import Optional, Tuple

import libcst as cst

from ..expressions import argument, keyword, number, positional, text
from .base import Rule
from .hyperparameters import is_scale_hyperparameter, searched_hyperparameter

_UNIFORM = {"numpy.random.uniform", "random.uniform", "torch.distributions.Uniform",
            "torch.distributions.uniform.Uniform", "ray.tune.uniform", "tune.uniform",
            "hyperopt.hp.uniform", "hp.uniform"}
_NAMED = {"suggest_float", "suggest_uniform"}  # optuna: trial.suggest_float(name, low, high)
_LINEAR_GRIDS = {"numpy.linspace", "numpy.arange", "torch.linspace", "torch.arange"}


class LinearScaleSampling(Rule):
    code = "NN302"
    name = "linear-scale-sampling"
    message = ("{name} sampled uniformly on a linear scale over {low:g}..{high:g} ({decades}): "
               "almost every sample lands in the top decade; sample the exponent, "
               "10 ** uniform({log_low}, {log_high}), or use a log-uniform sampler")
    grid_message = ("{name} on a linear grid over {low:g}..{high:g} ({decades}): almost every "
                    "value lies in the top decade; space it by powers of ten, "
                    "np.logspace({log_low}, {log_high}, n)")
    what = ("Flags a learning rate, weight decay or regularization strength drawn uniformly on a "
            "linear scale across more than one decade: `np.random.uniform(1e-6, 1e-2)`, "
            "`random.uniform(0, 0.1)`, `tune.uniform`, optuna's `suggest_float` without "
            "`log=True`; and a grid of such values spaced linearly, `np.linspace(1e-5, 1e-1, n)` "
            "or `np.arange`. `10 ** uniform(-6, -2)`, log-uniform samplers and `np.logspace` are "
            "fine.")
    why = ("These hyperparameters act multiplicatively: going from 1e-4 to 1e-3 matters as much "
           "as from 1e-3 to 1e-2. Uniform over 1e-6..1e-2 puts 90% of the trials above 1e-3 and "
           "0.09% below 1e-5. CS231n: 'search for hyperparameters on log scale', "
           "learning_rate = 10 ** uniform(-6, 1).")
    bad = (
        "import numpy as np\n\nlr = np.random.uniform(1e-6, 1e-2)\n",
        "import random\nimport torch\n\n"
        "opt = torch.optim.SGD(params, lr=random.uniform(0, 0.1))\n",
        "from ray import tune\n\nconfig = {'lr': tune.uniform(1e-5, 1e-1), 'batch_size': 64}\n",
        "def objective(trial):\n    weight_decay = trial.suggest_float('weight_decay', 1e-6, 1e-2)\n"
        "    return train(weight_decay=weight_decay)\n",
        "import numpy as np\n\nlearning_rates = np.linspace(1e-5, 1e-1, 9)\n"
        "results = {lr: train(lr) for lr in learning_rates}\n",
        "def objective(trial):\n    strength = trial.suggest_float('l2_penalty', 0.0, 1.0)\n"
        "    return fit(l2_penalty=strength)\n",
    )
    good = (
        "import numpy as np\n\nlr = 10 ** np.random.uniform(-6, -2)\n",
        "def objective(trial):\n    lr = trial.suggest_float('lr', 1e-5, 1e-1, log=True)\n"
        "    return train(lr=lr)\n",
        "import random\n\ndropout = random.uniform(0.1, 0.5)\n",
        "import numpy as np\n\nlr = np.random.uniform(1e-3, 5e-3)  # within one decade\n",
        "from ray import tune\n\nconfig = {'lr': tune.loguniform(1e-5, 1e-1)}\n",
        "import numpy as np\n\nlearning_rates = np.logspace(-5, -1, 9)\n"
        "momenta = np.linspace(0.5, 0.99, 5)\n",
    )

    def _sampled_bounds(self, call: cst.Call) -> Optional[Tuple[str, float, float]]:
        """(parameter name from the sampler, low, high) for a linear uniform sampler call."""
        qualified = self.context.call_name(call) or ""
        method = call.func.attr.value if isinstance(call.func, cst.Attribute) else ""
        if method in _NAMED:
            if method == "suggest_float" and keyword(call, "log") is not None \
                    and text(keyword(call, "log")) == "True":
                return None
            name, low, high = positional(call, 0), positional(call, 1), positional(call, 2)
            low, high = keyword(call, "low") or low, keyword(call, "high") or high
            label = name.value.strip("'\"") if isinstance(name, cst.SimpleString) else ""
        elif qualified in _UNIFORM or qualified.endswith((".uniform", ".uniform_")) and \
                not qualified.startswith(("numpy.random.log", "torch.nn.init")):
            shift = 1 if qualified in ("hyperopt.hp.uniform", "hp.uniform") else 0
            low = keyword(call, "low") or keyword(call, "a") or positional(call, shift)
            high = keyword(call, "high") or keyword(call, "b") or positional(call, shift + 1)
            name = positional(call, 0) if shift else None
            label = name.value.strip("'\"") if isinstance(name, cst.SimpleString) else ""
        else:
            return None
        low_value, high_value = number(low), number(high)
        if low_value is None or high_value is None:
            return None
        return label, low_value, high_value

    def _check(self, name: Optional[str], call: cst.BaseExpression) -> None:
        if isinstance(call, cst.Call) and text(call.func) == "float" and call.args:
            call = call.args[0].value
        if not isinstance(call, cst.Call):
            return
        found = self._sampled_bounds(call)
        if found is None:
            return
        label, low, high = found
        name = name or label
        if not is_scale_hyperparameter(name) or high <= 0:
            return
        if low > 0 and high / low <= 10:
            return
        decades = f"{math.log10(high / low):.0f} decades" if low > 0 else "from 0: infinitely many decades"
        log_low = f"{math.log10(low):.0f}" if low > 0 else f"{math.log10(high) - 4:.0f}"
        self.report(call, self.message.format(name=name, low=low, high=high, decades=decades,
                                              log_low=log_low, log_high=f"{math.log10(high):.0f}"))

    def _check_grid(self, name: Optional[str], call: cst.BaseExpression) -> None:
        """``np.linspace(1e-5, 1e-1, 10)`` as the values of a learning rate or a strength."""
        if not (isinstance(call, cst.Call) and self.context.call_name(call) in _LINEAR_GRIDS):
            return
        hyperparameter = searched_hyperparameter(name) or name
        if not is_scale_hyperparameter(hyperparameter):
            return
        low, high = number(argument(call, 0, "start")), number(argument(call, 1, "stop"))
        if low is None or high is None or high <= 0 or (low > 0 and high / low <= 10):
            return
        decades = f"{math.log10(high / low):.0f} decades" if low > 0 else "from 0"
        log_low = f"{math.log10(low):.0f}" if low > 0 else f"{math.log10(high) - 4:.0f}"
        self.report(call, self.grid_message.format(name=name, low=low, high=high, decades=decades,
                                                   log_low=log_low,
                                                   log_high=f"{math.log10(high):.0f}"))

    def visit_For(self, node: cst.For) -> None:
        self._check_grid(text(node.target), node.iter)

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            self._check(text(target.target), node.value)
            self._check_grid(text(target.target), node.value)

    def visit_Arg(self, node: cst.Arg) -> None:
        if node.keyword is not None:
            self._check(node.keyword.value, node.value)

    def visit_DictElement(self, node: cst.DictElement) -> None:
        if isinstance(node.key, cst.SimpleString):
            self._check(node.key.value.strip("'\""), node.value)

    def visit_Call(self, node: cst.Call) -> None:
        """Samplers that carry the parameter's name themselves (optuna, hyperopt)."""
        method = node.func.attr.value if isinstance(node.func, cst.Attribute) else ""
        if method in _NAMED or self.context.call_name(node) in ("hyperopt.hp.uniform", "hp.uniform"):
            self._check(None, node)

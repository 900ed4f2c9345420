"""NN301 grid-search: hyperparameters searched on a fixed grid instead of sampled at random."""
from __future__ import annotations

from typing import Dict, List, Optional, Set

import libcst as cst

from ..expressions import descendants, number, text
from .base import Rule
from .hyperparameters import (is_hyperparameter, is_unambiguous_hyperparameter,
                              searched_hyperparameter)
from .optimizers import is_optimizer

_GRID_CLASSES = {"sklearn.model_selection.GridSearchCV", "sklearn.model_selection.ParameterGrid",
                 "sklearn.grid_search.GridSearchCV", "sklearn.grid_search.ParameterGrid"}
_ARRAYS = {"numpy.array", "numpy.asarray", "torch.tensor", "torch.as_tensor"}
_RANGES = {"numpy.logspace", "numpy.linspace", "numpy.geomspace", "numpy.arange",
           "torch.logspace", "torch.linspace", "torch.arange"}


class GridSearch(Rule):
    code = "NN301"
    name = "grid-search"
    message = ("grid search over {names}: with a grid, most trials repeat the values of the "
               "hyperparameter that matters; sample each trial at random (log-uniform for lr/reg)")
    what = ("Flags hyperparameter grid search: nested loops (or one loop over "
            "`itertools.product` / a list of tuples) over fixed value lists whose variables reach "
            "an optimizer or training call as learning rate, regularization, weight decay, "
            "momentum, dropout and the like (by keyword, in a config dict, or positionally when "
            "the list is named after one: `for a in learning_rates`), together with a second "
            "one such as hidden size or weight scale; and `GridSearchCV` / `ParameterGrid`. "
            "Value lists may be literals, ranges or `np.array([...]) * 1e-3`. Loops over "
            "data, shapes, dtypes, devices or layers are not grid search.")
    why = ("Bergstra and Bengio (2012), quoted by CS231n: 'randomly chosen trials are more "
           "efficient for hyper-parameter optimization than trials on a grid'. Usually one "
           "hyperparameter matters much more than the others; a 5x5 grid tries only 5 of its "
           "values in 25 runs, random search tries 25.")
    bad = (
        "import torch\n\nfor lr in [1e-4, 1e-3, 1e-2]:\n    for wd in [0.0, 1e-5, 1e-4]:\n"
        "        opt = torch.optim.SGD(model.parameters(), lr=lr, weight_decay=wd)\n"
        "        train(model, opt)\n",
        "import itertools\n\nfor lr, reg in itertools.product([1e-3, 1e-2], [0.1, 1.0]):\n"
        "    run_experiment(learning_rate=lr, reg=reg)\n",
        "from sklearn.model_selection import GridSearchCV\n\n"
        "search = GridSearchCV(estimator, {'alpha': [0.1, 1.0, 10.0]})\n",
        "import numpy as np\n\nlearning_rates = [1e-7, 5e-7, 1e-6]\nstrengths = [2.5e4, 5e4]\n"
        "for lr in learning_rates:\n    for reg in strengths:\n"
        "        svm.train(X, y, learning_rate=lr, reg=reg, num_iters=1500)\n",
        "learning_rates = [1e-7, 5e-7]\nregularization_strengths = [2.5e4, 5e4]\n"
        "for rate in learning_rates:\n    for strength in regularization_strengths:\n"
        "        classifier.train(X_train, y_train, rate, strength, 1500)\n",
        "import numpy as np\n\nrates = np.array([1.0, 3.0, 10.0]) * 1e-3\n"
        "for learning_rate in rates:\n    for weight_scale in [1e-2, 5e-2]:\n"
        "        model = FullyConnectedNet([100, 100], weight_scale=weight_scale)\n"
        "        solver = Solver(model, data, optim_config={'learning_rate': learning_rate})\n"
        "        solver.train()\n",
    )
    good = (
        "import numpy as np\n\nfor trial in range(100):\n    lr = 10 ** np.random.uniform(-6, -3)\n"
        "    reg = 10 ** np.random.uniform(-5, 5)\n    train(learning_rate=lr, reg=reg)\n",
        "import torch\n\nfor dtype in [torch.float32, torch.float64]:\n"
        "    for device in ['cpu', 'cuda']:\n        run_test(torch.ones(3, dtype=dtype, device=device))\n",
        "import torch\n\nfor n in [1, 2, 4]:\n    for m in [3, 5]:\n"
        "        assert layer(torch.randn(n, m)).shape == (n, 2)\n",
        "for epoch in range(10):\n    for x, y in loader:\n        step(x, y, lr=0.1)\n",
        "for alpha, beta in [(1, 1), (1, 0)]:\n"
        "    out = torch.addmm(c, a, b, alpha=alpha, beta=beta)\n",
        "import torch\n\nfor hidden in [8, 16]:\n    for n in [1, 4]:\n"
        "        out = MLP(3, hidden)(torch.randn(n, 3))\n        assert out.shape == (n, 1)\n",
    )

    def __init__(self, context) -> None:
        super().__init__(context)
        self._frames: List[Optional[dict]] = []

    def _fixed_values(self, node: cst.BaseExpression, depth: int = 0) -> bool:
        if isinstance(node, (cst.List, cst.Tuple, cst.Set)):
            return bool(node.elements) and all(
                number(e.value) is not None or self._fixed_values(e.value, depth + 1)
                for e in node.elements)
        if isinstance(node, cst.Name) and depth < 3:
            bound = self.context.binding(node.value)
            return bound is not None and self._fixed_values(bound, depth + 1)
        if isinstance(node, cst.BinaryOperation):  # np.array([1, 3]) * 1e-3, 10 ** np.arange(-5, -1)
            sides = (node.left, node.right)
            return any(number(side) is not None for side in sides) and any(
                self._fixed_values(side, depth + 1) for side in sides)
        if isinstance(node, cst.Call):
            qualified = self.context.call_name(node)
            if qualified in _RANGES:
                return True
            if qualified == "itertools.product":
                return all(self._fixed_values(a.value, depth + 1) for a in node.args)
            if qualified in _ARRAYS and node.args:
                return self._fixed_values(node.args[0].value, depth + 1)
        return False

    def visit_For(self, node: cst.For) -> None:
        if self._fixed_values(node.iter):
            names = {text(n) for n in descendants(node.target) if isinstance(n, cst.Name)}
            searched = searched_hyperparameter(text(node.iter))
            hyper = {name: searched for name in names if searched and isinstance(node.target, cst.Name)}
            self._frames.append({"node": node, "vars": names, "reached": set(), "strong": False,
                                 "hyper": hyper})
        else:
            self._frames.append(None)

    def leave_For(self, node: cst.For) -> None:
        frame = self._frames.pop()
        if frame is None:
            return
        parent = next((f for f in reversed(self._frames) if f is not None), None)
        if parent is not None:
            parent["vars"] |= frame["vars"]
            parent["hyper"].update(frame["hyper"])
            parent["reached"] |= frame["reached"]
            parent["strong"] = parent["strong"] or frame["strong"]
        elif len(frame["reached"]) >= 2 and frame["strong"]:
            self.report(node, self.message.format(names=", ".join(sorted(frame["reached"]))))

    def _searched(self) -> Dict[str, str]:
        """Loop variables over a list named after a hyperparameter (``for a in learning_rates``)."""
        found: Dict[str, str] = {}
        for frame in self._frames:
            if frame is not None:
                found.update(frame["hyper"])
        return found

    def _loop_variables(self) -> Set[str]:
        return set().union(*(f["vars"] for f in self._frames if f is not None))

    def _reach(self, value: cst.BaseExpression, strong: bool) -> None:
        variables = self._loop_variables()
        used = {text(n) for n in descendants(value) if isinstance(n, cst.Name)} & variables
        for frame in self._frames:
            if frame is not None and used & frame["vars"]:
                frame["reached"] |= used & frame["vars"]
                frame["strong"] = frame["strong"] or strong

    def visit_Call(self, node: cst.Call) -> None:
        qualified = self.context.call_name(node)
        if qualified in _GRID_CLASSES:
            self.report(node, self.message.format(names=qualified.rsplit(".", 1)[1]))
            return
        if not any(f is not None for f in self._frames):
            return
        for position, arg in enumerate(node.args):
            if arg.keyword is not None and is_hyperparameter(arg.keyword.value):
                self._reach(arg.value, is_unambiguous_hyperparameter(arg.keyword.value))
            elif arg.keyword is None and is_optimizer(qualified) and position >= 1:
                self._reach(arg.value, True)
            elif arg.keyword is None and is_hyperparameter(text(arg.value)):
                self._reach(arg.value, is_unambiguous_hyperparameter(text(arg.value)))
            elif arg.keyword is None and text(arg.value) in self._searched():
                self._reach(arg.value, is_unambiguous_hyperparameter(
                    self._searched()[text(arg.value)]))

    def visit_DictElement(self, node: cst.DictElement) -> None:
        if any(f is not None for f in self._frames) and isinstance(node.key, cst.SimpleString) \
                and is_hyperparameter(node.key.value):
            self._reach(node.value, is_unambiguous_hyperparameter(node.key.value))

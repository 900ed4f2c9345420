"""NN105 gradcheck-randomness: gradcheck of a function that draws random numbers on every call."""
from __future__ import annotations

from typing import Dict, List, Optional, Set, Tuple

import libcst as cst

from ..expressions import argument, descendants, keyword, text
from .base import Rule
from .gradcheck_targets import gradcheck_kind

_DROPOUT_MODULES = {f"torch.nn.{n}" for n in (
    "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout",
    "RReLU")} | {f"torch.nn.modules.dropout.{n}" for n in ("Dropout", "Dropout2d")}
_RANDOM_FUNCTIONS = {
    "torch.rand", "torch.randn", "torch.rand_like", "torch.randn_like", "torch.randint",
    "torch.randint_like", "torch.bernoulli", "torch.multinomial", "torch.normal",
    "torch.randperm", "torch.dropout", "torch.nn.functional.rrelu",
} | {f"torch.nn.functional.{n}" for n in ("dropout", "dropout1d", "dropout2d", "dropout3d",
                                          "alpha_dropout", "feature_alpha_dropout")}
_RANDOM_METHODS = {"bernoulli_", "uniform_", "normal_", "random_", "exponential_",
                   "geometric_", "cauchy_", "log_normal_"}
_SEEDING = {"torch.manual_seed", "torch.random.fork_rng", "torch.random.manual_seed",
            "torch.cuda.manual_seed", "torch.cuda.manual_seed_all", "numpy.random.seed",
            "random.seed"}


class GradcheckRandomness(Rule):
    code = "NN105"
    name = "gradcheck-randomness"
    message = ("gradcheck of {target}, which {reason}, with no fixed seed per evaluation: every "
               "f(x+h), f(x-h) draws a new mask; call .eval() first or seed each evaluation "
               "(pytest_nncheck.check_gradients does)")
    severity = "error"
    what = ("Flags `torch.autograd.gradcheck` / `gradgradcheck` of a module or function that uses "
            "dropout or random ops in train mode, with no fixed seed per evaluation: a module "
            "holding `nn.Dropout` that was not put in `.eval()`, `F.dropout`, or a function "
            "calling `torch.rand*`/`bernoulli`.")
    why = ("A central difference compares f(x+h) with f(x-h). If each evaluation draws a new "
           "dropout mask, the difference measures the change of mask, not of x, and a correct "
           "layer fails (or a wrong one passes by luck). CS231n: 'be careful with dropout ... use "
           "a fixed random seed for the evaluation of f(x+h), f(x-h) and the analytic gradient'.")
    bad = (
        "import torch\nfrom torch import nn\nfrom torch.autograd import gradcheck\n\n"
        "class Block(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.fc = nn.Linear(4, 4)\n        self.drop = nn.Dropout(0.5)\n\n"
        "    def forward(self, x):\n        return self.drop(self.fc(x))\n\n"
        "block = Block().double()\nx = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)\n"
        "gradcheck(block, (x,))\n",
        "import torch\nimport torch.nn.functional as F\n\n"
        "torch.autograd.gradcheck(lambda x: F.dropout(x, 0.5), (x,))\n",
        "import torch\nfrom torch.autograd import gradcheck\n\n"
        "def noisy_relu(x):\n    mask = (torch.rand_like(x) > 0.1).double()\n"
        "    return torch.relu(x) * mask\n\ngradcheck(noisy_relu, (x,))\n",
        "import torch\nfrom torch import nn\nfrom torch.autograd import gradcheck\n\n"
        "net = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.2)).double()\n"
        "gradcheck(net, (x,))\n",
    )
    good = (
        "import torch\nfrom torch import nn\nfrom torch.autograd import gradcheck\n\n"
        "class Block(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.fc = nn.Linear(4, 4)\n        self.drop = nn.Dropout(0.5)\n\n"
        "    def forward(self, x):\n        return self.drop(self.fc(x))\n\n"
        "block = Block().double()\nblock.eval()\ngradcheck(block, (x,))\n",
        "import torch\nfrom torch.autograd import gradcheck\n\n"
        "def seeded(x):\n    torch.manual_seed(0)\n"
        "    return torch.nn.functional.dropout(x, 0.5)\n\ngradcheck(seeded, (x,))\n",
        "import torch\nfrom torch import nn\nfrom torch.autograd import gradcheck\n\n"
        "class Scale(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.w = nn.Parameter(torch.randn(4))  # random init is not forward randomness\n\n"
        "    def forward(self, x):\n        return x * self.w\n\ngradcheck(Scale().double(), (x,))\n",
        "from pytest_nncheck import check_gradients\n\ncheck_gradients(block, x)\n",
    )

    def __init__(self, context) -> None:
        super().__init__(context)
        self._classes: Dict[str, str] = {}        # class name -> why it is random
        self._functions: Dict[str, Tuple[Optional[str], bool]] = {}  # name -> (reason, seeded)
        self._open: List[dict] = []               # classes/functions being read
        self._evaluated: List[Set[str]] = [set()]
        self._pending: List[Tuple[cst.Call, str, str, str]] = []  # node, kind, name, label

    # Collecting what is random ------------------------------------------------------------

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._open.append({"kind": "class", "name": node.name.value, "reason": None,
                           "seeded": False, "method": None})

    def leave_ClassDef(self, node: cst.ClassDef) -> None:
        info = self._open.pop()
        if info["reason"] and not info["seeded"]:
            self._classes[info["name"]] = info["reason"]

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._evaluated.append(set())
        if self._open and self._open[-1]["kind"] == "class":
            self._open[-1]["method"] = node.name.value
            self._open.append({"kind": "method", "name": node.name.value, "reason": None,
                               "seeded": False})
        else:
            self._open.append({"kind": "function", "name": node.name.value, "reason": None,
                               "seeded": False})

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._evaluated.pop()
        info = self._open.pop()
        if info["kind"] == "function":
            self._functions[info["name"]] = (info["reason"], info["seeded"])
        elif info["reason"]:
            owner = self._open[-1]
            owner["reason"] = owner["reason"] or info["reason"]
            owner["seeded"] = owner["seeded"] or info["seeded"]

    def _random_reason(self, node: cst.Call) -> Optional[str]:
        qualified = self.context.call_name(node)
        if qualified in _DROPOUT_MODULES:
            return f"holds {qualified.rsplit('.', 1)[1]}"
        if qualified in _RANDOM_FUNCTIONS:
            training = keyword(node, "training")
            if training is not None and text(training) == "False":
                return None
            return f"calls {qualified.rsplit('.', 1)[1]}"
        if qualified and (qualified.startswith("numpy.random.") or
                          qualified.split(".")[0] == "random") and qualified not in _SEEDING:
            return f"calls {qualified}"
        if isinstance(node.func, cst.Attribute) and node.func.attr.value in _RANDOM_METHODS:
            return f"calls .{node.func.attr.value}()"
        return None

    def visit_Call(self, node: cst.Call) -> None:
        if self._open:
            info = self._open[-1]
            if self.context.call_name(node) in _SEEDING:
                info["seeded"] = True
            reason = self._random_reason(node)
            if reason and (info["kind"] != "method" or info["name"] != "__init__"
                           or reason.startswith("holds")):
                info["reason"] = info["reason"] or reason
        if gradcheck_kind(self.context.call_name(node)) == "torch":
            target = argument(node, 0, "func")
            if target is not None:
                self._examine(node, target)

    def visit_Expr(self, node: cst.Expr) -> None:
        call = node.value
        if isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute):
            name, method = text(call.func.value), call.func.attr.value
            if name is None:
                return
            if method == "eval" or (method == "train" and call.args
                                    and text(call.args[0].value) == "False"):
                self._evaluated[-1].add(name)
            elif method == "train":
                self._evaluated[-1].discard(name)

    # Judging gradcheck targets -----------------------------------------------------------

    def _examine(self, call: cst.Call, target: cst.BaseExpression) -> None:
        if isinstance(target, cst.Lambda):
            calls = [n for n in descendants(target.body) if isinstance(n, cst.Call)]
            if any(self.context.call_name(c) in _SEEDING for c in calls):
                return
            for inner in calls:
                reason = self._random_reason(inner)
                if reason:
                    self.report(call, self.message.format(target="a lambda", reason=reason))
                    return
            return
        if isinstance(target, cst.Attribute) and target.attr.value == "apply":
            name = text(target.value)
            if name:
                self._pending.append((call, "class", name, name))
            return
        qualified = self.context.resolve(target)
        if qualified in _RANDOM_FUNCTIONS:
            self.report(call, self.message.format(target=qualified, reason="is random"))
            return
        if not isinstance(target, cst.Name):
            return
        name = target.value
        if any(name in scope for scope in self._evaluated):
            return
        bound = self.context.binding(name)
        if bound is None:
            self._pending.append((call, "function", name, name))
            return
        self._examine_value(call, bound, name)

    def _examine_value(self, call: cst.Call, value: cst.BaseExpression, label: str) -> None:
        while isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute) \
                and value.func.attr.value in ("double", "float", "to", "cpu", "cuda", "train"):
            value = value.func.value
        if isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute) \
                and value.func.attr.value == "eval":
            return
        if not isinstance(value, cst.Call):
            return
        for inner in descendants(value):
            if isinstance(inner, cst.Call):
                reason = self._random_reason(inner)
                if reason and reason.startswith("holds"):
                    self.report(call, self.message.format(target=f"`{label}`", reason=reason))
                    return
        class_name = text(value.func)
        if class_name:
            self._pending.append((call, "class", class_name, label))

    def leave_Module(self, node: cst.Module) -> None:
        for call, kind, name, label in self._pending:
            if kind == "class" and name in self._classes:
                self.report(call, self.message.format(target=f"`{label}`",
                                                      reason=self._classes[name]))
            elif kind == "function" and name in self._functions:
                reason, seeded = self._functions[name]
                if reason and not seeded:
                    self.report(call, self.message.format(target=f"`{label}`", reason=reason))

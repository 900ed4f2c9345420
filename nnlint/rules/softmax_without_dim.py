"""NN502 softmax-without-dim: a softmax that lets PyTorch guess the dimension."""
from __future__ import annotations

from typing import Optional

import libcst as cst

from ..expressions import keyword, positional, text, with_keyword
from .base import Rule

_MODULES = {"torch.nn.Softmax", "torch.nn.LogSoftmax", "torch.nn.Softmin",
            "torch.nn.modules.activation.Softmax", "torch.nn.modules.activation.LogSoftmax"}
_FUNCTIONS = {"torch.nn.functional.softmax", "torch.nn.functional.log_softmax",
              "torch.nn.functional.softmin"}
_LINEAR = {"torch.nn.Linear", "torch.nn.LazyLinear", "torch.nn.Bilinear"}


class SoftmaxWithoutDim(Rule):
    code = "NN502"
    name = "softmax-without-dim"
    message = ("{call} without dim: PyTorch picks dim 0 for 1-D and 3-D inputs and dim 1 "
               "otherwise, so on (batch, time, classes) scores it normalises over the batch; "
               "pass dim=-1 (or the class dimension)")
    severity = "error"
    what = ("Flags `nn.Softmax()`, `nn.LogSoftmax()`, `nn.Softmin()` built without `dim`, and "
            "`F.softmax(x)` / `F.log_softmax(x)` called without it. `--fix` adds `dim=-1` where "
            "the input is certainly class scores on the last dimension: the module follows an "
            "`nn.Linear` in an `nn.Sequential`, or the function is applied to a Linear layer's "
            "output (safe: for the 2-D input PyTorch guesses right, it is the same dimension).")
    why = ("The implicit dimension is a legacy rule (`_get_softmax_dim`): dim 0 when the input "
           "has 0, 1 or 3 dimensions, else dim 1. The same line is right on (N, C) logits and "
           "wrong on (N, T, C) sequence scores, where each class probability is normalised "
           "across the examples of the batch: the loss still falls and the model learns the "
           "wrong thing. PyTorch only warns, once.")
    bad = (
        "from torch import nn\n\nhead = nn.Sequential(nn.Linear(128, 10), nn.Softmax())\n",
        "import torch.nn.functional as F\n\ndef attend(scores, values):\n"
        "    weights = F.softmax(scores)\n    return weights @ values\n",
        "import torch.nn.functional as F\nfrom torch import nn\n\nclass Tagger(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.out = nn.Linear(64, 17)\n\n"
        "    def forward(self, h):\n        return F.log_softmax(self.out(h))\n",
    )
    good = (
        "from torch import nn\n\nhead = nn.Sequential(nn.Linear(128, 10), nn.Softmax(dim=-1))\n",
        "import torch.nn.functional as F\n\ndef attend(scores, values):\n"
        "    weights = F.softmax(scores, dim=-1)\n    return weights @ values\n",
        "import torch\n\nprobs = torch.softmax(logits, 1)\nlog_probs = logits.log_softmax(-1)\n",
    )

    def __init__(self, context) -> None:
        super().__init__(context)
        self._reported = set()  # modules already reported (with their fix) from their Sequential

    def visit_Call(self, node: cst.Call) -> None:
        qualified = self.context.call_name(node)
        if qualified in _MODULES and not node.args and node not in self._reported:
            self.report(node, self.message.format(call=f"{text(node.func)}()"))
        elif qualified in _FUNCTIONS and keyword(node, "dim") is None \
                and positional(node, 1) is None and node.args:
            fix = _with_last_dim(node) if self._from_linear(positional(node, 0)) else None
            self.report(node, self.message.format(call=f"{text(node.func)}(x)"), fix=fix)
        elif qualified == "torch.nn.Sequential":
            for before, after in zip(node.args, node.args[1:]):
                layer = after.value
                if isinstance(layer, cst.Call) and self.context.call_name(layer) in _MODULES \
                        and not layer.args and self._is_linear(before.value):
                    self._reported.add(layer)
                    self.report(layer, self.message.format(call=f"{text(layer.func)}()"),
                                fix=_with_last_dim(layer))

    def _is_linear(self, node: Optional[cst.BaseExpression]) -> bool:
        return isinstance(node, cst.Call) and self.context.call_name(node) in _LINEAR

    def _from_linear(self, node: Optional[cst.BaseExpression]) -> bool:
        """``self.fc(x)`` where ``self.fc = nn.Linear(...)``, or ``nn.Linear(...)(x)``."""
        if not isinstance(node, cst.Call):
            return False
        if self._is_linear(node.func):
            return True
        bound = self.context.binding(text(node.func) or "")
        return self._is_linear(bound)


def _with_last_dim(call: cst.Call) -> cst.Call:
    return with_keyword(call, "dim", cst.UnaryOperation(cst.Minus(), cst.Integer("1")))

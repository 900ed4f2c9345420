"""NN204 softmax-before-cross-entropy: probabilities passed where the loss wants logits."""
from __future__ import annotations

from typing import Optional

import libcst as cst

from ..expressions import positional, text
from .base import Rule

_CROSS_ENTROPY = {"torch.nn.functional.cross_entropy", "torch.nn.CrossEntropyLoss"}
_NLL = {"torch.nn.functional.nll_loss", "torch.nn.NLLLoss"}
_SOFTMAX = {"torch.softmax", "torch.nn.functional.softmax", "torch.special.softmax"}


class SoftmaxBeforeCrossEntropy(Rule):
    code = "NN204"
    name = "softmax-before-cross-entropy"
    message = "{loss} receives softmax probabilities: {why}; pass the raw logits"
    severity = "error"
    what = ("Flags softmax output given to `cross_entropy` / `CrossEntropyLoss` (which apply "
            "log_softmax themselves) or to `nll_loss` / `NLLLoss` (which expect log-probabilities): "
            "inline, through a variable assigned in the same function, or from an "
            "`nn.Sequential` that ends in `nn.Softmax` or a model whose `forward()` returns "
            "softmax, in a file that uses CrossEntropyLoss.")
    why = ("cross_entropy(softmax(z)) computes the log-softmax of probabilities in [0, 1]: the "
           "loss cannot fall much below ln C - 1, its gradients shrink by the softmax Jacobian, "
           "and a model that could reach 100% accuracy plateaus. It trains, slowly and wrongly, "
           "so the bug is silent. nll_loss(softmax(z)) is worse: it minimises -p instead of "
           "-log p. Karpathy's recipe: overfit one batch first; this is a classic reason it fails.")
    bad = (
        "import torch.nn.functional as F\n\nloss = F.cross_entropy(F.softmax(logits, dim=1), labels)\n",
        "import torch\nfrom torch import nn\n\ncriterion = nn.CrossEntropyLoss()\n\n"
        "def step(model, x, y):\n    probs = torch.softmax(model(x), dim=-1)\n"
        "    return criterion(probs, y)\n",
        "from torch import nn\n\nmodel = nn.Sequential(nn.Linear(784, 10), nn.Softmax(dim=1))\n"
        "criterion = nn.CrossEntropyLoss()\n",
        "import torch.nn.functional as F\n\nloss = F.nll_loss(out.softmax(dim=1), target)\n",
        "from torch import nn\n\nclass Classifier(nn.Module):\n    def __init__(self):\n"
        "        super().__init__()\n        self.fc = nn.Linear(20, 5)\n"
        "        self.softmax = nn.Softmax(dim=1)\n\n    def forward(self, x):\n"
        "        return self.softmax(self.fc(x))\n\n"
        "model = Classifier()\ncriterion = nn.CrossEntropyLoss()\n"
        "loss = criterion(model(x), y)\n",
    )
    good = (
        "import torch.nn.functional as F\n\nloss = F.cross_entropy(logits, labels)\n"
        "probs = F.softmax(logits, dim=1)  # for reporting only\n",
        "import torch.nn.functional as F\n\nloss = F.nll_loss(F.log_softmax(out, dim=1), target)\n",
        "from torch import nn\n\nmodel = nn.Sequential(nn.Linear(784, 10), nn.LogSoftmax(dim=1))\n"
        "criterion = nn.NLLLoss()\n",
        "from torch import nn\n\nattention = nn.Sequential(nn.Linear(16, 16), nn.Softmax(dim=-1))\n"
        "criterion = nn.MSELoss()\n",
        "import torch\nfrom torch import nn\n\nclass Net(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.fc = nn.Linear(20, 5)\n\n"
        "    def forward(self, x):\n        return self.fc(x)\n\n"
        "    def predict(self, x):\n        return torch.softmax(self.forward(x), dim=1)\n\n"
        "criterion = nn.CrossEntropyLoss()\n",
    )

    def __init__(self, context) -> None:
        super().__init__(context)
        self._losses: dict = {}  # variable -> "cross_entropy" | "nll"
        self._softmax_models = []
        self._softmax_forwards = []
        self._uses_cross_entropy = False

    def _kind(self, qualified: Optional[str]) -> Optional[str]:
        if qualified in _CROSS_ENTROPY:
            return "cross_entropy"
        if qualified in _NLL:
            return "nll"
        return None

    def _is_softmax(self, node: cst.BaseExpression, depth: int = 0) -> bool:
        if isinstance(node, cst.Name) and depth < 2:
            bound = self.context.binding(node.value)
            return bound is not None and self._is_softmax(bound, depth + 1)
        if not isinstance(node, cst.Call):
            return False
        if self.context.call_name(node) in _SOFTMAX:
            return True
        if isinstance(node.func, cst.Attribute) and node.func.attr.value == "softmax":
            return True  # the tensor method, x.softmax(dim)
        # nn.Softmax(dim=1)(x), or self.softmax(x) with self.softmax = nn.Softmax(dim=1)
        layer = node.func if isinstance(node.func, cst.Call) else \
            self.context.binding(text(node.func) or "") if depth < 2 else None
        return isinstance(layer, cst.Call) and self.context.call_name(layer) == "torch.nn.Softmax"

    def visit_Return(self, node: cst.Return) -> None:
        functions = self.context.functions
        if functions and functions[-1].name.value == "forward" and self.context.classes \
                and node.value is not None and self._is_softmax(node.value):
            self._softmax_forwards.append(node.value)

    def visit_Assign(self, node: cst.Assign) -> None:
        if not isinstance(node.value, cst.Call):
            return
        qualified = self.context.call_name(node.value)
        kind = self._kind(qualified)
        for target in node.targets:
            name = text(target.target)
            if kind and name:
                self._losses[name] = kind
        if kind == "cross_entropy":
            self._uses_cross_entropy = True
        if qualified == "torch.nn.Sequential" and node.value.args:
            last = node.value.args[-1].value
            if isinstance(last, cst.Call) and self.context.call_name(last) == "torch.nn.Softmax":
                self._softmax_models.append(last)

    def visit_Call(self, node: cst.Call) -> None:
        qualified = self.context.call_name(node)
        kind = self._kind(qualified) if qualified not in ("torch.nn.CrossEntropyLoss",
                                                          "torch.nn.NLLLoss") else None
        if kind is None:
            kind = self._losses.get(text(node.func) or "")
        if kind == "cross_entropy":
            self._uses_cross_entropy = True
        if kind is None:
            return
        first = positional(node, 0)
        if first is not None and self._is_softmax(first):
            why = ("it applies log_softmax itself, so this is log_softmax of probabilities and "
                   "the loss plateaus" if kind == "cross_entropy"
                   else "it expects log-probabilities, so it minimises -p instead of -log p")
            label = "cross_entropy" if kind == "cross_entropy" else "nll_loss"
            self.report(node, self.message.format(loss=label, why=why))

    def leave_Module(self, node: cst.Module) -> None:
        if not self._uses_cross_entropy:
            return
        for softmax in self._softmax_models:
            self.report(softmax, "nn.Sequential ends in nn.Softmax while this file uses "
                                 "CrossEntropyLoss, which applies log_softmax itself: drop the "
                                 "Softmax layer and apply softmax only when you need probabilities")
        for softmax in self._softmax_forwards:
            self.report(softmax, "forward() returns softmax probabilities while this file uses "
                                 "CrossEntropyLoss, which applies log_softmax itself: return the "
                                 "logits and apply softmax only when you need probabilities")

"""NN503 softmax-over-one-class: a softmax over a dimension of size one, which is always 1."""
from __future__ import annotations

from typing import Optional

import libcst as cst

from ..expressions import argument, number, positional, text
from .base import Rule

_SOFTMAX_MODULES = {"torch.nn.Softmax", "torch.nn.LogSoftmax"}
_SOFTMAX_FUNCTIONS = {"torch.nn.functional.softmax", "torch.nn.functional.log_softmax",
                      "torch.softmax", "torch.log_softmax"}


class SoftmaxOverOneClass(Rule):
    code = "NN503"
    name = "softmax-over-one-class"
    message = ("{call} over the output of {layer}, which has a single unit: the softmax of one "
               "value is 1 (its log is 0) whatever the input, so nothing is learned; use a "
               "sigmoid (BCEWithLogitsLoss) for one output, or give the layer one unit per class")
    severity = "error"
    what = ("Flags a softmax or log-softmax applied to the output of an `nn.Linear` layer with "
            "one output feature: in an `nn.Sequential` (`nn.Linear(64, 1), nn.Softmax(dim=1)`) "
            "or as `F.softmax(self.fc(x), dim=-1)` with `self.fc = nn.Linear(64, 1)`. A softmax "
            "with dim=1 over a one-unit layer's output in a function is left alone: on (N, T, 1) "
            "scores it is attention over the T tokens.")
    why = ("A softmax normalises over its dimension; over a dimension of size one it returns a "
           "tensor of ones (log_softmax: zeros). The binary classifier then predicts 1 for "
           "everything, its loss is constant, and its gradient is zero: the model trains "
           "without error and never learns. The usual cause is a binary head written like a "
           "multi-class one.")
    bad = (
        "from torch import nn\n\nhead = nn.Sequential(nn.Linear(64, 1), nn.Softmax(dim=1))\n",
        "import torch.nn.functional as F\nfrom torch import nn\n\nclass Scorer(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n"
        "        self.out = nn.Linear(128, out_features=1)\n\n    def forward(self, h):\n"
        "        return F.log_softmax(self.out(h), dim=-1)\n",
        "import torch\nfrom torch import nn\n\nscore = nn.Linear(32, 1)\n"
        "probability = torch.softmax(score(features), dim=-1)\n",
    )
    good = (
        "from torch import nn\n\nhead = nn.Sequential(nn.Linear(64, 1), nn.Sigmoid())\n",
        "from torch import nn\n\nhead = nn.Sequential(nn.Linear(64, 2), nn.Softmax(dim=1))\n",
        "import torch\nfrom torch import nn\n\nattention = nn.Linear(32, 1)\n"
        "weights = torch.softmax(attention(tokens), dim=1)  # over the tokens, not the unit\n",
    )

    def visit_Call(self, node: cst.Call) -> None:
        qualified = self.context.call_name(node)
        if qualified == "torch.nn.Sequential":
            for before, after in zip(node.args, node.args[1:]):
                layer = after.value
                if isinstance(layer, cst.Call) and self.context.call_name(layer) in _SOFTMAX_MODULES \
                        and self._single_unit(before.value) \
                        and _over_features(argument(layer, 0, "dim"), (-1.0, 1.0)):
                    self.report(layer, self.message.format(call=text(layer.func) or "Softmax",
                                                           layer=_render(before.value)))
        elif qualified in _SOFTMAX_FUNCTIONS:
            source = positional(node, 0)
            # dim=1 of an (N, T, 1) score is the usual attention over tokens: only -1 is certain
            if isinstance(source, cst.Call) and _over_features(argument(node, 1, "dim"), (-1.0,)) \
                    and argument(node, 1, "dim") is not None:
                layer = self.context.binding(text(source.func) or "")
                if self._single_unit(layer):
                    self.report(node, self.message.format(call=text(node.func) or "softmax",
                                                          layer=text(source.func)))

    def _single_unit(self, node: Optional[cst.BaseExpression]) -> bool:
        return isinstance(node, cst.Call) and self.context.call_name(node) == "torch.nn.Linear" \
            and number(argument(node, 1, "out_features")) == 1.0


def _over_features(dim: Optional[cst.BaseExpression], allowed) -> bool:
    """The softmax runs over the Linear layer's feature dimension: dim in ``allowed``, or no
    dim at all (PyTorch then takes dim 1 of the (N, 1) output)."""
    return dim is None or number(dim) in allowed


def _render(node: cst.CSTNode) -> str:
    return cst.Module([]).code_for_node(node)

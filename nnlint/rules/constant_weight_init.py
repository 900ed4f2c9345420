"""NN213 constant-weight-init: hidden-layer weights initialised to one value (symmetry)."""
from __future__ import annotations

import re
from typing import Dict, List, Tuple

import libcst as cst

from ..expressions import argument, text
from .base import Rule

_CONSTANT_INITS = {"torch.nn.init.zeros_", "torch.nn.init.ones_", "torch.nn.init.constant_",
                   "torch.nn.init.constant", "torch.nn.init.zeros", "torch.nn.init.ones"}
_CONSTANT_METHODS = {"zero_", "fill_"}
_WEIGHTED = {"Linear", "Conv1d", "Conv2d", "Conv3d", "LSTM", "GRU", "RNN", "Embedding"}
_NORMS = re.compile(r"(Norm|norm|bn|ln)")
# Layers whose weights are often zeroed on purpose: the output head (its inputs differ, so its
# units do not stay tied) and the last layer of a residual branch ("zero-init residual").
_OUTPUT = re.compile(r"(head|out|classifier|final|last|logits|proj|fc_?out|decoder|pred|score)",
                     re.IGNORECASE)
_NUMPY_CONSTANT = {"numpy.zeros", "numpy.ones", "numpy.full", "numpy.zeros_like",
                   "numpy.ones_like"}
_LAYER_WEIGHT = re.compile(r"^W(\d+)$|^w(\d+)$|^weights?(\d+)$")


class ConstantWeightInit(Rule):
    code = "NN213"
    name = "constant-weight-init"
    message = ("{target} starts with every weight equal ({how}): all units of the layer compute "
               "the same function and get the same gradient, so they stay identical; draw them "
               "at random (e.g. nn.init.kaiming_normal_, or randn * sqrt(2 / fan_in))")
    severity = "error"
    what = ("Flags the weights of a hidden layer set to one constant: `nn.init.zeros_` / "
            "`constant_` / `ones_` or `.fill_()` / `.zero_()` on the `.weight` of a Linear, "
            "Conv or recurrent layer of a model (a `self.` layer bound to one, or every layer an "
            "`isinstance` guard selects in an init function), and "
            "in NumPy networks `W1 = np.zeros((D, H))` when a later layer `W2` exists. Biases, "
            "normalisation layers and output heads (zero-initialised on purpose in many "
            "recipes) are not flagged.")
    why = ("CS231n, 'Pitfall: all zero initialization': if every neuron of a layer computes the "
           "same output it also receives the same gradient and the same update, so the layer "
           "behaves as one unit however wide it is. Training still lowers the loss a little, "
           "which hides the bug; small random numbers break the symmetry.")
    bad = (
        "from torch import nn\n\nclass MLP(nn.Module):\n    def __init__(self):\n"
        "        super().__init__()\n        self.hidden = nn.Linear(784, 256)\n"
        "        self.out = nn.Linear(256, 10)\n        nn.init.zeros_(self.hidden.weight)\n",
        "from torch import nn\n\ndef init_weights(m):\n    if isinstance(m, nn.Conv2d):\n"
        "        nn.init.constant_(m.weight, 0.01)\n        nn.init.zeros_(m.bias)\n",
        "import numpy as np\n\nclass TwoLayerNet:\n    def __init__(self, D, H, C):\n"
        "        self.params = {'W1': np.zeros((D, H)), 'b1': np.zeros(H),\n"
        "                       'W2': 0.01 * np.random.randn(H, C), 'b2': np.zeros(C)}\n",
    )
    good = (
        "from torch import nn\n\nclass MLP(nn.Module):\n    def __init__(self):\n"
        "        super().__init__()\n        self.hidden = nn.Linear(784, 256)\n"
        "        self.head = nn.Linear(256, 10)\n        nn.init.kaiming_normal_(self.hidden.weight)\n"
        "        nn.init.zeros_(self.hidden.bias)\n        nn.init.zeros_(self.head.weight)\n",
        "from torch import nn\n\ndef init_weights(m):\n"
        "    if isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):\n"
        "        nn.init.constant_(m.weight, 1)\n        nn.init.constant_(m.bias, 0)\n",
        "from torch import nn\n\ndef init_weights(m):\n    if isinstance(m, nn.Conv2d):\n"
        "        nn.init.kaiming_normal_(m.weight)\n"
        "    elif isinstance(m, nn.BatchNorm2d) or isinstance(m, nn.LayerNorm):\n"
        "        m.weight.data.fill_(1)\n        m.bias.data.zero_()\n",
        "import numpy as np\n\nclass Softmax:\n    def __init__(self, D, C):\n"
        "        self.W = np.zeros((D, C))  # one layer: no hidden units to tie\n",
        "import torch\nfrom torch import nn\n\nprobe = nn.Linear(74, 10)  # the whole model\n"
        "with torch.no_grad():\n    probe.weight.zero_()\n    probe.weight[:, 64:] = torch.eye(10)\n",
    )

    def __init__(self, context) -> None:
        super().__init__(context)
        self._guards: List[tuple] = []  # (if node, (name, classes)) of the open isinstance tests
        self._numpy_layers: List[Dict[int, Tuple[cst.CSTNode, str]]] = [{}]

    def visit_If(self, node: cst.If) -> None:
        self._leave_branch(node)
        self._guards.append((node, _isinstance_guard(node.test, self.context.resolve)))

    def leave_If(self, node: cst.If) -> None:
        self._guards.pop()

    def visit_Else(self, node: cst.Else) -> None:
        self._leave_branch(node)

    def _leave_branch(self, node: cst.CSTNode) -> None:
        """In an elif or else branch, the enclosing if's isinstance test no longer holds."""
        if self._guards and self._guards[-1][0].orelse is node:
            self._guards[-1] = (self._guards[-1][0], ("", ()))

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._numpy_layers.append({})

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._judge_numpy(self._numpy_layers.pop())

    def leave_Module(self, node: cst.Module) -> None:
        self._judge_numpy(self._numpy_layers[0])

    def visit_Call(self, node: cst.Call) -> None:
        qualified = self.context.call_name(node)
        if qualified in _CONSTANT_INITS:
            tensor = argument(node, 0, "tensor")
            how = f"{text(node.func)}()"
        elif isinstance(node.func, cst.Attribute) and node.func.attr.value in _CONSTANT_METHODS:
            tensor = node.func.value
            if isinstance(tensor, cst.Attribute) and tensor.attr.value == "data":
                tensor = tensor.value
            how = f".{node.func.attr.value}()"
        else:
            return
        if isinstance(tensor, cst.Attribute) and tensor.attr.value == "weight" \
                and self._hidden_weighted_layer(tensor.value):
            self.report(node, self.message.format(target=text(tensor) or "the weight", how=how))

    def _hidden_weighted_layer(self, layer: cst.BaseExpression) -> bool:
        name = text(layer) or ""
        if _OUTPUT.search(name.rsplit(".", 1)[-1]) or _NORMS.search(name.rsplit(".", 1)[-1]):
            return False
        guarded = [classes for _, (guard, classes) in self._guards if guard == name]
        if guarded:
            return all(cls.rsplit(".", 1)[-1] in _WEIGHTED for classes in guarded for cls in classes)
        if not name.startswith("self."):
            return False  # a lone layer may be the whole model: it has no hidden units to tie
        bound = self.context.binding(name)
        kind = self.context.call_name(bound) if isinstance(bound, cst.Call) else None
        return bool(kind) and kind.startswith("torch.nn.") and kind.rsplit(".", 1)[-1] in _WEIGHTED

    def visit_DictElement(self, node: cst.DictElement) -> None:
        if isinstance(node.key, cst.SimpleString):
            self._numpy_weight(str(node.key.evaluated_value), node.value, node)

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            key = target.target
            if isinstance(key, cst.Subscript) and len(key.slice) == 1 \
                    and isinstance(key.slice[0].slice, cst.Index) \
                    and isinstance(key.slice[0].slice.value, cst.SimpleString):
                self._numpy_weight(str(key.slice[0].slice.value.evaluated_value), node.value, node)
            elif text(key):
                self._numpy_weight(text(key).rsplit(".", 1)[-1], node.value, node)

    def _numpy_weight(self, name: str, value: cst.BaseExpression, where: cst.CSTNode) -> None:
        match = _LAYER_WEIGHT.match(name)
        if match is None:
            return
        index = int(next(g for g in match.groups() if g))
        constant = isinstance(value, cst.Call) and self.context.call_name(value) in _NUMPY_CONSTANT
        self._numpy_layers[-1][index] = (where, name if constant else "")

    def _judge_numpy(self, layers: Dict[int, Tuple[cst.CSTNode, str]]) -> None:
        if len(layers) < 2:
            return
        last = max(layers)
        for index, (where, constant) in layers.items():
            if constant and index != last:
                self.report(where, self.message.format(target=constant, how="np.zeros/np.ones"))


def _isinstance_guard(test: cst.BaseExpression, resolve) -> Tuple[str, Tuple[str, ...]]:
    """(name, classes) for ``isinstance(m, nn.Linear)``, ``isinstance(m, (A, B))`` and
    ``isinstance(m, A) or isinstance(m, B)``; ("", ()) for any other test."""
    if isinstance(test, cst.BooleanOperation) and isinstance(test.operator, cst.Or):
        left, right = _isinstance_guard(test.left, resolve), _isinstance_guard(test.right, resolve)
        return (left[0], left[1] + right[1]) if left[0] and left[0] == right[0] else ("", ())
    if isinstance(test, cst.Call) and text(test.func) == "isinstance" and len(test.args) == 2:
        classes = test.args[1].value
        listed = [e.value for e in classes.elements] if isinstance(classes, cst.Tuple) else [classes]
        return text(test.args[0].value) or "", tuple(resolve(c) or "" for c in listed)
    return "", ()

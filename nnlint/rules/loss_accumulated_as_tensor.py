"""NN403 loss-accumulated-as-tensor: a running total of losses that keeps every batch's graph."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Set

import libcst as cst

from ..expressions import abbreviated, descendants, text
from .base import Fix, Rule
from .evaluation_loops import CallsUnderNoGrad

# A loss: criterion(out, y), loss_fn(...), F.cross_entropy(...), nn.MSELoss()(...), model.loss(b).
_LOSS_CALL = re.compile(r"(^|_)(loss|losses|criterion|cost|objective|nll|cross_entropy|mse|bce|"
                        r"l1|l2|kld?)(_|$)|loss$|^loss", re.IGNORECASE)
_LOSS_FUNCTIONS = re.compile(r"^torch\.nn\.functional\.\w*(loss|entropy)\w*$")
_BACKWARD_FUNCTIONS = {"torch.autograd.backward", "torch.autograd.grad"}
# Methods that turn a tensor into a number (or cut it from the graph).
_DETACHING = {"item", "detach", "tolist", "numpy", "cpu"}


@dataclass
class _Scope:
    """A function (or the module): its running totals and what else happens to them."""

    name: Optional[str]
    totals: List[cst.AugAssign] = field(default_factory=list)
    backward: Set[str] = field(default_factory=set)  # names inside a .backward() receiver
    used_as_tensor: Set[str] = field(default_factory=set)  # names with a method called on them
    assignments: List[tuple] = field(default_factory=list)  # (value, targets), read if needed

    def back_propagated(self) -> Set[str]:
        """Names whose value reaches a backward() call, through assignments in this scope."""
        self.flows: Dict[str, Set[str]] = {}
        for value, targets in self.assignments:
            names = {text(t) for t in targets if text(t)}
            for used in descendants(value):
                if isinstance(used, cst.Name):
                    self.flows.setdefault(used.value, set()).update(names)
        reached = set(self.backward)
        changed = True
        while changed:
            changed = False
            for source, targets in self.flows.items():
                if source not in reached and targets & reached:
                    reached.add(source)
                    changed = True
        return reached


class LossAccumulatedAsTensor(Rule):
    code = "NN403"
    name = "loss-accumulated-as-tensor"
    message = ("`{total} += {loss}` adds the loss tensor itself: the running total holds every "
               "batch's autograd graph until it is freed; add {loss}.item() (a number) instead")
    what = ("Flags a running total that adds a loss tensor in a loop (`total_loss += loss`, "
            "`epoch_loss += criterion(out, y)`) where autograd is on, when the total is never "
            "back-propagated, directly or through the expression it flows into, nor returned as "
            "it is (summing losses for one `backward()` is fine), the loss is not "
            "turned into a number first (`.item()`, `.detach()`, `float()`), and the file imports "
            "torch (unit tests, `test_*` functions, are left alone). `--fix` adds "
            "`.item()`: safe when the total is used only as a number afterwards, unsafe when a "
            "tensor method is called on it.")
    why = ("A loss tensor carries its graph: the activations of the whole forward pass. Adding it "
           "to a Python total makes the total a tensor that references every batch's graph, so "
           "memory grows through the epoch and is freed only when the total is; on a GPU the "
           "epoch ends out of memory or with a much smaller batch than it could have. The PyTorch "
           "FAQ lists `total_loss += loss` as the first cause of memory growing in training loops.")
    bad = (
        "import torch\n\ndef train_epoch(model, loader, optimizer, criterion):\n    running_loss = 0.0\n"
        "    for inputs, labels in loader:\n        optimizer.zero_grad()\n"
        "        loss = criterion(model(inputs), labels)\n        loss.backward()\n"
        "        optimizer.step()\n        running_loss += loss\n"
        "    return running_loss / len(loader)\n",
        "import torch.nn.functional as F\n\ndef validate(model, loader):\n    total = 0\n"
        "    for x, y in loader:\n        total += F.cross_entropy(model(x), y)\n"
        "    print('val loss', float(total) / len(loader))\n",
        "import torch\n\ndef fit(model, batches):\n    epoch_loss = 0\n    for batch in batches:\n"
        "        loss = model.loss(batch)\n        loss.backward()\n        epoch_loss += loss\n"
        "    return epoch_loss.item() / len(batches)\n",
    )
    good = (
        "import torch\n\ndef train_epoch(model, loader, optimizer, criterion):\n    running_loss = 0.0\n"
        "    for inputs, labels in loader:\n        optimizer.zero_grad()\n"
        "        loss = criterion(model(inputs), labels)\n        loss.backward()\n"
        "        optimizer.step()\n        running_loss += loss.item()\n"
        "    return running_loss / len(loader)\n",
        "def sequence_loss(decoder, hidden, targets, criterion):\n    loss = 0\n"
        "    for target in targets:\n        output, hidden = decoder(hidden)\n"
        "        loss += criterion(output, target)\n    loss.backward()\n    return loss.item()\n",
        "import torch\nimport torch.nn.functional as F\n\n@torch.no_grad()\n"
        "def validate(model, loader):\n    total = 0\n    for x, y in loader:\n"
        "        total += F.cross_entropy(model(x), y, reduction='sum')\n    return total / len(loader)\n",
        "def count(batches):\n    seen = 0\n    for batch in batches:\n        seen += len(batch)\n"
        "    return seen\n",
        "import torch\n\ndef style_transfer_loss(features, targets, content):\n    style = 0\n"
        "    for feature, target in zip(features, targets):\n"
        "        style += mse_loss(gram(feature), target)\n    total = content + 1e5 * style\n"
        "    total.backward()\n    return total.item()\n",
        "import torch\n\ndef nested_loss(outputs):\n    if isinstance(outputs, torch.Tensor):\n"
        "        return outputs.sum()\n    loss = 0.0\n    for value in outputs.values():\n"
        "        loss += nested_loss(value)\n    return loss  # the caller calls backward()\n",
    )

    def __init__(self, context) -> None:
        super().__init__(context)
        self._scopes: List[_Scope] = [_Scope(None)]
        self._findings: List[tuple] = []  # (scope, aug-assign)
        self._under_no_grad = CallsUnderNoGrad()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._scopes.append(_Scope(node.name.value))

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._close(self._scopes.pop())

    def leave_Module(self, node: cst.Module) -> None:
        self._close(self._scopes[0])
        if not self.context.uses_torch:
            return
        for scope, total in self._findings:
            if scope.name in self._under_no_grad.names or (scope.name or "").startswith("test_"):
                continue
            name = text(total.target) or ""
            safe = name not in scope.used_as_tensor
            self.report(total, self.message.format(total=name, loss=abbreviated(total.value)),
                        fix=Fix(((total.value, _item(total.value)),), safe))

    def visit_Assign(self, node: cst.Assign) -> None:
        self._scopes[-1].assignments.append((node.value, [t.target for t in node.targets]))

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._scopes[-1].assignments.append((node.value, [node.target]))
        if isinstance(node.operator, cst.AddAssign) and self.context.loops \
                and not self.context.gradients_off and self._is_loss(node.value):
            self._scopes[-1].totals.append(node)

    def visit_Return(self, node: cst.Return) -> None:
        """``return total`` hands the sum itself to the caller: a loss built for backward()."""
        if isinstance(node.value, cst.Name):
            self._scopes[-1].backward.add(node.value.value)

    def visit_Call(self, node: cst.Call) -> None:
        self._under_no_grad.see(node, self.context.gradients_off)
        if self.context.call_name(node) in _BACKWARD_FUNCTIONS:  # autograd.backward([loss], ...)
            self._scopes[-1].backward |= {n.value for a in node.args[:1]
                                          for n in descendants(a.value) if isinstance(n, cst.Name)}
        if not isinstance(node.func, cst.Attribute):
            return
        receiver = node.func.value
        names = {n.value for n in descendants(receiver) if isinstance(n, cst.Name)}
        if node.func.attr.value == "backward":
            self._scopes[-1].backward |= names
        elif isinstance(receiver, cst.Name):  # total.item() would fail once total is a number
            self._scopes[-1].used_as_tensor.add(receiver.value)

    def _close(self, scope: _Scope) -> None:
        if not scope.totals:
            return
        back_propagated = scope.back_propagated()
        for total in scope.totals:
            if (text(total.target) or "") not in back_propagated:
                self._findings.append((scope, total))

    def _is_loss(self, value: cst.BaseExpression, depth: int = 0) -> bool:
        """A loss tensor: a loss call, or a name bound to one in this function."""
        if isinstance(value, cst.Name) and depth == 0:
            bound = self.context.binding(value.value)
            return bound is not None and self._is_loss(bound, 1)
        if not isinstance(value, cst.Call):
            return False
        qualified = self.context.call_name(value) or ""
        if _LOSS_FUNCTIONS.match(qualified):
            return True
        if isinstance(value.func, cst.Attribute) and value.func.attr.value in _DETACHING:
            return False
        called = value.func.func if isinstance(value.func, cst.Call) else value.func
        last = (text(called) or "").rsplit(".", 1)[-1]
        return bool(_LOSS_CALL.search(last)) and last not in ("float", "int")


def _item(value: cst.BaseExpression) -> cst.Call:
    """``value.item()``, parenthesised when ``value`` is an operation."""
    if isinstance(value, (cst.BinaryOperation, cst.UnaryOperation)) and not value.lpar:
        value = value.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    return cst.Call(cst.Attribute(value, cst.Name("item")))

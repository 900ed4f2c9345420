"""NN203 missing-zero-grad: an optimizer stepped in a loop while gradients are never cleared."""
from __future__ import annotations

from typing import Dict, List, Tuple

import libcst as cst

from ..expressions import text
from .base import Rule
from .optimizers import is_optimizer


class MissingZeroGrad(Rule):
    code = "NN203"
    name = "missing-zero-grad"
    message = ("`{name}.step()` runs in a loop but nothing in this file clears the gradients: "
               "backward() adds to .grad, so every step uses the sum of all gradients so far; call "
               "{name}.zero_grad() once per step")
    severity = "error"
    what = ("Flags `optimizer.step()` inside a loop in a file that never clears gradients: no "
            "`.zero_grad()` on an optimizer or a model, no `p.grad = None`, no `.grad.zero_()`. "
            "An optimizer built in the same loop iteration that steps it (once) is not flagged.")
    why = ("PyTorch accumulates gradients: each backward() adds to `.grad`. Without a reset, the "
           "step at iteration t follows the sum of the gradients of iterations 1..t, which acts "
           "like a learning rate that grows every step and momentum towards the first batches. "
           "Training still runs and the loss still moves, which is why this bug survives for "
           "days (Karpathy's recipe lists forgetting zero_grad among the most common mistakes).")
    bad = (
        "import torch\n\noptimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 10)\n"
        "for x, y in loader:\n    loss = loss_fn(model(x), y)\n    loss.backward()\n"
        "    optimizer.step()\n    scheduler.step()\n",
        "def train(model, opt, batches):\n    for batch in batches:\n"
        "        model(batch).mean().backward()\n        opt.step()\n",
        "import torch\n\nclass Trainer:\n    def fit(self, loader):\n        for epoch in range(3):\n"
        "            for x, y in loader:\n                self.loss(x, y).backward()\n"
        "                self.optimizer.step()\n",
    )
    good = (
        "import torch\n\noptimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 10)\n"
        "for x, y in loader:\n    optimizer.zero_grad()\n    loss_fn(model(x), y).backward()\n"
        "    optimizer.step()\n    scheduler.step()\n",
        "def train(model, opt, batches, accumulate=4):\n    for i, batch in enumerate(batches):\n"
        "        model(batch).mean().backward()\n        if (i + 1) % accumulate == 0:\n"
        "            opt.step()\n            model.zero_grad(set_to_none=True)\n",
        "def train(model, opt, batches):\n    for batch in batches:\n"
        "        model(batch).mean().backward()\n        opt.step()\n"
        "        for p in model.parameters():\n            p.grad = None\n",
        "def run(scheduler, epochs):\n    for epoch in range(epochs):\n        scheduler.step()\n",
        "import torch\n\nfor width in (4, 8):\n    layer = torch.nn.Linear(width, 1)\n"
        "    layer(torch.ones(2, width)).sum().backward()\n"
        "    sgd = torch.optim.SGD(layer.parameters(), lr=1.0)\n    sgd.step()\n"
        "    assert layer.weight.grad is not None\n",
    )

    def __init__(self, context) -> None:
        super().__init__(context)
        self._optimizers: set = set()
        # The loops around each optimizer's creation: one built in the loop that steps it is
        # stepped once, with gradients from a single backward pass.
        self._created_in: Dict[str, Tuple[cst.CSTNode, ...]] = {}
        self._steps: List[cst.Call] = []
        self._clears = False

    def visit_Assign(self, node: cst.Assign) -> None:
        if isinstance(node.value, cst.Call) and is_optimizer(self.context.call_name(node.value)):
            for target in node.targets:
                if text(target.target):
                    self._optimizers.add(text(target.target))
                    self._created_in[text(target.target)] = tuple(self.context.loops)
        for target in node.targets:
            if isinstance(target.target, cst.Attribute) and target.target.attr.value == "grad":
                self._clears = True

    def visit_Call(self, node: cst.Call) -> None:
        if not isinstance(node.func, cst.Attribute):
            return
        method = node.func.attr.value
        if method == "zero_grad" or (method in ("zero_", "detach_") and isinstance(
                node.func.value, cst.Attribute) and node.func.value.attr.value == "grad"):
            self._clears = True
        elif method == "step" and self.context.loops and not node.args:
            receiver = text(node.func.value) or ""
            last = receiver.rsplit(".", 1)[-1].lower()
            once = self._created_in.get(receiver) == tuple(self.context.loops)
            if not once and (receiver in self._optimizers or "optim" in last
                             or last in ("opt", "optimiser")):
                self._steps.append(node)

    def leave_Module(self, node: cst.Module) -> None:
        if self._clears:
            return
        for step in self._steps:
            self.report(step, self.message.format(name=text(step.func.value)))

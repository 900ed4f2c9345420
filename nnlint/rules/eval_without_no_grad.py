"""NN402 eval-without-no-grad: an evaluation loop that records the autograd graph of every batch."""
from __future__ import annotations

from typing import List

import libcst as cst

from .base import Rule
from .evaluation_loops import (CallsUnderNoGrad, LoopFacts, data_of, enclosing_function,
                               is_evaluation_loop, loop_facts)


class EvalWithoutNoGrad(Rule):
    code = "NN402"
    name = "eval-without-no-grad"
    message = ("evaluation loop over `{data}` runs the model with autograd on: every batch "
               "builds a graph it never uses (memory and time); wrap it in torch.no_grad() "
               "(or torch.inference_mode())")
    what = ("Flags a loop that runs a model on validation or test batches (its data is named "
            "val, valid, test, eval or dev, or it sits in a function named `evaluate`, "
            "`validate`, `test`, ...) and never calls `backward()` or `step()`, when no "
            "`torch.no_grad()`, `torch.inference_mode()` or `set_grad_enabled(False)` covers "
            "the model call: neither a `with` block, nor a decorator, nor a no_grad block "
            "around the call of the function that holds the loop. Only files that import torch; "
            "`test_*` functions (unit tests) are left alone. `Variable(x, volatile=True)` is no "
            "substitute: PyTorch has ignored it since 0.4.")
    why = ("With autograd on, every forward pass keeps its activations for a backward pass that "
           "never comes: evaluation takes about twice the memory and longer, and batch sizes "
           "that train fine run out of memory at validation. If the outputs or losses are then "
           "accumulated as tensors, every batch's graph stays alive until the end of the loop. "
           "The PyTorch tutorials evaluate under torch.no_grad() for this reason.")
    bad = (
        "import torch\n\ndef evaluate(model, loader, criterion):\n    model.eval()\n    total = 0.0\n"
        "    for images, labels in loader:\n        outputs = model(images)\n"
        "        total += criterion(outputs, labels).item()\n    return total / len(loader)\n",
        "import torch\n\ncorrect = 0\nmodel.eval()\nfor x, y in test_loader:\n"
        "    pred = model(x).argmax(dim=1)\n    correct += (pred == y).sum().item()\n",
        "import torch\n\nclass Trainer:\n    def validate(self):\n        self.model.eval()\n"
        "        for batch in self.val_loader:\n            loss = self.model.loss(batch)\n"
        "            self.log(loss.item())\n",
    )
    good = (
        "import torch\n\n@torch.no_grad()\ndef evaluate(model, loader, criterion):\n"
        "    model.eval()\n    total = 0.0\n    for images, labels in loader:\n"
        "        total += criterion(model(images), labels).item()\n    return total / len(loader)\n",
        "import torch\n\ncorrect = 0\nmodel.eval()\nwith torch.inference_mode():\n"
        "    for x, y in test_loader:\n        correct += (model(x).argmax(dim=1) == y).sum().item()\n",
        "import torch\n\ndef run_epoch(model, loader):\n    for x, y in loader:\n"
        "        yield model(x), y\n\nwith torch.no_grad():\n"
        "    results = list(run_epoch(model, val_loader))\n",
        "def train(model, loader, optimizer):\n    for x, y in loader:\n        optimizer.zero_grad()\n"
        "        model.loss(x, y).backward()\n        optimizer.step()\n",
        "import torch\n\ndef test(model, test_loader):\n    model.eval()\n    for x, y in test_loader:\n"
        "        with torch.no_grad():\n            out = model(x)\n        report(out, y)\n",
    )

    def __init__(self, context) -> None:
        super().__init__(context)
        self._open: List[LoopFacts] = []
        self._evaluation: List[LoopFacts] = []
        self._under_no_grad = CallsUnderNoGrad()

    def visit_For(self, node: cst.For) -> None:
        self._open.append(loop_facts(node, enclosing_function(self.context.functions)))

    def leave_For(self, node: cst.For) -> None:
        facts = self._open.pop()
        if is_evaluation_loop(facts) and facts.runs_model_with_grad \
                and not any(is_evaluation_loop(outer) for outer in self._open):
            self._evaluation.append(facts)

    def visit_Call(self, node: cst.Call) -> None:
        off = self.context.gradients_off
        self._under_no_grad.see(node, off)
        for facts in self._open:
            facts.see(node, off)

    def leave_Module(self, node: cst.Module) -> None:
        if not self.context.uses_torch:
            return
        for facts in self._evaluation:
            if facts.function in self._under_no_grad.names or (facts.function or "").startswith(
                    "test_"):
                continue
            self.report(facts.loop, self.message.format(data=data_of(facts.loop)))

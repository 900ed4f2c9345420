"""NN404 eval-mode-missing: validation in training mode, or training left in evaluation mode."""
from __future__ import annotations

import re
from typing import Dict, List, Optional, Set, Tuple

import libcst as cst

from ..expressions import text
from .base import Rule
from .evaluation_loops import LoopFacts, data_of, enclosing_function, is_evaluation_loop, loop_facts

# Layers whose behaviour differs between train() and eval(): dropout and batch norm, directly
# or inside pretrained models from model zoos.
_MODE_DEPENDENT = re.compile(r"(Dropout|dropout|BatchNorm|batch_norm|torchvision\.models|"
                             r"^timm\.|^transformers\.)")


class EvalModeMissing(Rule):
    code = "NN404"
    name = "eval-mode-missing"
    message = "{problem}"
    severity = "error"
    what = ("Flags evaluation with dropout and batch norm still in training mode: a validation "
            "or test loop in a file that never calls `model.eval()` (or `.train(False)`) while "
            "it builds or loads layers that depend on the mode (Dropout, BatchNorm, torchvision "
            "or timm models); and training left in evaluation mode: `model.eval()` called "
            "inside the training loop (directly or in the validation function it calls) in a "
            "file that never calls `model.train()` again; only for a model whose parameters the "
            "file optimizes (an EMA copy stays in eval mode on purpose). Both need evidence of "
            "mode-dependent layers in the file: without dropout or batch norm the mode changes "
            "nothing.")
    why = ("In training mode dropout zeroes a random part of the activations and batch norm "
           "normalises with the statistics of the current batch (and updates its running "
           "averages with the validation data): validation scores are noisy and pessimistic, and "
           "depend on the batch size. The reverse is as silent: after the first validation, "
           "eval() stays on, so the rest of training runs without dropout and with frozen "
           "batch-norm statistics, and overfits. Karpathy's recipe lists forgetting train/eval "
           "mode among the most common mistakes.")
    bad = (
        "import torch\nfrom torch import nn\n\nmodel = nn.Sequential(nn.Linear(784, 256), "
        "nn.ReLU(), nn.Dropout(0.5), nn.Linear(256, 10))\n\n@torch.no_grad()\n"
        "def evaluate(loader):\n    correct = 0\n    for x, y in loader:\n"
        "        correct += (model(x).argmax(1) == y).sum().item()\n    return correct\n",
        "import torch\n\ndef validate(model, val_loader):\n    model.eval()\n"
        "    with torch.no_grad():\n        return sum(model.loss(b).item() for b in val_loader)\n\n"
        "def main(model, optimizer, train_loader, val_loader):\n    for epoch in range(30):\n"
        "        for batch in train_loader:\n            optimizer.zero_grad()\n"
        "            model.loss(batch).backward()\n            optimizer.step()\n"
        "        validate(model, val_loader)\n\nnet = torch.nn.Sequential(torch.nn.Linear(8, 8), "
        "torch.nn.Dropout(0.1))\n",
        "import torch\nimport torchvision\n\nnet = torchvision.models.resnet18(num_classes=10)\n"
        "with torch.no_grad():\n    for images, labels in test_loader:\n"
        "        predictions = net(images).argmax(1)\n",
    )
    good = (
        "import torch\nfrom torch import nn\n\nmodel = nn.Sequential(nn.Linear(784, 256), "
        "nn.ReLU(), nn.Dropout(0.5), nn.Linear(256, 10))\n\n@torch.no_grad()\n"
        "def evaluate(loader):\n    model.eval()\n    correct = 0\n    for x, y in loader:\n"
        "        correct += (model(x).argmax(1) == y).sum().item()\n    return correct\n",
        "import torch\n\ndef validate(model, val_loader):\n    model.eval()\n"
        "    with torch.no_grad():\n        return sum(model.loss(b).item() for b in val_loader)\n\n"
        "def main(model, optimizer, train_loader, val_loader):\n    for epoch in range(30):\n"
        "        model.train()\n        for batch in train_loader:\n            optimizer.zero_grad()\n"
        "            model.loss(batch).backward()\n            optimizer.step()\n"
        "        validate(model, val_loader)\n",
        "import torch\nfrom torch import nn\n\nmodel = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), "
        "nn.Linear(8, 1))\n\nwith torch.no_grad():\n    for x, y in test_loader:\n"
        "        print(model(x), y)  # no dropout, no batch norm: the mode changes nothing\n",
        "import torch\nfrom torch import nn\n\nmodel = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), "
        "nn.Linear(8, 1))\noptimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "for epoch in range(3):\n    for x, y in train_loader:\n        optimizer.zero_grad()\n"
        "        ((model(x) - y) ** 2).mean().backward()\n        optimizer.step()\n"
        "    model.eval()  # never back to train(), but there is no layer the mode changes\n",
    )

    def __init__(self, context) -> None:
        super().__init__(context)
        self._open: List[LoopFacts] = []
        self._evaluation: List[LoopFacts] = []
        self._eval_calls: List[Tuple[cst.Call, Optional[str], Tuple[cst.CSTNode, ...]]] = []
        self._sets_eval = False
        self._sets_train = False
        self._mode_dependent = False
        self._training_loops: Set[cst.CSTNode] = set()
        self._training_functions: Set[str] = set()
        self._call_sites: Dict[str, List[Tuple[cst.CSTNode, ...]]] = {}
        self._trained: Set[str] = set()  # models whose .parameters() reach an optimizer

    def visit_For(self, node: cst.For) -> None:
        self._open.append(loop_facts(node, enclosing_function(self.context.functions)))

    def leave_For(self, node: cst.For) -> None:
        facts = self._open.pop()
        if is_evaluation_loop(facts) and not any(is_evaluation_loop(o) for o in self._open):
            self._evaluation.append(facts)

    def visit_Call(self, node: cst.Call) -> None:
        for facts in self._open:
            facts.see(node, self.context.gradients_off)
        qualified = self.context.call_name(node) or ""
        if _MODE_DEPENDENT.search(qualified) or any(
                a.keyword is not None and "dropout" in a.keyword.value for a in node.args):
            self._mode_dependent = True
        function = enclosing_function(self.context.functions)
        loops = tuple(self.context.loops)
        callee = (text(node.func) or "").rsplit(".", 1)[-1]
        if callee:
            self._call_sites.setdefault(callee, []).append(loops)
        if not isinstance(node.func, cst.Attribute):
            return
        method = node.func.attr.value
        if method == "eval" and not node.args:
            self._sets_eval = True
            self._eval_calls.append((node, function, loops))
        elif method == "train" and (not node.args or text(node.args[0].value) != "False"):
            self._sets_train = self._sets_train or len(node.args) <= 1
        elif method == "train":
            self._sets_eval = True
        elif method in ("backward", "step"):
            self._training_loops.update(loops)
            if function:
                self._training_functions.add(function)
        elif method == "parameters" and self.context.loops == [] and text(node.func.value):
            self._trained.add(text(node.func.value))

    def leave_Module(self, node: cst.Module) -> None:
        if not self.context.uses_torch:
            return
        if not self._sets_eval and self._mode_dependent:
            for facts in self._evaluation:
                self.report(facts.loop, f"evaluation loop over `{data_of(facts.loop)}` runs in "
                                        f"training mode: nothing in this file calls model.eval(), "
                                        f"so dropout and batch norm behave as in training; call "
                                        f"model.eval() before it (and model.train() after)")
        if self._sets_train or not self._mode_dependent:
            return
        for call, function, loops in self._eval_calls:
            receiver = text(call.func.value) or "model"
            trained = not self._trained or receiver in self._trained
            if trained and self._in_training_loop(function, loops):
                self.report(call, f"{receiver}.eval() runs inside the training loop and nothing "
                                  f"in this file calls {receiver}.train(): after the first "
                                  f"evaluation, training continues with dropout off and batch "
                                  f"norm frozen; call {receiver}.train() before each training "
                                  f"epoch")

    def _in_training_loop(self, function: Optional[str], loops: Tuple[cst.CSTNode, ...]) -> bool:
        if any(self._trains(loop) for loop in loops):
            return True
        return function is not None and any(
            self._trains(loop) for site in self._call_sites.get(function, ()) for loop in site)

    def _trains(self, loop: cst.CSTNode) -> bool:
        """A loop that steps an optimizer, itself or through a function it calls."""
        if loop in self._training_loops:
            return True
        return any(loop in site for name in self._training_functions
                   for site in self._call_sites.get(name, ()))

"""NN209 optimizer-never-stepped: an optimizer that is built and never steps."""
from __future__ import annotations

from typing import Dict, Set

import libcst as cst

from ..expressions import text
from .base import Rule
from .optimizers import is_optimizer


class OptimizerNeverStepped(Rule):
    code = "NN209"
    name = "optimizer-never-stepped"
    message = ("optimizer `{name}` is built but never stepped and never handed to anything that "
               "could step it: its parameters never change; call {name}.step() after backward()")
    severity = "error"
    what = ("Flags an optimizer assigned to a name that the file never calls `.step()` on and "
            "never passes on (as an argument, a return value, an element of a list or dict, or "
            "another name): nothing can update the parameters it holds. `zero_grad()` alone "
            "does not count as a use.")
    why = ("The training loop runs, the loss is computed and back-propagated, gradients are even "
           "cleared every iteration, and the weights stay at their initial values: a second "
           "optimizer added for a new sub-network and never wired into the loop, or a step() "
           "removed while refactoring. The loss curve is flat and the cause is not in the "
           "model. Karpathy's recipe: verify that parameters change (pytest_nncheck's "
           "check_parameters_update does at run time).")
    bad = (
        "import torch\n\nopt_encoder = torch.optim.Adam(encoder.parameters(), lr=1e-3)\n"
        "opt_decoder = torch.optim.Adam(decoder.parameters(), lr=1e-3)\nfor x in loader:\n"
        "    opt_encoder.zero_grad()\n    opt_decoder.zero_grad()\n"
        "    loss = decoder(encoder(x)).mean()\n    loss.backward()\n    opt_decoder.step()\n",
        "from torch import optim\n\ndef fine_tune(model, loader):\n"
        "    optimizer = optim.SGD(model.head.parameters(), lr=0.01)\n    for x, y in loader:\n"
        "        model.zero_grad()\n        model.loss(x, y).backward()\n",
        "import torch\n\nclass Agent:\n    def __init__(self, policy):\n        self.policy = policy\n"
        "        self.optimizer = torch.optim.RMSprop(policy.parameters(), lr=7e-4)\n\n"
        "    def learn(self, loss):\n        self.optimizer.zero_grad()\n        loss.backward()\n",
    )
    good = (
        "import torch\n\noptimizer = torch.optim.Adam(model.parameters(), lr=1e-3)\n"
        "for step in range(100):\n    optimizer.zero_grad()\n    model(x).mean().backward()\n"
        "    optimizer.step()\n",
        "import torch\n\noptimizer = torch.optim.AdamW(model.parameters(), lr=3e-4)\n"
        "trainer = Trainer(model, optimizer=optimizer)\ntrainer.fit()\n",
        "import torch\n\ndef configure(model):\n"
        "    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 30)\n"
        "    return {'optimizer': optimizer, 'lr_scheduler': scheduler}\n",
        "import torch\n\noptimizers = [torch.optim.Adam(p, lr=1e-3) for p in groups]\n",
    )

    def __init__(self, context) -> None:
        super().__init__(context)
        self._created: Dict[str, cst.Call] = {}
        self._used: Set[str] = set()

    def visit_Assign(self, node: cst.Assign) -> None:
        if isinstance(node.value, cst.Call) and is_optimizer(self.context.call_name(node.value)):
            for target in node.targets:
                if isinstance(target.target, (cst.Name, cst.Attribute)):
                    self._created.setdefault(text(target.target), node.value)
        elif text(node.value):
            self._used.add(text(node.value))  # aliased: the other name may be stepped

    def visit_Call(self, node: cst.Call) -> None:
        for arg in node.args:
            if text(arg.value):
                self._used.add(text(arg.value))
        if isinstance(node.func, cst.Attribute) and node.func.attr.value != "zero_grad" \
                and node.func.attr.value not in ("state_dict", "load_state_dict", "add_param_group"):
            if text(node.func.value):
                self._used.add(text(node.func.value))

    def _escape(self, value) -> None:
        if value is not None and text(value):
            self._used.add(text(value))

    def visit_Return(self, node: cst.Return) -> None:
        self._escape(node.value)

    def visit_Element(self, node: cst.Element) -> None:
        self._escape(node.value)

    def visit_DictElement(self, node: cst.DictElement) -> None:
        self._escape(node.value)

    def visit_Yield(self, node: cst.Yield) -> None:
        self._escape(node.value if isinstance(node.value, cst.BaseExpression) else None)

    def leave_Module(self, node: cst.Module) -> None:
        for name, creation in self._created.items():
            if name not in self._used:
                self.report(creation, self.message.format(name=name))

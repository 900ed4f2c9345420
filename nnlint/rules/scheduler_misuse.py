"""NN202 scheduler-misuse: a scheduler never stepped, stepped before the optimizer, or without a metric."""
from __future__ import annotations

from typing import Dict, List, Set, Tuple

import libcst as cst

from ..expressions import text
from .base import Rule
from .optimizers import is_optimizer, is_scheduler_call


class SchedulerMisuse(Rule):
    code = "NN202"
    name = "scheduler-misuse"
    message = "{problem}"
    what = ("Flags a learning-rate scheduler that is created but never stepped (nor handed to "
            "anything that could step it), `scheduler.step()` called before `optimizer.step()` in "
            "the same loop, and `ReduceLROnPlateau.step()` called without the metric it watches.")
    why = ("A scheduler that is never stepped leaves the learning rate constant while the code "
           "reads as if it decays. Stepping it before the optimizer skips the first value of the "
           "schedule (PyTorch >= 1.1 warns at run time, once, easy to miss in a log). "
           "ReduceLROnPlateau decides from the metric passed to step(); without it the call "
           "raises, or with a stale variable it reduces at the wrong time.")
    bad = (
        "import torch\n\noptimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=100)\n"
        "for epoch in range(100):\n    train_one_epoch(model, optimizer)\n",
        "import torch\n\noptimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 30)\n"
        "for epoch in range(90):\n    scheduler.step()\n    for x, y in loader:\n"
        "        optimizer.zero_grad()\n        optimizer.step()\n",
        "from torch.optim.lr_scheduler import ReduceLROnPlateau\n\n"
        "plateau = ReduceLROnPlateau(optimizer, mode='min')\n"
        "for epoch in range(50):\n    val_loss = validate(model)\n    plateau.step()\n",
    )
    good = (
        "import torch\n\noptimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 30)\n"
        "for epoch in range(90):\n    for x, y in loader:\n        optimizer.zero_grad()\n"
        "        optimizer.step()\n"
        "    scheduler.step()\n",
        "from torch.optim.lr_scheduler import ReduceLROnPlateau\n\n"
        "plateau = ReduceLROnPlateau(optimizer, mode='min')\n"
        "for epoch in range(50):\n    val_loss = validate(model)\n    plateau.step(val_loss)\n",
        "import torch\n\nclass Model:\n    def configure_optimizers(self):\n"
        "        optimizer = torch.optim.Adam(self.parameters(), lr=1e-3)\n"
        "        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, 1e-2, total_steps=1000)\n"
        "        return [optimizer], [scheduler]\n",
        "from transformers import Trainer, get_cosine_schedule_with_warmup\n\n"
        "schedule = get_cosine_schedule_with_warmup(optimizer, 500, 10000)\n"
        "trainer = Trainer(model=model, optimizers=(optimizer, schedule))\n",
        "def uses(node):\n    symbols = get_scheduler_node_symbol_uses(node)\n"
        "    params = self.get_schedule_param()\n    return symbols, params\n",
        "import torch\nfrom torch import nn\n\nclass LR(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.linear = nn.Linear(2, 1)\n\n"
        "lr_model = LR()\nprint(lr_model(torch.zeros(1, 2)))\n",
    )

    def __init__(self, context) -> None:
        super().__init__(context)
        self._schedulers: Dict[str, Tuple[cst.Call, bool]] = {}  # name -> (creation, plateau)
        self._optimizers: Set[str] = set()
        self._stepped: Set[str] = set()
        self._escaped: Set[str] = set()
        self._loops: List[List[Tuple[str, cst.Call]]] = []
        self._reported: Set[int] = set()

    def visit_Assign(self, node: cst.Assign) -> None:
        if not isinstance(node.value, cst.Call):
            if text(node.value):
                self._escaped.add(text(node.value))
            return
        qualified = self.context.call_name(node.value)
        for target in node.targets:
            name = text(target.target)
            if not name:
                continue
            if is_scheduler_call(node.value, qualified):
                self._schedulers[name] = (node.value, qualified.endswith("ReduceLROnPlateau"))
            elif is_optimizer(qualified):
                self._optimizers.add(name)

    def _escape(self, value: cst.BaseExpression) -> None:
        name = text(value)
        if name:
            self._escaped.add(name)

    def visit_Arg(self, node: cst.Arg) -> None:
        self._escape(node.value)

    def visit_Element(self, node: cst.Element) -> None:
        self._escape(node.value)

    def visit_DictElement(self, node: cst.DictElement) -> None:
        self._escape(node.value)

    def visit_Return(self, node: cst.Return) -> None:
        if node.value is not None:
            self._escape(node.value)

    def _kind(self, receiver: str) -> str:
        if receiver in self._schedulers or "sched" in receiver.lower():
            return "scheduler"
        if receiver in self._optimizers or "optim" in receiver.lower() or \
                receiver.split(".")[-1] in ("opt", "optimizer"):
            return "optimizer"
        return ""

    def visit_Call(self, node: cst.Call) -> None:
        if not (isinstance(node.func, cst.Attribute) and node.func.attr.value == "step"):
            return
        receiver = text(node.func.value)
        if not receiver:
            return
        self._stepped.add(receiver)
        created = self._schedulers.get(receiver)
        if created and created[1] and not node.args:
            self.report(node, f"{receiver}.step() without a metric: ReduceLROnPlateau reduces "
                              f"the learning rate from the value passed, e.g. "
                              f"{receiver}.step(val_loss)")
        kind = self._kind(receiver)
        if kind:
            for loop in self._loops:
                loop.append((kind, node))

    def _enter_loop(self, node: cst.CSTNode) -> None:
        self._loops.append([])

    def _leave_loop(self, node: cst.CSTNode) -> None:
        events = self._loops.pop()
        for position, (kind, call) in enumerate(events):
            if kind == "optimizer":
                break
            if any(k == "optimizer" for k, _ in events[position:]) and id(call) not in self._reported:
                self._reported.add(id(call))
                receiver = text(call.func.value)
                self.report(call, f"{receiver}.step() runs before the optimizer's step() in this "
                                  f"loop: the first learning rate of the schedule is skipped; "
                                  f"step the scheduler after optimizer.step()")

    visit_For = visit_While = _enter_loop
    leave_For = leave_While = _leave_loop

    def leave_Module(self, node: cst.Module) -> None:
        for name, (creation, _) in self._schedulers.items():
            if name not in self._stepped and name not in self._escaped:
                self.report(creation, f"scheduler `{name}` is created but never stepped: the "
                                      f"learning rate stays constant; call {name}.step() once per "
                                      f"epoch (or per batch, for per-step schedules)")

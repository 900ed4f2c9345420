"""NN201 missing-lr-decay: an optimizer stepped in a training loop whose learning rate never decays."""
from __future__ import annotations

from typing import Dict, Set

import libcst as cst

from ..expressions import text
from .base import Rule
from .optimizers import is_optimizer, is_scheduler


class MissingLrDecay(Rule):
    code = "NN201"
    name = "missing-lr-decay"
    message = ("optimizer `{name}` is stepped in a training loop but its learning rate never "
               "decays: add a torch.optim.lr_scheduler (step, cosine, plateau) or anneal it by hand")
    what = ("Flags an optimizer created in this module and stepped inside a loop when nothing in "
            "the module schedules the learning rate: no `torch.optim.lr_scheduler.*`, no "
            "`get_*_schedule*` / `*Scheduler` from another library, no assignment to "
            "`param_group['lr']`, no `lr *= decay`. A function that receives the optimizer as a "
            "parameter is not flagged; its caller owns the schedule.")
    why = ("With a constant learning rate, SGD bounces around the minimum at the noise level "
           "the step size allows and never settles into the narrower parts of the loss. CS231n, "
           "'Annealing the learning rate': step decay, exponential decay or 1/t decay are what "
           "turn a noisy plateau into the last few percent; Karpathy's recipe keeps a decay "
           "schedule as a standard part of the final tuning.")
    bad = (
        "import torch\n\nmodel = torch.nn.Linear(10, 2)\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)\n"
        "for epoch in range(90):\n    for x, y in loader:\n        optimizer.zero_grad()\n"
        "        loss_fn(model(x), y).backward()\n        optimizer.step()\n",
        "from torch import optim\n\n"
        "def main(model, data):\n    opt = optim.Adam(model.parameters(), lr=3e-4)\n"
        "    while True:\n        loss = model(next(data)).mean()\n        loss.backward()\n"
        "        opt.step()\n        opt.zero_grad()\n",
        "import torch.optim as optim\n\nclass Trainer:\n    def __init__(self, model):\n"
        "        self.optimizer = optim.AdamW(model.parameters(), lr=1e-3)\n\n"
        "    def fit(self, batches):\n        for batch in batches:\n"
        "            self.optimizer.zero_grad()\n            self.optimizer.step()\n",
    )
    good = (
        "import torch\n\noptimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=30, gamma=0.1)\n"
        "for epoch in range(90):\n    for x, y in loader:\n        optimizer.zero_grad()\n"
        "        optimizer.step()\n"
        "    scheduler.step()\n",
        "import math\nimport torch\n\n"
        "def get_lr(it):\n    return 6e-4 * 0.5 * (1 + math.cos(math.pi * it / 5000))\n\n"
        "optimizer = torch.optim.AdamW(model.parameters(), lr=6e-4)\n"
        "for it in range(5000):\n    lr = get_lr(it)\n"
        "    for param_group in optimizer.param_groups:\n        param_group['lr'] = lr\n"
        "    optimizer.step()\n    optimizer.zero_grad(set_to_none=True)\n",
        "import torch\nfrom transformers import get_linear_schedule_with_warmup\n\n"
        "optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)\n"
        "scheduler = get_linear_schedule_with_warmup(optimizer, 100, 1000)\n"
        "for batch in loader:\n    optimizer.zero_grad()\n    optimizer.step()\n"
        "    scheduler.step()\n",
        "def train_epoch(model, optimizer, loader):\n    for x, y in loader:\n"
        "        optimizer.zero_grad()\n        optimizer.step()\n",
        "import torch\n\nlr = 0.1\noptimizer = torch.optim.SGD(model.parameters(), lr=lr)\n"
        "for epoch in range(30):\n    for batch in loader:\n        optimizer.zero_grad()\n"
        "        optimizer.step()\n"
        "    lr *= 0.95\n    for group in optimizer.param_groups:\n        group['lr'] = lr\n",
    )

    def __init__(self, context) -> None:
        super().__init__(context)
        self._optimizers: Dict[str, cst.CSTNode] = {}
        self._stepped: Set[str] = set()
        self._scheduled = False

    def visit_Assign(self, node: cst.Assign) -> None:
        if isinstance(node.value, cst.Call) and is_optimizer(self.context.call_name(node.value)):
            for target in node.targets:
                name = text(target.target)
                if name:
                    self._optimizers.setdefault(name, node.value)
        for target in node.targets:
            if isinstance(target.target, cst.Subscript) and _is_lr_key(target.target):
                self._scheduled = True

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        name = text(node.target) or ""
        if ("lr" in name.lower() or "learning_rate" in name.lower()) or (
                isinstance(node.target, cst.Subscript) and _is_lr_key(node.target)):
            self._scheduled = True

    def visit_Call(self, node: cst.Call) -> None:
        if is_scheduler(self.context.call_name(node)):
            self._scheduled = True
        elif (self.context.loops and isinstance(node.func, cst.Attribute)
              and node.func.attr.value == "step"):
            receiver = text(node.func.value)
            if receiver:
                self._stepped.add(receiver)

    def leave_Module(self, node: cst.Module) -> None:
        if self._scheduled:
            return
        for name, creation in self._optimizers.items():
            if name in self._stepped:
                self.report(creation, self.message.format(name=name))


def _is_lr_key(node: cst.Subscript) -> bool:
    return any(isinstance(e.slice, cst.Index) and isinstance(e.slice.value, cst.SimpleString)
               and e.slice.value.value.strip("'\"") in ("lr", "learning_rate") for e in node.slice)

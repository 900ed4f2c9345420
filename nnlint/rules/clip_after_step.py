"""NN211 clip-after-step: gradients clipped after the optimizer already used them."""
from __future__ import annotations

import libcst as cst

from ..expressions import text
from .base import Rule
from .training_steps import block_events


class ClipAfterStep(Rule):
    code = "NN211"
    name = "clip-after-step"
    message = ("`{clip}` runs after `{step}`: the update already used the unclipped gradients "
               "and these are cleared before the next one; clip between backward() and step()")
    severity = "error"
    what = ("Flags `clip_grad_norm_` / `clip_grad_value_` called after `optimizer.step()` in the "
            "same block, with no backward() between the step and the clip and no further "
            "step() after it: the clipping changes nothing.")
    why = ("Clipping protects an update from an exploding gradient only if the update reads the "
           "clipped values. After step() the parameters have already moved by the full "
           "gradient, and the next iteration's zero_grad() throws the clipped values away, so the "
           "run has no clipping at all while the code says it has; RNN and transformer training "
           "then diverges on the first gradient spike.")
    bad = (
        "import torch\n\nfor x, y in loader:\n    optimizer.zero_grad()\n"
        "    criterion(model(x), y).backward()\n    optimizer.step()\n"
        "    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)\n",
        "from torch.nn.utils import clip_grad_value_\n\ndef step(model, opt, loss):\n"
        "    loss.backward()\n    opt.step()\n    clip_grad_value_(model.parameters(), 0.5)\n"
        "    opt.zero_grad()\n",
        "import torch\n\nclass Trainer:\n    def update(self, loss):\n        self.optim.zero_grad()\n"
        "        loss.backward()\n        self.optim.step()\n"
        "        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.max_norm)\n",
    )
    good = (
        "import torch\n\nfor x, y in loader:\n    optimizer.zero_grad()\n"
        "    criterion(model(x), y).backward()\n"
        "    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)\n    optimizer.step()\n",
        "import torch\n\nfor x, y in loader:\n    optimizer.zero_grad()\n"
        "    scaler.scale(criterion(model(x), y)).backward()\n    scaler.unscale_(optimizer)\n"
        "    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)\n    scaler.step(optimizer)\n"
        "    scaler.update()\n",
        "import torch\n\nfor x, y in loader:\n    optimizer.zero_grad()\n"
        "    criterion(model(x), y).backward()\n    optimizer.step()\n"
        "    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), float('inf'))  # logged\n",
    )

    def _block(self, statements) -> None:
        events = block_events(statements, self.context.call_name)
        stepped = None
        for position, (kind, call) in enumerate(events):
            if kind == "step":
                stepped = call
            elif kind == "backward":
                stepped = None
            elif kind == "clip" and stepped is not None \
                    and not any(k == "step" for k, _ in events[position + 1:]):
                self.report(call, self.message.format(clip=text(call.func) + "()",
                                                      step=text(stepped.func) + "()"))

    def visit_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        self._block(node.body)

    def leave_Module(self, node: cst.Module) -> None:
        self._block(node.body)  # once every import is known

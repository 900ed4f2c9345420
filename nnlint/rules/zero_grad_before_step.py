"""NN210 zero-grad-before-step: gradients cleared between backward() and step()."""
from __future__ import annotations

import libcst as cst

from ..expressions import text
from .base import Rule
from .training_steps import block_events


class ZeroGradBeforeStep(Rule):
    code = "NN210"
    name = "zero-grad-before-step"
    message = ("`{zero}` runs after backward() and before `{step}`: the step applies zero "
               "gradients and the model never learns; clear the gradients before backward() or "
               "after step()")
    severity = "error"
    what = ("Flags `zero_grad()` called after `loss.backward()` and before `optimizer.step()` "
            "in the same block, with no backward() in between: the gradients just computed are "
            "erased before the update uses them.")
    why = ("step() reads `.grad`; zero_grad() empties it. In this order every update is made "
           "from zero (or None) gradients, so SGD changes nothing and Adam only decays its "
           "moments: the loss stays flat, which looks like a learning-rate or data problem. "
           "Karpathy's recipe: overfit a single batch first, and this bug shows at once.")
    bad = (
        "def train(model, loader, optimizer, criterion):\n    for x, y in loader:\n"
        "        loss = criterion(model(x), y)\n        loss.backward()\n"
        "        optimizer.zero_grad()\n        optimizer.step()\n",
        "for batch in batches:\n    model.loss(batch).backward()\n    model.zero_grad()\n"
        "    opt.step()\n",
        "class Learner:\n    def update(self, loss):\n        loss.backward()\n"
        "        self.optimizer.zero_grad(set_to_none=True)\n        self.optimizer.step()\n",
    )
    good = (
        "def train(model, loader, optimizer, criterion):\n    for x, y in loader:\n"
        "        optimizer.zero_grad()\n        loss = criterion(model(x), y)\n"
        "        loss.backward()\n        optimizer.step()\n",
        "for i, batch in enumerate(batches):\n    model.loss(batch).backward()\n"
        "    if (i + 1) % 4 == 0:\n        opt.step()\n        opt.zero_grad()\n",
        "for batch in batches:\n    d_loss(batch).backward()\n    d_opt.step()\n"
        "    g_opt.zero_grad()\n    g_loss(batch).backward()\n    g_opt.step()\n",
    )

    def _block(self, statements) -> None:
        backward_seen = False
        cleared = None
        for kind, call in block_events(statements, self.context.call_name):
            if kind == "backward":
                backward_seen, cleared = True, None
            elif kind == "zero_grad" and backward_seen:
                cleared = call
            elif kind == "step" and cleared is not None:
                self.report(cleared, self.message.format(zero=text(cleared.func) + "()",
                                                         step=text(call.func) + "()"))
                cleared = None
            elif kind == "step":
                backward_seen = False

    def visit_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        self._block(node.body)

    def leave_Module(self, node: cst.Module) -> None:
        self._block(node.body)  # once every import is known

"""NN207 discarded-tensor-result: ``x.detach()`` or ``x.cpu()`` as a statement, its result dropped."""
from __future__ import annotations

from typing import Optional

import libcst as cst

from ..expressions import text
from .base import Rule

# Tensor methods that return a new tensor and never change their receiver (their in-place
# twins end in an underscore): calling one as a statement does nothing.
_OUT_OF_PLACE = {"detach", "clone", "contiguous", "squeeze", "unsqueeze", "view", "reshape",
                 "flatten", "transpose", "permute", "clamp", "sigmoid", "tanh", "softmax",
                 "log_softmax"}
# Methods that move or cast: in place for an nn.Module (model.cuda() is idiomatic), a copy for
# a tensor. Flagged only on what is certainly a tensor.
_MOVE_OR_CAST = {"cpu", "cuda", "to", "float", "double", "half", "long", "int", "bfloat16"}
_TENSOR_FACTORIES = ("torch.tensor", "torch.randn", "torch.rand", "torch.zeros", "torch.ones",
                     "torch.empty", "torch.full", "torch.arange", "torch.linspace", "torch.cat",
                     "torch.stack", "torch.from_numpy", "torch.as_tensor")


class DiscardedTensorResult(Rule):
    code = "NN207"
    name = "discarded-tensor-result"
    message = ("`{call}` returns a new tensor and this statement drops it: {receiver} is "
               "unchanged; assign the result ({receiver} = {call})")
    severity = "error"
    what = ("Flags a statement that calls an out-of-place tensor method and drops its result: "
            "`x.detach()`, `x.clone()`, `x.squeeze()`, and `x.cpu()` / `x.to(device)` / "
            "`x.float()` when `x` is certainly a tensor (made by a torch factory or a tensor "
            "operation). `model.cuda()` / `model.to(device)` on a module are in place and fine; "
            "so are the in-place methods ending in `_` (`x.detach_()`).")
    why = ("Tensor methods return a new tensor: `x.detach()` alone leaves x attached to the "
           "graph (a later loss still back-propagates into the generator it came from), "
           "`x.to(device)` alone leaves x on the CPU, `x.float()` alone leaves its dtype. The "
           "line reads as if it did something, and the code runs without error.")
    bad = (
        "def d_step(discriminator, generator, z, criterion):\n    fake = generator(z)\n"
        "    fake.detach()\n    return criterion(discriminator(fake), 0)\n",
        "import torch\n\nx = torch.randn(8, 3)\nx.to('cuda')\ny = model(x)\n",
        "def prepare(batch):\n    batch.squeeze()\n    return batch\n",
    )
    good = (
        "def d_step(discriminator, generator, z, criterion):\n    fake = generator(z).detach()\n"
        "    return criterion(discriminator(fake), 0)\n",
        "import torch\n\nmodel = Net()\nmodel.to('cuda')\nmodel.float()\n",
        "def freeze(t):\n    t.detach_()\n    t.requires_grad_(False)\n    return t\n",
        "def move(batch, device):\n    batch.to(device)  # a custom batch object that moves itself\n"
        "    return batch\n",
    )

    def visit_Expr(self, node: cst.Expr) -> None:
        call = node.value
        if not (isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute)):
            return
        method = call.func.attr.value
        receiver = call.func.value
        if method in _OUT_OF_PLACE or (method in _MOVE_OR_CAST and self._is_tensor(receiver)):
            rendered = cst.Module([]).code_for_node(call)
            self.report(call, self.message.format(call=rendered, receiver=text(receiver) or "it"))

    def _is_tensor(self, node: cst.BaseExpression, depth: int = 0) -> bool:
        """Made by a torch factory or a tensor operation, directly or through its binding."""
        if isinstance(node, cst.Name) and depth < 2:
            bound = self.context.binding(node.value)
            return bound is not None and self._is_tensor(bound, depth + 1)
        if not isinstance(node, cst.Call):
            return False
        qualified: Optional[str] = self.context.call_name(node)
        if qualified and qualified.startswith(_TENSOR_FACTORIES):
            return True
        return isinstance(node.func, cst.Attribute) and node.func.attr.value in (
            *_OUT_OF_PLACE, *_MOVE_OR_CAST) and self._is_tensor(node.func.value, depth + 1)

"""The order of backward(), zero_grad(), gradient clipping and step() in a block (NN210, NN211)."""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import libcst as cst

from ..expressions import text
from .optimizers import looks_like_optimizer

_CLIPPING = {"torch.nn.utils.clip_grad_norm_", "torch.nn.utils.clip_grad_value_",
             "torch.nn.utils.clip_grad_norm", "torch.nn.utils.clip_grad.clip_grad_norm_"}


def event(statement: cst.CSTNode, call_name) -> Optional[Tuple[str, cst.Call]]:
    """("backward" | "zero_grad" | "step" | "clip", call) for a statement that is one such call."""
    if not (isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1
            and isinstance(statement.body[0], cst.Expr)
            and isinstance(statement.body[0].value, cst.Call)):
        return None
    call = statement.body[0].value
    if call_name(call) in _CLIPPING:
        return "clip", call
    if not isinstance(call.func, cst.Attribute):
        return None
    method, receiver = call.func.attr.value, call.func.value
    if method == "backward":
        return "backward", call
    if method == "zero_grad":
        return "zero_grad", call
    if method == "step" and (looks_like_optimizer(receiver) or (text(receiver) or "").endswith(
            "scaler") and call.args):
        return "step", call
    return None


def block_events(statements: Sequence[cst.CSTNode], call_name) -> List[Tuple[str, cst.Call]]:
    """The training events of a block's own statements, in order (nested blocks are their own)."""
    found = []
    for statement in statements:
        happened = event(statement, call_name)
        if happened is not None:
            found.append(happened)
    return found

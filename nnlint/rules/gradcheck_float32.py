"""NN101 gradcheck-float32: a numerical gradient check run in single or half precision."""
from __future__ import annotations

from typing import Dict, List, Optional

import libcst as cst

from ..expressions import descendants, keyword, positional, text
from .base import Rule
from .gradcheck_targets import gradcheck_kind

_SINGLE = {"torch.float32", "torch.float", "torch.float16", "torch.half", "torch.bfloat16"}
_DOUBLE = {"torch.float64", "torch.double"}
_FLOAT_FACTORIES = {"torch.randn", "torch.rand", "torch.zeros", "torch.ones", "torch.empty",
                    "torch.full", "torch.normal", "torch.linspace", "torch.logspace",
                    "torch.eye"}
_LIKE_FACTORIES = {"torch.randn_like", "torch.rand_like", "torch.zeros_like", "torch.ones_like",
                   "torch.empty_like", "torch.full_like"}
_SINGLE_METHODS = {"float": "float32", "half": "float16", "bfloat16": "bfloat16"}
_PASSTHROUGH_METHODS = {"requires_grad_", "clone", "detach", "contiguous", "view", "reshape",
                        "t", "transpose", "unsqueeze", "squeeze", "permute", "flatten",
                        "requires_grad", "cpu", "cuda"}


class GradcheckFloat32(Rule):
    code = "NN101"
    name = "gradcheck-float32"
    message = "numerical gradient check in single precision: {detail}; use torch.float64"
    severity = "error"
    what = ("Flags a numerical gradient check (`torch.autograd.gradcheck`, `gradgradcheck`, or "
            "`check_gradients(..., dtype=torch.float32)`) whose inputs are single or half "
            "precision: made without a float64 dtype (`torch.randn(...)`), with `.float()` / "
            "`.half()`, or with `dtype=torch.float32`. Simple assignments in the same function "
            "are followed.")
    why = ("A central difference in float32 has round-off error around 1e-4 to 1e-3, as large as "
           "the errors a gradient check is meant to find, so correct code fails and wrong code "
           "passes. CS231n: 'Use double precision' - switching to double drops relative errors "
           "from 1e-2 to 1e-8. torch's gradcheck itself warns that it is meant for float64 "
           "inputs.")
    bad = (
        "import torch\nfrom torch.autograd import gradcheck\n\n"
        "x = torch.randn(4, 3, requires_grad=True)\ngradcheck(torch.sigmoid, (x,))\n",
        "import torch\nimport torch.autograd as ag\n\n"
        "def test_layer(layer):\n    x = torch.randn(2, 8, dtype=torch.float64)\n"
        "    x = x.float().requires_grad_()\n    assert ag.gradcheck(layer, (x,), eps=1e-6)\n",
        "import torch\nfrom torch.autograd import gradcheck as gc\n\n"
        "w = torch.ones(3, dtype=torch.float32, requires_grad=True)\n"
        "gc(lambda w: (w ** 2).sum(), [w])\n",
        "import torch\nfrom pytest_nncheck import check_gradients\n\n"
        "check_gradients(layer, x, dtype=torch.float32)\n",
        "import torch\n\nx = torch.tensor([[0.5, -1.0], [2.0, 0.0]], requires_grad=True)\n"
        "torch.autograd.gradgradcheck(torch.tanh, (x,))\n",
    )
    good = (
        "import torch\nfrom torch.autograd import gradcheck\n\n"
        "x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)\n"
        "gradcheck(torch.sigmoid, (x,))\n",
        "import torch\nfrom torch.autograd import gradcheck\n\n"
        "x = torch.randn(4, 3).double().requires_grad_()\ngradcheck(torch.sigmoid, (x,))\n",
        "import torch\ntorch.set_default_dtype(torch.float64)\n"
        "x = torch.randn(4, 3, requires_grad=True)\ntorch.autograd.gradcheck(torch.tanh, (x,))\n",
        "import torch\nfrom pytest_nncheck import check_gradients\n\n"
        "x = torch.randn(4, 3, requires_grad=True)\n"
        "check_gradients(layer, x)  # converts to float64 itself\n",
        "import torch\n\nx = torch.tensor([[0.5, -1.0]], dtype=torch.float64, requires_grad=True)\n"
        "w = torch.randn_like(x, requires_grad=True)\n"
        "torch.autograd.gradcheck(torch.mul, (x, w))\n",
    )

    def __init__(self, context) -> None:
        super().__init__(context)
        self._default_double = False
        self._precision: List[Dict[str, Optional[str]]] = [{}]

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._precision.append({})

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._precision.pop()

    def visit_Assign(self, node: cst.Assign) -> None:
        single = self._single(node.value, depth=0)
        for target in node.targets:
            name = text(target.target)
            if name is not None:
                self._precision[-1][name] = single

    def visit_Call(self, node: cst.Call) -> None:
        qualified = self.context.call_name(node)
        if qualified == "torch.set_default_dtype":
            value = positional(node, 0)
            self._default_double = value is not None and self.context.resolve(value) in _DOUBLE
            return
        kind = gradcheck_kind(qualified)
        if kind == "nncheck":
            dtype = keyword(node, "dtype")
            if dtype is not None and self.context.resolve(dtype) in _SINGLE:
                self.report(node, self.message.format(detail=f"dtype={text(dtype)}"))
        elif kind == "torch":
            inputs = keyword(node, "inputs") or positional(node, 1)
            detail = self._single(inputs, depth=0) if inputs is not None else None
            if detail:
                self.report(node, self.message.format(detail=detail))

    def _lookup(self, name: str) -> Optional[str]:
        for scope in (self._precision[-1], self._precision[0]):
            if name in scope:
                return scope[name]
        return None

    def _single(self, node: cst.BaseExpression, depth: int) -> Optional[str]:
        """A description of why ``node`` is single precision, or None (double or unknown)."""
        if depth > 6:
            return None
        if isinstance(node, (cst.Tuple, cst.List)):
            for element in node.elements:
                found = self._single(element.value, depth + 1)
                if found:
                    return found
            return None
        if isinstance(node, cst.Name):
            found = self._lookup(node.value)
            return f"`{node.value}` is {found}" if found and not found.startswith("`") else found
        if not isinstance(node, cst.Call):
            return None
        dtype = keyword(node, "dtype")
        if dtype is not None:
            resolved = self.context.resolve(dtype)
            return f"created with dtype={text(dtype)}" if resolved in _SINGLE else None
        if isinstance(node.func, cst.Attribute):
            method = node.func.attr.value
            if method in _SINGLE_METHODS:
                return f"made {_SINGLE_METHODS[method]} by .{method}()"
            if method == "to":
                target = positional(node, 0)
                if target is not None and self.context.resolve(target) in _SINGLE:
                    return f"converted by .to({text(target)})"
                if target is not None and self.context.resolve(target) in _DOUBLE:
                    return None
            if method in _PASSTHROUGH_METHODS or method == "to":
                return self._single(node.func.value, depth + 1)
        qualified = self.context.call_name(node)
        if self._default_double:
            return None
        if qualified in _FLOAT_FACTORIES:
            return f"created by {qualified}() without a dtype (float32 by default)"
        if qualified in ("torch.tensor", "torch.as_tensor") and node.args and any(
                isinstance(n, cst.Float) for n in descendants(node.args[0].value)):
            return f"created by {qualified}() from Python floats without a dtype (float32)"
        if qualified in _LIKE_FACTORIES and node.args:
            return self._single(node.args[0].value, depth + 1)
        return None

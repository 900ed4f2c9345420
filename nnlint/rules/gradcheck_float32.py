"""NN101 gradcheck-float32: a numerical gradient check run in single or half precision."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Set, Tuple

import libcst as cst

from ..expressions import argument, descendants, keyword, positional, text, with_keyword
from .base import Fix, Rule
from .difference_quotients import quotient
from .gradcheck_targets import gradcheck_kind

_SINGLE = {"torch.float32", "torch.float", "torch.float16", "torch.half", "torch.bfloat16"}
_DOUBLE = {"torch.float64", "torch.double"}
_FLOAT_FACTORIES = {"torch.randn", "torch.rand", "torch.zeros", "torch.ones", "torch.empty",
                    "torch.full", "torch.normal", "torch.linspace", "torch.logspace",
                    "torch.eye"}
_LIKE_FACTORIES = {"torch.randn_like", "torch.rand_like", "torch.zeros_like", "torch.ones_like",
                   "torch.empty_like", "torch.full_like"}
_SINGLE_METHODS = {"float": "float32", "half": "float16", "bfloat16": "bfloat16"}
_NUMPY_SINGLE = {"numpy.float32", "numpy.float16", "numpy.half", "numpy.single", "float32",
                 "float16"}
_NUMPY_DOUBLE = {"numpy.float64", "numpy.double", "float64", "float"}
_NUMPY_SINGLE_CALLS = {"numpy.float32", "numpy.float16", "numpy.single", "numpy.half"}
# Hand-rolled numerical gradients from other modules: CS231n's eval_numerical_gradient*,
# grad_check_sparse, and the usual numerical_gradient / numeric_grad helpers.
_HELPER_NAME = re.compile(r"(numerical|numeric)_?grad|grad_check|finite_diff")
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
            "`.half()`, or with `dtype=torch.float32`; and single-precision arrays or tensors "
            "passed to a hand-rolled finite-difference helper (a function of the file that "
            "takes a difference quotient, or one named like `eval_numerical_gradient`). Simple "
            "assignments in the same function are followed. `--fix` writes float64 where the "
            "input is made; it is safe when the input is made inside the gradcheck call and the "
            "checked function is a torch function, unsafe otherwise (a module's float32 "
            "weights would then meet float64 inputs).")
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
        "import torch\nfrom gradient_check import eval_numerical_gradient\n\n"
        "x = torch.randn(4, 5)\n"
        "numeric = eval_numerical_gradient(lambda v: layer(v).sum().item(), x)\n",
        "import numpy as np\n\ndef numeric_grad(f, x, h=1e-4):\n    grad = np.zeros_like(x)\n"
        "    for i in range(x.size):\n        old = x.flat[i]\n        x.flat[i] = old + h\n"
        "        up = f(x)\n        x.flat[i] = old - h\n        down = f(x)\n"
        "        x.flat[i] = old\n        grad.flat[i] = (up - down) / (2 * h)\n    return grad\n\n"
        "w = np.random.randn(3, 3).astype(np.float32)\ng = numeric_grad(loss, w)\n",
    )
    good = (
        "import torch\nfrom torch.autograd import gradcheck\n\n"
        "x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)\n"
        "gradcheck(torch.sigmoid, (x,))\n",
        "import numpy as np\nfrom gradient_check import eval_numerical_gradient\n\n"
        "w = np.random.randn(3, 3)\nnumeric = eval_numerical_gradient(loss, w)\n",
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
        self._precision: List[Dict[str, Optional[_Single]]] = [{}]
        self._helpers: Set[str] = set()  # functions of this file that take finite differences
        self._helper_calls: List[Tuple[cst.Call, "_Single"]] = []

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

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if self.context.functions and isinstance(node.operator, cst.Divide):
            found = quotient(node)
            if found is not None and (found.kind or found.doubled):
                self._helpers.add(self.context.functions[-1].name.value)

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
                self.report(node, self.message.format(detail=f"dtype={text(dtype)}"),
                            fix=_Single("", dtype, _float64(dtype)).fix(safe=False))
        elif kind == "torch":
            inputs = keyword(node, "inputs") or positional(node, 1)
            found = self._single(inputs, depth=0) if inputs is not None else None
            if found:
                inline = any(n is found.culprit for n in descendants(inputs))
                checked = self.context.resolve(argument(node, 0, "func")) or ""
                safe = inline and checked.startswith("torch.")
                self.report(node, self.message.format(detail=found.detail), fix=found.fix(safe))
        elif text(node.func):
            for arg in node.args:
                found = self._single(arg.value, depth=0)
                if found:
                    self._helper_calls.append((node, found))
                    break

    def leave_Module(self, node: cst.Module) -> None:
        for call, found in self._helper_calls:
            name = (text(call.func) or "").rsplit(".", 1)[-1]
            if name in self._helpers or _HELPER_NAME.search(name):
                self.report(call, self.message.format(
                    detail=f"{found.detail}, passed to the finite-difference helper {name}()"),
                    fix=found.fix(safe=False))

    def _lookup(self, name: str) -> Optional["_Single"]:
        for scope in (self._precision[-1], self._precision[0]):
            if name in scope:
                return scope[name]
        return None

    def _single(self, node: cst.BaseExpression, depth: int) -> Optional["_Single"]:
        """Why ``node`` is single precision (and what makes it so), or None: double or unknown."""
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
            if found and not found.detail.startswith("`"):
                return found.named(f"`{node.value}` is {found.detail}")
            return found
        if not isinstance(node, cst.Call):
            return None
        dtype = keyword(node, "dtype")
        if dtype is not None:
            resolved = self.context.resolve(dtype) or _string(dtype)
            if resolved in _SINGLE or resolved in _NUMPY_SINGLE:
                return _Single(f"created with dtype={text(dtype)}", dtype,
                               _float64(dtype))
            return None
        if isinstance(node.func, cst.Attribute):
            single = self._single_method(node, depth)
            if single is not False:
                return single
        qualified = self.context.call_name(node)
        if qualified in _NUMPY_SINGLE_CALLS:
            return _Single(f"made float32 by {qualified}()", node, None)
        if self._default_double:
            return None
        root = (text(node.func) or "").split(".")[0]
        if qualified in _FLOAT_FACTORIES:
            return _Single(f"created by {qualified}() without a dtype (float32 by default)",
                           node, _with_dtype(node, root))
        if qualified in ("torch.tensor", "torch.as_tensor") and node.args and any(
                isinstance(n, cst.Float) for n in descendants(node.args[0].value)):
            return _Single(f"created by {qualified}() from Python floats without a dtype "
                           f"(float32)", node, _with_dtype(node, root))
        if qualified in _LIKE_FACTORIES and node.args:
            return self._single(node.args[0].value, depth + 1)
        return None

    def _single_method(self, node: cst.Call, depth: int):
        """``.float()``, ``.astype(np.float32)``, ``.to(torch.float32)`` and pass-through methods;
        False when the method says nothing about precision."""
        method = node.func.attr.value
        if method in _SINGLE_METHODS:
            return _Single(f"made {_SINGLE_METHODS[method]} by .{method}()", node.func.attr,
                           cst.Name("double"))
        if method in ("to", "type", "astype"):
            target = positional(node, 0)
            resolved = (self.context.resolve(target) or _string(target)) if target is not None \
                else None
            if resolved in _SINGLE or resolved in _NUMPY_SINGLE:
                return _Single(f"converted by .{method}({text(target)})", target,
                               _float64(target))
            if resolved in _DOUBLE or resolved in _NUMPY_DOUBLE:
                return None
        if method in _PASSTHROUGH_METHODS or method in ("to", "type"):
            return self._single(node.func.value, depth + 1)
        return False


@dataclass(frozen=True)
class _Single:
    """Why an input is single precision, the node that makes it so, and its float64 version."""

    detail: str
    culprit: cst.CSTNode
    replacement: Optional[cst.CSTNode]

    def named(self, detail: str) -> "_Single":
        return _Single(detail, self.culprit, self.replacement)

    def fix(self, safe: bool) -> Optional[Fix]:
        if self.replacement is None:
            return None
        return Fix(((self.culprit, self.replacement),), safe)


def _string(node: cst.BaseExpression) -> Optional[str]:
    return node.evaluated_value if isinstance(node, cst.SimpleString) else None


def _float64(dtype: cst.BaseExpression) -> Optional[cst.CSTNode]:
    """The float64 spelling of a single-precision dtype, in the same style (attribute or string)."""
    if isinstance(dtype, cst.Attribute):
        return dtype.with_changes(attr=cst.Name("float64"))
    if isinstance(dtype, cst.SimpleString):
        quote = dtype.value[0]
        return dtype.with_changes(value=f"{quote}float64{quote}")
    return None


def _with_dtype(call: cst.Call, torch_alias: str) -> Optional[cst.Call]:
    """A torch factory call with ``dtype=torch.float64`` added (through the caller's own alias)."""
    if torch_alias == "" or "." not in (text(call.func) or ""):
        return None
    return with_keyword(call, "dtype", cst.Attribute(cst.Name(torch_alias), cst.Name("float64")))

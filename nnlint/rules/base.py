"""The shared base of every rule, and the per-file context every rule reads.

A rule is one class: its code, name, message, its page text (what it does, why it is bad) and its
examples (``bad`` snippets it must flag, ``good`` look-alikes it must not). The test suite runs every
example and the docs pages are rendered from the same text.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar, Dict, List, Optional, Tuple, Union

import libcst as cst

from ..expressions import text
from ..imports import ImportTable


_NO_GRAD = {"torch.no_grad", "torch.inference_mode", "torch.autograd.no_grad",
            "torch.autograd.grad_mode.no_grad", "torch.autograd.grad_mode.inference_mode"}
_SET_GRAD = {"torch.set_grad_enabled", "torch.autograd.set_grad_enabled"}


@dataclass(frozen=True)
class Fix:
    """The edit that resolves a finding: each original node and the node that replaces it.

    ``safe`` fixes keep what the program computes (or only remove a silent bug); ``nnlint --fix``
    applies unsafe ones only with ``--unsafe-fixes``.
    """

    replacements: Tuple[Tuple[cst.CSTNode, cst.CSTNode], ...]
    safe: bool = True


@dataclass
class RawFinding:
    """A finding before positions are resolved (they cost a codegen pass, paid only when needed)."""

    rule: "Rule"
    node: cst.CSTNode
    message: str
    fix: Optional[Fix] = None


class FileContext:
    """What the traversal knows so far: imports, open loops/functions/classes, latest bindings.

    Updated by the engine before rules see a node (visit) and after they leave it, so a rule
    handling ``x = x.double()`` sees the *previous* binding of ``x`` while reading the value.
    """

    def __init__(self) -> None:
        self.imports = ImportTable()
        self.loops: List[cst.CSTNode] = []
        self.functions: List[cst.FunctionDef] = []
        self.classes: List[cst.ClassDef] = []
        self._scopes: List[Dict[str, cst.BaseExpression]] = [{}]
        self._instance: List[Dict[str, cst.BaseExpression]] = []  # ``self.x`` per open class
        self._grad_off: List[bool] = []  # per open with-block and function: autograd disabled
        self._call_names: Dict[int, Optional[str]] = {}  # id(call) -> qualified name
        self.findings: List[RawFinding] = []

    def resolve(self, node: cst.BaseExpression) -> Optional[str]:
        return self.imports.resolve(node)

    @property
    def uses_torch(self) -> bool:
        """The file imports torch (so far): autograd, modules and their modes exist here."""
        return any(full.split(".")[0] == "torch" for full in self.imports.aliases.values())

    def call_name(self, node: cst.Call) -> Optional[str]:
        """The qualified name of what ``node`` calls; asked by many rules, resolved once."""
        key = id(node)
        if key not in self._call_names:
            self._call_names[key] = self.imports.resolve(node.func)
        return self._call_names[key]

    def binding(self, name: str) -> Optional[cst.BaseExpression]:
        """The latest value assigned to ``name`` in the current function (a parameter's default
        until then), else at module level.

        ``self.x`` also finds the latest ``self.x = ...`` in any method of the enclosing class
        (``__init__`` sets what ``fit`` reads).
        """
        for scope in (self._scopes[-1], self._scopes[0]):
            if name in scope:
                return scope[name]
        if name.startswith("self.") and self._instance:
            return self._instance[-1].get(name)
        return None

    @property
    def gradients_off(self) -> bool:
        """Inside ``with torch.no_grad()`` / ``inference_mode()`` / ``set_grad_enabled(False)``,
        or a function decorated with one of them."""
        return any(self._grad_off)

    def _disables_gradients(self, node: cst.BaseExpression) -> bool:
        call = node if isinstance(node, cst.Call) else None
        name = self.resolve(call.func if call is not None else node)
        if name in _NO_GRAD:
            return True
        return name in _SET_GRAD and call is not None and bool(call.args) \
            and text(call.args[0].value) == "False"

    def frozen_bindings(self) -> Callable[[str], Optional[cst.BaseExpression]]:
        """``binding`` as it answers now, for a rule that reads names after the traversal moved on."""
        function, module = dict(self._scopes[-1]), dict(self._scopes[0])
        instance = dict(self._instance[-1]) if self._instance else {}

        def binding(name: str) -> Optional[cst.BaseExpression]:
            for scope in (function, module, instance):
                if name in scope:
                    return scope[name]
            return None
        return binding

    # Engine-side updates --------------------------------------------------------------------

    def enter(self, node: cst.CSTNode) -> None:
        if isinstance(node, cst.Import):
            self.imports.add_import(node)
            self._call_names.clear()
        elif isinstance(node, cst.ImportFrom):
            self.imports.add_import_from(node)
            self._call_names.clear()
        elif isinstance(node, (cst.For, cst.While)):
            self.loops.append(node)
            if isinstance(node, cst.For):
                self._bind(node.target, None)
        elif isinstance(node, cst.With):
            self._grad_off.append(any(self._disables_gradients(item.item) for item in node.items))
        elif isinstance(node, cst.FunctionDef):
            self._grad_off.append(any(self._disables_gradients(d.decorator)
                                      for d in node.decorators))
            self.functions.append(node)
            self._scopes.append({param.name.value: param.default for param in (
                *node.params.params, *node.params.kwonly_params) if param.default is not None})
        elif isinstance(node, cst.ClassDef):
            self.classes.append(node)
            self._instance.append({})

    def _bind(self, target: cst.BaseExpression, value: Optional[cst.BaseExpression]) -> None:
        """Record ``target = value``; None marks a name rebound to something unknown (unpacked
        from a call, a loop variable), so that an older binding no longer answers for it."""
        if isinstance(target, (cst.Tuple, cst.List)):
            same_shape = isinstance(value, (cst.Tuple, cst.List)) and \
                len(target.elements) == len(value.elements)
            for index, name in enumerate(target.elements):
                self._bind(name.value, value.elements[index].value if same_shape else None)
            return
        name = text(target)
        if name is None:
            return
        self._scopes[-1][name] = value
        if name.startswith("self.") and self._instance:
            self._instance[-1][name] = value

    def leave(self, node: cst.CSTNode) -> None:
        if isinstance(node, (cst.For, cst.While)):
            self.loops.pop()
        elif isinstance(node, cst.FunctionDef):
            self.functions.pop()
            self._scopes.pop()
            self._grad_off.pop()
        elif isinstance(node, cst.With):
            self._grad_off.pop()
        elif isinstance(node, cst.ClassDef):
            self.classes.pop()
            self._instance.pop()
        elif isinstance(node, cst.Assign):
            for target in node.targets:
                self._bind(target.target, node.value)
        elif isinstance(node, cst.AnnAssign) and node.value is not None:
            self._bind(node.target, node.value)

    ENTER_TYPES: ClassVar[Tuple[type, ...]] = (cst.Import, cst.ImportFrom, cst.For, cst.While,
                                               cst.FunctionDef, cst.ClassDef, cst.With)
    LEAVE_TYPES: ClassVar[Tuple[type, ...]] = (cst.For, cst.While, cst.FunctionDef, cst.ClassDef,
                                               cst.Assign, cst.AnnAssign, cst.With)


class Rule:
    """Base class: subclasses define the class attributes and ``visit_X``/``leave_X`` handlers."""

    code: ClassVar[str]
    name: ClassVar[str]
    message: ClassVar[str]
    severity: ClassVar[str] = "warning"
    what: ClassVar[str]
    why: ClassVar[str]
    bad: ClassVar[Tuple[str, ...]]
    good: ClassVar[Tuple[str, ...]]
    # False for opt-in rules: they run only when ``select`` names them (see ``runs_when``).
    default: ClassVar[bool] = True
    # Whether a bare replacement node passed to ``report`` is a safe fix.
    fix_safe: ClassVar[bool] = True

    def __init__(self, context: FileContext) -> None:
        self.context = context

    def report(self, node: cst.CSTNode, message: Optional[str] = None,
               fix: Union[Fix, cst.CSTNode, None] = None) -> None:
        """Record a finding at ``node``; ``fix`` is a replacement for ``node`` or a whole Fix."""
        if isinstance(fix, cst.CSTNode):
            fix = Fix(((node, fix),), self.fix_safe)
        self.context.findings.append(RawFinding(self, node, message or self.message, fix))

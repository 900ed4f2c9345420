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
        self.findings: List[RawFinding] = []

    def resolve(self, node: cst.BaseExpression) -> Optional[str]:
        return self.imports.resolve(node)

    def call_name(self, node: cst.Call) -> Optional[str]:
        return self.imports.resolve(node.func)

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
        elif isinstance(node, cst.ImportFrom):
            self.imports.add_import_from(node)
        elif isinstance(node, (cst.For, cst.While)):
            self.loops.append(node)
        elif isinstance(node, cst.FunctionDef):
            self.functions.append(node)
            self._scopes.append({param.name.value: param.default for param in (
                *node.params.params, *node.params.kwonly_params) if param.default is not None})
        elif isinstance(node, cst.ClassDef):
            self.classes.append(node)
            self._instance.append({})

    def _bind(self, target: cst.BaseExpression, value: cst.BaseExpression) -> None:
        if isinstance(target, (cst.Tuple, cst.List)) and isinstance(value, (cst.Tuple, cst.List)) \
                and len(target.elements) == len(value.elements):
            for name, bound in zip(target.elements, value.elements):
                self._bind(name.value, bound.value)
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
        elif isinstance(node, cst.ClassDef):
            self.classes.pop()
            self._instance.pop()
        elif isinstance(node, cst.Assign):
            for target in node.targets:
                self._bind(target.target, node.value)
        elif isinstance(node, cst.AnnAssign) and node.value is not None:
            self._bind(node.target, node.value)

    ENTER_TYPES: ClassVar[Tuple[type, ...]] = (cst.Import, cst.ImportFrom, cst.For, cst.While,
                                               cst.FunctionDef, cst.ClassDef)
    LEAVE_TYPES: ClassVar[Tuple[type, ...]] = (cst.For, cst.While, cst.FunctionDef, cst.ClassDef,
                                               cst.Assign, cst.AnnAssign)


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

"""The shared base of every rule, and the per-file context every rule reads.

A rule is one class: its code, name, message, its page text (what it does, why it is bad) and its
examples (``bad`` snippets it must flag, ``good`` look-alikes it must not). The test suite runs every
example and the docs pages are rendered from the same text.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Dict, List, Optional, Tuple

import libcst as cst

from ..expressions import text
from ..imports import ImportTable


@dataclass
class RawFinding:
    """A finding before positions are resolved (they cost a codegen pass, paid only when needed)."""

    rule: "Rule"
    node: cst.CSTNode
    message: str


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
        self.findings: List[RawFinding] = []

    def resolve(self, node: cst.BaseExpression) -> Optional[str]:
        return self.imports.resolve(node)

    def call_name(self, node: cst.Call) -> Optional[str]:
        return self.imports.resolve(node.func)

    def binding(self, name: str) -> Optional[cst.BaseExpression]:
        """The latest value assigned to ``name`` in the current function, else at module level."""
        for scope in (self._scopes[-1], self._scopes[0]):
            if name in scope:
                return scope[name]
        return None

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
            self._scopes.append({})
        elif isinstance(node, cst.ClassDef):
            self.classes.append(node)

    def leave(self, node: cst.CSTNode) -> None:
        if isinstance(node, (cst.For, cst.While)):
            self.loops.pop()
        elif isinstance(node, cst.FunctionDef):
            self.functions.pop()
            self._scopes.pop()
        elif isinstance(node, cst.ClassDef):
            self.classes.pop()
        elif isinstance(node, cst.Assign):
            for target in node.targets:
                name = text(target.target)
                if name is not None:
                    self._scopes[-1][name] = node.value
        elif isinstance(node, cst.AnnAssign) and node.value is not None:
            name = text(node.target)
            if name is not None:
                self._scopes[-1][name] = node.value

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

    def __init__(self, context: FileContext) -> None:
        self.context = context

    def report(self, node: cst.CSTNode, message: Optional[str] = None) -> None:
        self.context.findings.append(RawFinding(self, node, message or self.message))

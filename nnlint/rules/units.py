"""A function, or a class with all its methods, judged as one unit (NN212, NN504).

Hand-written optimizers and layers keep their state across methods (``self.m`` set in
``update``, the mask made in ``forward`` and scaled in ``backward``), so the evidence a rule
needs is spread over the class, not one function.
"""
from __future__ import annotations

from typing import Any, Callable, List

import libcst as cst


class UnitScopes:
    """Mixin for a Rule: ``self.unit`` is the open unit; ``close_unit`` judges each finished one."""

    new_unit: Callable[[], Any]

    def open_units(self) -> None:
        self._units: List[Any] = [self.new_unit()]

    @property
    def unit(self) -> Any:
        return self._units[-1]

    def close_unit(self, unit: Any) -> None:
        raise NotImplementedError

    def _is_method(self, node: cst.FunctionDef) -> bool:
        classes = self.context.classes
        return bool(classes) and node in classes[-1].body.body

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._units.append(self.new_unit())

    def leave_ClassDef(self, node: cst.ClassDef) -> None:
        self.close_unit(self._units.pop())

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        if not self._is_method(node):
            self._units.append(self.new_unit())

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        if not self._is_method(node):
            self.close_unit(self._units.pop())

    def leave_Module(self, node: cst.Module) -> None:
        self.close_unit(self._units[0])

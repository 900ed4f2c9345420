"""The module's import table: local alias -> qualified name, built once per file for every rule.

Cheaper than LibCST's QualifiedNameProvider by an order of magnitude: imports are recorded as the
single traversal meets them, and resolving an expression is a dictionary lookup plus a join.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import libcst as cst


def dotted_name(node: cst.BaseExpression) -> Optional[str]:
    """``a.b.c`` for a Name/Attribute chain, else None."""
    parts = []
    while type(node) is cst.Attribute:  # exact type checks: isinstance on LibCST's ABCs is slow
        parts.append(node.attr.value)
        node = node.value
    if type(node) is not cst.Name:
        return None
    parts.append(node.value)
    return ".".join(reversed(parts))


class ImportTable:
    """Aliases bound by ``import`` statements, in the order the file binds them."""

    def __init__(self) -> None:
        self.aliases: Dict[str, str] = {}
        # Every rule resolves the same calls: id(node) -> (node, name), emptied when an import
        # changes the aliases. The node is kept so that its id cannot be reused meanwhile.
        self._resolved: Dict[int, Tuple[cst.BaseExpression, Optional[str]]] = {}

    def add_import(self, node: cst.Import) -> None:
        self._resolved.clear()
        for alias in node.names:
            full = dotted_name(alias.name)
            if full is None:
                continue
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                self.aliases[alias.asname.name.value] = full
            else:
                root = full.split(".")[0]
                self.aliases[root] = root

    def add_import_from(self, node: cst.ImportFrom) -> None:
        self._resolved.clear()
        if node.relative or node.module is None or isinstance(node.names, cst.ImportStar):
            return
        module = dotted_name(node.module)
        if module is None:
            return
        for alias in node.names:
            name = dotted_name(alias.name)
            if name is None:
                continue
            local = (alias.asname.name.value if alias.asname is not None
                     and isinstance(alias.asname.name, cst.Name) else name)
            self.aliases[local] = f"{module}.{name}"

    def resolve(self, node: cst.BaseExpression) -> Optional[str]:
        """The qualified name of a Name/Attribute chain (``gc`` -> ``torch.autograd.gradcheck``)."""
        known = self._resolved.get(id(node))
        if known is not None and known[0] is node:
            return known[1]
        name = dotted_name(node)
        if name is not None:
            head, _, rest = name.partition(".")
            base = self.aliases.get(head, head)
            name = f"{base}.{rest}" if rest else base
        self._resolved[id(node)] = (node, name)
        return name

    def call_name(self, node: cst.Call) -> Optional[str]:
        """The qualified name of the function a call calls, when it is a plain name or attribute."""
        return self.resolve(node.func)

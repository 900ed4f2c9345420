"""Where a layer's class is written, with one parse per source file.

``inspect.getsourcelines`` re-reads and re-parses the whole file for every class it locates; on a
module of a hundred layers that is a hundred parses of the same file (8.5 s of a 12.5 s run on
x-transformers). Here each file is parsed once, into an index of its class statements and of the
functions whose body does nothing, and every layer of that file is answered from the index.
"""
from __future__ import annotations

import ast
import functools
import inspect
import os
from dataclasses import dataclass
from typing import Any, Dict, FrozenSet, List, Optional


@dataclass(frozen=True)
class SourceIndex:
    """What one parse of a file tells: class lines and functions that only stand in for others.

    ``classes`` maps a qualified name (``Outer.Inner``, ``factory.<locals>.Layer``) to the 0-based
    line of its first ``class`` statement. ``stubs`` holds the first lines (1-based, decorators
    included, as in ``co_firstlineno``) of functions whose body is only a docstring, ``pass``,
    ``...`` or ``raise NotImplementedError``.
    """

    classes: Dict[str, int]
    stubs: FrozenSet[int]


def _is_not_implemented(statement: ast.stmt) -> bool:
    if not isinstance(statement, ast.Raise) or statement.exc is None:
        return False
    raised = statement.exc.func if isinstance(statement.exc, ast.Call) else statement.exc
    return isinstance(raised, ast.Name) and raised.id == "NotImplementedError"


def _does_nothing(body: List[ast.stmt]) -> bool:
    return all(isinstance(s, ast.Pass) or _is_not_implemented(s)
               or (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)) for s in body)


class _Indexer(ast.NodeVisitor):
    def __init__(self) -> None:
        self.scope: List[str] = []
        self.classes: Dict[str, int] = {}
        self.stubs: set = set()

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.classes.setdefault(".".join([*self.scope, node.name]), node.lineno - 1)
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    def visit_FunctionDef(self, node: Any) -> None:
        if _does_nothing(node.body):
            self.stubs.add(node.decorator_list[0].lineno if node.decorator_list else node.lineno)
        self.scope += [node.name, "<locals>"]
        self.generic_visit(node)
        del self.scope[-2:]

    visit_AsyncFunctionDef = visit_FunctionDef


@functools.lru_cache(maxsize=None)
def _index(path: str, modified_ns: int) -> SourceIndex:
    """The parse of ``path`` as it was at ``modified_ns``: a file edited since is parsed again."""
    indexer = _Indexer()
    try:
        with open(path, "rb") as source:
            indexer.visit(ast.parse(source.read(), filename=path))
    except (OSError, SyntaxError, ValueError):
        pass
    return SourceIndex(indexer.classes, frozenset(indexer.stubs))


def source_file(obj: Any) -> Optional[str]:
    """The ``.py`` file that defines ``obj``, or None (built-in, interactive, or no source)."""
    try:
        return inspect.getsourcefile(obj)
    except TypeError:
        return None


def _index_of(path: Optional[str]) -> Optional[SourceIndex]:
    if path is None:
        return None
    try:
        modified = os.stat(path).st_mtime_ns
    except OSError:
        return None
    return _index(path, modified)


def class_line(cls: type) -> Optional[int]:
    """The 0-based line of ``cls``'s ``class`` statement, or None when its source is unknown."""
    index = _index_of(source_file(cls))
    return None if index is None else index.classes.get(cls.__qualname__)


def is_stub(function: Any) -> bool:
    """Whether ``function``'s body does nothing (an abstract method written without ``abc``)."""
    function = inspect.unwrap(function)
    code = getattr(function, "__code__", None)
    if code is None:
        return False
    index = _index_of(source_file(function))
    return index is not None and code.co_firstlineno in index.stubs

"""Where flagged nodes start, at a fraction of the cost of LibCST's ``PositionProvider``.

LibCST has no positions on its nodes: its provider regenerates the whole file's code through the
metadata visitor machinery and records a range for every node, which costs as much as parsing.
A finding needs only the start of a handful of nodes, so this generates code with a state that
counts lines and columns (keeping no tokens, building no ranges) and stops as soon as the last
flagged node has been placed. The positions are the provider's syntactic ones, exactly: the
start recorded where a node marks its syntactic part, else where its code begins.
"""
from __future__ import annotations

import re
from typing import Dict, Iterable, Optional, Set, Tuple

import libcst as cst
from libcst._nodes.internal import CodegenState

from .expressions import descendants

Position = Tuple[int, int]  # one-based line, zero-based column, as LibCST's CodePosition

_NEWLINE = re.compile(r"\r\n?|\n")


class _AllPlaced(Exception):
    """Raised inside code generation once every node asked for has its start."""


class _StartCountingState(CodegenState):
    """A code generation state that tracks the position instead of collecting the text.

    Every node passes through ``before_codegen``/``after_codegen``, so they only test whether the
    node is one asked for; starts are stored for those and for nodes that mark a syntactic part
    (a block's start is its first statement's).
    """

    __slots__ = ("line", "column", "starts", "entered", "pending")

    def __init__(self, module: cst.Module, targets: Set[int]) -> None:
        super().__init__(default_indent=module.default_indent,
                         default_newline=module.default_newline)
        self.line = 1
        self.column = 0
        self.starts: Dict[int, Position] = {}
        self.entered: Dict[int, Position] = {}
        self.pending = set(targets)

    def add_token(self, value: str) -> None:
        if "\n" in value or "\r" in value:
            segments = _NEWLINE.split(value)
            self.line += len(segments) - 1
            self.column = len(segments[-1])
        else:
            self.column += len(value)

    def add_indent_tokens(self) -> None:
        for token in self.indent_tokens:
            self.column += len(token)

    def pop_trailing_newline(self) -> None:
        """The module's last newline moves no node's start."""

    def before_codegen(self, node: cst.CSTNode) -> None:
        key = id(node)
        if key in self.pending:
            self.entered[key] = (self.line, self.column)

    def after_codegen(self, node: cst.CSTNode) -> None:
        key = id(node)
        if key in self.pending:
            self.starts.setdefault(key, self.entered[key])
            self.pending.discard(key)
            if not self.pending:
                raise _AllPlaced

    def record_syntactic_position(self, node: cst.CSTNode, *,
                                  start_node: Optional[cst.CSTNode] = None,
                                  end_node: Optional[cst.CSTNode] = None) -> "_SyntacticPart":
        return _SyntacticPart(self, node, start_node)


class _SyntacticPart:
    """Records where a node's syntactic part starts (a generator context manager costs more)."""

    __slots__ = ("state", "node", "start_node", "start")

    def __init__(self, state: _StartCountingState, node: cst.CSTNode,
                 start_node: Optional[cst.CSTNode]) -> None:
        self.state = state
        self.node = node
        self.start_node = start_node

    def __enter__(self) -> None:
        self.start = (self.state.line, self.state.column)

    def __exit__(self, kind: object, error: object, traceback: object) -> None:
        starts = self.state.starts
        starts[id(self.node)] = (starts[id(self.start_node)] if self.start_node is not None
                                 else self.start)


def node_starts(module: cst.Module, nodes: Iterable[cst.CSTNode],
                source: Optional[str] = None) -> Dict[int, Position]:
    """The start of each node in ``nodes`` (keyed by ``id(node)``); nodes must belong to ``module``.

    With the module's ``source``, code is generated only for the top-level statements that hold
    the nodes, each placed by finding its text in the source; when a statement's text is not found
    exactly once, the whole module is generated instead.
    """
    targets = {id(node) for node in nodes}
    if not targets:
        return {}
    if source is not None:
        placed = _starts_by_statement(module, targets, source)
        if placed is not None:
            return placed
    return _generated_starts(module, module, targets)


def _generated_starts(module: cst.Module, root: cst.CSTNode,
                      targets: Set[int]) -> Dict[int, Position]:
    state = _StartCountingState(module, targets)
    try:
        root._codegen(state)
    except _AllPlaced:
        pass
    return {key: state.starts[key] for key in targets if key in state.starts}


def _starts_by_statement(module: cst.Module, targets: Set[int],
                         source: str) -> Optional[Dict[int, Position]]:
    pending = set(targets)
    starts: Dict[int, Position] = {}
    for statement in module.body:
        inside = pending.intersection(id(node) for node in descendants(statement))
        if not inside:
            continue
        code = module.code_for_node(statement)
        offset = source.find(code)
        if offset < 0 or source.find(code, offset + 1) >= 0:
            return None
        lines_before = len(_NEWLINE.findall(source, 0, offset))
        for key, (line, column) in _generated_starts(module, statement, inside).items():
            starts[key] = (lines_before + line, column)
        pending -= inside
        if not pending:
            return starts
    return None

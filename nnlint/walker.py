"""One iterative traversal of a LibCST tree that calls every rule's handlers.

LibCST's own visitor rebuilds each node as it leaves it, which costs more than parsing. Reading the
node dataclasses' fields directly, and skipping the whitespace and punctuation fields no rule looks
at, keeps a full lint near the cost of the parse itself.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Dict, List, Literal, Optional, Tuple, Type, get_origin

import libcst as cst

_PUNCTUATION_FIELDS = {
    "lpar", "rpar", "comma", "semicolon", "leading_lines", "lines_after_decorators", "header",
    "footer", "trailing_whitespace", "newline", "lbracket", "rbracket", "lbrace", "rbrace",
    "colon", "equal", "dot", "star", "arrow", "lines_after_decorators", "asynchronous",
    "default_comma", "default_equal", "star_tok", "whitespace_after_star_star",
}

_FIELDS: Dict[type, Tuple[str, ...]] = {}
# Whether a type is a LibCST node, cached: isinstance against the abstract CSTNode goes through
# ABCMeta on every call, which cost more than the rest of the traversal.
_IS_NODE: Dict[type, bool] = {}


# Field types that never hold a node (Name.value, Integer.value, SimpleString quotes...): not read.
_LEAF_TYPES = (str, bool, Optional[str])


def _holds_nodes(field: dataclasses.Field) -> bool:
    return field.type not in _LEAF_TYPES and get_origin(field.type) is not Literal


def _fields(cls: type) -> Tuple[str, ...]:
    fields = _FIELDS.get(cls)
    if fields is None:
        fields = tuple(f.name for f in dataclasses.fields(cls)
                       if f.name not in _PUNCTUATION_FIELDS and not f.name.startswith("whitespace")
                       and _holds_nodes(f))
        _FIELDS[cls] = fields
    return fields


def _is_node(cls: type) -> bool:
    known = _IS_NODE.get(cls)
    if known is None:
        known = _IS_NODE[cls] = issubclass(cls, cst.CSTNode)
    return known


def children(node: cst.CSTNode) -> List[cst.CSTNode]:
    """The meaningful child nodes of ``node``, in source order."""
    found: List[cst.CSTNode] = []
    for name in _fields(type(node)):
        value = getattr(node, name)
        kind = type(value)
        if kind is list or kind is tuple:
            found.extend(v for v in value if _is_node(type(v)))
        elif _is_node(kind):
            found.append(value)
    return found


Handler = Callable[[cst.CSTNode], None]


class HandlerError(Exception):
    """A handler raised: carries the handler so the engine can name the rule that crashed."""

    def __init__(self, handler: Handler, error: Exception) -> None:
        super().__init__(str(error))
        self.handler = handler
        self.error = error


class _Leaving:
    """A stack entry meaning: every child of ``node`` is done, call its leave handlers."""

    __slots__ = ("node",)

    def __init__(self, node: cst.CSTNode) -> None:
        self.node = node


def walk(root: cst.CSTNode, visit: Dict[Type[cst.CSTNode], List[Handler]],
         leave: Dict[Type[cst.CSTNode], List[Handler]]) -> None:
    """Depth-first, source-order traversal calling ``visit`` handlers on entry, ``leave`` on exit.

    The hot loop of every lint: ``children`` is inlined and the caches are read directly.
    """
    stack: list = [root]
    pop, push, extend = stack.pop, stack.append, stack.extend
    fields_of, is_node = _FIELDS.get, _IS_NODE.get
    handler = None
    try:
        while stack:
            node = pop()
            cls = type(node)
            if cls is _Leaving:
                node = node.node
                for handler in leave[type(node)]:
                    handler(node)
                continue
            handlers = visit.get(cls)
            if handlers:
                for handler in handlers:
                    handler(node)
            if cls in leave:
                push(_Leaving(node))
            kids = []
            fields = fields_of(cls)
            for name in _fields(cls) if fields is None else fields:
                value = getattr(node, name)
                kind = type(value)
                if kind is list or kind is tuple:
                    kids.extend(v for v in value if is_node(type(v)) or _is_node(type(v)))
                elif is_node(kind) or (kind not in _IS_NODE and _is_node(kind)):
                    kids.append(value)
            kids.reverse()
            extend(kids)
    except Exception as error:  # a rule's bug must not end the run: the engine reports it
        raise HandlerError(handler, error) from error

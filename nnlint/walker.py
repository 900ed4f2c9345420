"""One iterative traversal of a LibCST tree that calls every rule's handlers.

LibCST's own visitor rebuilds each node as it leaves it, which costs more than parsing. Reading the
node dataclasses' fields directly, and skipping the whitespace and punctuation fields no rule looks
at, keeps a full lint near the cost of the parse itself.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Dict, List, Tuple, Type

import libcst as cst

_PUNCTUATION_FIELDS = {
    "lpar", "rpar", "comma", "semicolon", "leading_lines", "lines_after_decorators", "header",
    "footer", "trailing_whitespace", "newline", "lbracket", "rbracket", "lbrace", "rbrace",
    "colon", "equal", "dot", "star", "arrow", "lines_after_decorators", "asynchronous",
    "default_comma", "default_equal", "star_tok", "whitespace_after_star_star",
}

_FIELDS: Dict[type, Tuple[str, ...]] = {}


def _fields(cls: type) -> Tuple[str, ...]:
    fields = _FIELDS.get(cls)
    if fields is None:
        fields = tuple(f.name for f in dataclasses.fields(cls)
                       if f.name not in _PUNCTUATION_FIELDS and not f.name.startswith("whitespace"))
        _FIELDS[cls] = fields
    return fields


def children(node: cst.CSTNode) -> List[cst.CSTNode]:
    """The meaningful child nodes of ``node``, in source order."""
    found = []
    for name in _fields(type(node)):
        value = getattr(node, name)
        if isinstance(value, cst.CSTNode):
            found.append(value)
        elif isinstance(value, (list, tuple)):
            found.extend(v for v in value if isinstance(v, cst.CSTNode))
    return found


Handler = Callable[[cst.CSTNode], None]


class HandlerError(Exception):
    """A handler raised: carries the handler so the engine can name the rule that crashed."""

    def __init__(self, handler: Handler, error: Exception) -> None:
        super().__init__(str(error))
        self.handler = handler
        self.error = error


def walk(root: cst.CSTNode, visit: Dict[Type[cst.CSTNode], List[Handler]],
         leave: Dict[Type[cst.CSTNode], List[Handler]]) -> None:
    """Depth-first, source-order traversal calling ``visit`` handlers on entry, ``leave`` on exit."""
    stack: List[Tuple[cst.CSTNode, bool]] = [(root, False)]
    handler = None
    try:
        while stack:
            node, leaving = stack.pop()
            cls = type(node)
            if leaving:
                for handler in leave.get(cls, ()):
                    handler(node)
                continue
            for handler in visit.get(cls, ()):
                handler(node)
            if cls in leave:
                stack.append((node, True))
            kids = children(node)
            stack.extend((child, False) for child in reversed(kids))
    except Exception as error:  # a rule's bug must not end the run: the engine reports it
        raise HandlerError(handler, error) from error

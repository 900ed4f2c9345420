"""Reading expressions without running them: their source-like text and literal numbers."""
from __future__ import annotations

from typing import Iterator, Optional

import libcst as cst

from .walker import children


def text(node: Optional[cst.CSTNode]) -> Optional[str]:
    """Compact text of simple expressions (names, attributes, numbers, subscripts, calls), else None.

    Cheap enough to call on every candidate node (a table keyed by the node's exact type: an
    isinstance chain on LibCST's abstract node classes cost more than the traversal); two
    expressions with the same text are taken to mean the same value.
    """
    render = _TEXT.get(type(node))
    return None if render is None else render(node)


def _attribute_text(node: cst.Attribute) -> Optional[str]:
    base = text(node.value)
    return None if base is None else f"{base}.{node.attr.value}"


def _subscript_text(node: cst.Subscript) -> Optional[str]:
    base = text(node.value)
    slices = [text(s.slice.value) if type(s.slice) is cst.Index else None for s in node.slice]
    if base is None or None in slices:
        return None
    return f"{base}[{', '.join(slices)}]"


def _unary_text(node: cst.UnaryOperation) -> Optional[str]:
    inner = text(node.expression) if type(node.operator) is cst.Minus else None
    return None if inner is None else f"-{inner}"


def _binary_text(node: cst.BinaryOperation) -> Optional[str]:
    left, right = text(node.left), text(node.right)
    symbol = _OPERATORS.get(type(node.operator))
    if left is None or right is None or symbol is None:
        return None
    return f"({left} {symbol} {right})"


def _call_text(node: cst.Call) -> Optional[str]:
    func = text(node.func)
    args = [text(a.value) for a in node.args]
    if func is None or None in args:
        return None
    return f"{func}({', '.join(args)})"


def _literal_text(node: cst.CSTNode) -> str:
    return node.value


_TEXT = {cst.Name: _literal_text, cst.Integer: _literal_text, cst.Float: _literal_text,
         cst.SimpleString: _literal_text, cst.Attribute: _attribute_text,
         cst.Subscript: _subscript_text, cst.UnaryOperation: _unary_text,
         cst.BinaryOperation: _binary_text, cst.Call: _call_text}

_OPERATORS = {cst.Add: "+", cst.Subtract: "-", cst.Multiply: "*", cst.Divide: "/",
              cst.Power: "**"}


def number(node: Optional[cst.BaseExpression]) -> Optional[float]:
    """The value of a literal number expression (``1e-5``, ``-3``, ``10 ** -6``, ``1 / 2``)."""
    if isinstance(node, cst.Integer):
        return float(int(node.value.replace("_", ""), 0))
    if isinstance(node, cst.Float):
        return float(node.value.replace("_", ""))
    if isinstance(node, cst.UnaryOperation):
        inner = number(node.expression)
        if inner is None:
            return None
        return -inner if isinstance(node.operator, cst.Minus) else inner
    if isinstance(node, cst.BinaryOperation):
        left, right = number(node.left), number(node.right)
        if left is None or right is None:
            return None
        try:
            if isinstance(node.operator, cst.Power):
                return float(left ** right)
            if isinstance(node.operator, cst.Multiply):
                return left * right
            if isinstance(node.operator, cst.Divide):
                return left / right
            if isinstance(node.operator, cst.Add):
                return left + right
            if isinstance(node.operator, cst.Subtract):
                return left - right
        except (ArithmeticError, ValueError):
            return None
    return None


def keyword(call: cst.Call, name: str) -> Optional[cst.BaseExpression]:
    """The value passed as ``name=`` to ``call``, if any."""
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == name:
            return arg.value
    return None


def positional(call: cst.Call, position: int) -> Optional[cst.BaseExpression]:
    """The ``position``-th positional argument of ``call``, if any."""
    values = [a.value for a in call.args if a.keyword is None and not a.star]
    return values[position] if position < len(values) else None


def argument(call: cst.Call, position: int, name: str) -> Optional[cst.BaseExpression]:
    """An argument given either positionally or by keyword."""
    value = keyword(call, name)
    return value if value is not None else positional(call, position)


def descendants(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """Every expression-level node below ``node`` (used on small subtrees only)."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(children(current))


def with_keyword(call: cst.Call, name: str, value: cst.BaseExpression) -> cst.Call:
    """``call`` with ``name=value`` added as its last argument, for fixes."""
    args = list(call.args)
    if args:
        args[-1] = args[-1].with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
    added = cst.Arg(value, keyword=cst.Name(name),
                    equal=cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace("")))
    return call.with_changes(args=[*args, added])


def abbreviated(node: cst.CSTNode, limit: int = 40) -> str:
    """The source of ``node``, cut to ``limit`` characters for a message."""
    rendered = cst.Module([]).code_for_node(node)
    return rendered if len(rendered) <= limit else rendered[:limit - 3] + "..."

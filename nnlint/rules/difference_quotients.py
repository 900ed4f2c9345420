"""Recognising finite-difference quotients in source, shared by NN102 and NN103.

Inline:  (f(x + h) - f(x)) / h          forward
         (f(x) - f(x - h)) / h          backward
         (f(x + h) - f(x - h)) / (2*h)  centered
Loop (CS231n's eval_numerical_gradient): ``x[ix] += h`` or ``x[ix] = old + h``, an evaluation,
then ``(fxh - fx) / h``; centered code also sets ``x[ix] = old - h`` and divides by ``2 * h``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

import libcst as cst

from ..expressions import descendants, number, text


@dataclass
class Quotient:
    """A division of a difference by a step."""

    node: cst.BinaryOperation
    step: cst.BaseExpression
    step_text: str
    doubled: bool
    kind: Optional[str]  # "forward", "backward", "centered", or None when the numerator is opaque


def _is_two(node: cst.BaseExpression) -> bool:
    return number(node) == 2.0


def split_step(denominator: cst.BaseExpression):
    """(step, doubled) for ``h``, ``2 * h``, ``h * 2``, ``2.0 * h``; None for anything else."""
    if isinstance(denominator, cst.BinaryOperation) and isinstance(denominator.operator, cst.Multiply):
        if _is_two(denominator.left) and text(denominator.right) is not None:
            return denominator.right, True
        if _is_two(denominator.right) and text(denominator.left) is not None:
            return denominator.left, True
        return None
    if text(denominator) is None or number(denominator) is not None and number(denominator) >= 1:
        return None
    return denominator, False


def mentions(expression: cst.BaseExpression, step: str) -> bool:
    """True when ``expression`` is the step, or a product with the step as a factor."""
    if text(expression) == step:
        return True
    return (isinstance(expression, cst.BinaryOperation)
            and isinstance(expression.operator, cst.Multiply)
            and (mentions(expression.left, step) or mentions(expression.right, step)))


def _shifts(expression: cst.CSTNode, step: str, operator: type) -> List[cst.BinaryOperation]:
    return [n for n in descendants(expression) if isinstance(n, cst.BinaryOperation)
            and isinstance(n.operator, operator) and mentions(n.right, step)]


def shifted(expression: cst.CSTNode, step: str, operator: type) -> bool:
    """True when ``expression`` evaluates something at ``x <operator> step``: ``f(x + h)``,
    ``f[x + h]``, ``loss(w + h * e)``. A bare ``n + k`` is arithmetic, not an evaluation (the
    ceiling division ``(n + k - 1) / k`` is no derivative), and a shift of a literal point
    (``f(3 + h)``) is a calculus demo, not a gradient check."""
    for node in descendants(expression):
        if isinstance(node, cst.Call):
            arguments = [a.value for a in node.args]
        elif isinstance(node, cst.Subscript):
            arguments = [e.slice.value for e in node.slice if isinstance(e.slice, cst.Index)]
        else:
            continue
        for argument in arguments:
            shifts = _shifts(argument, step, operator)
            if shifts and all(number(shift.left) is None for shift in shifts):
                return True
    return False


def uses(expression: cst.CSTNode, step: str) -> bool:
    return any(text(n) == step for n in descendants(expression) if isinstance(n, cst.Name)
               or isinstance(n, cst.Attribute))


def quotient(node: cst.BinaryOperation) -> Optional[Quotient]:
    """The quotient ``node`` is, when it divides a difference by a small step expression."""
    if not isinstance(node.operator, cst.Divide):
        return None
    numerator = node.left
    if not (isinstance(numerator, cst.BinaryOperation) and isinstance(numerator.operator, cst.Subtract)):
        return None
    split = split_step(node.right)
    if split is None:
        return None
    step, doubled = split
    step_text = text(step)
    plus, minus = numerator.left, numerator.right
    kind = None
    if shifted(plus, step_text, cst.Add) and shifted(minus, step_text, cst.Subtract):
        kind = "centered"
    elif shifted(plus, step_text, cst.Add) and not uses(minus, step_text) and number(minus) is None:
        kind = "forward"
    elif shifted(minus, step_text, cst.Subtract) and not uses(plus, step_text) \
            and number(plus) is None:
        kind = "backward"
    return Quotient(node, step, step_text, doubled, kind)


class _FlipShift(cst.CSTTransformer):
    """x + h -> x - h (or back) wherever the step is added (subtracted)."""

    def __init__(self, step: str, source: type, target: cst.BaseBinaryOp) -> None:
        super().__init__()
        self.step, self.source, self.target = step, source, target

    def leave_BinaryOperation(self, original_node, updated_node):
        if isinstance(original_node.operator, self.source) and mentions(original_node.right, self.step):
            return updated_node.with_changes(operator=self.target)
        return updated_node


def centered(found: Quotient) -> Optional[cst.BinaryOperation]:
    """The centered quotient (f(x + h) - f(x - h)) / (2 * h) for a one-sided one."""
    numerator = found.node.left
    if found.kind == "forward":
        plus = numerator.left
        minus = plus.visit(_FlipShift(found.step_text, cst.Add, cst.Subtract()))
    elif found.kind == "backward":
        minus = numerator.right
        plus = minus.visit(_FlipShift(found.step_text, cst.Subtract, cst.Add()))
    else:
        return None
    doubled = cst.BinaryOperation(cst.Integer("2"), cst.Multiply(), found.step,
                                  lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    return found.node.with_changes(left=numerator.with_changes(left=plus, right=minus),
                                   right=doubled)


@dataclass(frozen=True)
class Perturbation:
    """A statement that moves x to x + h (``up``) or to x - h, in place or into a copy."""

    up: bool
    step: cst.BaseExpression  # h, 2 * h, h * direction
    copy: Optional[str]  # the name of the perturbed copy; None when x[i] itself moves

    def moves_by(self, step: str) -> bool:
        return mentions(self.step, step)


def perturbation(node: cst.CSTNode) -> Optional[Perturbation]:
    """The perturbation a statement makes, if it makes one.

    ``x[i] += h`` and ``x[i] = old + h`` move up; ``x[i] = old - h`` and ``x[i] -= 2 * h`` (from
    x + h) move down. ``x[i] -= h`` after ``+= h`` only restores x, so it is not a second side.
    ``w_plus = w + h * e`` moves a copy of the weights.
    """
    if isinstance(node, cst.AugAssign) and isinstance(node.target, cst.Subscript):
        if isinstance(node.operator, cst.AddAssign) and text(node.value):
            return Perturbation(True, node.value, None)
        if isinstance(node.operator, cst.SubtractAssign):
            split = split_step(node.value)
            if split is not None and split[1]:
                return Perturbation(False, split[0], None)
        return None
    if not (isinstance(node, cst.Assign) and len(node.targets) == 1
            and isinstance(node.value, cst.BinaryOperation)
            and isinstance(node.value.operator, (cst.Add, cst.Subtract))
            and number(node.value.left) is None):
        return None
    target = node.targets[0].target
    up = isinstance(node.value.operator, cst.Add)
    if isinstance(target, cst.Subscript) and text(node.value.right):
        return Perturbation(up, node.value.right, None)
    if isinstance(target, cst.Name) and number(node.value.right) is None:
        return Perturbation(up, node.value.right, target.value)
    return None

"""NN208 requires-grad-typo: ``x.require_grad = True`` sets a new attribute, not requires_grad."""
from __future__ import annotations

import libcst as cst

from .base import Fix, Rule

_RIGHT = "requires_grad"
# Misspellings seen in real code; assigning any of them creates a plain attribute and leaves
# requires_grad as it was.
_TYPOS = {"require_grad", "requires_grads", "require_grads", "requires_gradient",
          "require_gradient", "requires_gradients", "requiers_grad", "requries_grad",
          "requires_grd", "reqiures_grad", "requres_grad", "required_grad", "requireGrad",
          "requiresGrad", "requires_grad_"}


class RequiresGradTypo(Rule):
    code = "NN208"
    name = "requires-grad-typo"
    message = ("`{target}` is not `requires_grad`: {what}, so the tensor's requires_grad is "
               "unchanged; write `{fixed}`")
    severity = "error"
    what = ("Flags an assignment to a misspelt `requires_grad` (`p.require_grad = False`, "
            "`w.requires_grads = True`) and a comparison written where an assignment was meant "
            "(`p.requires_grad == False` as a statement). `--fix` corrects the attribute name "
            "(safe).")
    why = ("Tensors accept any new attribute, so `param.require_grad = False` runs without "
           "error and freezes nothing: the 'frozen' backbone keeps training (and its optimizer "
           "state grows), or a tensor meant to be optimised never gets a gradient. The "
           "comparison form evaluates to a bool and is dropped.")
    bad = (
        "for param in backbone.parameters():\n    param.require_grad = False\n",
        "import torch\n\nw = torch.zeros(3, 1)\nw.requires_grads = True\n",
        "for p in model.encoder.parameters():\n    p.requires_grad == False\n",
    )
    good = (
        "for param in backbone.parameters():\n    param.requires_grad = False\n",
        "import torch\n\nw = torch.zeros(3, 1).requires_grad_()\n",
        "frozen = [p for p in model.parameters() if p.requires_grad == False]\n",
    )

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            attribute = target.target
            if isinstance(attribute, cst.Attribute) and attribute.attr.value in _TYPOS:
                fixed = attribute.with_changes(attr=cst.Name(_RIGHT))
                self.report(attribute, self.message.format(
                    target=cst.Module([]).code_for_node(attribute),
                    what="assigning it creates a new attribute",
                    fixed=cst.Module([]).code_for_node(fixed)), fix=fixed)

    def visit_Expr(self, node: cst.Expr) -> None:
        comparison = node.value
        if not (isinstance(comparison, cst.Comparison) and len(comparison.comparisons) == 1
                and isinstance(comparison.comparisons[0].operator, cst.Equal)
                and isinstance(comparison.left, cst.Attribute)
                and comparison.left.attr.value == _RIGHT):
            return
        value = comparison.comparisons[0].comparator
        assignment = cst.Assign([cst.AssignTarget(comparison.left)], value)
        self.report(comparison, self.message.format(
            target=cst.Module([]).code_for_node(comparison),
            what="a comparison as a statement assigns nothing",
            fixed=cst.Module([]).code_for_node(assignment)), fix=Fix(((node, assignment),), True))

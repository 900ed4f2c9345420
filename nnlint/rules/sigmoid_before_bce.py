"""NN501 sigmoid-before-bce: a sigmoid followed by BCELoss, where BCEWithLogitsLoss belongs."""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import libcst as cst

from ..expressions import positional, text
from .base import Fix, Rule

_BCE_FUNCTIONS = {"torch.nn.functional.binary_cross_entropy"}
_BCE_MODULES = {"torch.nn.BCELoss", "torch.nn.modules.loss.BCELoss"}
# Layers that end an image generator or decoder: its sigmoid makes pixels, not a probability.
_IMAGE_OUTPUT = ("ConvTranspose", "Upsample", "PixelShuffle")
_SIGMOIDS = {"torch.sigmoid", "torch.nn.functional.sigmoid", "torch.special.expit"}


class SigmoidBeforeBce(Rule):
    code = "NN501"
    name = "sigmoid-before-bce"
    message = ("{where}: the log of a saturated sigmoid underflows and its gradient vanishes; "
               "use {fixed} on the logits, which applies the sigmoid inside the loss stably")
    what = ("Flags binary cross-entropy computed on sigmoid outputs: `F.binary_cross_entropy("
            "torch.sigmoid(z), y)`, a `BCELoss` criterion called on `torch.sigmoid(z)` (or on a "
            "variable holding it), and a model whose `nn.Sequential` ends in `nn.Sigmoid` or "
            "whose `forward()` returns a sigmoid in a file that trains with `BCELoss` / "
            "`binary_cross_entropy`. `--fix` rewrites the inline forms to "
            "`binary_cross_entropy_with_logits` / `BCEWithLogitsLoss` on the logits (safe: the "
            "same loss, computed stably); a criterion is rewritten only when every call of it "
            "passes a sigmoid inline.")
    why = ("log(sigmoid(z)) underflows once |z| is large: PyTorch clamps BCELoss's log at -100, "
           "so a confidently wrong prediction gets a capped loss and a vanishing gradient, and a "
           "saturated discriminator stops teaching its generator. BCEWithLogitsLoss uses the "
           "log-sum-exp form (PyTorch docs: 'more numerically stable than using a plain Sigmoid "
           "followed by a BCELoss'); Karpathy's recipe lists it among the silent bugs.")
    bad = (
        "import torch\nimport torch.nn.functional as F\n\n"
        "loss = F.binary_cross_entropy(torch.sigmoid(logits), targets)\n",
        "import torch\nfrom torch import nn\n\ncriterion = nn.BCELoss()\n\n"
        "def step(model, x, y):\n    return criterion(torch.sigmoid(model(x)), y)\n",
        "import torch\nfrom torch import nn\n\n"
        "discriminator = nn.Sequential(nn.Linear(784, 256), nn.LeakyReLU(0.2), nn.Linear(256, 1),\n"
        "                              nn.Sigmoid())\nadversarial_loss = nn.BCELoss()\n"
        "d_loss = adversarial_loss(discriminator(images), real)\n",
        "import torch\nimport torch.nn.functional as F\nfrom torch import nn\n\n"
        "class Decoder(nn.Module):\n    def forward(self, z):\n"
        "        return torch.sigmoid(self.out(z))\n\n"
        "def vae_loss(recon, x):\n    return F.binary_cross_entropy(recon, x, reduction='sum')\n",
        "import torch\nfrom torch import nn\n\nbce = nn.BCELoss()\n"
        "probs = out.sigmoid()\nloss = bce(probs, labels)\n",
    )
    good = (
        "import torch.nn.functional as F\n\n"
        "loss = F.binary_cross_entropy_with_logits(logits, targets)\n",
        "import torch\nfrom torch import nn\n\ncriterion = nn.BCEWithLogitsLoss()\n\n"
        "def step(model, x, y):\n    logits = model(x)\n    probs = torch.sigmoid(logits)  # for metrics\n"
        "    return criterion(logits, y), probs\n",
        "import torch\nfrom torch import nn\n\n"
        "generator = nn.Sequential(nn.Linear(100, 784), nn.Sigmoid())\n"
        "reconstruction = nn.MSELoss()\n",
        "import torch\nfrom torch import nn\n\ncriterion = nn.BCELoss()\n"
        "loss = criterion(soft_labels_from_a_teacher, hard_labels)\n",
        "from torch import nn\n\ngenerator = nn.Sequential(nn.ConvTranspose2d(64, 1, 4, 2, 1), "
        "nn.Sigmoid())\ndiscriminator = nn.Sequential(nn.Conv2d(1, 64, 4, 2, 1), nn.Flatten(), "
        "nn.LazyLinear(1))\ncriterion = nn.BCEWithLogitsLoss()\nloss = nn.BCELoss()(generator(z), "
        "images)\n",
    )

    def __init__(self, context) -> None:
        super().__init__(context)
        self._criteria: Dict[str, cst.Call] = {}  # name -> BCELoss(...) construction
        self._criterion_calls: Dict[str, List[Tuple[cst.Call, Optional[tuple]]]] = {}
        self._sigmoid_models: List[cst.CSTNode] = []
        self._uses_bce = False

    def _sigmoid_input(self, node: Optional[cst.BaseExpression], depth: int = 0
                       ) -> Optional[Tuple[cst.BaseExpression, bool]]:
        """(z, inline) for torch.sigmoid(z), F.sigmoid(z), z.sigmoid(), nn.Sigmoid()(z), or a name
        bound to one of them (inline False: the fix would have to move the binding)."""
        if isinstance(node, cst.Name) and depth == 0:
            found = self._sigmoid_input(self.context.binding(node.value), 1)
            return None if found is None else (found[0], False)
        if not isinstance(node, cst.Call):
            return None
        if self.context.call_name(node) in _SIGMOIDS and node.args:
            return node.args[0].value, True
        if isinstance(node.func, cst.Attribute) and node.func.attr.value == "sigmoid" \
                and not node.args:
            return node.func.value, True
        if isinstance(node.func, cst.Call) and self.context.call_name(node.func) == "torch.nn.Sigmoid" \
                and node.args:
            return node.args[0].value, True
        return None

    def visit_Assign(self, node: cst.Assign) -> None:
        value = node.value
        if not isinstance(value, cst.Call):
            return
        qualified = self.context.call_name(value)
        if qualified in _BCE_MODULES:
            self._uses_bce = True
            for target in node.targets:
                if text(target.target):
                    self._criteria[text(target.target)] = value
        elif qualified == "torch.nn.Sequential" and value.args:
            last = value.args[-1].value
            before = value.args[-2].value if len(value.args) > 1 else None
            generator = isinstance(before, cst.Call) and \
                (self.context.call_name(before) or "").rsplit(".", 1)[-1].startswith(_IMAGE_OUTPUT)
            if isinstance(last, cst.Call) and self.context.call_name(last) == "torch.nn.Sigmoid" \
                    and not generator:
                self._sigmoid_models.append(last)

    def visit_Return(self, node: cst.Return) -> None:
        functions = self.context.functions
        if functions and functions[-1].name.value == "forward" and node.value is not None \
                and isinstance(node.value, cst.Call) and self._sigmoid_input(node.value) is not None:
            self._sigmoid_models.append(node.value)

    def visit_Call(self, node: cst.Call) -> None:
        qualified = self.context.call_name(node)
        if qualified in _BCE_FUNCTIONS:
            self._uses_bce = True
            self._functional(node)
        elif qualified in _BCE_MODULES:
            self._uses_bce = True
        elif text(node.func) in self._criteria:
            found = self._sigmoid_input(positional(node, 0))
            self._criterion_calls.setdefault(text(node.func), []).append((node, found))

    def _functional(self, call: cst.Call) -> None:
        found = self._sigmoid_input(positional(call, 0))
        if found is None:
            return
        inner, inline = found
        fix = None
        if inline and isinstance(call.func, cst.Attribute) and call.args[0].keyword is None:
            fix = call.with_changes(
                func=call.func.with_changes(attr=cst.Name("binary_cross_entropy_with_logits")),
                args=[call.args[0].with_changes(value=inner), *call.args[1:]])
        self.report(call, self.message.format(where="binary_cross_entropy of sigmoid outputs",
                                              fixed="binary_cross_entropy_with_logits"), fix=fix)

    def leave_Module(self, node: cst.Module) -> None:
        for name, calls in self._criterion_calls.items():
            fix = self._criterion_fix(self._criteria[name], calls)
            for call, found in calls:
                if found is not None:
                    self.report(call, self.message.format(
                        where=f"BCELoss `{name}` applied to sigmoid outputs",
                        fixed="BCEWithLogitsLoss"), fix=fix)
                    fix = None  # one finding carries the whole edit
        if not self._uses_bce:
            return
        for sigmoid in self._sigmoid_models:
            self.report(sigmoid, self.message.format(
                where="the model ends in a sigmoid and this file trains with BCELoss",
                fixed="BCEWithLogitsLoss (drop the sigmoid)"))

    @staticmethod
    def _criterion_fix(construction: cst.Call, calls) -> Optional[Fix]:
        """BCELoss(...) -> BCEWithLogitsLoss(...) and every call's sigmoid removed, when every call
        of the criterion passes a sigmoid inline (any other call expects probabilities)."""
        if not all(found is not None and found[1] for _, found in calls) \
                or not isinstance(construction.func, cst.Attribute):
            return None
        edits = [(construction, construction.with_changes(
            func=construction.func.with_changes(attr=cst.Name("BCEWithLogitsLoss"))))]
        edits += [(call.args[0], call.args[0].with_changes(value=found[0])) for call, found in calls]
        return Fix(tuple(edits), True)

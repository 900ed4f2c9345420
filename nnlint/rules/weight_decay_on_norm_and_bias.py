"""NN206 weight-decay-on-norm-and-bias: weight decay applied to every parameter (opt-in advice)."""
from __future__ import annotations

import libcst as cst

from ..expressions import argument, keyword, number, text
from .base import Rule
from .optimizers import is_optimizer


class WeightDecayOnNormAndBias(Rule):
    code = "NN206"
    name = "weight-decay-on-norm-and-bias"
    default = False
    message = ("weight decay {wd} applies to every parameter of `{model}`, biases and "
               "normalisation gains included: put those in a parameter group with "
               "weight_decay=0")
    what = ("Flags an optimizer built on `model.parameters()` as a single group with a non-zero "
            "`weight_decay`. Opt-in advice: many reference recipes (the original ResNet one "
            "among them) decay everything and reach their published accuracy.")
    why = ("Weight decay is an L2 prior that keeps weights small; a bias or a normalisation gain "
           "is not a weight of that kind. Decaying the gains of batch or layer norm fights the "
           "scale the layer needs and changes the effective learning rate of the layer before "
           "it; transformer recipes (and nanoGPT) exclude them, and Goyal et al. (2017) report "
           "a small gain from not decaying biases and BN parameters.")
    bad = (
        "import torch\n\noptimizer = torch.optim.AdamW(model.parameters(), lr=3e-4, "
        "weight_decay=0.1)\ntrain(model, optimizer)\n",
        "import torch\n\noptimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, "
        "weight_decay=5e-4)\ntrain(net, optimizer)\n",
        "from torch import optim\n\nopt = optim.Adam(self.model.parameters(), 1e-3, (0.9, 0.999), "
        "1e-8, 1e-4)\ntrain(self.model, opt)\n",
    )
    good = (
        "import torch\n\ndecay = [p for p in model.parameters() if p.dim() >= 2]\n"
        "no_decay = [p for p in model.parameters() if p.dim() < 2]\n"
        "optimizer = torch.optim.AdamW([{'params': decay, 'weight_decay': 0.1},\n"
        "                               {'params': no_decay, 'weight_decay': 0.0}], lr=3e-4)\n"
        "Engine(model, optimizer).run()\n",
        "import torch\n\noptimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)\n"
        "Engine(net, optimizer).run()\n",
        "import torch\n\noptimizer = torch.optim.SGD(net.parameters(), lr=0.1, weight_decay=0)\n"
        "Engine(net, optimizer).run()\n",
    )

    def visit_Call(self, node: cst.Call) -> None:
        qualified = self.context.call_name(node)
        if not is_optimizer(qualified):
            return
        params = argument(node, 0, "params")
        if not (isinstance(params, cst.Call) and isinstance(params.func, cst.Attribute)
                and params.func.attr.value == "parameters"):
            return
        decay = keyword(node, "weight_decay")
        if decay is None and qualified.rsplit(".", 1)[-1] in ("Adam", "AdamW", "Adamax", "NAdam"):
            decay = argument(node, 4, "weight_decay")
        if decay is None or number(decay) == 0.0:
            return
        self.report(node, self.message.format(wd=text(decay) or "", model=text(params.func.value)))

"""NN214 small-gaussian-init: ``0.01 * randn`` weights in a ReLU network (opt-in advice)."""
from __future__ import annotations

from typing import List, Optional

import libcst as cst

from ..expressions import argument, number
from .base import Rule

_GAUSSIANS = {"numpy.random.randn", "numpy.random.standard_normal", "torch.randn"}
_NORMAL_INITS = {"torch.nn.init.normal_", "torch.nn.init.normal"}
# At or below this standard deviation a deep ReLU stack's activations shrink layer by layer:
# CS231n's example of 0.01 * randn (10 layers of 500 units: activations collapse to zero).
SMALL_STD = 0.01
# "Deep": more layers than the two- and three-layer nets for which CS231n's assignments use the
# fixed scale on purpose. Draws made in a loop build a stack of any depth.
DEEP = 4


class SmallGaussianInit(Rule):
    code = "NN214"
    name = "small-gaussian-init"
    default = False
    message = ("weights drawn with a fixed standard deviation of {std:g} in a ReLU network: "
               "activations shrink at every layer of a deep stack; scale by sqrt(2 / fan_in) "
               "(He initialisation, nn.init.kaiming_normal_)")
    what = ("Flags weights drawn from a Gaussian with a fixed small standard deviation "
            "(`0.01 * np.random.randn(D, H)`, `torch.randn(...) * 0.01`, `nn.init.normal_(w, 0, "
            "0.01)`, `w.data.normal_(0, 0.01)`) in a file that uses ReLU, for a deep stack: four "
            "or more such draws, one made in a loop over layers, or a `normal_` init function. "
            "Opt-in advice: for shallow networks the fixed scale works, and CS231n's assignments "
            "use it on purpose.")
    why = ("CS231n, 'Weight Initialization': with 0.01 * randn, a 10-layer ReLU network's "
           "activations shrink towards zero layer by layer, and so do the gradients, so the "
           "deep layers barely learn; calibrating the variance to the fan-in (He et al. 2015: "
           "std = sqrt(2 / n) for ReLU) keeps them at the same scale.")
    bad = (
        "import numpy as np\n\ndef init(dims):\n    layers = []\n"
        "    for fan_in, fan_out in zip(dims[:-1], dims[1:]):\n"
        "        layers.append(0.01 * np.random.randn(fan_in, fan_out))\n    return layers\n\n"
        "def relu(z):\n    return np.maximum(0, z)\n\n"
        "def forward(x, layers):\n    for w in layers:\n        x = relu(x @ w)\n"
        "    return x\n",
        "from torch import nn\n\ndef init_weights(m):\n    if isinstance(m, nn.Linear):\n"
        "        nn.init.normal_(m.weight, mean=0.0, std=0.01)\n\n"
        "net = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 10))\n",
        "import torch\n\nW1 = torch.randn(784, 512) * 0.01\nW2 = torch.randn(512, 512) * 0.01\n"
        "W3 = torch.randn(512, 512) * 0.01\nW4 = torch.randn(512, 10) * 0.01\nrelu = torch.relu\n",
    )
    good = (
        "import numpy as np\n\ndef init(dims):\n    return [np.random.randn(i, o) * np.sqrt(2.0 / i)\n"
        "            for i, o in zip(dims[:-1], dims[1:])]\n\n"
        "def forward(x, layers):\n    for w in layers:\n        x = np.maximum(0, x @ w)  # relu\n"
        "    return x\n",
        "from torch import nn\n\ndef init_weights(m):\n    if isinstance(m, nn.Linear):\n"
        "        nn.init.kaiming_normal_(m.weight, nonlinearity='relu')\n",
        "import numpy as np\n\nW = 0.01 * np.random.randn(3073, 10)  # a linear classifier: no ReLU\n",
        "import numpy as np\n\nW1 = 0.01 * np.random.randn(3072, 100)\nW2 = 0.01 * np.random.randn(100, 10)\n"
        "relu = lambda z: np.maximum(0, z)  # two layers: the fixed scale is fine\n",
    )

    def __init__(self, context) -> None:
        super().__init__(context)
        self._draws: List[tuple] = []
        self._relu = False

    def visit_Name(self, node: cst.Name) -> None:
        if "relu" in node.value.lower():
            self._relu = True

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if not isinstance(node.operator, cst.Multiply):
            return
        for scale, draw in ((node.left, node.right), (node.right, node.left)):
            std = number(scale)
            if std is not None and 0 < std <= SMALL_STD and isinstance(draw, cst.Call) \
                    and self.context.call_name(draw) in _GAUSSIANS:
                self._draws.append((node, std, bool(self.context.loops)))

    def visit_Call(self, node: cst.Call) -> None:
        qualified = self.context.call_name(node)
        method = node.func.attr.value if isinstance(node.func, cst.Attribute) else ""
        std: Optional[float] = None
        if qualified in _NORMAL_INITS:
            std = number(argument(node, 2, "std"))
        elif method == "normal_" and qualified not in _NORMAL_INITS:
            std = number(argument(node, 1, "std"))
        if std is not None and 0 < std <= SMALL_STD:
            # an init function applied to every module (net.apply) reaches every layer
            self._draws.append((node, std, True))

    def leave_Module(self, node: cst.Module) -> None:
        deep = len(self._draws) >= DEEP or any(repeated for _, _, repeated in self._draws)
        if not self._relu or not deep:
            return
        for where, std, _ in self._draws:
            self.report(where, self.message.format(std=std))

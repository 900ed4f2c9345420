"""NN205 unused-lr-decay: a learning-rate decay that is configured but never applied."""
from __future__ import annotations

import re
from collections import Counter
from typing import Dict, List, Set, Tuple

import libcst as cst

from ..expressions import descendants, keyword, text
from .base import Rule
from .optimizers import is_optimizer_call

# Options and variables that configure a learning-rate decay: --decay_epoch, --lr_decay,
# --lr_steps, --milestones, lr_decay_rate = 0.95. Weight decay is a regularizer, not a schedule.
_DECAY = re.compile(r"^(?!.*weight_decay)(\w*lr_?decay\w*|\w*decay_(epoch|step|start|every|iter|"
                    r"rate|after|factor)s?\w*|\w*lr_(step|gamma|milestone|schedule|drop|factor|"
                    r"patience)s?|milestones?|n_epochs_decay|learning_rate_decay\w*)$")
# Calls that only show the parsed options; any other function of another module may read them.
_SHOWS = {"print", "str", "repr", "format", "len"}


class UnusedLrDecay(Rule):
    code = "NN205"
    name = "unused-lr-decay"
    message = ("{what} configures a learning-rate decay but nothing reads it: the learning rate "
               "never decays; build the schedule from it (e.g. a LambdaLR or StepLR) or remove it")
    what = ("Flags a learning-rate decay that is configured and never used: an argparse option "
            "such as `--decay_epoch`, `--lr_decay` or `--milestones` whose value is never read "
            "(`opt.decay_epoch` appears nowhere), or a variable such as `lr_decay = 0.95` "
            "assigned and never read, in a file that builds an optimizer. Options are not "
            "flagged when the parsed arguments are handed to a function of another module "
            "(which may read them), and weight decay is a regularizer, not a schedule.")
    why = ("The script reads as if the learning rate decays: the option is documented, has a "
           "default and appears in the command line of every run, yet the schedule was never "
           "built, so the model trains at its initial rate to the end. CS231n, 'Annealing the "
           "learning rate': without the decay, SGD keeps bouncing at the noise level of the "
           "initial rate; the missing last few percent are then blamed on the model.")
    bad = (
        "import argparse\nimport torch\n\nparser = argparse.ArgumentParser()\n"
        "parser.add_argument('--lr', type=float, default=2e-4)\n"
        "parser.add_argument('--decay_epoch', type=int, default=100, "
        "help='epoch from which to start lr decay')\nopt = parser.parse_args()\n\n"
        "optimizer = torch.optim.Adam(model.parameters(), lr=opt.lr)\n"
        "for epoch in range(200):\n    for batch in loader:\n        optimizer.zero_grad()\n"
        "        model.loss(batch).backward()\n        optimizer.step()\n",
        "import torch\n\nlearning_rate = 1e-3\nlr_decay = 0.95\n"
        "optimizer = torch.optim.SGD(net.parameters(), lr=learning_rate)\n"
        "for epoch in range(50):\n    train_epoch(net, optimizer)\n",
        "import argparse\nimport torch\n\ndef main():\n    parser = argparse.ArgumentParser()\n"
        "    parser.add_argument('--lr', default=0.1, type=float)\n"
        "    parser.add_argument('--lr-steps', default=[30, 60], nargs='+', type=int)\n"
        "    args = parser.parse_args()\n"
        "    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)\n"
        "    for epoch in range(90):\n        train_one_epoch(model, optimizer)\n",
    )
    good = (
        "import argparse\nimport torch\n\nparser = argparse.ArgumentParser()\n"
        "parser.add_argument('--lr', type=float, default=2e-4)\n"
        "parser.add_argument('--n_epochs', type=int, default=200)\n"
        "parser.add_argument('--decay_epoch', type=int, default=100)\nopt = parser.parse_args()\n\n"
        "optimizer = torch.optim.Adam(model.parameters(), lr=opt.lr)\n"
        "decay = lambda epoch: 1.0 - max(0, epoch - opt.decay_epoch) / (opt.n_epochs - opt.decay_epoch)\n"
        "scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda=decay)\n"
        "for epoch in range(opt.n_epochs):\n    train_epoch(model, optimizer)\n    scheduler.step()\n",
        "import argparse\nimport torch\n\nparser = argparse.ArgumentParser()\n"
        "parser.add_argument('--decay', default=1e-4, type=float, help='weight decay')\n"
        "parser.add_argument('--weight_decay', default=5e-4, type=float)\nargs = parser.parse_args()\n"
        "optimizer = torch.optim.SGD(groups, lr=0.1, weight_decay=args.weight_decay)\n"
        "train(model, optimizer, epochs=1)\n",
        "import argparse\nimport torch\nfrom trainer import Trainer\n\n"
        "parser = argparse.ArgumentParser()\nparser.add_argument('--lr_decay', default=0.1, type=float)\n"
        "args = parser.parse_args()\noptimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "Trainer(args, model, optimizer).fit()\n",
        "LR_DECAY = 0.95  # a configuration module: train.py imports this\n",
    )

    def __init__(self, context) -> None:
        super().__init__(context)
        self._options: List[Tuple[str, cst.Call, bool]] = []  # name, call, dest given
        self._variables: Dict[str, cst.CSTNode] = {}
        self._parsed: Set[str] = set()  # names holding parse_args() results
        self._attributes: Set[str] = set()
        self._strings: Counter = Counter()
        self._names: Counter = Counter()
        self._assigned: Counter = Counter()
        self._escaped = False
        self._optimizer = False
        self._calls: List[Tuple[str, List[str]]] = []
        self._defined: Set[str] = set()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._defined.add(node.name.value)

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._defined.add(node.name.value)

    def visit_Assign(self, node: cst.Assign) -> None:
        value = node.value
        if isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute) \
                and value.func.attr.value in ("parse_args", "parse_known_args"):
            for target in node.targets:
                names = target.target.elements if isinstance(target.target, cst.Tuple) else ()
                first = names[0].value if names else target.target
                if text(first):
                    self._parsed.add(text(first))
        for target in node.targets:
            name = text(target.target)
            if isinstance(target.target, cst.Name) and _DECAY.match(name.lower()):
                self._variables.setdefault(name, target.target)
            if name:
                self._assigned[name] += 1

    def visit_Return(self, node: cst.Return) -> None:
        returned = node.value
        if isinstance(returned, cst.Call) and isinstance(returned.func, cst.Attribute) \
                and returned.func.attr.value in ("parse_args", "parse_known_args"):
            self._escaped = True  # a configuration function: its callers read the options
        elif returned is not None and text(returned) in self._parsed:
            self._escaped = True

    def visit_Call(self, node: cst.Call) -> None:
        if is_optimizer_call(node, self.context.call_name):
            self._optimizer = True
        if isinstance(node.func, cst.Attribute) and node.func.attr.value == "add_argument":
            self._option(node)
        callee = text(node.func) or ""
        self._calls.append((callee, [text(a.value) or "" for a in node.args]))

    def _option(self, call: cst.Call) -> None:
        flags = [a.value.evaluated_value for a in call.args if a.keyword is None
                 and isinstance(a.value, cst.SimpleString)
                 and isinstance(a.value.evaluated_value, str)]
        dest = keyword(call, "dest")
        name = dest.evaluated_value if isinstance(dest, cst.SimpleString) else \
            max(flags, key=len).lstrip("-").replace("-", "_") if flags else ""
        help_text = keyword(call, "help")
        described = help_text.evaluated_value.lower() if isinstance(help_text, cst.SimpleString) \
            and isinstance(help_text.evaluated_value, str) else ""
        if name and _DECAY.match(name.lower()) and "weight" not in described:
            self._options.append((name, call, isinstance(dest, cst.SimpleString)))

    def _count_reads(self, module: cst.Module) -> None:
        """Every attribute, name and identifier-like string of the file: read only when the file
        configures a decay (few do), so that other files pay nothing for it."""
        for node in descendants(module):
            if isinstance(node, cst.Attribute):
                self._attributes.add(node.attr.value)
            elif isinstance(node, cst.Name):
                self._names[node.value] += 1
            elif isinstance(node, cst.SimpleString):
                value = node.evaluated_value
                if isinstance(value, str) and value.isidentifier():
                    self._strings[value] += 1

    def leave_Module(self, node: cst.Module) -> None:
        if not self._optimizer or not (self._options or self._variables):
            return
        self._count_reads(node)
        if not self._escaped and not self._parsed_options_escape():
            for name, call, dest_given in self._options:
                if name not in self._attributes and self._strings[name] <= int(dest_given):
                    self.report(call, self.message.format(what=f"option `{name}`"))
        for name, target in self._variables.items():
            if self._names[name] <= self._assigned[name] and name not in self._attributes:
                self.report(target, self.message.format(what=f"`{name}`"))

    def _parsed_options_escape(self) -> bool:
        """The parsed options are handed to a function of another module, which may read them."""
        for callee, arguments in self._calls:
            function = callee.rsplit(".", 1)[-1]
            if function in self._defined or function in _SHOWS or callee.startswith("log"):
                continue
            if any(argument in self._parsed for argument in arguments):
                return True
        return False

"""NN201 missing-lr-decay: an optimizer trained for a long run whose learning rate never decays."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Set, Tuple

import libcst as cst

from ..expressions import argument, descendants, keyword, text
from .base import Rule
from .optimizers import is_optimizer_call, is_scheduler_call, optimized_inputs
from .training_loops import ArgparseDefaults, evaluate, loop_count, loop_values, run_length

# Functions whose name says they set the learning rate: adjust_learning_rate(optimizer, epoch).
_LR_SETTER_NAME = re.compile(r"(^|_)(lr|learning_rate|schedul\w*|decay\w*|anneal\w*|warmup)(_|$)")
# Iterate averaging (an EMA or SWA of the weights) plays the part of a decaying learning rate:
# the DDPM and many GAN recipes train at a constant rate and evaluate the average.
_AVERAGING = {"EMA", "ExponentialMovingAverage", "AveragedModel", "ModelEma", "ModelEmaV2",
              "ModelEmaV3", "EMAModel", "SWALR"}
# Search trials: CS231n searches with short runs; the schedule belongs to the final training.
_SEARCH_MODULES = ("optuna", "ray.tune", "hyperopt", "hpbandster", "ConfigSpace", "nni", "skopt")
_SEARCH_METHODS = re.compile(r"^suggest_(float|int|categorical|uniform|loguniform|discrete_uniform)$")
# Another module's training function, given the optimizer: it steps it over epochs we cannot see.
_TRAINER_NAME = re.compile(r"^(train|fit|train_model|train_epoch|train_one_epoch|run_epoch|"
                           r"train_loop)$")


@dataclass(frozen=True)
class _Run:
    """One step of an optimizer: the loops around it in its function, and where that function is."""

    function: Optional[str]  # the enclosing function, whose callers' loops also count
    loops: Tuple[cst.CSTNode, ...]
    unseen: bool = False  # also inside loops this file cannot see (a framework, another module)
    epochs: Optional[int] = None  # how many epochs those unseen loops run, when the call says


@dataclass
class _Binding:
    name: str
    node: cst.Call
    loops: Tuple[cst.CSTNode, ...]  # the loops around the creation
    skip: bool  # LBFGS, over inputs, or re-created inside a loop from a changing rate
    scheduled: bool = False
    runs: List[_Run] = field(default_factory=list)


@dataclass
class _Scope:
    function: Optional[str]  # ``train`` for a function, ``.train`` for a method; None: module
    loop_depth: int
    parameters: List[str]
    bindings: Dict[str, _Binding] = field(default_factory=dict)
    events: List[Tuple[str, str]] = field(default_factory=list)  # ("backward"|"step", receiver)


class MissingLrDecay(Rule):
    code = "NN201"
    name = "missing-lr-decay"
    default = False
    message = ("optimizer `{name}` trains for a long run but its learning rate never decays: add "
               "a torch.optim.lr_scheduler (step, cosine, plateau) or anneal it by hand")
    what = ("Flags an optimizer over a model's weights that is stepped through a long run (10 or "
            "more epochs, 5,000 or more steps, or a length the file does not fix) while nothing "
            "schedules its learning rate: no `torch.optim.lr_scheduler`, no `get_*_schedule*`, no "
            "`param_group['lr']` assignment, no `adjust_learning_rate(optimizer, ...)`, no "
            "re-creation with a new rate. Each binding is judged on its own steps, including "
            "those in a function it is passed to and a `configure_optimizers` that returns it. "
            "Not flagged: optimizers over inputs (`Adam([image])`), LBFGS, alternating "
            "optimizers (GANs), runs whose weights are averaged (EMA, SWA), search trials, and "
            "demos shorter than the limits above. Opt-in: a constant rate is often a deliberate "
            "choice (see the survey figures in the README).")
    why = ("With a constant learning rate, SGD bounces around the minimum at the noise level "
           "the step size allows and never settles into the narrower parts of the loss. CS231n, "
           "'Annealing the learning rate': step decay, exponential decay or 1/t decay are what "
           "turn a noisy plateau into the last few percent; Karpathy's recipe keeps a decay "
           "schedule as a standard part of the final tuning.")
    bad = (
        "import torch\n\nmodel = torch.nn.Linear(10, 2)\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)\n"
        "for epoch in range(90):\n    for x, y in loader:\n        optimizer.zero_grad()\n"
        "        loss_fn(model(x), y).backward()\n        optimizer.step()\n",
        "from torch import optim\n\n"
        "def main(model, data):\n    opt = optim.Adam(model.parameters(), lr=3e-4)\n"
        "    while True:\n        loss = model(next(data)).mean()\n        loss.backward()\n"
        "        opt.step()\n        opt.zero_grad()\n",
        "import torch.optim as optim\n\nclass Trainer:\n    def __init__(self, model):\n"
        "        self.optimizer = optim.AdamW(model.parameters(), lr=1e-3)\n\n"
        "    def fit(self, batches):\n        for batch in batches:\n"
        "            self.optimizer.zero_grad()\n            self.optimizer.step()\n",
        "import argparse\nimport torch\n\nparser = argparse.ArgumentParser()\n"
        "parser.add_argument('--epochs', type=int, default=40)\nparser.add_argument('--adam', "
        "action='store_true')\nargs = parser.parse_args()\n\n"
        "def train_epoch(net, opt, data):\n    for x, y in data:\n        opt.zero_grad()\n"
        "        net.loss(x, y).backward()\n        opt.step()\n\n"
        "lr = 20.0\nadam = torch.optim.Adam(net.parameters(), lr=1e-3)\n"
        "for epoch in range(args.epochs):\n    if args.adam:\n        train_epoch(net, adam, data)\n"
        "    else:\n        manual_sgd_epoch(net, lr, data)\n        lr /= 4.0\n",
        "import torch\n\nfor trial in range(2):\n    opt = torch.optim.SGD(net.parameters(), lr=0.1)\n"
        "    for step in range(3):\n        opt.step()\n"
        "opt = torch.optim.SGD(net.parameters(), lr=0.1)\nfor epoch in range(100):\n"
        "    for x, y in loader:\n        opt.zero_grad()\n        net.loss(x, y).backward()\n"
        "        opt.step()\n",
        "import torch\nimport pytorch_lightning as pl\n\nclass Classifier(pl.LightningModule):\n"
        "    def configure_optimizers(self):\n"
        "        return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)\n",
    )
    good = (
        "import torch\n\noptimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=30, gamma=0.1)\n"
        "for epoch in range(90):\n    for x, y in loader:\n        optimizer.zero_grad()\n"
        "        optimizer.step()\n"
        "    scheduler.step()\n",
        "import math\nimport torch\n\n"
        "def get_lr(it):\n    return 6e-4 * 0.5 * (1 + math.cos(math.pi * it / 5000))\n\n"
        "optimizer = torch.optim.AdamW(model.parameters(), lr=6e-4)\n"
        "for it in range(5000):\n    lr = get_lr(it)\n"
        "    for param_group in optimizer.param_groups:\n        param_group['lr'] = lr\n"
        "    optimizer.step()\n    optimizer.zero_grad(set_to_none=True)\n",
        "import torch\nfrom transformers import get_linear_schedule_with_warmup\n\n"
        "optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)\n"
        "scheduler = get_linear_schedule_with_warmup(optimizer, 100, 1000)\n"
        "for batch in loader:\n    optimizer.zero_grad()\n    optimizer.step()\n"
        "    scheduler.step()\n",
        "def train_epoch(model, optimizer, loader):\n    for x, y in loader:\n"
        "        optimizer.zero_grad()\n        optimizer.step()\n",
        "import torch\n\nlr = 0.1\noptimizer = torch.optim.SGD(model.parameters(), lr=lr)\n"
        "for epoch in range(30):\n    for batch in loader:\n        optimizer.zero_grad()\n"
        "        optimizer.step()\n"
        "    lr *= 0.95\n    for group in optimizer.param_groups:\n        group['lr'] = lr\n",
        "import torch\n\nopt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))\n"
        "opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))\n"
        "for epoch in range(200):\n    for real in loader:\n        opt_d.zero_grad()\n"
        "        d_loss(D, G, real).backward()\n        opt_d.step()\n        opt_g.zero_grad()\n"
        "        g_loss(D, G).backward()\n        opt_g.step()\n",
        "import torch\n\nimage = content.clone().requires_grad_(True)\n"
        "optimizer = torch.optim.Adam([image], lr=0.02)\nfor step in range(20000):\n"
        "    optimizer.zero_grad()\n    style_loss(image).backward()\n    optimizer.step()\n",
        "import torch\n\nmodel = torch.nn.Linear(3, 1)\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.01)\nfor t in range(500):\n"
        "    optimizer.zero_grad()\n    ((model(x) - y) ** 2).mean().backward()\n"
        "    optimizer.step()\n",
        "import torch\n\noptimizer = torch.optim.LBFGS(net.parameters(), lr=0.8)\n"
        "for i in range(15):\n    optimizer.step(closure)\n",
        "import torch\n\ndef adjust_learning_rate(optimizer, epoch, base):\n"
        "    for group in optimizer.param_groups:\n        group['lr'] = base * 0.1 ** (epoch // 30)\n\n"
        "optimizer = torch.optim.SGD(net.parameters(), lr=0.1)\nfor epoch in range(90):\n"
        "    adjust_learning_rate(optimizer, epoch, 0.1)\n    for x, y in loader:\n"
        "        optimizer.zero_grad()\n        optimizer.step()\n",
        "import torch\n\nlr = 0.1\nfor epoch in range(90):\n    if epoch in (30, 60):\n"
        "        lr = lr / 10\n    optimizer = torch.optim.SGD(net.parameters(), lr=lr)\n"
        "    for x, y in loader:\n        optimizer.zero_grad()\n        optimizer.step()\n",
        "import torch\nfrom ema_pytorch import EMA\n\n"
        "opt = torch.optim.Adam(model.parameters(), lr=2e-4)\nema = EMA(model, beta=0.995)\n"
        "while True:\n    opt.zero_grad()\n    model.loss(next(data)).backward()\n    opt.step()\n"
        "    ema.update()\n",
    )

    def __init__(self, context) -> None:
        super().__init__(context)
        self._argparse = ArgparseDefaults()
        self._scopes: List[_Scope] = [_Scope(None, 0, [])]
        self._bindings: List[_Binding] = []
        self._deferred_steps: List[Tuple[str, _Run]] = []
        self._deferred_schedules: Set[str] = set()
        self._parameter_steps: Dict[str, List[Tuple[str, _Run]]] = {}
        self._lr_setters: Dict[str, Set[str]] = {}  # function -> parameters whose lr it sets
        self._calls: List[Tuple[str, cst.Call, Dict[str, Optional[_Binding]], Tuple]] = []
        self._alternating: Set[str] = set()
        self._averaged_or_searched = False
        self._everything_scheduled = False
        self._defined: Dict[str, List[cst.FunctionDef]] = {}  # top-level functions and methods
        self._counts: Dict[cst.CSTNode, Optional[int]] = {}  # each loop's count, read on entry
        self._unresolved: List[Tuple[cst.For, Callable]] = []  # counted again at the end

    # Scopes, loops and name resolution -------------------------------------------------------

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        params = [p.name.value for p in (*node.params.posonly_params, *node.params.params,
                                         *node.params.kwonly_params)]
        method = bool(self.context.classes) and node in self.context.classes[-1].body.body
        self._scopes.append(_Scope(("." if method else "") + node.name.value,
                                   len(self.context.loops), params))

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._close(self._scopes.pop())

    def leave_Module(self, node: cst.Module) -> None:
        self._close(self._scopes[0])
        self._resolve_calls()
        for loop, bindings in self._unresolved:  # options declared after the loop that reads them
            self._counts[loop] = loop_count(loop, lambda n: self._number(n, bindings))
        if self._averaged_or_searched or self._everything_scheduled:
            return
        for binding in self._bindings:
            if binding.skip or binding.scheduled or binding.name in self._deferred_schedules \
                    or binding.name in self._alternating:
                continue
            runs = binding.runs + [run for name, run in self._deferred_steps if name == binding.name]
            if any(not run_length(loops, self._counts.get, run.unseen, run.epochs).short
                   for run in runs for loops in self._expand(run, binding)):
                self.report(binding.node, self.message.format(name=binding.name))

    def visit_For(self, node: cst.For) -> None:
        bindings = self.context.binding
        self._counts[node] = loop_count(node, lambda n: self._number(n, bindings))
        if self._counts[node] is None and _counts_a_range(node):
            self._unresolved.append((node, self.context.frozen_bindings()))

    def _loops_here(self) -> Tuple[cst.CSTNode, ...]:
        return tuple(self.context.loops[self._scopes[-1].loop_depth:])

    def _number(self, node: cst.BaseExpression, bindings: Callable, depth: int = 0
                ) -> Optional[float]:
        """The value of a name: a loop variable over literals, an argparse default, a binding."""
        name = text(node)
        if not name or depth > 3:
            return None
        looped = loop_values(name, self.context.loops)
        if looped is not None:
            return looped
        option = self._argparse.option(node)
        bound = self._argparse.defaults[option] if option is not None else bindings(name)
        return evaluate(bound, lambda n: self._number(n, bindings, depth + 1)) \
            if bound is not None else None

    def _binding(self, receiver: str) -> Optional[_Binding]:
        for scope in (self._scopes[-1], self._scopes[0]):
            if receiver in scope.bindings:
                return scope.bindings[receiver]
        return None

    # Optimizers -------------------------------------------------------------------------------

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            if isinstance(target.target, cst.Subscript) and _is_lr_key(target.target):
                self._lr_assignment(target.target)
        if not (isinstance(node.value, cst.Call)
                and is_optimizer_call(node.value, self.context.call_name)):
            return
        for target in node.targets:
            name = text(target.target)
            if name:
                self._bind(name, node.value)

    def _bind(self, name: str, call: cst.Call) -> _Binding:
        loops = self._loops_here()
        binding = _Binding(name, call, loops, self._skipped(call, loops))
        self._scopes[-1].bindings[name] = binding
        self._bindings.append(binding)
        return binding

    def _skipped(self, call: cst.Call, loops: Tuple[cst.CSTNode, ...]) -> bool:
        if (self.context.call_name(call) or "").endswith("LBFGS"):
            return True
        if optimized_inputs(argument(call, 0, "params")):
            return True
        if loops:  # re-created inside a loop: a schedule unless its rate is a searched value
            rate = argument(call, 1, "lr")
            searched = {text(n) for loop in loops if isinstance(loop, cst.For)
                        for n in descendants(loop.target)}
            return rate is not None and text(rate) not in searched
        return False

    def visit_Return(self, node: cst.Return) -> None:
        if self._scopes[-1].function != ".configure_optimizers" or node.value is None \
                or not self._in_lightning_module():
            return
        returned = node.value
        if isinstance(returned, cst.Call) and is_optimizer_call(returned, self.context.call_name):
            binding = self._bind("configure_optimizers()", returned)
        else:
            binding = self._binding(text(returned) or "")
        if binding is not None:
            binding.runs.append(_Run(None, (), True))  # the framework steps it while it trains

    def _in_lightning_module(self) -> bool:
        """Lightning steps what ``configure_optimizers`` returns; other projects call it themselves."""
        return bool(self.context.classes) and any(
            (text(base.value) or "").endswith("LightningModule")
            for base in self.context.classes[-1].bases)

    # Steps and backward passes ----------------------------------------------------------------

    def visit_Call(self, node: cst.Call) -> None:
        self._argparse.record(node)
        qualified = self.context.call_name(node) or ""
        last = qualified.rsplit(".", 1)[-1]
        if last in _AVERAGING or qualified.startswith(_SEARCH_MODULES) or (
                isinstance(node.func, cst.Attribute)
                and _SEARCH_METHODS.match(node.func.attr.value)):
            self._averaged_or_searched = True
        if is_scheduler_call(node, qualified):
            wrapped = argument(node, 0, "optimizer")
            self._schedule(text(wrapped) if wrapped is not None else None)
            return
        if isinstance(node.func, cst.Attribute) and node.func.attr.value in ("step", "backward"):
            receiver = text(node.func.value)
            if receiver:
                self._scopes[-1].events.append((node.func.attr.value, receiver))
            if node.func.attr.value == "step" and receiver and self.context.loops:
                self._step(receiver)
            return
        callee = text(node.func)
        if callee:
            self._calls.append((callee, node, {text(a.value): self._binding(text(a.value))
                                               for a in node.args if text(a.value)},
                                self._loops_here()))

    def _step(self, receiver: str) -> None:
        run = _Run(self._scopes[-1].function, self._loops_here())
        binding = self._binding(receiver)
        if binding is not None:
            binding.runs.append(run)
        elif self._is_parameter(receiver):
            self._parameter_steps.setdefault(run.function, []).append(
                (receiver.split(".")[0], run))
        else:
            self._deferred_steps.append((receiver, run))

    def _expand(self, run: _Run, binding: _Binding) -> List[Tuple[cst.CSTNode, ...]]:
        """The loops around a step: those in its function, after those around each call of it."""
        inner = tuple(l for l in run.loops if l not in binding.loops)
        callers = [loops for callee, _, _, loops in self._calls
                   if run.function and _key(callee) == run.function]
        return [tuple(l for l in outer if l not in binding.loops) + inner
                for outer in callers] or [inner]

    def _is_parameter(self, receiver: str) -> bool:
        """An optimizer the function receives (not one held by ``self``): its caller owns it."""
        root = receiver.split(".")[0]
        scope = self._scopes[-1]
        return scope.function is not None and root in scope.parameters and root not in ("self", "cls")

    def _close(self, scope: _Scope) -> None:
        """Optimizers stepped after different backward passes in one function alternate (GANs)."""
        passes: Dict[str, Set[int]] = {}
        backward = 0
        for kind, receiver in scope.events:
            if kind == "backward":
                backward += 1
            else:
                passes.setdefault(receiver, set()).add(backward)
        stepped = [name for name in passes
                   if self._binding_in(scope, name) or name in self._named_anywhere()]
        for first in stepped:
            for second in stepped:
                if first != second and passes[first] != passes[second]:
                    self._alternating |= {first, second}

    def _binding_in(self, scope: _Scope, name: str) -> bool:
        return name in scope.bindings or name in self._scopes[0].bindings

    def _named_anywhere(self) -> Set[str]:
        return {binding.name for binding in self._bindings}

    # Schedules --------------------------------------------------------------------------------

    def _schedule(self, receiver: Optional[str]) -> None:
        if not receiver:
            self._everything_scheduled = True
            return
        scope = self._scopes[-1]
        binding = self._binding(receiver)
        if binding is not None:
            binding.scheduled = True
        elif self._is_parameter(receiver):
            self._lr_setters.setdefault(scope.function, set()).add(
                receiver.split(".")[0])
        else:
            self._deferred_schedules.add(receiver)

    def _lr_assignment(self, target: cst.Subscript) -> None:
        """``opt.param_groups[0]['lr'] = ...`` or ``g['lr'] = ...`` in ``for g in opt.param_groups``."""
        holder = target.value
        if isinstance(holder, cst.Subscript):
            holder = holder.value
        if isinstance(holder, cst.Attribute) and holder.attr.value == "param_groups":
            self._schedule(text(holder.value))
            return
        group = text(holder)
        for loop in reversed(self.context.loops):
            if isinstance(loop, cst.For) and text(loop.target) == group \
                    and isinstance(loop.iter, cst.Attribute) and loop.iter.attr.value == "param_groups":
                self._schedule(text(loop.iter.value))
                return
        if "group" in (group or "") or "param" in (group or ""):
            self._schedule(None)  # a parameter group reached some other way

    def _resolve_calls(self) -> None:
        """Steps and schedules that happen inside a function the optimizer is passed to."""
        for callee, call, bindings, loops in self._calls:
            short_name, key = callee.rsplit(".", 1)[-1], _key(callee)
            setter = self._lr_setters.get(key)
            steps = self._parameter_steps.get(key)
            local = setter is not None or steps is not None
            for position, arg in enumerate(call.args):
                binding = bindings.get(text(arg.value))
                if binding is None:
                    continue
                parameter = self._parameter_name(key, position, arg)
                if _LR_SETTER_NAME.search(short_name) or (setter and parameter in setter):
                    binding.scheduled = True
                for stepped, inner in steps or ():
                    if stepped == parameter:
                        binding.runs.append(_Run(None, loops + inner.loops))
                if not local and _TRAINER_NAME.match(short_name):
                    binding.runs.append(_Run(None, loops, True, self._epochs(call)))

    def _epochs(self, call: cst.Call) -> Optional[int]:
        """``train(model, opt, epochs=5)``: the number of epochs a trainer call asks for."""
        for name in ("epochs", "num_epochs", "n_epochs", "max_epochs", "nb_epochs"):
            value = keyword(call, name)
            if value is not None:
                found = evaluate(value, self._option)
                return int(found) if found is not None else None
        return None

    def _option(self, node: cst.BaseExpression) -> Optional[float]:
        option = self._argparse.option(node)
        default = self._argparse.defaults[option] if option is not None else None
        return evaluate(default, self._option) if default is not None else None

    def _parameter_name(self, key: str, position: int, arg: cst.Arg) -> Optional[str]:
        if arg.keyword is not None:
            return arg.keyword.value
        for function in self._defined.get(key, ()):
            params = [p.name.value for p in function.params.params]
            if key.startswith(".") and params[:1] in (["self"], ["cls"]):
                params = params[1:]
            if position < len(params):
                return params[position]
        return None

    def visit_Module(self, node: cst.Module) -> None:
        for statement in node.body:
            self._collect_functions(statement)

    def _collect_functions(self, node: cst.CSTNode, prefix: str = "") -> None:
        if isinstance(node, cst.FunctionDef):
            self._defined.setdefault(prefix + node.name.value, []).append(node)
        elif isinstance(node, cst.ClassDef):
            for statement in node.body.body:
                self._collect_functions(statement, ".")


def _counts_a_range(loop: cst.For) -> bool:
    return isinstance(loop.iter, cst.Call) and text(loop.iter.func) in ("range", "trange")


def _key(callee: str) -> str:
    """How a call names a function of this file: ``train`` for ``train()``, ``.fit`` for ``x.fit()``."""
    head, dot, last = callee.rpartition(".")
    return dot + last


def _is_lr_key(node: cst.Subscript) -> bool:
    return any(isinstance(e.slice, cst.Index) and isinstance(e.slice.value, cst.SimpleString)
               and e.slice.value.value.strip("'\"") in ("lr", "learning_rate") for e in node.slice)

"""What FileContext tells every rule: bindings, autograd mode, call names."""
import libcst as cst

from nnlint.engine import lint_module
from nnlint.expressions import text
from nnlint.rules.base import Rule


class Probe(Rule):
    """Records, at each call of ``probe(name)``, what the context says about ``name``."""

    code, name, message, what, why, bad, good = "NN999", "probe", "", "", "", (), ()
    seen: list = []

    def visit_Call(self, node: cst.Call) -> None:
        if text(node.func) == "probe" and node.args:
            name = text(node.args[0].value)
            bound = self.context.binding(name)
            Probe.seen.append((name, text(bound) if bound is not None else None,
                               self.context.gradients_off))


def probe(source):
    Probe.seen = []
    lint_module(cst.parse_module(source), source, "x.py", [Probe])
    return Probe.seen


def test_tuple_unpacking_binds_each_name_and_forgets_unknown_ones():
    assert probe("a, b = 1, 2\nprobe(b)\n") == [("b", "2", False)]
    assert probe("loss = criterion(x)\nloss, extra = step()\nprobe(loss)\n") == [
        ("loss", None, False)]


def test_a_loop_variable_is_no_longer_its_old_binding():
    assert probe("n = 10\nfor n in sizes:\n    probe(n)\n") == [("n", None, False)]


def test_self_attributes_are_read_across_methods_and_defaults_until_reassigned():
    source = ("class T:\n    def __init__(self):\n        self.epochs = 90\n"
              "    def fit(self, h=1e-5):\n        probe(self.epochs)\n        probe(h)\n"
              "        h = 0.1\n        probe(h)\n")
    assert probe(source) == [("self.epochs", "90", False), ("h", "1e-5", False),
                             ("h", "0.1", False)]


def test_gradients_off_inside_no_grad_blocks_and_decorated_functions():
    source = ("import torch\nprobe(a)\nwith torch.no_grad():\n    probe(b)\n"
              "with torch.set_grad_enabled(False):\n    probe(c)\n"
              "with torch.set_grad_enabled(phase == 'train'):\n    probe(d)\n"
              "@torch.inference_mode()\ndef f():\n    probe(e)\n")
    assert [off for _, _, off in probe(source)] == [False, True, True, False, True]


def test_a_call_name_asked_before_an_import_is_asked_again_after_it():
    class Names(Probe):
        def visit_Module(self, node):
            self.call = node.body[-1].body[0].value
            Probe.seen.append(self.context.call_name(self.call))

        def leave_Module(self, node):
            Probe.seen.append(self.context.call_name(self.call))

    source = "from torch.autograd import gradcheck\ngradcheck(f, x)\n"
    Probe.seen = []
    lint_module(cst.parse_module(source), source, "x.py", [Names])
    assert Probe.seen == ["gradcheck", "torch.autograd.gradcheck"]

"""Finding layers: packages scanned recursively, helpers left out, aliases once, lines located."""
import ast
import os
import sys
import textwrap

import pytest
from torch import nn

from pytest_nncheck.discovery import Layer, find_layers
from pytest_nncheck.discovery import source

LAYERS = '''
import abc
import torch
from torch import nn
import pytest_nncheck


class Swish(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(x)


SiLU = Swish  # the same class under a second name


class _Helper(nn.Module):
    def forward(self, x):
        return x


@pytest_nncheck.example(lambda: (_Registered(), torch.randn(3, requires_grad=True)))
class _Registered(nn.Module):
    def forward(self, x):
        return 2 * x


class AbstractBase(nn.Module, abc.ABC):
    @abc.abstractmethod
    def forward(self, x):
        ...


class RaisingBase(nn.Module):
    def forward(self, x):
        """Subclasses compute the output."""
        raise NotImplementedError


class DocstringOnlyBase(nn.Module):
    def forward(self, *args, **kwargs):
        """Runs the forward pass."""


class NoForward(nn.Module):
    pass


class Concrete(RaisingBase):
    def forward(self, x):
        return x + 1


class Outer:
    class Inner(nn.Module):  # not bound at module level: not a layer of this module
        def forward(self, x):
            return x


class Square(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 2 * x * grad
'''


@pytest.fixture
def package(tmp_path, monkeypatch):
    """mypkg/{__init__, layers, _private_impl, sub/{__init__, deep}, __main__}."""
    root = tmp_path / "mypkg"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("from .layers import Swish  # a re-export\n")
    (root / "layers.py").write_text(LAYERS)
    (root / "_private_impl.py").write_text(textwrap.dedent('''
        from torch import nn
        from .layers import Concrete, Swish  # re-exported by another scanned module

        class Gate(nn.Module):
            def forward(self, x):
                return x.sigmoid()
    '''))
    (root / "sub" / "__init__.py").write_text("")
    (root / "sub" / "deep.py").write_text(textwrap.dedent('''
        from torch import nn

        class DeepLayer(nn.Module):
            def forward(self, x):
                return x.tanh()
    '''))
    (root / "__main__.py").write_text("raise SystemExit('a program, not a module to import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield root
    for name in [m for m in sys.modules if m == "mypkg" or m.startswith("mypkg.")]:
        del sys.modules[name]


def names(layers):
    return [layer.qualified for layer in layers]


def test_a_package_is_scanned_recursively_and_each_class_found_once(package):
    assert names(find_layers("mypkg")) == [
        "mypkg._private_impl.Gate", "mypkg.layers.Swish", "mypkg.layers._Registered",
        "mypkg.layers.Concrete", "mypkg.layers.Square", "mypkg.sub.deep.DeepLayer"]


def test_a_module_is_scanned_alone(package):
    assert names(find_layers("mypkg.sub.deep")) == ["mypkg.sub.deep.DeepLayer"]


def test_an_alias_is_reported_under_the_class_name(package):
    (swish,) = [layer for layer in find_layers("mypkg.layers") if layer.cls.__name__ == "Swish"]
    assert swish.name == "Swish"


def test_private_and_abstract_classes_are_collected_when_the_hook_registers_them(package):
    import mypkg.layers
    registered = {mypkg.layers._Helper: lambda: None, "mypkg.layers.RaisingBase": lambda: None}
    found = names(find_layers("mypkg.layers", registered))
    assert "mypkg.layers._Helper" in found and "mypkg.layers.RaisingBase" in found
    assert "mypkg.layers.AbstractBase" not in found and "mypkg.layers.NoForward" not in found


def test_a_submodule_that_fails_to_import_is_an_error_naming_it(package):
    (package / "sub" / "broken.py").write_text("import torch\nraise RuntimeError('boom')\n")
    with pytest.raises(ImportError, match=r"mypkg\.sub\.broken \(in package mypkg\) raised "
                                          r"RuntimeError on import: boom"):
        find_layers("mypkg")


def test_a_subpackage_that_fails_to_import_is_an_error_naming_it(package):
    (package / "sub" / "__init__.py").write_text("import not_a_module_anywhere\n")
    with pytest.raises(ImportError, match=r"mypkg\.sub \(in package mypkg\).*not_a_module"):
        find_layers("mypkg")


def test_a_module_that_raises_on_import_is_an_import_error(package):
    (package.parent / "badtop.py").write_text("raise ValueError('bad config')\n")
    with pytest.raises(ImportError, match="importing badtop raised ValueError: bad config"):
        find_layers("badtop")
    sys.modules.pop("badtop", None)


def test_lines_and_paths_of_layers(package):
    layers = {layer.name: layer for layer in find_layers("mypkg")}
    text = (package / "layers.py").read_text().splitlines()
    assert text[layers["Swish"].line] == "class Swish(nn.Module):"
    assert text[layers["_Registered"].line] == "class _Registered(nn.Module):"  # not the decorator
    assert text[layers["Square"].line].startswith("class Square(")
    assert layers["Swish"].path == str(package / "layers.py")
    assert layers["DeepLayer"].path == str(package / "sub" / "deep.py")


def test_source_lines_take_one_parse_per_file(package, monkeypatch):
    parses = []
    parse = ast.parse
    monkeypatch.setattr(source.ast, "parse", lambda *a, **k: parses.append(k.get("filename"))
                        or parse(*a, **k))
    layers = find_layers("mypkg")
    lines = [layer.line for layer in layers] + [layer.line for layer in layers]
    assert None not in lines
    # Three files hold layers; every class and forward in them is answered from one parse each.
    assert sorted(parses) == sorted({layer.path for layer in layers})


def test_an_edited_file_is_parsed_again(tmp_path, monkeypatch):
    path = tmp_path / "edited.py"
    path.write_text("from torch import nn\n\nclass A(nn.Module):\n    def forward(self, x):\n"
                    "        return x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    (layer,) = find_layers("edited")
    assert layer.line == 2
    path.write_text("\n\n" + path.read_text())
    os.utime(path, ns=(1, 1))  # a different modification time, whatever the clock's resolution
    assert layer.line == 4
    sys.modules.pop("edited", None)


def test_a_class_without_source_has_no_line():
    Dynamic = type("Dynamic", (nn.Module,), {"forward": lambda self, x: x, "__module__": "nowhere"})
    layer = Layer("nowhere", "Dynamic", Dynamic)
    assert layer.line is None and layer.path is None

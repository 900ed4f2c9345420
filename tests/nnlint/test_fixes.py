"""``nnlint --fix``: each fix turns a rule's bad example into the expected text, which parses and
lints clean for that rule; the CLI writes files once, prints diffs, and keeps unsafe fixes apart."""
import libcst as cst
import pytest

from nnlint.cli import main
from nnlint.engine import lint_source
from nnlint.fixes import fix_source
from nnlint.rules import ALL_RULES, BY_CODE

# (code, index of the rule's bad example, the text --fix makes of it, needs --unsafe-fixes)
ROUND_TRIPS = [
    ("NN102", 0, "def derivative(f, x, h=1e-5):\n    return (f(x + h) - f(x - h)) / (2 * h)\n",
     False),
    ("NN102", 2, "def derivative(f, x, h=1e-5):\n    return (f(x + h) - f(x - h)) / (2 * h)\n",
     False),
    ("NN102", 4, "def slope(loss, w, eps):\n    base = loss(w)\n"
                 "    return (loss(w + eps) - loss(w - eps)) / (2 * eps)\n", False),
    ("NN101", 0, "import torch\nfrom torch.autograd import gradcheck\n\n"
                 "x = torch.randn(4, 3, requires_grad=True, dtype=torch.float64)\n"
                 "gradcheck(torch.sigmoid, (x,))\n", True),
    ("NN101", 1, "import torch\nimport torch.autograd as ag\n\n"
                 "def test_layer(layer):\n    x = torch.randn(2, 8, dtype=torch.float64)\n"
                 "    x = x.double().requires_grad_()\n    assert ag.gradcheck(layer, (x,), eps=1e-6)\n",
     True),
    ("NN101", 3, "import torch\nfrom pytest_nncheck import check_gradients\n\n"
                 "check_gradients(layer, x, dtype=torch.float64)\n", True),
    ("NN101", 6, BY_CODE["NN101"].bad[6].replace("astype(np.float32)", "astype(np.float64)"),
     True),
    ("NN501", 0, "import torch\nimport torch.nn.functional as F\n\n"
                 "loss = F.binary_cross_entropy_with_logits(logits, targets)\n", False),
    ("NN501", 1, "import torch\nfrom torch import nn\n\ncriterion = nn.BCEWithLogitsLoss()\n\n"
                 "def step(model, x, y):\n    return criterion(model(x), y)\n", False),
    ("NN502", 0, "from torch import nn\n\nhead = nn.Sequential(nn.Linear(128, 10), "
                 "nn.Softmax(dim=-1))\n", False),
    ("NN502", 2, BY_CODE["NN502"].bad[2].replace("self.out(h))", "self.out(h), dim=-1)"), False),
    ("NN403", 0, BY_CODE["NN403"].bad[0].replace("running_loss += loss\n",
                                                 "running_loss += loss.item()\n"), False),
    ("NN403", 1, BY_CODE["NN403"].bad[1].replace("F.cross_entropy(model(x), y)\n",
                                                 "F.cross_entropy(model(x), y).item()\n"), False),
    ("NN403", 2, BY_CODE["NN403"].bad[2].replace("epoch_loss += loss\n",
                                                 "epoch_loss += loss.item()\n"), True),
    ("NN208", 0, "for param in backbone.parameters():\n    param.requires_grad = False\n", False),
    ("NN208", 2, "for p in model.encoder.parameters():\n    p.requires_grad = False\n", False),
]


@pytest.mark.parametrize("code, index, expected, unsafe", ROUND_TRIPS,
                         ids=[f"{c}-bad{i}" for c, i, _, _ in ROUND_TRIPS])
def test_fix_round_trip(code, index, expected, unsafe):
    source = BY_CODE[code].bad[index]
    fixed = fix_source(source, "example.py", ALL_RULES, unsafe=unsafe)
    assert fixed.source == expected
    cst.parse_module(fixed.source)
    assert code not in [f.code for f in lint_source(fixed.source, "example.py", ALL_RULES)]
    if unsafe:
        assert fix_source(source, "example.py", ALL_RULES).source == source


def test_every_fixable_rule_has_a_round_trip():
    fixable = {code for code, _, _, _ in ROUND_TRIPS}
    assert fixable >= {"NN101", "NN102", "NN208", "NN403", "NN501", "NN502"}


def test_an_inline_float32_input_of_a_torch_function_is_a_safe_fix():
    source = ("import torch\n\ntorch.autograd.gradcheck(torch.tanh, "
              "(torch.rand(3, requires_grad=True),))\n")
    assert fix_source(source, "x.py", ALL_RULES).source == (
        "import torch\n\ntorch.autograd.gradcheck(torch.tanh, "
        "(torch.rand(3, requires_grad=True, dtype=torch.float64),))\n")


def test_fix_keeps_comments_and_formatting_around_the_fix():
    source = ("def d(f, x, h=1e-5):  # numeric slope\n"
              "    value = (f(x + h)  -  f(x)) / h   # keep me\n    return value\n")
    assert fix_source(source, "x.py", ALL_RULES).source == (
        "def d(f, x, h=1e-5):  # numeric slope\n"
        "    value = (f(x + h)  -  f(x - h)) / (2 * h)   # keep me\n    return value\n")


def test_a_suppressed_finding_is_not_fixed():
    source = "def d(f, x, h=1e-5):\n    return (f(x + h) - f(x)) / h  # noqa: NN102\n"
    assert fix_source(source, "x.py", ALL_RULES).source == source


def test_nested_findings_are_fixed_in_successive_passes():
    source = "g = (f(x + h) - f(x)) / h + (k(y) - k(y - e)) / e\n"
    fixed = fix_source(source, "x.py", ALL_RULES)
    assert fixed.source == "g = (f(x + h) - f(x - h)) / (2 * h) + (k(y + e) - k(y - e)) / (2 * e)\n"
    assert fixed.applied == 2


def test_cli_fix_writes_the_file_and_reports_what_is_left(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "grad.py"
    target.write_text(BY_CODE["NN102"].bad[0], encoding="utf-8")
    assert main(["--fix", "grad.py"]) == 0
    out, err = capsys.readouterr()
    assert target.read_text(encoding="utf-8") == ROUND_TRIPS[0][2]
    assert "fixed 1 finding in 1 file" in err and out.startswith("All checks passed")


def test_cli_diff_prints_the_change_and_leaves_the_file(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "grad.py"
    target.write_text(BY_CODE["NN102"].bad[0], encoding="utf-8")
    assert main(["--fix", "--diff", "grad.py"]) == 1
    out, _ = capsys.readouterr()
    assert target.read_text(encoding="utf-8") == BY_CODE["NN102"].bad[0]
    assert out.startswith("--- grad.py\n+++ grad.py\n")
    assert "-    return (f(x + h) - f(x)) / h\n+    return (f(x + h) - f(x - h)) / (2 * h)\n" in out
    clean = tmp_path / "clean.py"
    clean.write_text("x = 1\n", encoding="utf-8")
    assert main(["--diff", "clean.py"]) == 0 and capsys.readouterr().out == ""


def test_a_criterion_also_called_on_probabilities_is_not_rewritten():
    source = ("import torch\nfrom torch import nn\n\ncriterion = nn.BCELoss()\n"
              "a = criterion(torch.sigmoid(z), y)\nb = criterion(teacher_probs, y)\n")
    assert fix_source(source, "x.py", ALL_RULES).source == source
    assert "NN501" in [f.code for f in lint_source(source, "x.py", ALL_RULES)]


def test_fix_keeps_the_file_encoding_and_byte_order_mark(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    latin = "# -*- coding: latin-1 -*-\n# pente estim\xe9e\n" + BY_CODE["NN102"].bad[0]
    (tmp_path / "latin.py").write_bytes(latin.encode("latin-1"))
    (tmp_path / "bom.py").write_bytes(b"\xef\xbb\xbf" + BY_CODE["NN102"].bad[0].encode("utf-8"))
    assert main(["--fix", "latin.py", "bom.py"]) == 0
    fixed_latin = (tmp_path / "latin.py").read_bytes().decode("latin-1")
    assert "estim\xe9e" in fixed_latin and "(2 * h)" in fixed_latin
    assert (tmp_path / "bom.py").read_bytes().startswith(b"\xef\xbb\xbfdef derivative")

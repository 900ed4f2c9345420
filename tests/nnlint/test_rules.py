"""Every rule's documented examples are executed: bad ones flagged, good look-alikes clean."""
import importlib
from pathlib import Path

import pytest

from nnlint.docs import render_page
from nnlint.engine import lint_source
from nnlint.rules import ALL_RULES, BY_CODE

BAD = [(rule.code, i, source) for rule in ALL_RULES for i, source in enumerate(rule.bad)]
GOOD = [(rule.code, i, source) for rule in ALL_RULES for i, source in enumerate(rule.good)]
DOCS = Path(__file__).resolve().parents[2] / "docs" / "rules"


@pytest.mark.parametrize("code, index, source", BAD, ids=[f"{c}-bad{i}" for c, i, _ in BAD])
def test_bad_example_is_flagged(code, index, source):
    codes = [f.code for f in lint_source(source, "example.py", ALL_RULES)]
    assert code in codes


@pytest.mark.parametrize("code, index, source", GOOD, ids=[f"{c}-good{i}" for c, i, _ in GOOD])
def test_good_example_is_not_flagged(code, index, source):
    assert lint_source(source, "example.py", ALL_RULES) == []


@pytest.mark.parametrize("rule", ALL_RULES, ids=[r.code for r in ALL_RULES])
def test_rule_is_complete_and_lives_in_its_own_module(rule):
    assert rule.code.startswith("NN") and len(rule.code) == 5
    assert len(rule.bad) >= 3 and len(rule.good) >= 3
    assert rule.what and rule.why and rule.message and rule.severity in ("error", "warning")
    module = importlib.import_module(rule.__module__)
    assert module.__name__.rsplit(".", 1)[1] == rule.name.replace("-", "_")


@pytest.mark.parametrize("rule", ALL_RULES, ids=[r.code for r in ALL_RULES])
def test_docs_page_is_generated_from_the_rule(rule):
    page = (DOCS / f"{rule.code}.md").read_text(encoding="utf-8")
    assert page == render_page(rule), "run: python -m nnlint.docs docs/rules"
    for part in ("## What it does", "## Why is this bad?", "## Example", "## Use instead"):
        assert part in page


def test_codes_are_unique_and_cover_the_contract():
    assert len(BY_CODE) == len(ALL_RULES)
    assert set(BY_CODE) >= {"NN101", "NN102", "NN103", "NN104", "NN105", "NN201", "NN202",
                            "NN203", "NN204", "NN301", "NN302"}
    families = {"NN1": "gradient checking", "NN2": "training setup", "NN3": "search",
                "NN4": "evaluation and data", "NN5": "numerics"}
    assert all(code[:3] in families for code in BY_CODE)


def _codes(source):
    return [f.code for f in lint_source(source, "t.py", ALL_RULES)]


@pytest.mark.parametrize("source", [
    "from torch.autograd import gradcheck as gc\nimport torch\nx = torch.randn(3, requires_grad=True)\ngc(f, (x,))\n",
    "import torch.autograd as ag\nimport torch\nx = torch.rand(3).requires_grad_()\nag.gradcheck(f, (x,))\n",
    "import torch\nx = torch.zeros(3, requires_grad=True)\ntorch.autograd.gradcheck(f, [x])\n",
    "from torch import autograd\nimport torch\nautograd.gradcheck(f, (torch.randn(2),))\n",
])
def test_names_resolve_through_import_aliases(source):
    assert _codes(source) == ["NN101"]


def test_unimported_lookalike_names_do_not_resolve():
    assert _codes("x = torch.randn(3)\ngradcheck(f, (x,))\n") == []
    assert _codes("def gradcheck(f, x):\n    pass\nx = torch.randn(3)\ngradcheck(f, (x,))\n") == []


def test_numpy_alias_resolves_for_sampling():
    assert _codes("import numpy as np\nlr = np.random.uniform(1e-6, 1e-2)\n") == ["NN302"]
    assert _codes("import numpy\nreg = numpy.random.uniform(0, 1)\n") == ["NN302"]
    assert _codes("from numpy.random import uniform\nwd = uniform(1e-6, 1e-2)\n") == ["NN302"]


def test_assignment_is_followed_within_the_same_function_only():
    source = ("import torch\nfrom torch.autograd import gradcheck\n"
              "def a():\n    x = torch.randn(3, dtype=torch.float64, requires_grad=True)\n"
              "    gradcheck(f, (x,))\n"
              "def b():\n    x = torch.randn(3, requires_grad=True)\n    gradcheck(f, (x,))\n")
    findings = lint_source(source, "t.py", ALL_RULES)
    assert [(f.code, f.line) for f in findings] == [("NN101", 8)]


def test_later_double_conversion_clears_single_precision():
    source = ("import torch\nfrom torch.autograd import gradcheck\n"
              "x = torch.randn(3)\nx = x.double().requires_grad_()\ngradcheck(f, (x,))\n")
    assert _codes(source) == []


def test_scheduler_stepped_per_batch_after_optimizer_is_fine():
    source = ("import torch\nopt = torch.optim.AdamW(p, lr=1e-3)\n"
              "sched = torch.optim.lr_scheduler.OneCycleLR(opt, 1e-2, total_steps=100)\n"
              "for epoch in range(3):\n    for batch in loader:\n        opt.zero_grad()\n"
              "        opt.step()\n        sched.step()\n")
    assert _codes(source) == []


def test_grid_over_a_single_hyperparameter_is_a_sweep_not_a_grid():
    source = "for lr in [1e-3, 1e-2, 1e-1]:\n    train(lr=lr)\n"
    assert _codes(source) == []

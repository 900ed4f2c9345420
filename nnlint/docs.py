"""Rule pages in four parts (what it does, why is this bad, example, use instead), from the rule.

``nnlint --explain CODE`` prints the page; ``python -m nnlint.docs docs/rules`` writes them all.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Type

from .rules import ALL_RULES
from .rules.base import Rule


def render_page(rule: Type[Rule]) -> str:
    """The Markdown page of one rule, from its own docs and examples."""
    opt_in = ([f"*Opt-in*: this rule does not run by default. `--select NN,{rule.code}` runs it "
               f"beside the default rules (`select = [\"NN\", \"{rule.code}\"]` in "
               f"`[tool.nnlint]`); a prefix longer than `NN` that matches it (`{rule.code[:3]}`) "
               f"turns it on too.", ""] if not rule.default else [])
    return "\n".join([
        f"# {rule.code} {rule.name}", "", *opt_in,
        "## What it does", "", rule.what, "",
        "## Why is this bad?", "", rule.why, "",
        "## Example", "", "```python", rule.bad[0].rstrip(), "```", "",
        "## Use instead", "", "```python", rule.good[0].rstrip(), "```", "",
    ])


def write_pages(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for rule in ALL_RULES:
        (folder / f"{rule.code}.md").write_text(render_page(rule), encoding="utf-8")


if __name__ == "__main__":
    write_pages(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/rules"))

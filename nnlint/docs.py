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
    return "\n".join([
        f"# {rule.code} {rule.name}", "",
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

"""The terminal summary of ``pytest --nncheck``: one row per layer and check."""
from __future__ import annotations

import io
from typing import Any, Dict, List

_STYLES = {"passed": "green", "failed": "red bold", "inconclusive": "yellow", "skipped": "dim"}


def render_summary(records: List[Dict[str, Any]], colour: bool) -> str:
    """A rich table rendered to text (with ANSI colour when the terminal has markup)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    for column in ("layer", "check", "verdict", "worst entry", "rel. error", "kinks crossed",
                   "seconds"):
        table.add_column(column, justify="right" if column[0] in "rks" else "left")
    for record in sorted(records, key=lambda r: r["nodeid"]):
        error = record.get("max_rel_error")
        kinks = record.get("kinks_crossed")
        outcome = record["outcome"]
        table.add_row(record["layer"], record["kind"],
                      f"[{_STYLES.get(outcome, '')}]{outcome}[/]",
                      record.get("worst_entry") or "-",
                      "-" if error is None else f"{error:.2e}",
                      "-" if kinks is None else str(kinks), f"{record['duration']:.2f}")
    buffer = io.StringIO()
    Console(file=buffer, force_terminal=colour, no_color=not colour, width=120,
            highlight=False).print(table)
    return buffer.getvalue()


_VERDICT_COLOURS = ((r"\b(wrong|FAILED|nondeterministic|NONDETERMINISTIC)\b", "bold red"),
                    (r"\b(suspicious|inconclusive|INCONCLUSIVE|LOW PRECISION)\b", "yellow"),
                    (r"\b(excellent|ok|PASSED)\b", "green"))


def colour_report(text: str) -> str:
    """A report's plain-text rendering with its verdicts coloured (ANSI), for a terminal."""
    from rich.console import Console
    from rich.text import Text

    styled = Text(text)
    for pattern, style in _VERDICT_COLOURS:
        styled.highlight_regex(pattern, style)
    buffer = io.StringIO()
    Console(file=buffer, force_terminal=True, width=10_000, highlight=False).print(styled, end="")
    return buffer.getvalue()

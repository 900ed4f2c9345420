"""The terminal summary of ``pytest --nncheck``: one row per layer and check."""
from __future__ import annotations

import io
from typing import Any, Dict, List

_STYLES = {"passed": "green", "failed": "red bold", "skipped": "yellow", "error": "red bold"}


def _name(record: Dict[str, Any]) -> str:
    return record.get("layer") or record["nodeid"]


def _check(record: Dict[str, Any]) -> str:
    if record["kind"] != "test":
        return record["kind"]
    names = [check["check"] for check in record.get("checks", [])]
    return ", ".join(dict.fromkeys(names)) or "test"


def render_summary(records: List[Dict[str, Any]], colour: bool) -> str:
    """A rich table rendered to text (with ANSI colour when the terminal has markup).

    Names are never cut: the table is as wide as its longest row.
    """
    from rich.console import Console
    from rich.table import Table

    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    for column in ("layer or test", "check", "outcome", "worst entry", "rel. error",
                   "kinks crossed", "seconds"):
        table.add_column(column, justify="right" if column[0] in "rks" else "left", no_wrap=True)
    for record in sorted(records, key=lambda r: r["nodeid"]):
        error = record.get("max_rel_error")
        kinks = record.get("kinks_crossed")
        outcome = record["outcome"] or "-"
        table.add_row(_name(record), _check(record), f"[{_STYLES.get(outcome, '')}]{outcome}[/]",
                      record.get("worst_entry") or "-",
                      "-" if error is None else f"{error:.2e}",
                      "-" if kinks is None else str(kinks), f"{record['duration']:.2f}")
    buffer = io.StringIO()
    Console(file=buffer, force_terminal=colour, no_color=not colour, width=10_000,
            highlight=False).print(table)
    return buffer.getvalue()


def coverage_line(records: List[Dict[str, Any]]) -> str:
    """How much was checked, so a CI log shows the coverage and not only the outcome."""
    layers = [r for r in records if r.get("layer") and r["kind"] != "test"]
    excluded = sum(bool(r.get("excluded")) for r in layers)
    checked = [r for r in layers if r["outcome"] in ("passed", "failed")]
    failed = sum(r["outcome"] == "failed" for r in checked)
    skipped = len(layers) - len(checked) - excluded
    tests = [r for r in records if r["kind"] == "test"]
    parts = [f"nncheck: {len(checked)} of {len(layers)} layer checks ran "
             f"({len(checked) - failed} passed, {failed} failed), {skipped} skipped, "
             f"{excluded} excluded"]
    if tests:
        parts.append(f"{len(tests)} marked tests ({sum(r['outcome'] == 'passed' for r in tests)} "
                     f"passed)")
    return "; ".join(parts)


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

"""``path:line:col: CODE message``, one finding per line; coloured with rich on a terminal."""
from __future__ import annotations

from typing import Sequence

from ..findings import Finding


def render_text(findings: Sequence[Finding], colour: bool) -> str:
    lines = [f"{f.path}:{f.line}:{f.column}: {f.code} {f.message}" for f in findings]
    if not colour:
        return "\n".join(lines)
    from rich.markup import escape
    return "\n".join(
        f"[bold]{escape(f.path)}[/]:{f.line}:{f.column}: "
        f"[{'red' if f.severity == 'error' else 'yellow'} bold]{f.code}[/] {escape(f.message)}"
        for f in findings)

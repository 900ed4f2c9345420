"""The closing lines of the text format: how many findings in how many files, or counts per code."""
from __future__ import annotations

import collections
from typing import Sequence

from ..findings import Finding


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def render_summary(findings: Sequence[Finding], files: int) -> str:
    """``3 findings in 2 files (10 files checked)``, or ``All checks passed (10 files checked)``."""
    checked = f"({_count(files, 'file')} checked)"
    if not findings:
        return f"All checks passed {checked}"
    flagged = len({f.path for f in findings})
    return f"{_count(len(findings), 'finding')} in {_count(flagged, 'file')} {checked}"


def render_statistics(findings: Sequence[Finding]) -> str:
    """One line per code, most frequent first: count, code, name (as ``ruff --statistics``)."""
    counts = collections.Counter((f.code, f.name) for f in findings)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    width = len(str(ranked[0][1])) if ranked else 1
    return "\n".join(f"{count:>{width}}  {code}  {name}" for (code, name), count in ranked)

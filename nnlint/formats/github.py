"""GitHub Actions workflow commands, so findings appear as annotations on the pull request."""
from __future__ import annotations

from typing import Sequence

from ..findings import Finding


def _escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(value: str) -> str:
    return _escape_data(value).replace(":", "%3A").replace(",", "%2C")


def render_github(findings: Sequence[Finding], colour: bool = False) -> str:
    return "\n".join(
        f"::{'error' if f.severity == 'error' else 'warning'} file={_escape_property(f.path)},"
        f"line={f.line},col={f.column},title={_escape_property(f.code + ' ' + f.name)}::"
        f"{_escape_data(f.code + ' ' + f.message)}" for f in findings)

"""Output formats: each turns findings into text for one consumer."""
from __future__ import annotations

from typing import Callable, Dict, Sequence

from ..findings import Finding
from .github import render_github
from .json import render_json
from .sarif import render_sarif
from .text import render_text

FORMATS: Dict[str, Callable[[Sequence[Finding], bool], str]] = {
    "text": render_text,
    "json": render_json,
    "github": render_github,
    "sarif": render_sarif,
}

"""A JSON array of findings with path, line, column, code, name, message and severity."""
from __future__ import annotations

import json
from typing import Sequence

from ..findings import Finding


def render_json(findings: Sequence[Finding], colour: bool = False) -> str:
    return json.dumps([f.to_dict() for f in findings], indent=2)

"""``# noqa`` comments, as flake8 and ruff read them: bare, or with codes and code prefixes."""
from __future__ import annotations

import re
from typing import Optional, Set

_NOQA = re.compile(r"#\s*noqa(?::[\s]?(?P<codes>[A-Z]+[0-9]*(?:[,\s]+[A-Z]+[0-9]*)*))?",
                   re.IGNORECASE)
_CODE = re.compile(r"[A-Z]+[0-9]*", re.IGNORECASE)


def noqa_codes(line: str) -> Optional[Set[str]]:
    """None when the line has no noqa; an empty set for a bare noqa; else the listed codes."""
    if "noqa" not in line.lower():
        return None
    match = _NOQA.search(line)
    if match is None:
        return None
    codes = match.group("codes")
    return set() if codes is None else {c.upper() for c in _CODE.findall(codes)}


def is_suppressed(code: str, line: str) -> bool:
    """True when ``line`` carries a noqa that covers ``code`` (exactly or by prefix)."""
    codes = noqa_codes(line)
    if codes is None:
        return False
    return not codes or any(code.startswith(c) for c in codes)

"""A reported problem, as the formats and the cache see it (no LibCST here: cached runs skip it)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Dict, List, Sequence

# Codes the engine itself reports; rules never use them.
PARSE_ERROR = ("NN000", "syntax-error")
INTERNAL_ERROR = ("NN999", "internal-error")
ENGINE_CODES = {code: name for code, name in (PARSE_ERROR, INTERNAL_ERROR)}


@dataclass(frozen=True, order=True)
class Finding:
    """One reported problem; the JSON format writes these fields."""

    path: str
    line: int
    column: int
    code: str
    name: str
    message: str
    severity: str

    def to_dict(self) -> Dict[str, object]:
        return asdict(self)

    def to_row(self) -> List[object]:
        """Everything but the path: what the cache stores (the path is the caller's label)."""
        return [self.line, self.column, self.code, self.name, self.message, self.severity]

    @classmethod
    def from_row(cls, path: str, row: Sequence[object]) -> "Finding":
        line, column, code, name, message, severity = row
        if not (isinstance(line, int) and isinstance(column, int)
                and all(isinstance(v, str) for v in (code, name, message, severity))):
            raise ValueError(f"not a finding: {row!r}")
        return cls(path, line, column, code, name, message, severity)

"""flake8 extension: ``flake8 --select NN`` reports nnlint's findings through flake8."""
from __future__ import annotations

import ast
from typing import Iterator, List, Tuple

from . import __version__
from .engine import lint_source
from .rules import DEFAULT_RULES


class NNLintFlake8:
    """flake8 passes the file's lines; the rules run on them as nnlint would (noqa is flake8's)."""

    name = "nnlint"
    version = __version__

    def __init__(self, tree: ast.AST, lines: List[str], filename: str = "stdin") -> None:
        self.lines = lines
        self.filename = filename

    def run(self) -> Iterator[Tuple[int, int, str, type]]:
        source = "".join(self.lines)
        for finding in lint_source(source, self.filename, DEFAULT_RULES):
            yield finding.line, finding.column - 1, f"{finding.code} {finding.message}", type(self)

"""flake8 extension: ``flake8 --select NN`` reports nnlint's findings through flake8.

The rules run as ``nnlint`` would run them on the file: ``[tool.nnlint]`` of the nearest
``pyproject.toml`` decides which codes run (``select``/``ignore``), which files are skipped
(``exclude``) and ``per-file-ignores``; flake8's own ``--select``, ``--extend-ignore``,
``--per-file-ignores``, ``--exclude`` and ``# noqa`` then apply on top, as for any plugin.
"""
from __future__ import annotations

import ast
import functools
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

from . import __version__
from .config import Config, find_pyproject, load_config
from .engine import lint_source, selected_rules
from .findings import ENGINE_CODES
from .rules import BY_CODE


@functools.lru_cache(maxsize=None)
def _config(pyproject: Optional[Path]) -> Config:
    config = load_config(pyproject.parent if pyproject else Path.cwd())
    unknown = config.unknown_code([*BY_CODE, *ENGINE_CODES])
    if unknown:
        raise ValueError(f"nnlint: {unknown}")
    return config


class NNLintFlake8:
    """flake8 passes the file's lines; the rules run on them as nnlint would."""

    name = "nnlint"
    version = __version__

    def __init__(self, tree: ast.AST, lines: List[str], filename: str = "stdin") -> None:
        self.lines = lines
        self.filename = filename

    def run(self) -> Iterator[Tuple[int, int, str, type]]:
        path = Path(self.filename)
        config = _config(find_pyproject(path if path.exists() else Path.cwd()))
        if config.excludes(path, explicit=True):
            return
        ignored = tuple(config.ignored_in(path))
        for finding in lint_source("".join(self.lines), self.filename, selected_rules(config)):
            if config.selects(finding.code) and not finding.code.startswith(ignored):
                message = f"{finding.code} {finding.message}"
                yield finding.line, finding.column - 1, message, type(self)

"""Settings from ``[tool.nnlint]`` of the nearest ``pyproject.toml``, overridden by the command line."""
from __future__ import annotations

import fnmatch
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.9/3.10 only
    import tomli as tomllib

DEFAULT_EXCLUDES = (".git", ".hg", ".svn", ".venv", "venv", ".env", "env", "__pycache__", "build",
                    "dist", ".tox", ".nox", ".mypy_cache", ".pytest_cache", ".eggs",
                    "node_modules", "site-packages")


class ConfigError(ValueError):
    """The configuration cannot be used (unreadable or wrongly typed); the CLI exits 2."""


@dataclass
class Config:
    """Which codes run and which paths are skipped."""

    select: List[str] = field(default_factory=lambda: ["NN"])
    ignore: List[str] = field(default_factory=list)
    exclude: List[str] = field(default_factory=list)
    root: Path = field(default_factory=Path.cwd)

    def selects(self, code: str) -> bool:
        """A code runs when a select prefix matches it and no longer-or-equal ignore prefix does."""
        selected = [len(p) for p in self.select if code.startswith(p)]
        ignored = [len(p) for p in self.ignore if code.startswith(p)]
        return bool(selected) and (not ignored or max(ignored) < max(selected))

    def excludes(self, path: Path, base: Optional[Path] = None) -> bool:
        """Gitignore-style matching below ``base`` (the folder being walked).

        A pattern without a slash matches any path component below ``base``; a pattern with one
        matches the path relative to the configuration's root. Components above ``base`` never
        match, so ``nnlint .venv/lib/.../torch`` lints what it was asked to.
        """
        base = base or self.root
        try:
            parts = path.resolve().relative_to(base.resolve()).parts
        except ValueError:
            parts = path.parts
        try:
            relative = path.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            relative = "/".join(parts)
        for pattern in (*DEFAULT_EXCLUDES, *self.exclude):
            pattern = pattern.rstrip("/")
            if "/" in pattern:
                anchored = pattern.lstrip("/")
                if fnmatch.fnmatch(relative, anchored) or fnmatch.fnmatch(relative, anchored + "/*"):
                    return True
            elif any(fnmatch.fnmatch(part, pattern) for part in parts):
                return True
        return False


def find_pyproject(start: Path) -> Optional[Path]:
    """The nearest ``pyproject.toml`` at or above ``start``."""
    current = start.resolve()
    if current.is_file():
        current = current.parent
    for folder in (current, *current.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def _string_list(table: dict, key: str, source: Path) -> List[str]:
    value = table.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{source}: [tool.nnlint] {key} must be a list of strings")
    return value


def load_config(start: Path, select: Optional[Sequence[str]] = None,
                ignore: Optional[Sequence[str]] = None,
                exclude: Optional[Sequence[str]] = None) -> Config:
    """Read the nearest pyproject's ``[tool.nnlint]`` and apply command-line overrides."""
    config = Config(root=Path.cwd())
    pyproject = find_pyproject(start)
    if pyproject is not None:
        try:
            table = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("tool", {}).get("nnlint", {})
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise ConfigError(f"{pyproject}: cannot read [tool.nnlint]: {error}") from error
        config.root = pyproject.parent
        if "select" in table:
            config.select = _string_list(table, "select", pyproject)
        config.ignore = _string_list(table, "ignore", pyproject)
        config.exclude = _string_list(table, "exclude", pyproject)
    if select:
        config.select = list(select)
    if ignore:
        config.ignore = [*config.ignore, *ignore]
    if exclude:
        config.exclude = [*config.exclude, *exclude]
    return config

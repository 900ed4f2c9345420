"""Settings from ``[tool.nnlint]`` of the nearest ``pyproject.toml``, overridden by the command line.

Nothing here imports LibCST or the rules: a run whose results are all cached never needs them.
"""
from __future__ import annotations

import fnmatch
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.9/3.10 only
    import tomli as tomllib

DEFAULT_EXCLUDES = (".git", ".hg", ".svn", ".venv", "venv", ".env", "env", "__pycache__", "build",
                    "dist", ".tox", ".nox", ".mypy_cache", ".pytest_cache", ".eggs",
                    "node_modules", "site-packages", ".nnlint_cache")


# The prefix shared by every code: selecting it runs the default rules, not the opt-in ones.
FAMILY_PREFIX = "NN"


class ConfigError(ValueError):
    """The configuration cannot be used (unreadable, wrongly typed, unknown key or code): exit 2."""


@dataclass
class Config:
    """Which codes run, which paths are skipped, and which codes are ignored in which files.

    ``code_sources`` remembers where each list of codes came from (``--select``,
    ``[tool.nnlint] ignore``, ...) so that an unknown code is reported where it was written.
    """

    select: List[str] = field(default_factory=lambda: ["NN"])
    ignore: List[str] = field(default_factory=list)
    exclude: List[str] = field(default_factory=list)
    per_file_ignores: List[Tuple[str, List[str]]] = field(default_factory=list)
    root: Path = field(default_factory=Path.cwd)
    code_sources: List[Tuple[str, List[str]]] = field(default_factory=list)

    def selects(self, code: str) -> bool:
        """A code runs when a select prefix matches it and no longer-or-equal ignore prefix does."""
        selected = [len(p) for p in self.select if code.startswith(p)]
        ignored = [len(p) for p in self.ignore if code.startswith(p)]
        return bool(selected) and (not ignored or max(ignored) < max(selected))

    def runs(self, code: str, default: bool) -> bool:
        """Whether a rule runs: a default rule when selected; an opt-in rule (``default`` False)
        only when a select entry longer than the bare ``NN`` names it (``NN205``, ``NN2``)."""
        return self.selects(code) and (default or any(
            code.startswith(prefix) and len(prefix) > len(FAMILY_PREFIX) for prefix in self.select))

    def excludes(self, path: Path, base: Optional[Path] = None, explicit: bool = False) -> bool:
        """Gitignore-style matching below ``base`` (the folder being walked).

        A pattern without a slash matches any path component below ``base``; a pattern with one
        matches the path relative to the configuration's root. Components above ``base`` never
        match, so ``nnlint .venv/lib/.../torch`` lints what it was asked to. A file named
        ``explicit``-ly (as pre-commit names them) is matched against the configured patterns
        only: the default ones (virtualenvs, build folders) skip folders, never a named file.
        """
        base = base or self.root
        try:
            parts = path.resolve().relative_to(base.resolve()).parts
        except ValueError:
            parts = path.parts
        relative = self.relative(path)
        patterns = self.exclude if explicit else (*DEFAULT_EXCLUDES, *self.exclude)
        for pattern in patterns:
            pattern = pattern.rstrip("/")
            if "/" in pattern:
                anchored = pattern.lstrip("/")
                if fnmatch.fnmatch(relative, anchored) or fnmatch.fnmatch(relative, anchored + "/*"):
                    return True
            elif any(fnmatch.fnmatch(part, pattern) for part in parts):
                return True
        return False

    def relative(self, path: Path) -> str:
        """``path`` relative to the configuration's root, with slashes; as given when outside it."""
        try:
            return path.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return path.as_posix()

    def ignored_in(self, path: Path) -> List[str]:
        """The codes that ``[tool.nnlint.per-file-ignores]`` ignores in ``path`` (as ruff reads it:
        a pattern with a slash matches the path relative to the root, or a folder above it; one
        without matches the file name)."""
        if not self.per_file_ignores:
            return []
        relative = self.relative(path)
        codes: List[str] = []
        for pattern, pattern_codes in self.per_file_ignores:
            bare = pattern.rstrip("/")
            candidates = (bare, bare + "/*", bare[3:] if bare.startswith("**/") else bare)
            if any(fnmatch.fnmatch(relative, c) for c in candidates) or (
                    "/" not in bare and fnmatch.fnmatch(path.name, bare)):
                codes += pattern_codes
        return codes

    def unknown_code(self, known: Iterable[str]) -> Optional[str]:
        """One line naming the first code (or prefix) that matches no known code, else None."""
        known = sorted(known)
        for source, codes in self.code_sources:
            for code in codes:
                if not code or not any(k.startswith(code) for k in known):
                    return (f"unknown code {code!r} in {source}; valid codes: {', '.join(known)} "
                            f"(or a prefix such as NN or NN1)")
        return None


def find_pyproject(start: Path) -> Optional[Path]:
    """The nearest ``pyproject.toml`` at or above ``start``."""
    current = start.resolve()
    if current.is_file() or not current.exists():
        current = current.parent
    for folder in (current, *current.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def _string_list(value: object, key: str, source: Path) -> List[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{source}: [tool.nnlint] {key} must be a list of strings")
    return value


def _codes(value: object, key: str, source: Path) -> List[str]:
    return [code.strip().upper() for code in _string_list(value, key, source)]


def _set_select(config: Config, value: object, source: Path) -> None:
    config.select = _codes(value, "select", source)
    config.code_sources.append(("[tool.nnlint] select", config.select))


def _set_ignore(config: Config, value: object, source: Path) -> None:
    config.ignore = _codes(value, "ignore", source)
    config.code_sources.append(("[tool.nnlint] ignore", config.ignore))


def _set_exclude(config: Config, value: object, source: Path) -> None:
    config.exclude = _string_list(value, "exclude", source)


def _set_per_file_ignores(config: Config, value: object, source: Path) -> None:
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: [tool.nnlint.per-file-ignores] must be a table of "
                          f"glob = [codes]")
    for pattern, codes in value.items():
        key = f"per-file-ignores {pattern!r}"
        parsed = _codes(codes, key, source)
        config.per_file_ignores.append((pattern, parsed))
        config.code_sources.append((f"[tool.nnlint.per-file-ignores] {pattern!r}", parsed))


# Every key [tool.nnlint] accepts, and what reads it; any other key is a usage error.
KEYS: Dict[str, Callable[[Config, object, Path], None]] = {
    "select": _set_select,
    "ignore": _set_ignore,
    "exclude": _set_exclude,
    "per-file-ignores": _set_per_file_ignores,
}


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
        for key, value in table.items():
            if key not in KEYS:
                raise ConfigError(f"{pyproject}: unknown key {key!r} in [tool.nnlint]; valid keys: "
                                  f"{', '.join(sorted(KEYS))}")
            KEYS[key](config, value, pyproject)
    if select:
        config.select = [code.upper() for code in select]
        config.code_sources.append(("--select", config.select))
    if ignore:
        config.ignore = [*config.ignore, *(code.upper() for code in ignore)]
        config.code_sources.append(("--ignore", list(ignore)))
    if exclude:
        config.exclude = [*config.exclude, *exclude]
    return config

"""A whole run: find the files, take what the cache knows, lint the rest (on several cores when
there are many), and apply the selection and per-file ignores.

LibCST and the rules are imported only when a file has to be linted, so a run whose results are
all cached starts in a few tens of milliseconds.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from .cache import ResultCache
from .config import Config
from .findings import ENGINE_CODES, Finding

STDIN = "-"

# Below this many files to lint a worker pool costs more to start than it saves.
PARALLEL_THRESHOLD = 16


@dataclass
class LintResult:
    """Findings of a run, the inputs that could not be read (the CLI exits 2 for those), and how
    many files were checked (and how many of them came from the cache)."""

    findings: List[Finding]
    errors: List[str]
    files: int
    cached: int = 0


class UnreadablePath(OSError):
    """A path named on the command line that does not exist."""


def rule_table(cache: Optional[ResultCache] = None) -> Tuple[Dict[str, str], List[str]]:
    """(code -> name of every rule and engine code, the opt-in codes); from the cache when it
    has them, so that a cached run imports neither the rules nor LibCST."""
    table = cache.rule_table() if cache is not None else None
    if table is None:
        from .rules import ALL_RULES
        table = ({rule.code: rule.name for rule in ALL_RULES},
                 [rule.code for rule in ALL_RULES if not rule.default])
        if cache is not None:
            cache.put_rule_table(*table)
    names, opt_in = table
    return {**names, **ENGINE_CODES}, opt_in


def rule_names(cache: Optional[ResultCache] = None) -> Dict[str, str]:
    """Code -> name of every rule and engine code."""
    return rule_table(cache)[0]


def discover(paths: Sequence[str], config: Config) -> Iterator[Path]:
    """Python files under ``paths``. Folders are walked with every exclude; a file named
    explicitly is skipped only when a configured exclude matches it (pre-commit names files)."""
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise UnreadablePath(f"{raw}: no such file or directory")
        if path.is_file():
            if not config.excludes(path, explicit=True):
                yield path
            continue
        for folder, subfolders, files in os.walk(path):
            here = Path(folder)
            subfolders[:] = sorted(d for d in subfolders if not config.excludes(here / d, path))
            for name in sorted(files):
                candidate = here / name
                if name.endswith((".py", ".pyi")) and not config.excludes(candidate, path):
                    yield candidate


def _sources(paths: Sequence[str], config: Config, stdin_filename: Optional[str],
             errors: List[str]) -> Iterator[Tuple[str, Path, bytes]]:
    """(label, path for config matching, bytes) of every input."""
    for raw in paths:
        if raw == STDIN:
            label = stdin_filename or STDIN
            if stdin_filename is None or not config.excludes(Path(label), explicit=True):
                yield label, Path(label), sys.stdin.buffer.read()
            continue
        try:
            for path in discover([raw], config):
                try:
                    yield str(path), path, path.read_bytes()
                except OSError as error:
                    errors.append(f"{path}: cannot read: {error.strerror or error}")
        except UnreadablePath as error:
            errors.append(str(error))


def lint_paths(paths: Sequence[str], config: Config, jobs: Optional[int] = None,
               cache: Optional[ResultCache] = None,
               stdin_filename: Optional[str] = None) -> LintResult:
    """Lint every file under ``paths`` (``-`` is standard input, labelled ``stdin_filename``)
    with the rules ``config`` selects, on up to ``jobs`` cores, reusing ``cache`` when given."""
    errors: List[str] = []
    names, opt_in = rule_table(cache)
    codes = tuple(sorted(c for c in names if c not in ENGINE_CODES
                         and config.runs(c, c not in opt_in)))
    inputs = list(_sources(paths, config, stdin_filename, errors))
    per_file: List[Optional[List[Finding]]] = []
    keys: List[Optional[str]] = []
    misses: List[int] = []
    for index, (label, _, data) in enumerate(inputs):
        key = cache.key(data, codes) if cache is not None else None
        rows = cache.get(key) if key is not None else None
        findings = None if rows is None else _from_rows(label, rows)
        keys.append(key)
        per_file.append(findings)
        if findings is None:
            misses.append(index)
    for index, findings in zip(misses, _lint([inputs[i] for i in misses], codes, jobs)):
        per_file[index] = findings
        if cache is not None:
            cache.put(keys[index], [f.to_row() for f in findings])
    kept: List[Finding] = []
    for (_, path, _), findings in zip(inputs, per_file):
        ignored = tuple(config.ignored_in(path))
        kept += [f for f in findings if config.selects(f.code) and not f.code.startswith(ignored)]
    return LintResult(sorted(kept), errors, len(inputs), len(inputs) - len(misses))


def _from_rows(label: str, rows: List[list]) -> Optional[List[Finding]]:
    try:
        return [Finding.from_row(label, row) for row in rows]
    except ValueError:
        return None


def _lint(inputs: List[Tuple[str, Path, bytes]], codes: Tuple[str, ...],
          jobs: Optional[int]) -> List[List[Finding]]:
    if not inputs:
        return []
    from .engine import lint_job
    job_list = [(label, data, codes) for label, _, data in inputs]
    workers = min(jobs or os.cpu_count() or 1, len(job_list))
    if workers > 1 and len(job_list) >= PARALLEL_THRESHOLD:
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(lint_job, job_list, chunksize=8))
    return [lint_job(job) for job in job_list]

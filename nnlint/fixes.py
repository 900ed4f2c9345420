"""``nnlint --fix``: apply the replacements that rules attach to their findings; write each file once.

A fix swaps nodes of the file's LibCST tree, so everything around them (comments, spacing, quotes)
is kept byte for byte. Fixes whose nodes overlap cannot go in the same pass: the file is linted
again after each pass and the fixes still offered are applied, up to ``MAX_PASSES`` times.
"""
from __future__ import annotations

import difflib
import io
import tokenize
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set, Tuple, Type

import libcst as cst

from .config import Config
from .engine import decode, lint_module, selected_rules
from .runner import UnreadablePath, discover
from .expressions import descendants
from .rules.base import Fix, Rule

# Each pass applies every fix that does not overlap another; a second pass is needed only for
# nested findings (a fix inside another fix's node). Five is ample and bounds the work.
MAX_PASSES = 5


class _Replace(cst.CSTTransformer):
    def __init__(self, replacements: Dict[int, cst.CSTNode]) -> None:
        super().__init__()
        self.replacements = replacements

    def on_leave(self, original_node, updated_node):
        return self.replacements.get(id(original_node), updated_node)


def _choose(fixes: Sequence[Fix]) -> List[Fix]:
    """The fixes that touch disjoint subtrees, in the order given."""
    chosen: List[Fix] = []
    covered: Set[int] = set()
    for candidate in fixes:
        nodes = {id(n) for original, _ in candidate.replacements for n in descendants(original)}
        if nodes & covered:
            continue
        chosen.append(candidate)
        covered |= nodes
    return chosen


@dataclass
class FixedSource:
    """A file's text after fixing, and how many findings the fixes resolved."""

    source: str
    applied: int


def fix_source(source: str, path: str, rules: Sequence[Type[Rule]],
               unsafe: bool = False) -> FixedSource:
    """Apply the safe fixes (and the unsafe ones when ``unsafe``) that ``rules`` offer on ``source``."""
    applied = 0
    for _ in range(MAX_PASSES):
        try:
            module = cst.parse_module(source)
        except cst.ParserSyntaxError:
            break
        offered = [fix for _, fix in lint_module(module, source, path, rules)
                   if fix is not None and (fix.safe or unsafe)]
        chosen = _choose(offered)
        if not chosen:
            break
        replacements = {id(original): new for fix in chosen for original, new in fix.replacements}
        source = module.visit(_Replace(replacements)).code
        applied += len(chosen)
    return FixedSource(source, applied)


@dataclass
class FixRun:
    """What ``--fix`` changed: the text of each changed file before and after, and the count."""

    changed: Dict[str, Tuple[str, str]] = field(default_factory=dict)
    applied: int = 0
    errors: List[str] = field(default_factory=list)


def fix_paths(paths: Sequence[str], config: Config, unsafe: bool = False,
              write: bool = True) -> FixRun:
    """Fix every file under ``paths`` with the rules ``config`` selects; write unless ``write`` is False."""
    rules = selected_rules(config)
    run = FixRun()
    for raw in paths:
        try:
            files = list(discover([raw], config))
        except UnreadablePath as error:
            run.errors.append(str(error))
            continue
        for path in files:
            _fix_file(path, rules, unsafe, write, run)
    return run


def _fix_file(path: Path, rules: Sequence[Type[Rule]], unsafe: bool, write: bool,
              run: FixRun) -> None:
    try:
        data = path.read_bytes()
    except OSError as error:
        run.errors.append(f"{path}: cannot read: {error.strerror or error}")
        return
    try:
        before = decode(data)
    except (SyntaxError, UnicodeDecodeError, LookupError):
        return  # reported as NN000 by the lint that follows
    fixed = fix_source(before, str(path), rules, unsafe)
    if fixed.source == before:
        return
    run.changed[str(path)] = (before, fixed.source)
    run.applied += fixed.applied
    if write:
        encoding = _encoding(data)
        bom = data.startswith(b"\xef\xbb\xbf")
        path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + fixed.source.encode(encoding))


def _encoding(data: bytes) -> str:
    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    return "utf-8" if encoding == "utf-8-sig" else encoding


def unified_diff(path: str, before: str, after: str) -> str:
    """The change to one file as a unified diff, the way ``ruff --diff`` prints it."""
    return "".join(difflib.unified_diff(before.splitlines(keepends=True),
                                        after.splitlines(keepends=True),
                                        fromfile=path, tofile=path))


def describe(run: FixRun, diff: bool) -> Optional[str]:
    """One line for stderr: how many findings were (or would be) fixed, in how many files."""
    if not run.applied:
        return None
    verb = "would fix" if diff else "fixed"
    files = len(run.changed)
    return (f"nnlint: {verb} {run.applied} finding{'s' * (run.applied != 1)} in {files} "
            f"file{'s' * (files != 1)}")

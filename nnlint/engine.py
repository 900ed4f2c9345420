"""Parse a file once with LibCST, run the selected rules in one traversal, collect findings.

A file that does not parse gives one NN000 finding; a rule that crashes gives one NN999 finding
naming the rule, and the file is linted again without it. Neither ends the run.
"""
from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Type

import libcst as cst

from .config import Config
from .findings import INTERNAL_ERROR, PARSE_ERROR, Finding
from .positions import node_starts
from .rules import ALL_RULES
from .rules.base import FileContext, Fix, Rule
from .suppressions import is_suppressed
from .walker import HandlerError, walk


class UnreadableInput(OSError):
    """A path that does not exist or cannot be read; the CLI exits 2."""


def selected_rules(config: Config) -> List[Type[Rule]]:
    """Default rules that ``config`` selects, and opt-in rules that a select entry names."""
    return [rule for rule in ALL_RULES if config.runs(rule.code, rule.default)]


def decode(data: bytes) -> str:
    """Source text in its declared encoding (PEP 263), with a UTF-8 byte-order mark removed."""
    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    text = data.decode(encoding)
    return text[1:] if text.startswith("\ufeff") else text


_HANDLERS: Dict[type, List[Tuple[bool, type, str]]] = {}


def _handlers(rule: Type[Rule]) -> List[Tuple[bool, type, str]]:
    """(is a visit handler, LibCST node class, method name) for each handler of a rule class."""
    found = _HANDLERS.get(rule)
    if found is None:
        found = []
        for attribute in dir(rule):
            prefix, _, node_name = attribute.partition("_")
            if prefix in ("visit", "leave") and node_name and hasattr(cst, node_name):
                found.append((prefix == "visit", getattr(cst, node_name), attribute))
        _HANDLERS[rule] = found
    return found


def _dispatch_tables(context: FileContext, rules: Sequence[Rule]):
    visit: Dict[type, list] = {}
    leave: Dict[type, list] = {}
    for cls in FileContext.ENTER_TYPES:
        visit.setdefault(cls, []).append(context.enter)
    for rule in rules:
        for is_visit, node_class, attribute in _handlers(type(rule)):
            table = visit if is_visit else leave
            table.setdefault(node_class, []).append(getattr(rule, attribute))
    for cls in FileContext.LEAVE_TYPES:
        leave.setdefault(cls, []).append(context.leave)
    return visit, leave


def _finding(path: str, line: int, column: int, code_name: Tuple[str, str], message: str,
             severity: str = "error") -> Finding:
    return Finding(path, line, column, code_name[0], code_name[1], message, severity)


def lint_source(source: str, path: str, rules: Sequence[Type[Rule]]) -> List[Finding]:
    """Lint one file's text. ``path`` is only used to label the findings."""
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError as error:
        return [_parse_error(source, path, error)]
    return [finding for finding, _ in lint_module(module, source, path, rules)]


def lint_module(module: cst.Module, source: str, path: str, rules: Sequence[Type[Rule]]
                ) -> List[Tuple[Finding, Optional[Fix]]]:
    """Run ``rules`` over a parsed file; the fixes refer to ``module``'s own nodes."""
    findings: List[Tuple[Finding, Optional[Fix]]] = []
    active = list(rules)
    while True:
        context = FileContext()
        instances = [rule(context) for rule in active]
        visit, leave = _dispatch_tables(context, instances)
        try:
            walk(module, visit, leave)
            break
        except HandlerError as crash:
            owner = getattr(crash.handler, "__self__", None)
            culprit = type(owner) if isinstance(owner, Rule) else None
            label = f"{culprit.code} {culprit.name}" if culprit else "the engine"
            findings.append((_finding(path, 1, 1, INTERNAL_ERROR,
                                      f"internal error in {label}: {type(crash.error).__name__}: "
                                      f"{crash.error} (the file was linted without it)"), None))
            if culprit is None or culprit not in active:
                return findings
            active.remove(culprit)
    if context.findings:
        findings += _resolve(context, module, source, path)
    return sorted(findings, key=lambda pair: pair[0])


def _parse_error(source: str, path: str, error: cst.ParserSyntaxError) -> Finding:
    """NN000 with CPython's wording and position when it agrees the file is invalid.

    Python's own parser names the problem better ("expected ':'") and points at the right column;
    it only builds a tree (nothing runs). LibCST's message is the fallback.
    """
    try:
        compile(source, path, "exec", ast.PyCF_ONLY_AST)
    except SyntaxError as python_error:
        return _finding(path, python_error.lineno or 1, python_error.offset or 1, PARSE_ERROR,
                        f"cannot parse: {python_error.msg}")
    except (ValueError, RecursionError, MemoryError):
        pass
    message = error.message.replace("parser error: ", "").strip() or "syntax error"
    return _finding(path, error.raw_line, error.raw_column + 1, PARSE_ERROR,
                    f"cannot parse: {message}")


def _resolve(context: FileContext, module: cst.Module, source: str, path: str
             ) -> List[Tuple[Finding, Optional[Fix]]]:
    starts = node_starts(module, (raw.node for raw in context.findings), source)
    lines = source.splitlines()
    findings = []
    seen = set()
    for raw in context.findings:
        line, column = starts[id(raw.node)]
        line_text = lines[line - 1] if 0 < line <= len(lines) else ""
        if is_suppressed(raw.rule.code, line_text):
            continue
        key = (line, column, raw.rule.code)
        if key in seen:
            continue
        seen.add(key)
        findings.append((Finding(path, line, column + 1, raw.rule.code, raw.rule.name,
                                 raw.message, raw.rule.severity), raw.fix))
    return findings


def lint_bytes(data: bytes, label: str, rules: Sequence[Type[Rule]]) -> List[Finding]:
    """Lint one file's bytes; bytes that cannot be decoded give one NN000 finding."""
    try:
        source = decode(data)
    except (SyntaxError, UnicodeDecodeError, LookupError) as error:
        return [_finding(label, 1, 1, PARSE_ERROR, f"cannot decode: {error}")]
    return lint_source(source, label, rules)


def lint_file(path: Path, rules: Sequence[Type[Rule]], label: Optional[str] = None) -> List[Finding]:
    """Read and lint one file."""
    label = label or str(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise UnreadableInput(f"{label}: cannot read: {error.strerror or error}") from error
    return lint_bytes(data, label, rules)


def lint_job(job: Tuple[str, bytes, Tuple[str, ...]]) -> List[Finding]:
    """One file for a worker process: (label, bytes, codes of the rules to run)."""
    label, data, codes = job
    return lint_bytes(data, label, [rule for rule in ALL_RULES if rule.code in codes])

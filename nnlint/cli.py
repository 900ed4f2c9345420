"""The ``nnlint`` command. Exit 0: no findings; 1: findings; 2: usage error or unreadable input.

Imports are kept to what the run needs: LibCST and the rules only when a file has to be linted
(or a rule's page is asked for), rich only when colouring a terminal.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional, Sequence

from . import __version__
from .config import ConfigError, load_config

if TYPE_CHECKING:
    from .runner import LintResult

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 too; keep its one-line form
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"nnlint: error: {message}\n")


def _codes(value: str) -> List[str]:
    return [code.strip().upper() for code in value.split(",") if code.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nnlint", description="Lint training code for the classic pitfalls "
                     "that make neural networks silently wrong.")
    parser.add_argument("paths", nargs="*", default=["."],
                        help="files or folders (default: .); - reads standard input")
    parser.add_argument("--select", type=_codes, help="codes or prefixes to run, e.g. NN1,NN201")
    parser.add_argument("--ignore", type=_codes, help="codes or prefixes to skip")
    parser.add_argument("--exclude", type=lambda v: [p for p in v.split(",") if p],
                        help="extra gitignore-style patterns to skip")
    parser.add_argument("--format", choices=("text", "json", "github", "sarif"), default="text")
    parser.add_argument("--statistics", action="store_true",
                        help="count findings per code instead of listing them (text format)")
    parser.add_argument("--stdin-filename", metavar="PATH",
                        help="the name of the file read from - (for messages, excludes and "
                             "per-file ignores)")
    parser.add_argument("--jobs", "-j", type=int, default=None,
                        help="worker processes for large trees (default: all cores)")
    parser.add_argument("--no-cache", action="store_true",
                        help="neither read nor write the result cache")
    parser.add_argument("--cache-dir", type=Path, metavar="PATH",
                        help="where the result cache lives (default: .nnlint_cache in the "
                             "project root)")
    parser.add_argument("--list-rules", action="store_true", help="list codes and names")
    parser.add_argument("--explain", metavar="CODE_OR_NAME", help="print a rule's page")
    parser.add_argument("--no-color", action="store_true", help="plain text even on a terminal")
    parser.add_argument("--fix", action="store_true",
                        help="apply the safe fixes, then report what is left")
    parser.add_argument("--diff", action="store_true",
                        help="print the fixes as a unified diff instead of writing them")
    parser.add_argument("--unsafe-fixes", action="store_true",
                        help="with --fix or --diff, apply the unsafe fixes too")
    parser.add_argument("--version", action="version", version=f"nnlint {__version__}")
    return parser


def _write(text: str, colour: bool) -> None:
    if not text:
        return
    if colour:
        from rich.console import Console
        Console(highlight=False, soft_wrap=True).print(text)
    else:
        sys.stdout.write(text + "\n")


def _explain(query: str) -> int:
    from .docs import render_page
    from .rules import ALL_RULES
    wanted = query.strip().lower()
    for rule in ALL_RULES:
        if wanted in (rule.code.lower(), rule.name.lower()):
            print(render_page(rule))
            return EXIT_CLEAN
    print(f"nnlint: error: unknown rule {query!r}; valid codes and names: "
          + ", ".join(f"{r.code} {r.name}" for r in ALL_RULES), file=sys.stderr)
    return EXIT_ERROR


def _list_rules() -> int:
    from .rules import ALL_RULES
    for rule in ALL_RULES:
        print(f"{rule.code}  {rule.name:30} {rule.severity:7}{'' if rule.default else '  opt-in'}")
    return EXIT_CLEAN


def _usage_error(message: str) -> int:
    print(f"nnlint: error: {message}", file=sys.stderr)
    return EXIT_ERROR


def _lint(args: argparse.Namespace) -> int:
    from .runner import STDIN, lint_paths, rule_names
    if args.statistics and args.format != "text":
        return _usage_error("--statistics works with --format text only")
    if args.stdin_filename and STDIN not in args.paths:
        return _usage_error("--stdin-filename names standard input: pass - as the path")
    start = Path(args.stdin_filename or ".") if args.paths[0] == STDIN else Path(args.paths[0])
    try:
        config = load_config(start, args.select, args.ignore, args.exclude)
    except ConfigError as error:
        return _usage_error(str(error))
    cache = None
    if not args.no_cache:
        from .cache import CACHE_FOLDER, ResultCache
        cache = ResultCache(args.cache_dir or config.root / CACHE_FOLDER)
    unknown = config.unknown_code(rule_names(cache))
    if unknown:
        return _usage_error(unknown)
    if args.fix or args.diff:
        from .fixes import describe, fix_paths, unified_diff
        fixed = fix_paths(args.paths, config, unsafe=args.unsafe_fixes, write=not args.diff)
        if describe(fixed, args.diff):
            print(describe(fixed, args.diff), file=sys.stderr)
        if args.diff:
            sys.stdout.write("".join(unified_diff(path, *texts)
                                     for path, texts in fixed.changed.items()))
            return EXIT_FINDINGS if fixed.changed else EXIT_CLEAN
    result = lint_paths(args.paths, config, jobs=args.jobs, cache=cache,
                        stdin_filename=args.stdin_filename)
    colour = args.format == "text" and not args.no_color and sys.stdout.isatty()
    status = EXIT_ERROR if result.errors else EXIT_FINDINGS if result.findings else EXIT_CLEAN
    for error in result.errors:
        print(f"nnlint: error: {error}", file=sys.stderr)
    try:
        _report(args, result, colour)
        sys.stdout.flush()
    except BrokenPipeError:
        _reader_gone()
    return status


def _reader_gone() -> None:
    """The reader closed the pipe (``nnlint . | head -1``) after reading what it wanted. Point
    stdout at /dev/null so that the interpreter's final flush does not complain either."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _report(args: argparse.Namespace, result: "LintResult", colour: bool) -> None:
    from .formats import FORMATS
    if args.format != "text":
        _write(FORMATS[args.format](result.findings, False), False)
        return
    from .formats.summary import render_statistics, render_summary
    if args.statistics:
        _write(render_statistics(result.findings), False)
    else:
        _write(FORMATS["text"](result.findings, colour), colour)
    _write(render_summary(result.findings, result.files), False)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.list_rules:
            return _list_rules()
        if args.explain:
            return _explain(args.explain)
    except BrokenPipeError:
        _reader_gone()
        return EXIT_CLEAN
    return _lint(args)


if __name__ == "__main__":
    sys.exit(main())

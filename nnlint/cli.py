"""The ``nnlint`` command. Exit 0: no findings; 1: findings; 2: usage error or unreadable input."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional, Sequence

from .config import ConfigError, load_config
from .engine import lint_paths

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
    parser.add_argument("paths", nargs="*", default=["."], help="files or folders (default: .)")
    parser.add_argument("--select", type=_codes, help="codes or prefixes to run, e.g. NN1,NN201")
    parser.add_argument("--ignore", type=_codes, help="codes or prefixes to skip")
    parser.add_argument("--exclude", type=lambda v: [p for p in v.split(",") if p],
                        help="extra gitignore-style patterns to skip")
    parser.add_argument("--format", choices=("text", "json", "github"), default="text")
    parser.add_argument("--jobs", "-j", type=int, default=None,
                        help="worker processes for large trees (default: all cores)")
    parser.add_argument("--list-rules", action="store_true", help="list codes and names")
    parser.add_argument("--explain", metavar="CODE", help="print a rule's page")
    parser.add_argument("--no-color", action="store_true", help="plain text even on a terminal")
    parser.add_argument("--fix", action="store_true",
                        help="apply the safe fixes, then report what is left")
    parser.add_argument("--diff", action="store_true",
                        help="print the fixes as a unified diff instead of writing them")
    parser.add_argument("--unsafe-fixes", action="store_true",
                        help="with --fix or --diff, apply the unsafe fixes too")
    return parser


def _print(text: str, colour: bool) -> None:
    if not text:
        return
    if colour:
        from rich.console import Console
        Console(highlight=False, soft_wrap=True).print(text)
    else:
        sys.stdout.write(text + "\n")


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list_rules or args.explain:
        from .rules import ALL_RULES, BY_CODE
        if args.list_rules:
            for rule in ALL_RULES:
                print(f"{rule.code}  {rule.name:30} {rule.severity:7}"
                      f"{'' if rule.default else '  opt-in'}")
            return EXIT_CLEAN
        rule = BY_CODE.get(args.explain.upper())
        if rule is None:
            print(f"nnlint: error: unknown rule code {args.explain!r}; see nnlint --list-rules",
                  file=sys.stderr)
            return EXIT_ERROR
        from .docs import render_page
        print(render_page(rule))
        return EXIT_CLEAN
    try:
        config = load_config(Path(args.paths[0]), args.select, args.ignore, args.exclude)
    except ConfigError as error:
        print(f"nnlint: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    if args.fix or args.diff:
        from .fixes import describe, fix_paths, unified_diff
        fixed = fix_paths(args.paths, config, unsafe=args.unsafe_fixes, write=not args.diff)
        if describe(fixed, args.diff):
            print(describe(fixed, args.diff), file=sys.stderr)
        if args.diff:
            sys.stdout.write("".join(unified_diff(path, *texts) for path, texts in fixed.changed.items()))
            return EXIT_FINDINGS if fixed.changed else EXIT_CLEAN
    from .formats import FORMATS
    result = lint_paths(args.paths, config, jobs=args.jobs)
    colour = args.format == "text" and not args.no_color and sys.stdout.isatty()
    rendered = FORMATS[args.format](result.findings, colour)
    if args.format == "json" or rendered:
        _print(rendered, colour)
    for error in result.errors:
        print(f"nnlint: error: {error}", file=sys.stderr)
    if result.errors:
        return EXIT_ERROR
    return EXIT_FINDINGS if result.findings else EXIT_CLEAN


if __name__ == "__main__":
    sys.exit(main())

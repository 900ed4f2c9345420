"""What each rule costs: seconds to lint a folder with that rule alone, beside parse-only.

    python benchmarks/survey/rule_cost.py FOLDER [--repeat 3]

Files are parsed once; every rule then walks the parsed trees on its own, and the walk with no
rule at all is the floor. The figures are the best of ``--repeat`` runs (one core); on a busy
machine compare them with each other, not with figures taken elsewhere.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Callable, List, Sequence, Tuple, Type

import libcst

from nnlint.engine import decode, lint_module
from nnlint.rules import ALL_RULES
from nnlint.rules.base import Rule


def _best(action: Callable[[], None], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def _parsed(folder: Path) -> List[Tuple[libcst.Module, str, str]]:
    modules = []
    for path in sorted(folder.rglob("*.py")):
        try:
            source = decode(path.read_bytes())
            modules.append((libcst.parse_module(source), source, str(path)))
        except (SyntaxError, UnicodeDecodeError, LookupError, libcst.ParserSyntaxError):
            continue
    return modules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    modules = _parsed(args.folder)
    sources = [source for _, source, _ in modules]
    lines = sum(source.count("\n") for source in sources)

    def lint(rules: Sequence[Type[Rule]]) -> Callable[[], None]:
        return lambda: [lint_module(m, s, p, rules) for m, s, p in modules]

    parse = _best(lambda: [libcst.parse_module(s) for s in sources], args.repeat)
    floor = _best(lint([]), args.repeat)
    default = [rule for rule in ALL_RULES if rule.default]
    print(f"{len(modules)} files, {lines} lines; best of {args.repeat}\n")
    print(f"{'':34} {'seconds':>8}")
    print(f"{'LibCST parse-only':34} {parse:8.3f}")
    print(f"{'walk, no rule':34} {floor:8.3f}")
    print(f"{f'walk, {len(default)} default rules':34} {_best(lint(default), args.repeat):8.3f}")
    print(f"{f'walk, all {len(ALL_RULES)} rules':34} {_best(lint(ALL_RULES), args.repeat):8.3f}\n")
    print(f"{'rule':34} {'above the floor':>15}")
    for rule in ALL_RULES:
        cost = _best(lint([rule]), args.repeat) - floor
        print(f"{rule.code + ' ' + rule.name:34} {cost:15.3f}")


if __name__ == "__main__":
    main()

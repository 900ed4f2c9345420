"""Runs the checkers over the corpus and tallies what each got right: the benchmark's corpus part.

Records are data first (one per case and tool, written to JSON with ``--json``); the tables and
the lists of disagreements are printed from them.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch

from .case import CORRECT, FLOAT32_LAYER, FUNCTION, GENUINE_BUG, LAYER, MUTANT, SURROGATE, Case
from .registry import all_cases, all_mutants, missing
from .taps import Mutant
from .tools import ERROR, FAILED, PASSED, TOOL_NAMES, run_isolated


@dataclass
class Record:
    """One tool on one case."""

    case: str
    tool: str
    label: str
    kind: str
    package: str
    version: str
    visible_to_gradcheck: bool  # False for a parameter tap: gradcheck perturbs inputs only
    verdict: str
    seconds: float
    reason: str
    text: str


def _flagged(record: Record) -> bool:
    """What fails a user's test: a failed verdict or a crash."""
    return record.verdict in (FAILED, ERROR)


def _run(cases: Sequence[Case], tools: Sequence[str], limit: float,
         visibility: Dict[str, bool]) -> List[Record]:
    records = []
    for number, case in enumerate(cases, 1):
        for tool in tools:
            outcome = run_isolated(tool, case, limit)
            records.append(Record(case.name, tool, case.label, case.kind, case.package,
                                  case.package_version, visibility.get(case.name, True),
                                  outcome.verdict, outcome.seconds, outcome.reason, outcome.text))
        verdicts = " ".join(f"{r.tool}={r.verdict}" for r in records[-len(tools):])
        print(f"[{number}/{len(cases)}] {case.name}: {verdicts}", file=sys.stderr, flush=True)
    return records


def _count(records: List[Record], tool: str, test, keep) -> str:
    chosen = [r for r in records if r.tool == tool and keep(r)]
    return f"{sum(map(test, chosen))}/{len(chosen)}" if chosen else "-"


def _origin(record: Record) -> str:
    """The correct case a mutant was tapped from: its name without the " [tap]" suffix."""
    return record.case.rsplit(" [", 1)[0]


def _table(records: List[Record], tools: Sequence[str]) -> List[str]:
    verdicts = {(r.tool, r.case): r.verdict for r in records}
    rows = []
    for tool in tools:
        rows.append([
            TOOL_NAMES[tool],
            _count(records, tool, lambda r: r.verdict == FAILED, lambda r: r.label == MUTANT),
            # a bug is told apart when the tool fails it and passes the correct code it came from
            _count(records, tool, lambda r: r.verdict == FAILED
                   and verdicts.get((r.tool, _origin(r))) == PASSED, lambda r: r.label == MUTANT),
            _count(records, tool, lambda r: r.verdict == FAILED,
                   lambda r: r.label == MUTANT and r.visible_to_gradcheck),
            _count(records, tool, lambda r: r.verdict == FAILED,
                   lambda r: r.label == MUTANT and not r.visible_to_gradcheck),
            _count(records, tool, _flagged, lambda r: r.label == CORRECT and r.kind == FUNCTION),
            _count(records, tool, _flagged, lambda r: r.label == CORRECT and r.kind == LAYER),
            _count(records, tool, _flagged, lambda r: r.label == CORRECT and r.kind == FLOAT32_LAYER),
            _count(records, tool, lambda r: r.verdict not in (PASSED, FAILED, ERROR),
                   lambda r: r.label == CORRECT),
            _count(records, tool, _flagged, lambda r: r.label == SURROGATE),
            _count(records, tool, lambda r: r.verdict == FAILED, lambda r: r.label == GENUINE_BUG),
            f"{sum(r.seconds for r in records if r.tool == tool):.1f}",
        ])
    headers = ["tool", "bugs failed", "told apart", "input taps", "param taps", "FA functions",
               "FA layers", "FA float32 layers", "correct inconcl./timeout", "surrogates flagged",
               "genuine bugs", "seconds"]
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]
    return ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip()
            for row in [headers, ["-" * w for w in widths], *rows]]


def _wrong(record: Record) -> bool:
    """Whether a verdict is not what the label asks for (a surrogate is right to be flagged)."""
    if record.label in (MUTANT, GENUINE_BUG, SURROGATE):
        return record.verdict != FAILED
    return record.verdict != PASSED


def _disagreements(records: List[Record], tools: Sequence[str]) -> List[str]:
    by_case: Dict[str, Dict[str, Record]] = {}
    for record in records:
        by_case.setdefault(record.case, {})[record.tool] = record
    lines = []
    for case, results in by_case.items():
        verdicts = {tool: results[tool].verdict for tool in tools if tool in results}
        if len(set(verdicts.values())) > 1:
            first = next(iter(results.values()))
            shown = ", ".join(f"{tool} {verdict}" for tool, verdict in verdicts.items())
            lines.append(f"  [{first.label}] {case}: {shown}")
    return lines


def corpus_main(only: Optional[str], substring: str, json_path: Optional[Path],
                limit: float) -> List[Record]:
    """Run, print the tables, write the JSON; returns the records."""
    tools = [only] if only else list(TOOL_NAMES)
    for family, reason in missing().items():
        print(f"corpus family {family} left out: {reason}")
    cases = all_cases()
    mutants: List[Mutant] = all_mutants(cases)
    visibility = {m.case.name: m.target.visible_to_gradcheck for m in mutants}
    chosen = [c for c in cases + [m.case for m in mutants] if substring in c.name]
    start = time.perf_counter()
    records = _run(chosen, tools, limit, visibility)
    packages = sorted({f"{c.package} {c.package_version}" for c in chosen})
    print(f"\nCorpus: {sum(c.label == CORRECT for c in chosen)} correct cases "
          f"({sum(c.label == CORRECT and c.kind == FUNCTION for c in chosen)} Functions, "
          f"{sum(c.label == CORRECT and c.kind == LAYER for c in chosen)} layers, "
          f"{sum(c.label == CORRECT and c.kind == FLOAT32_LAYER for c in chosen)} float32-internal "
          f"layers), {sum(c.label == MUTANT for c in chosen)} mutants, "
          f"{sum(c.label == SURROGATE for c in chosen)} surrogates, "
          f"{sum(c.label == GENUINE_BUG for c in chosen)} genuine bugs; torch {torch.__version__}, "
          f"{limit:g} s per call, {time.perf_counter() - start:.0f} s in all")
    print("Packages: " + ", ".join(packages) + "\n")
    for line in _table(records, tools):
        print(line)
    print("\n(FA: false alarms, a failed verdict or a crash on correct code; param taps are "
          "invisible to gradcheck, which perturbs inputs only)")
    if len(tools) > 1:
        print("\nCases where the tools disagree:")
        print("\n".join(_disagreements(records, tools)) or "  none")
    for tool in tools:
        wrong = [r for r in records if r.tool == tool and _wrong(r)]
        print(f"\n{TOOL_NAMES[tool]} is wrong on {len(wrong)} cases:")
        for record in wrong:
            print(f"  [{record.label}] {record.case}: {record.verdict}: {record.reason}")
    if json_path is not None:
        json_path.write_text(json.dumps([asdict(r) for r in records], indent=1))
        print(f"\nwrote {len(records)} records to {json_path}")
    return records

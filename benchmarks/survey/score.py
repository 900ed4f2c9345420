"""nnlint's precision on real code: every finding on the survey against the hand labels.

    python benchmarks/survey/score.py FOLDER [--labels CSV] [--unlabelled] [--false]

FOLDER holds the repositories of ``manifest.csv``, one sub-folder each, named ``owner+name``
(``git archive <commit>`` of each, ``.py`` files are enough). Every rule runs, opt-in ones too.
For each rule the script prints its findings, how many are labelled, true, false and unlabelled,
and the precision (true / labelled); ``--unlabelled`` lists the findings that have no label yet
(to label them by reading the code), ``--false`` the ones labelled false.
"""
from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter
from pathlib import Path
from typing import Dict, List, Tuple

from nnlint.config import Config
from nnlint.engine import Finding, lint_paths
from nnlint.rules import ALL_RULES

HERE = Path(__file__).resolve().parent
Key = Tuple[str, str, int, str]  # repository, path inside it, line, code


def read_labels(path: Path) -> Dict[Key, Tuple[bool, str]]:
    labels = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            key = (row["repository"], row["path"], int(row["line"]), row["code"])
            labels[key] = (row["label"].strip().lower() == "true", row["note"])
    return labels


def survey_findings(folder: Path, repositories: List[str]) -> List[Tuple[Key, Finding]]:
    """Every finding of every rule (opt-in included) on each repository's checkout."""
    found = []
    every_rule = Config(select=["NN000", "NN999", *(rule.code for rule in ALL_RULES)])
    for repository in repositories:
        root = folder / repository.replace("/", "+")
        if not root.is_dir():
            sys.exit(f"{root}: missing; check out every repository of the manifest there")
        every_rule.root = root
        for finding in lint_paths([str(root)], every_rule, jobs=1).findings:
            path = Path(finding.path).relative_to(root).as_posix()
            found.append(((repository, path, finding.line, finding.code), finding))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--labels", type=Path, default=HERE / "labels.csv")
    parser.add_argument("--manifest", type=Path, default=HERE / "manifest.csv")
    parser.add_argument("--unlabelled", action="store_true", help="list unlabelled findings")
    parser.add_argument("--false", action="store_true", help="list findings labelled false")
    args = parser.parse_args()
    with args.manifest.open(newline="", encoding="utf-8") as handle:
        repositories = [row["repository"] for row in csv.DictReader(handle)]
    labels = read_labels(args.labels) if args.labels.exists() else {}
    found = survey_findings(args.folder, repositories)
    counts: Dict[str, Counter] = {rule.code: Counter() for rule in ALL_RULES}
    unparsed = Counter()
    for key, finding in found:
        if finding.code not in counts:  # NN000 (not Python 3) and NN999 are not rule findings
            unparsed[finding.code] += 1
            continue
        tally = counts[finding.code]
        tally["findings"] += 1
        label = labels.get(key)
        tally["unlabelled" if label is None else "true" if label[0] else "false"] += 1
        if (label is None and args.unlabelled) or (label is not None and not label[0] and args.false):
            print(f"{key[0]}  {key[1]}:{key[2]}: {key[3]} {finding.message}")
    default = {rule.code: rule.default for rule in ALL_RULES}
    print(f"\n{'code':6} {'default':7} {'findings':>8} {'labelled':>8} {'true':>5} {'false':>5} "
          f"{'unlabelled':>10} {'precision':>9}")
    total: Counter = Counter()
    for code in sorted(counts):
        tally = counts[code]
        total += tally
        print(_row(code, "yes" if default.get(code, True) else "opt-in", tally))
    print(_row("total", "", total))
    on = sum((counts[c] for c in counts if default.get(c, True)), Counter())
    print(_row("on", "", on) + "   (default-on rules only)")
    print(f"files that are not Python 3 (NN000): {unparsed['NN000']}; "
          f"internal errors (NN999): {unparsed['NN999']}")


def _row(code: str, default: str, tally: Counter) -> str:
    labelled = tally["true"] + tally["false"]
    precision = f"{tally['true'] / labelled:.2f}" if labelled else "-"
    return (f"{code:6} {default:7} {tally['findings']:>8} {labelled:>8} {tally['true']:>5} "
            f"{tally['false']:>5} {tally['unlabelled']:>10} {precision:>9}")


if __name__ == "__main__":
    main()

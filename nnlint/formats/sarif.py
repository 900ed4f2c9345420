"""SARIF 2.1.0, the format GitHub code scanning (and most code-review tools) import.

Every rule is listed in ``tool.driver.rules`` with its page as help text, so a reviewer reads what
the rule does, why it matters and what to write instead next to the finding.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Dict, List, Sequence
from urllib.parse import quote

from .. import __version__
from ..findings import INTERNAL_ERROR, PARSE_ERROR, Finding

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"

# The codes the engine reports itself have no rule page; these lines stand in for one.
ENGINE_HELP = {
    PARSE_ERROR: "The file does not parse as Python: the finding gives the parser's message. "
                 "Linting goes on with the other files.",
    INTERNAL_ERROR: "A rule crashed on this file (a bug in nnlint, not in your code): the file "
                    "was linted again without that rule.",
}


def _level(severity: str) -> str:
    return "error" if severity == "error" else "warning"


def _descriptors() -> List[Dict[str, object]]:
    from ..docs import render_page
    from ..rules import ALL_RULES
    descriptors = [{
        "id": code, "name": name,
        "shortDescription": {"text": help_text.split(". ")[0].rstrip(".") + "."},
        "fullDescription": {"text": help_text},
        "help": {"text": help_text, "markdown": help_text},
        "defaultConfiguration": {"level": "error"},
    } for (code, name), help_text in ENGINE_HELP.items()]
    for rule in ALL_RULES:
        page = render_page(rule)
        descriptors.append({
            "id": rule.code, "name": rule.name,
            "shortDescription": {"text": " ".join(rule.what.split())},
            "fullDescription": {"text": " ".join(f"{rule.what} {rule.why}".split())},
            "help": {"text": page, "markdown": page},
            "defaultConfiguration": {"level": _level(rule.severity)},
        })
    return sorted(descriptors, key=lambda d: d["id"])


def _uri(path: str) -> str:
    """A relative path stays relative (the consumer resolves it against the repository)."""
    if os.path.isabs(path):
        return Path(path).as_uri()
    return quote(path.replace(os.sep, "/"))


def render_sarif(findings: Sequence[Finding], colour: bool = False) -> str:
    descriptors = _descriptors()
    index = {d["id"]: i for i, d in enumerate(descriptors)}
    results = [{
        "ruleId": f.code,
        "ruleIndex": index[f.code],
        "level": _level(f.severity),
        "message": {"text": f.message},
        "locations": [{"physicalLocation": {
            "artifactLocation": {"uri": _uri(f.path)},
            "region": {"startLine": f.line, "startColumn": f.column},
        }}],
    } for f in findings]
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "nnlint", "version": __version__,
                                "rules": descriptors}},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    }
    return json.dumps(log, indent=2)

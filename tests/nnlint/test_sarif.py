"""SARIF 2.1.0 output, validated against the official schema (tests/data/sarif-2.1.0.json)."""
import json
from pathlib import Path

import pytest

from nnlint.cli import main
from nnlint.docs import render_page
from nnlint.rules import ALL_RULES

SCHEMA = Path(__file__).resolve().parents[1] / "data" / "sarif-2.1.0.json"
FORWARD = "def d(f, x, h=1e-5):\n    return (f(x + h) - f(x)) / h\n"
SAMPLING = "import numpy as np\nlr = np.random.uniform(1e-6, 1e-2)\n"


def sarif(capsys, *args):
    code = main(["--format", "sarif", "--no-cache", *args])
    return code, json.loads(capsys.readouterr().out)


def validate(log):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(log)


def test_sarif_is_valid_and_locates_every_finding(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "train file.py").write_text(SAMPLING + FORWARD)
    (tmp_path / "broken.py").write_text("def f(:\n")
    code, log = sarif(capsys, ".")
    validate(log)
    assert code == 1 and log["version"] == "2.1.0"
    (run,) = log["runs"]
    rules = run["tool"]["driver"]["rules"]
    places = [r["locations"][0]["physicalLocation"] for r in run["results"]]
    found = [(r["ruleId"], rules[r["ruleIndex"]]["id"], r["level"],
              place["artifactLocation"]["uri"], place["region"]["startLine"],
              place["region"]["startColumn"]) for r, place in zip(run["results"], places)]
    assert found == [("NN000", "NN000", "error", "broken.py", 1, 7),
                     ("NN302", "NN302", "warning", "pkg/train%20file.py", 2, 6),
                     ("NN102", "NN102", "error", "pkg/train%20file.py", 4, 12)]
    assert run["columnKind"] == "unicodeCodePoints"


def test_every_rule_is_described_with_its_page(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "clean.py").write_text("x = 1\n")
    code, log = sarif(capsys, "clean.py")
    validate(log)
    assert code == 0 and log["runs"][0]["results"] == []
    described = {r["id"]: r for r in log["runs"][0]["tool"]["driver"]["rules"]}
    assert sorted(described) == sorted(["NN000", "NN999", *(rule.code for rule in ALL_RULES)])
    for rule in ALL_RULES:
        entry = described[rule.code]
        assert entry["name"] == rule.name and entry["help"]["markdown"] == render_page(rule)
        assert entry["defaultConfiguration"]["level"] == ("error" if rule.severity == "error"
                                                         else "warning")

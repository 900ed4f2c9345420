"""The README's main job on the bundled example: nnlint is clean and pytest --nncheck passes."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "digits"


def test_example_is_lint_clean():
    done = subprocess.run([sys.executable, "-m", "nnlint", "."], cwd=EXAMPLE, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_example_suite_passes_under_nncheck(tmp_path):
    pytest.importorskip("sklearn")
    report = tmp_path / "nncheck.json"
    done = subprocess.run([sys.executable, "-m", "pytest", "--nncheck", "-q", "-p", "no:cacheprovider",
                           "--nncheck-report", str(report)], cwd=EXAMPLE, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "8 passed" in done.stdout
    layers = {r["layer"]: r["outcome"] for r in json.loads(report.read_text())["checks"]}
    assert layers == {"digits.layers.SwishFunction": "passed", "digits.layers.SwishBlock": "passed",
                      "digits.layers.DigitsNet": "passed"}


def test_example_training_script_runs():
    pytest.importorskip("sklearn")
    done = subprocess.run([sys.executable, "-m", "digits.train", "--trials", "1", "--epochs", "2"],
                          cwd=EXAMPLE, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "test accuracy=" in done.stdout

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
    assert "14 passed" in done.stdout
    records = json.loads(report.read_text())["checks"]
    checks = {(r["layer"], r["kind"]): r["outcome"] for r in records if r["layer"]}
    assert checks == {
        ("digits.layers.SwishFunction", "gradients"): "passed",
        ("digits.layers.SwishBlock", "gradients"): "passed",
        ("digits.layers.DigitsNet", "gradients"): "passed",
        **{("digits.layers.DigitsNet", check): "passed" for check in (
            "initial_loss", "overfit", "batch_independence", "baseline", "parameters_update",
            "training")}}


def test_example_training_script_runs():
    pytest.importorskip("sklearn")
    done = subprocess.run([sys.executable, "-m", "digits.train", "--trials", "1", "--epochs", "2"],
                          cwd=EXAMPLE, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "test accuracy=" in done.stdout

"""The nnlint engine and command line: exit codes, formats, config, noqa, robustness."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from nnlint import engine
from nnlint.cli import main
from nnlint.config import load_config
from nnlint.rules import ALL_RULES
from nnlint.rules.forward_difference import ForwardDifference

FORWARD = "def d(f, x, h=1e-5):\n    return (f(x + h) - f(x)) / h\n"
SAMPLING = "import numpy as np\nlr = np.random.uniform(1e-6, 1e-2)\n"
CLEAN = "def d(f, x, h=1e-5):\n    return (f(x + h) - f(x - h)) / (2 * h)\n"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_exit_codes(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "clean.py", CLEAN)
    write(tmp_path, "bad.py", FORWARD)
    assert run(capsys, "clean.py")[0] == 0
    assert run(capsys, "bad.py")[0] == 1
    code, _, err = run(capsys, "missing.py")
    assert code == 2 and "missing.py: no such file" in err
    with pytest.raises(SystemExit) as raised:
        main(["--format", "xml"])
    assert raised.value.code == 2


def test_default_output_is_one_line_per_finding_sorted(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "b.py", FORWARD)
    write(tmp_path, "a.py", SAMPLING + FORWARD)
    code, out, _ = run(capsys)
    lines = out.splitlines()
    assert code == 1
    assert [line.split(":")[0] for line in lines] == ["a.py", "a.py", "b.py"]
    assert lines[0].startswith("a.py:2:6: NN302 lr sampled uniformly")
    assert lines[1].startswith("a.py:4:12: NN102 one-sided difference")


def test_json_format_fields(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "bad.py", FORWARD)
    code, out, _ = run(capsys, "--format", "json", "bad.py")
    (finding,) = json.loads(out)
    assert code == 1
    assert finding == {"path": "bad.py", "line": 2, "column": 12, "code": "NN102",
                       "name": "forward-difference", "message": finding["message"],
                       "severity": "error"}
    assert run(capsys, "--format", "json", "bad.py", "--ignore", "NN1")[1].strip() == "[]"


def test_github_format(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "bad.py", SAMPLING)
    _, out, _ = run(capsys, "--format", "github", "bad.py")
    assert out.startswith("::warning file=bad.py,line=2,col=6,title=NN302 linear-scale-sampling::"
                          "NN302 lr sampled uniformly")


def test_select_and_ignore_take_codes_and_prefixes(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "both.py", SAMPLING + FORWARD)
    codes = lambda *a: [line.split()[1] for line in run(capsys, *a, "both.py")[1].splitlines()]
    assert codes() == ["NN302", "NN102"]
    assert codes("--select", "NN1") == ["NN102"]
    assert codes("--select", "NN302") == ["NN302"]
    assert codes("--ignore", "NN3") == ["NN102"]
    assert codes("--ignore", "NN102,NN302") == []


def test_pyproject_config_is_found_from_a_subfolder(tmp_path, capsys, monkeypatch):
    write(tmp_path, "pyproject.toml", '[tool.nnlint]\nignore = ["NN3"]\nexclude = ["generated"]\n')
    write(tmp_path, "pkg/train.py", SAMPLING + FORWARD)
    write(tmp_path, "pkg/generated/out.py", FORWARD)
    monkeypatch.chdir(tmp_path / "pkg")
    code, out, _ = run(capsys, ".")
    assert code == 1
    assert [line.split()[1] for line in out.splitlines()] == ["NN102"]
    assert "generated" not in out


def test_bad_config_is_a_usage_error(tmp_path, capsys, monkeypatch):
    write(tmp_path, "pyproject.toml", '[tool.nnlint]\nselect = "NN1"\nignore = 3\n')
    write(tmp_path, "a.py", CLEAN)
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "a.py")
    assert code == 2 and "ignore must be a list of strings" in err


def test_default_excludes_skip_virtualenvs(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, ".venv/lib/site.py", FORWARD)
    write(tmp_path, "build/lib/x.py", FORWARD)
    assert run(capsys, ".")[0] == 0


@pytest.mark.parametrize("comment, suppressed", [
    ("  # noqa", True), ("  # noqa: NN102", True), ("  # NOQA:NN102,NN302", True),
    ("  # noqa: NN1", True), ("  # noqa: NN302", False), ("  # not a noqa: E501", False),
])
def test_noqa_on_the_flagged_line(tmp_path, comment, suppressed):
    source = "def d(f, x, h=1e-5):\n    return (f(x + h) - f(x)) / h" + comment + "\n"
    findings = engine.lint_source(source, "x.py", ALL_RULES)
    assert (findings == []) is suppressed


def test_syntax_error_gives_nn000_and_linting_goes_on(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "broken.py", "def f(:\n    pass\n")
    write(tmp_path, "ok_but_bad.py", FORWARD)
    code, out, _ = run(capsys, ".")
    lines = out.splitlines()
    assert code == 1
    assert lines[0].startswith("broken.py:1:") and " NN000 cannot parse" in lines[0]
    assert lines[1].startswith("ok_but_bad.py:2:12: NN102")


def test_encodings_and_byte_order_mark(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    latin = "# -*- coding: latin-1 -*-\n# caf\xe9\n" + FORWARD
    (tmp_path / "latin.py").write_bytes(latin.encode("latin-1"))
    (tmp_path / "bom.py").write_bytes(b"\xef\xbb\xbf" + FORWARD.encode("utf-8"))
    code, out, _ = run(capsys, ".")
    assert code == 1
    assert [line.split(":")[:2] for line in out.splitlines()] == [["bom.py", "2"], ["latin.py", "4"]]


def test_a_crashing_rule_is_an_internal_error_for_that_file_only(tmp_path, monkeypatch):
    def explode(self, node):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(ForwardDifference, "visit_BinaryOperation", explode)
    findings = engine.lint_source(SAMPLING + FORWARD, "x.py", ALL_RULES)
    codes = [f.code for f in findings]
    assert "NN999" in codes and "NN302" in codes
    internal = next(f for f in findings if f.code == "NN999")
    assert "NN102 forward-difference" in internal.message and "ZeroDivisionError" in internal.message


def test_list_rules_and_explain(capsys):
    code, out, _ = run(capsys, "--list-rules")
    assert code == 0 and len(out.splitlines()) == len(ALL_RULES)
    assert out.splitlines()[0].startswith("NN101  gradcheck-float32")
    code, out, _ = run(capsys, "--explain", "NN301")
    assert code == 0 and out.startswith("# NN301 grid-search") and "Bergstra" in out
    assert run(capsys, "--explain", "NN777")[0] == 2


def test_parallel_run_gives_the_same_findings(tmp_path):
    for i in range(20):
        write(tmp_path, f"m{i:02d}.py", FORWARD if i % 2 else SAMPLING)
    config = load_config(tmp_path)
    sequential = engine.lint_paths([str(tmp_path)], config, jobs=1)
    parallel = engine.lint_paths([str(tmp_path)], config, jobs=2)
    assert parallel.findings == sequential.findings and len(sequential.findings) == 20
    assert parallel.files == 20


def test_nnlint_never_imports_torch(tmp_path):
    write(tmp_path, "train.py", "import torch\n" + FORWARD)
    code = ("import sys, nnlint.cli\nrc = nnlint.cli.main([sys.argv[1]])\n"
            "assert 'torch' not in sys.modules, 'torch imported'\nprint(rc)")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "train.py")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("1")


def test_console_script_runs_as_a_subprocess(tmp_path):
    write(tmp_path, "bad.py", FORWARD)
    done = subprocess.run([sys.executable, "-m", "nnlint", str(tmp_path / "bad.py")],
                          capture_output=True, text=True)
    assert done.returncode == 1 and "NN102" in done.stdout


def test_flake8_reports_the_same_findings(tmp_path):
    pytest.importorskip("flake8")
    target = write(tmp_path, "bad.py", SAMPLING + FORWARD)
    done = subprocess.run([sys.executable, "-m", "flake8", "--select", "NN", str(target)],
                          capture_output=True, text=True)
    lines = sorted(line.split(" ", 1)[0] + " " + line.split()[1] for line in done.stdout.splitlines())
    assert lines == [f"{target}:2:6: NN302", f"{target}:4:12: NN102"], done.stdout + done.stderr
    assert done.returncode == 1


def test_pre_commit_hook_runs_through_try_repo(tmp_path):
    pytest.importorskip("pre_commit")
    repo_root = Path(__file__).resolve().parents[2]
    project = tmp_path / "project"
    project.mkdir()
    write(project, "train.py", FORWARD)
    env = {**__import__("os").environ, "PRE_COMMIT_HOME": str(tmp_path / "cache"),
           "PIP_CONSTRAINT": str(write(tmp_path, "constraints.txt", "torch==2.13.0\n"))}
    git = lambda *a: subprocess.run(["git", *a], cwd=project, check=True, capture_output=True)
    git("init", "-q")
    git("add", "train.py")
    done = subprocess.run([sys.executable, "-m", "pre_commit", "try-repo", str(repo_root), "nnlint",
                           "--files", "train.py"], cwd=project, capture_output=True, text=True,
                          env=env, timeout=900)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "train.py:2:12: NN102" in done.stdout


def test_excludes_apply_below_the_folder_asked_for(tmp_path, capsys, monkeypatch):
    write(tmp_path, "env/lib/site-packages/torchish/nn/layer.py", FORWARD)
    write(tmp_path, "env/lib/site-packages/torchish/build/gen.py", FORWARD)
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "env/lib/site-packages/torchish")
    assert code == 1
    assert [line.split(":")[0] for line in out.splitlines()] == [
        "env/lib/site-packages/torchish/nn/layer.py"]

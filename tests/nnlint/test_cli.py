"""The nnlint engine and command line: exit codes, formats, config, noqa, robustness."""
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nnlint import engine, runner
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


def finding_lines(out: str):
    """The text format's lines without its closing summary."""
    lines = out.splitlines()
    assert lines and ("checked)" in lines[-1]), out
    return lines[:-1]


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
    lines = finding_lines(out)
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
    codes = lambda *a: [line.split()[1] for line in finding_lines(run(capsys, *a, "both.py")[1])]
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
    assert [line.split()[1] for line in finding_lines(out)] == ["NN102"]
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
    lines = finding_lines(out)
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
    assert [line.split(":")[:2] for line in finding_lines(out)] == [["bom.py", "2"], ["latin.py", "4"]]


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
    sequential = runner.lint_paths([str(tmp_path)], config, jobs=1)
    parallel = runner.lint_paths([str(tmp_path)], config, jobs=2)
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


def test_readme_pre_commit_snippet_installs_a_small_hook_without_torch():
    """The README's snippet, as written, from a fresh PRE_COMMIT_HOME: the real hook is installed
    (from this working tree), reports the finding, and ``pre-commit autoupdate`` pins a commit."""
    pytest.importorskip("pre_commit")
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "precommit_hook.py"
    done = subprocess.run([sys.executable, str(script), "--json"], capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    figures = json.loads(done.stdout.splitlines()[-1])
    assert figures["exit_codes"] == [1, 1]
    assert "train.py:2:12: NN102" in figures["hook_output"]
    assert not figures["torch_installed"] and figures["environment_mb"] < 100
    assert figures["autoupdate_exit_code"] == 0
    assert figures["rev_after_autoupdate"] == figures["clone_head"]


def test_excludes_apply_below_the_folder_asked_for(tmp_path, capsys, monkeypatch):
    write(tmp_path, "env/lib/site-packages/torchish/nn/layer.py", FORWARD)
    write(tmp_path, "env/lib/site-packages/torchish/build/gen.py", FORWARD)
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "env/lib/site-packages/torchish")
    assert code == 1
    assert [line.split(":")[0] for line in finding_lines(out)] == [
        "env/lib/site-packages/torchish/nn/layer.py"]


def test_version(capsys):
    from nnlint import __version__
    with pytest.raises(SystemExit) as raised:
        main(["--version"])
    assert raised.value.code == 0 and capsys.readouterr().out == f"nnlint {__version__}\n"


def test_summary_line_closes_the_text_format(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "clean.py", CLEAN)
    assert run(capsys, "clean.py")[1] == "All checks passed (1 file checked)\n"
    write(tmp_path, "a.py", SAMPLING + FORWARD)
    write(tmp_path, "b.py", FORWARD)
    assert run(capsys, ".")[1].splitlines()[-1] == "3 findings in 2 files (3 files checked)"
    assert run(capsys, "b.py")[1].splitlines()[-1] == "1 finding in 1 file (1 file checked)"
    assert "checked" not in run(capsys, "--format", "json", "b.py")[1]


def test_statistics_count_findings_per_code(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "a.py", SAMPLING + FORWARD)
    write(tmp_path, "b.py", FORWARD)
    code, out, _ = run(capsys, "--statistics", ".")
    assert code == 1
    assert out.splitlines() == ["2  NN102  forward-difference", "1  NN302  linear-scale-sampling",
                                "3 findings in 2 files (2 files checked)"]
    code, _, err = run(capsys, "--statistics", "--format", "json", ".")
    assert code == 2 and "--statistics works with --format text only" in err


@pytest.mark.parametrize("args, pyproject, where", [
    (["--select", "NN777"], "", "'NN777' in --select"),
    (["--ignore", "NN1,XX"], "", "'XX' in --ignore"),
    ([], '[tool.nnlint]\nselect = ["NN10", "NN2O1"]\n', "'NN2O1' in [tool.nnlint] select"),
    ([], '[tool.nnlint]\nignore = ["E501"]\n', "'E501' in [tool.nnlint] ignore"),
    ([], '[tool.nnlint.per-file-ignores]\n"tests/*" = ["NN1", "NN1O2"]\n',
     "'NN1O2' in [tool.nnlint.per-file-ignores] 'tests/*'"),
])
def test_unknown_codes_are_usage_errors(tmp_path, capsys, monkeypatch, args, pyproject, where):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "pyproject.toml", pyproject)
    write(tmp_path, "a.py", FORWARD)
    code, out, err = run(capsys, *args, "a.py")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and f"unknown code {where}; valid codes: NN000, NN101" in err


def test_codes_are_case_insensitive_prefixes(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "a.py", SAMPLING + FORWARD)
    assert [line.split()[1] for line in finding_lines(run(capsys, "--select", "nn1", "a.py")[1])] \
        == ["NN102"]


def test_unknown_config_keys_are_usage_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "pyproject.toml", '[tool.nnlint]\nselct = ["NN1"]\n')
    write(tmp_path, "a.py", FORWARD)
    code, _, err = run(capsys, "a.py")
    assert code == 2 and err.count("\n") == 1
    assert "unknown key 'selct' in [tool.nnlint]; valid keys: exclude, ignore, per-file-ignores, " \
           "select" in err


def test_explain_takes_a_code_or_a_name(capsys):
    by_code = run(capsys, "--explain", "NN102")
    assert by_code[0] == 0 and by_code[1].startswith("# NN102 forward-difference")
    assert run(capsys, "--explain", "forward-difference") == by_code
    assert run(capsys, "--explain", "Forward-Difference") == by_code
    code, _, err = run(capsys, "--explain", "backward-difference")
    assert code == 2 and "unknown rule 'backward-difference'" in err and "NN102 forward-difference" in err


@pytest.mark.parametrize("args", [["."], ["--statistics", "."], ["--explain", "NN102"],
                                  ["--format", "sarif", "."]])
def test_a_closed_pipe_ends_quietly(tmp_path, args):
    write(tmp_path, "bad.py", FORWARD * 50)
    reader, writer = os.pipe()
    os.close(reader)  # the reader has gone before nnlint writes a byte
    try:
        done = subprocess.run([sys.executable, "-m", "nnlint", "--no-cache", *args], cwd=tmp_path,
                              stdout=writer, stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(writer)
    assert done.stderr == ""
    assert done.returncode == (0 if "--explain" in args else 1)


def test_head_reads_one_line_and_nnlint_exits_quietly(tmp_path):
    write(tmp_path, "bad.py", FORWARD * 600)  # 100 kB of findings: more than a pipe buffers
    command = f"{sys.executable} -m nnlint --no-cache bad.py | head -1"
    done = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.startswith("bad.py:2:12: NN102") and done.stdout.count("\n") == 1
    assert done.stderr == ""


def _stdin(monkeypatch, text: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode("utf-8"))))


def test_dash_reads_standard_input(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _stdin(monkeypatch, FORWARD)
    code, out, _ = run(capsys, "-")
    assert code == 1 and finding_lines(out)[0].startswith("-:2:12: NN102")
    _stdin(monkeypatch, FORWARD)
    code, out, _ = run(capsys, "--stdin-filename", "pkg/train.py", "-")
    assert code == 1 and finding_lines(out)[0].startswith("pkg/train.py:2:12: NN102")
    assert run(capsys, "--stdin-filename", "x.py", "a.py")[0] == 2


def test_stdin_filename_is_matched_by_config_excludes_and_per_file_ignores(tmp_path, capsys,
                                                                           monkeypatch):
    write(tmp_path, "pyproject.toml", '[tool.nnlint]\nexclude = ["generated"]\n'
          '[tool.nnlint.per-file-ignores]\n"scripts/*" = ["NN1"]\n')
    monkeypatch.chdir(tmp_path)
    for name, expected in [("generated/model.py", 0), ("scripts/train.py", 0), ("train.py", 1)]:
        _stdin(monkeypatch, FORWARD)
        assert run(capsys, "--stdin-filename", name, "-")[0] == expected, name


def test_per_file_ignores(tmp_path, capsys, monkeypatch):
    write(tmp_path, "pyproject.toml", '[tool.nnlint.per-file-ignores]\n'
          '"tests/*" = ["NN1"]\n"__init__.py" = ["NN302"]\n"**/legacy/*.py" = ["NN"]\n'
          '"scripts/" = ["NN102"]\n')
    for name in ("tests/test_a.py", "tests/deep/test_b.py", "pkg/__init__.py", "pkg/model.py",
                 "legacy/old.py", "pkg/legacy/old.py", "scripts/run.py"):
        write(tmp_path, name, SAMPLING + FORWARD)
    monkeypatch.chdir(tmp_path / "pkg")  # patterns are relative to the project root, not cwd
    code, out, _ = run(capsys, "..")
    found = sorted((line.split(":")[0], line.split()[1]) for line in finding_lines(out))
    assert code == 1
    assert found == [("../pkg/__init__.py", "NN102"), ("../pkg/model.py", "NN102"),
                     ("../pkg/model.py", "NN302"), ("../scripts/run.py", "NN302"),
                     ("../tests/deep/test_b.py", "NN302"), ("../tests/test_a.py", "NN302")]


def test_config_excludes_apply_to_files_named_explicitly(tmp_path, capsys, monkeypatch):
    write(tmp_path, "pyproject.toml", '[tool.nnlint]\nexclude = ["generated", "vendor/lib"]\n')
    for name in ("generated/model.py", "vendor/lib/x.py", "vendor/own.py", "build/train.py"):
        write(tmp_path, name, FORWARD)
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "generated/model.py", "vendor/lib/x.py", "vendor/own.py",
                       "build/train.py")
    assert code == 1
    # pre-commit names every changed file: configured excludes skip them; the default excludes
    # (virtualenvs, build folders) only prune folder walks, never a file asked for by name
    assert [line.split(":")[0] for line in finding_lines(out)] == ["build/train.py",
                                                                   "vendor/own.py"]
    assert out.splitlines()[-1] == "2 findings in 2 files (2 files checked)"
    assert run(capsys, "generated/model.py")[1] == "All checks passed (0 files checked)\n"


def test_flake8_plugin_honours_tool_nnlint(tmp_path):
    pytest.importorskip("flake8")
    write(tmp_path, "pyproject.toml", '[tool.nnlint]\nignore = ["NN3"]\nexclude = ["generated"]\n'
          '[tool.nnlint.per-file-ignores]\n"scripts/*" = ["NN102"]\n')
    for name in ("train.py", "generated/out.py", "scripts/run.py"):
        write(tmp_path, name, SAMPLING + FORWARD)
    done = subprocess.run([sys.executable, "-m", "flake8", "--select", "NN", "."], cwd=tmp_path,
                          capture_output=True, text=True)
    assert done.stdout.splitlines() == ["./train.py:4:12: NN102 " + done.stdout.split(" NN102 ")[1]
                                        .splitlines()[0]], done.stdout + done.stderr
    write(tmp_path, "pyproject.toml", '[tool.nnlint]\nignore = ["NN3O2"]\n')
    done = subprocess.run([sys.executable, "-m", "flake8", "--select", "NN", "train.py"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode != 0 and "unknown code 'NN3O2' in [tool.nnlint] ignore" in done.stderr

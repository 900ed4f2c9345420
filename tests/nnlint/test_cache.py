"""The result cache: reused only for the same bytes, rules and nnlint; shared; never fatal."""
import json
import subprocess
import sys

import pytest

from nnlint import cache as cache_module
from nnlint.cache import ResultCache
from nnlint.config import Config
from nnlint.runner import lint_paths

FORWARD = "def d(f, x, h=1e-5):\n    return (f(x + h) - f(x)) / h\n"
SAMPLING = "import numpy as np\nlr = np.random.uniform(1e-6, 1e-2)\n"


def tree(folder, count=6):
    """``count`` files with distinct contents (entries are keyed by content, not by name)."""
    folder.mkdir(exist_ok=True)
    for i in range(count):
        (folder / f"m{i}.py").write_text(f"# {i}\n" + (FORWARD if i % 2 else SAMPLING + FORWARD))
    return folder


def entries(folder):
    return sorted(p for p in folder.rglob("*.json") if p.name != "rules.json")


def test_a_second_run_reads_every_file_from_the_cache(tmp_path):
    project = tree(tmp_path / "project")
    store = ResultCache(tmp_path / "cache")
    first = lint_paths([str(project)], Config(root=project), jobs=1, cache=store)
    second = lint_paths([str(project)], Config(root=project), jobs=1, cache=store)
    assert (first.cached, second.cached) == (0, 6)
    assert second.findings == first.findings and len(first.findings) == 9
    assert len(entries(tmp_path / "cache")) == 6


def test_an_edited_file_is_linted_again(tmp_path):
    project = tree(tmp_path / "project")
    store = ResultCache(tmp_path / "cache")
    lint_paths([str(project)], Config(root=project), jobs=1, cache=store)
    (project / "m1.py").write_text(SAMPLING)
    again = lint_paths([str(project)], Config(root=project), jobs=1, cache=store)
    assert again.cached == 5
    assert [f.code for f in again.findings if f.path.endswith("m1.py")] == ["NN302"]


def test_results_are_keyed_by_the_rules_run(tmp_path):
    project = tree(tmp_path / "project", 2)
    store = ResultCache(tmp_path / "cache")
    narrow = lint_paths([str(project)], Config(root=project, select=["NN1"]), cache=store)
    wide = lint_paths([str(project)], Config(root=project), cache=store)
    assert wide.cached == 0 and {f.code for f in narrow.findings} == {"NN102"}
    assert {f.code for f in wide.findings} == {"NN102", "NN302"}


def test_another_nnlint_does_not_read_these_results(tmp_path, monkeypatch):
    before = cache_module.fingerprint()
    monkeypatch.setattr(cache_module, "__version__", "0.0.0-other")
    assert cache_module.fingerprint() != before


def test_corrupted_entries_are_misses_and_rewritten(tmp_path):
    project = tree(tmp_path / "project")
    store = ResultCache(tmp_path / "cache")
    expected = lint_paths([str(project)], Config(root=project), jobs=1, cache=store).findings
    spoiled = entries(tmp_path / "cache")
    for path, garbage in zip(spoiled, ["{not json", "", '{"a": 1}', "[[1, 2]]",
                                       '[[1, 1, 2, "n", "m", "s"]]', "\x00\xff"]):
        path.write_text(garbage, encoding="latin-1")
    (tmp_path / "cache" / store.folder.name / "rules.json").write_text("[]")
    again = lint_paths([str(project)], Config(root=project), jobs=1, cache=store)
    assert again.findings == expected and again.cached == 0
    assert all(isinstance(json.loads(p.read_text()), list) for p in entries(tmp_path / "cache"))


def test_an_unwritable_cache_never_fails_a_lint(tmp_path):
    project = tree(tmp_path / "project", 2)
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the folder should be")
    result = lint_paths([str(project)], Config(root=project), cache=ResultCache(blocker))
    assert len(result.findings) == 3 and not result.errors


def test_cache_folder_is_marked_and_ignored_by_git(tmp_path):
    project = tree(tmp_path / "project", 1)
    lint_paths([str(project)], Config(root=project), cache=ResultCache(tmp_path / "cache"))
    assert (tmp_path / "cache" / ".gitignore").read_text().strip().endswith("*")
    assert (tmp_path / "cache" / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28")


def _nnlint(project, *args):
    return subprocess.Popen([sys.executable, "-m", "nnlint", "--no-color", *args, "."],
                            cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_the_cli_caches_in_the_project_root_and_no_cache_skips_it(tmp_path):
    project = tree(tmp_path)
    (project / "pyproject.toml").write_text("[tool.nnlint]\n")
    (project / "sub").mkdir()
    done = subprocess.run([sys.executable, "-m", "nnlint", "--no-cache", "."], cwd=project / "sub",
                          capture_output=True, text=True)
    assert done.returncode == 0 and not (project / ".nnlint_cache").exists()
    first = _nnlint(project).communicate()
    assert len(entries(project / ".nnlint_cache")) == 6
    code = ("import sys, nnlint.cli\nrc = nnlint.cli.main(['.'])\n"
            "assert 'libcst' not in sys.modules, 'LibCST imported on a cached run'\nsys.exit(rc)")
    cached = subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True,
                            text=True)
    assert cached.returncode == 1, cached.stderr
    assert cached.stdout == first[0]


def test_processes_sharing_a_cache_agree(tmp_path):
    project = tree(tmp_path, 40)
    runs = [_nnlint(project, "-j", "1") for _ in range(3)]
    outputs = [run.communicate() for run in runs]
    assert [run.returncode for run in runs] == [1, 1, 1]
    assert outputs[0][0] == outputs[1][0] == outputs[2][0] and outputs[0][0].count("NN102") == 40
    assert all(err == "" for _, err in outputs)
    folder = project / ".nnlint_cache"
    assert len(entries(folder)) == 40 and not list(folder.rglob("*.tmp"))


@pytest.mark.parametrize("flag", ["--no-cache", None])
def test_cached_and_uncached_runs_print_the_same(tmp_path, flag):
    project = tree(tmp_path)
    args = [flag] if flag else []
    outputs = {_nnlint(project, *args).communicate()[0] for _ in range(2)}
    assert len(outputs) == 1

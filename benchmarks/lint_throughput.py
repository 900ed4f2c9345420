"""nnlint's speed against LibCST parse-only, TorchFix and flake8, on one real corpus.

    python benchmarks/lint_throughput.py [--corpus PATH ...] [--jobs N] [--survey]

The default corpus is part of the installed torch package (nn, optim, autograd, utils/data).
TorchFix (`pip install torchfix`) and flake8 run as subprocesses when installed; flake8 is run
with nnlint's plugin selected (`--select E,F,W,C90,NN`), as a flake8 user would. --survey lints
the whole torch package and the Python standard library and counts findings per code.
"""
from __future__ import annotations

import argparse
import collections
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import List

import libcst

from nnlint.config import Config
from nnlint.engine import decode, lint_paths


def _torch_root() -> Path:
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("torch is not installed: pass --corpus PATH")
    return Path(list(spec.submodule_search_locations)[0])


def _files(paths: List[Path]) -> List[Path]:
    found = []
    for path in paths:
        found += [path] if path.is_file() else sorted(path.rglob("*.py"))
    return found


def _parse_only(files: List[Path]) -> float:
    start = time.perf_counter()
    for path in files:
        try:
            libcst.parse_module(decode(path.read_bytes()))
        except libcst.ParserSyntaxError:
            pass
    return time.perf_counter() - start


def _nnlint(paths: List[Path], jobs: int) -> float:
    config = Config(root=paths[0], exclude=[])
    start = time.perf_counter()
    lint_paths([str(p) for p in paths], config, jobs=jobs)
    return time.perf_counter() - start


def _subprocess(command: List[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def _startup() -> float:
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "train.py"
        target.write_text("import torch\n\ndef d(f, x, h=1e-5):\n    return (f(x + h) - f(x)) / h\n")
        command = [sys.executable, "-m", "nnlint", str(target)]
        if shutil.which("nnlint"):
            command = [shutil.which("nnlint"), str(target)]
        _subprocess(command)
        return statistics.median(_subprocess(command) for _ in range(10))


def _survey(jobs: int) -> None:
    roots = [_torch_root(), Path(sysconfig.get_paths()["stdlib"])]
    for root in roots:
        files = _files([root])
        start = time.perf_counter()
        result = lint_paths([str(root)], Config(root=root, exclude=["site-packages"]), jobs=jobs)
        seconds = time.perf_counter() - start
        counts = collections.Counter(f.code for f in result.findings)
        print(f"\n{root}: {result.files} files ({len(files)} .py under it), {seconds:.1f} s")
        print("  findings per code: " + (", ".join(f"{c} {n}" for c, n in sorted(counts.items()))
                                         or "none"))
        print(f"  internal errors (NN999): {counts.get('NN999', 0)}")
        for finding in result.findings:
            if finding.code != "NN000":
                print(f"  {finding.path}:{finding.line}:{finding.column}: {finding.code} "
                      f"{finding.message[:100]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", nargs="*", type=Path)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--survey", action="store_true")
    args = parser.parse_args()
    if args.survey:
        _survey(args.jobs)
        return
    root = _torch_root()
    paths = args.corpus or [root / "nn", root / "optim", root / "autograd", root / "utils" / "data"]
    files = _files(paths)
    lines = sum(path.read_bytes().count(b"\n") for path in files)
    print(f"corpus: {len(files)} files, {lines} lines ({', '.join(str(p) for p in paths)})")
    results = {"LibCST parse-only (1 process)": _parse_only(files),
               "nnlint (1 process)": _nnlint(paths, 1),
               f"nnlint ({args.jobs} processes)": _nnlint(paths, args.jobs)}
    if importlib.util.find_spec("torchfix") is not None:
        command = [sys.executable, "-m", "torchfix"]
        results["TorchFix (1 process)"] = _subprocess(command + ["-j", "1", *map(str, paths)])
        results[f"TorchFix ({args.jobs} processes)"] = _subprocess(
            command + ["-j", str(args.jobs), *map(str, paths)])
    else:
        print("TorchFix not installed: skipped (pip install torchfix)")
    if importlib.util.find_spec("flake8") is not None:
        command = [sys.executable, "-m", "flake8", "--select", "E,F,W,C90,NN"]
        results["flake8 + nnlint plugin (1 process)"] = _subprocess(
            command + ["--jobs", "1", *map(str, paths)])
    print(f"\n{'tool':40} {'seconds':>8} {'lines/s':>10}")
    for name, seconds in results.items():
        print(f"{name:40} {seconds:>8.2f} {lines / seconds:>10.0f}")
    single = results["nnlint (1 process)"]
    print(f"\nnnlint / LibCST parse-only throughput: {results['LibCST parse-only (1 process)'] / single:.2f}")
    if "TorchFix (1 process)" in results:
        print(f"nnlint / TorchFix throughput (1 process): {results['TorchFix (1 process)'] / single:.1f}x")
    floor = statistics.median(_subprocess([sys.executable, "-c", "import libcst"])
                              for _ in range(10))
    print(f"start-up, nnlint on one file (median of 10): {_startup():.3f} s "
          f"(python -c 'import libcst' alone: {floor:.3f} s)")


if __name__ == "__main__":
    main()

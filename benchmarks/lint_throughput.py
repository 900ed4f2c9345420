"""nnlint's speed against LibCST parse-only, TorchFix and flake8: throughput, cache, start-up.

    python benchmarks/lint_throughput.py [--corpus PATH ...] [--torchfix PYTHON] [--reps N]
    python benchmarks/lint_throughput.py --survey

Without --corpus the corpus is part of the installed torch package (nn, optim, autograd,
utils/data); pass a folder of real training code (e.g. the repositories listed in
benchmarks/training_corpus.txt) to measure that instead.

1. Throughput on one core: for every file, LibCST's parse alone (read, decode, parse) and
   nnlint's whole lint of the same bytes (parse, every rule, positions) run alternately, each
   ``--reps`` times; the fastest of each counts, in CPU time of this process, so other load on the
   machine inflates neither side. The ratio is what the ">= 0.8x LibCST's parse-only throughput"
   target reads.
2. The result cache: the nnlint command on the corpus with an empty cache, then again unchanged.
3. Start-up: ``nnlint one_file.py`` (median of 10, with and without the cache), beside
   ``python -c "import libcst"``, its floor when the file has to be linted.
4. TorchFix (``--torchfix`` names an interpreter that has it: it pins LibCST < 1.6) and flake8
   with nnlint's plugin, as subprocesses, wall time, on the same corpus.

--survey lints the whole torch package and the Python standard library and counts findings.
"""
from __future__ import annotations

import argparse
import collections
import importlib.metadata
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
from typing import Callable, Dict, List, Optional, Tuple

import libcst

from nnlint.config import Config
from nnlint.engine import decode, lint_bytes, selected_rules
from nnlint.runner import lint_paths

TARGET_PARSE_RATIO = 0.8  # issue 10: nnlint >= 0.8x LibCST's parse-only throughput, one core
TARGET_CACHE_SPEEDUP = 10  # re-linting an unchanged tree >= 10x faster than a cold run
TARGET_STARTUP_S = 0.25  # `nnlint one_file.py` median


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


def _cpu_seconds(action: Callable[[], object]) -> float:
    start = time.process_time()
    action()
    return time.process_time() - start


def _parse(data: bytes) -> None:
    try:
        libcst.parse_module(decode(data))
    except (libcst.ParserSyntaxError, SyntaxError, UnicodeDecodeError):
        pass


def throughput(files: List[Path], reps: int) -> Tuple[float, float]:
    """CPU seconds of (LibCST parse-only, nnlint lint) over ``files``, interleaved per file."""
    rules = selected_rules(Config())
    parse_total = lint_total = 0.0
    for path in files:
        data = path.read_bytes()
        parse_times, lint_times = [], []
        for _ in range(reps):
            parse_times.append(_cpu_seconds(lambda: _parse(data)))
            lint_times.append(_cpu_seconds(lambda: lint_bytes(data, str(path), rules)))
        parse_total += min(parse_times)
        lint_total += min(lint_times)
    return parse_total, lint_total


def _wall(command: List[str], cwd: Optional[Path] = None) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def _nnlint_command() -> List[str]:
    installed = shutil.which("nnlint")
    return [installed] if installed else [sys.executable, "-m", "nnlint"]


def cache_speedup(paths: List[Path], jobs: int) -> Tuple[float, float]:
    """Wall seconds of the nnlint command on ``paths``: empty cache, then unchanged."""
    with tempfile.TemporaryDirectory() as folder:
        command = [*_nnlint_command(), "--cache-dir", folder, "-j", str(jobs), *map(str, paths)]
        return _wall(command), _wall(command)


def startup() -> Dict[str, float]:
    """Median wall seconds of ``nnlint one_file.py`` (cached, and --no-cache), and of
    ``import libcst``."""
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "train.py"
        target.write_text("import torch\n\ndef d(f, x, h=1e-5):\n"
                          "    return (f(x + h) - f(x)) / h\n")
        command = [*_nnlint_command(), str(target)]
        _wall(command, cwd=Path(folder))
        return {
            "cached": statistics.median(_wall(command, cwd=Path(folder)) for _ in range(10)),
            "no cache": statistics.median(_wall([*command, "--no-cache"], cwd=Path(folder))
                                          for _ in range(10)),
            "import libcst": statistics.median(_wall([sys.executable, "-c", "import libcst"])
                                               for _ in range(10)),
        }


def other_tools(paths: List[Path], jobs: int, torchfix: Optional[str]) -> Dict[str, float]:
    """Wall seconds of each tool's command on ``paths``, nnlint's without its cache."""
    results = {"nnlint (1 process)": _wall([*_nnlint_command(), "--no-cache", "-j", "1",
                                            *map(str, paths)])}
    if torchfix:
        command = [torchfix, "-m", "torchfix"]
        results["TorchFix (1 process)"] = _wall(command + ["-j", "1", *map(str, paths)])
        results[f"TorchFix ({jobs} processes)"] = _wall(
            command + ["-j", str(jobs), *map(str, paths)])
    else:
        print("TorchFix: skipped (pip install torchfix in a separate virtualenv, pass --torchfix)")
    if importlib.util.find_spec("flake8") is not None:
        command = [sys.executable, "-m", "flake8", "--select", "E,F,W,C90,NN", "--jobs", "1"]
        results["flake8 + nnlint plugin (1 process)"] = _wall(command + list(map(str, paths)))
    return results


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


def _default_torchfix() -> Optional[str]:
    return sys.executable if importlib.util.find_spec("torchfix") is not None else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", nargs="*", type=Path)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--torchfix", default=_default_torchfix(),
                        help="a Python interpreter with torchfix installed")
    parser.add_argument("--survey", action="store_true")
    args = parser.parse_args()
    if args.survey:
        _survey(args.jobs)
        return
    if args.corpus:
        paths = args.corpus
    else:
        root = _torch_root()
        paths = [root / "nn", root / "optim", root / "autograd", root / "utils" / "data"]
    files = _files(paths)
    lines = sum(path.read_bytes().count(b"\n") for path in files)
    print(f"corpus: {len(files)} files, {lines} lines ({', '.join(str(p) for p in paths)}); "
          f"LibCST {importlib.metadata.version('libcst')}")

    parse_s, lint_s = throughput(files, args.reps)
    print(f"\n1. one core, CPU seconds, fastest of {args.reps} per file")
    print(f"{'LibCST parse-only':40} {parse_s:>8.2f} s {lines / parse_s:>10.0f} lines/s")
    print(f"{'nnlint (every rule)':40} {lint_s:>8.2f} s {lines / lint_s:>10.0f} lines/s")
    print(f"nnlint / LibCST parse-only throughput: {parse_s / lint_s:.2f} "
          f"(target >= {TARGET_PARSE_RATIO})")

    cold, warm = cache_speedup(paths, args.jobs)
    print(f"\n2. nnlint command, {args.jobs} processes, wall seconds")
    print(f"{'empty cache':40} {cold:>8.2f} s {lines / cold:>10.0f} lines/s")
    print(f"{'unchanged tree, cached':40} {warm:>8.2f} s {lines / warm:>10.0f} lines/s")
    print(f"cache speed-up: {cold / warm:.1f}x (target >= {TARGET_CACHE_SPEEDUP}x)")

    print("\n3. other tools, wall seconds")
    for name, seconds in other_tools(paths, args.jobs, args.torchfix).items():
        print(f"{name:40} {seconds:>8.2f} s {lines / seconds:>10.0f} lines/s")

    times = startup()
    print(f"\n4. start-up, nnlint on one file, median of 10: {times['cached']:.3f} s cached, "
          f"{times['no cache']:.3f} s with --no-cache (target <= {TARGET_STARTUP_S} s); "
          f"python -c 'import libcst' alone: {times['import libcst']:.3f} s")


if __name__ == "__main__":
    main()

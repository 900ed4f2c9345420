"""How many layers of real libraries ``pytest --nncheck`` checks by inference alone.

    pip install -c benchmarks/constraints.txt kornia x-transformers monai torch-geometric
    python benchmarks/real_libraries.py [--library NAME ...] [--json PATH] [--check-timeout S]

The script installs nothing: libraries that are not installed are reported and left out. It
scans the layer modules of each library (packages recursively, as ``nncheck_modules`` does),
builds an example for every layer with nothing registered (inference alone), runs
``check_gradients`` on each inferred example, and prints per library and in total: layers
collected, examples inferred (share of collected), how the checks ended (passed / failed /
inconclusive / error / timed out) and seconds; then the most common reasons a layer was skipped.
A check that runs past ``--check-timeout`` seconds (60) is stopped and counted as timed out.
``--json PATH`` writes one record per layer (library, layer, inferred or why not, example,
verdict, seconds to build the example and to check it) for study.

timm and torchvision.ops are not scanned: PyPI's torchvision does not import beside the CPU build
of torch pinned in ``benchmarks/constraints.txt``.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import importlib.util
import inspect
import json
import re
import signal
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Iterator, List, Optional, Sequence, Tuple

from pytest_nncheck import CannotBuild, build_example, check_gradients, find_layers
from pytest_nncheck.discovery import source
from pytest_nncheck.reports import format_table

# Reasons shown under the tables.
TOP_REASONS = 12
VERDICTS = ("passed", "failed", "inconclusive", "error", "timed out")


@dataclass(frozen=True)
class Library:
    """A distribution and the modules of it that hold layers (what nncheck_modules would list)."""

    name: str
    package: str
    modules: Tuple[str, ...]


LIBRARIES = (
    Library("kornia", "kornia", ("kornia.filters", "kornia.color", "kornia.enhance",
                                 "kornia.losses", "kornia.geometry.transform")),
    Library("x-transformers", "x_transformers", ("x_transformers",)),
    Library("monai", "monai", ("monai.networks.blocks", "monai.networks.layers")),
    Library("torch-geometric", "torch_geometric", ("torch_geometric.nn.conv",)),
)


@dataclass
class Record:
    """One layer: whether an example was inferred (or why not), and how its check ended."""

    library: str
    layer: str
    inferred: bool
    reason: Optional[str] = None
    example: Optional[str] = None
    verdict: Optional[str] = None
    detail: Optional[str] = None  # the report's verdict word or the error's first line
    build_seconds: float = 0.0
    check_seconds: float = 0.0
    missing: List[str] = field(default_factory=list)
    last_error: Optional[str] = None


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0][:200] if lines else ''}"


class TimedOut(BaseException):
    """A check ran past the time limit (a BaseException, so that no `except Exception` in the
    layer or the checker turns it into an ordinary error)."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise TimedOut in the block after ``seconds`` (between Python bytecodes)."""
    def expire(signum, frame):
        raise TimedOut(f"stopped after {seconds:g} s")
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def check_layer(library: str, layer, timeout: float) -> Record:
    start = time.perf_counter()
    record = Record(library, layer.qualified, inferred=False)
    try:
        example = build_example(layer, {}, seed=0)
    except CannotBuild as reason:
        record.reason, record.missing = str(reason), list(reason.missing)
        record.last_error = reason.last_error
    except Exception as error:  # an error inside nncheck itself: shown, never hidden
        record.reason = f"nncheck error while building: {_first_line(error)}"
    else:
        record.inferred, record.example = True, example.description
    built = time.perf_counter()
    record.build_seconds = round(built - start, 4)
    if not record.inferred:
        return record
    try:
        with time_limit(timeout):
            report = check_gradients(example.fn, *example.inputs, seed=0,
                                     **example.gradient_options)
    except TimedOut as error:
        record.verdict, record.detail = "timed out", str(error)
    except Exception as error:  # NNCheckError for bad input, anything from the layer
        record.verdict, record.detail = "error", _first_line(error)
    else:
        record.detail = report.verdict
        record.verdict = report.verdict if report.verdict in VERDICTS else "failed"
    record.check_seconds = round(time.perf_counter() - built, 4)
    return record


def locating_seconds(layers: Sequence) -> Tuple[float, float]:
    """Seconds to find every layer's class line with ``inspect.getsourcelines`` (a parse of the
    file per class) and with ``Layer.line`` (one parse per file, from a cold cache)."""
    start = time.perf_counter()
    for layer in layers:
        try:
            inspect.getsourcelines(layer.cls)
        except (OSError, TypeError):
            pass
    inspected = time.perf_counter() - start
    source._index.cache_clear()
    start = time.perf_counter()
    for layer in layers:
        layer.line
    return inspected, time.perf_counter() - start


def scan(library: Library, timeout: float) -> Tuple[List[Record], float, List[str]]:
    """The records of one library, the seconds its modules took to import and scan, and errors."""
    start = time.perf_counter()
    layers, errors, seen = [], [], set()
    for module in library.modules:
        try:
            found = find_layers(module)
        except ImportError as error:
            errors.append(f"{module}: {error}")
            continue
        for layer in found:
            if layer.cls not in seen:
                seen.add(layer.cls)
                layers.append(layer)
    scanned = time.perf_counter() - start
    inspected, indexed = locating_seconds(layers)
    print(f"{library.name}: {len(layers)} layers from {', '.join(library.modules)}; class lines "
          f"located in {inspected:.2f} s by inspect.getsourcelines, {indexed:.2f} s with one "
          f"parse per file", flush=True)
    return [check_layer(library.name, layer, timeout) for layer in layers], scanned, errors


def _share(part: int, whole: int) -> str:
    return f"{part} ({100 * part / whole:.0f}%)" if whole else "0"


def summary_row(name: str, records: Sequence[Record], scanned: float) -> List[str]:
    inferred = [r for r in records if r.inferred]
    counts = collections.Counter(r.verdict for r in inferred)
    verdict_reached = len(inferred) - counts["error"] - counts["timed out"]
    return [name, str(len(records)), _share(len(inferred), len(records)),
            _share(verdict_reached, len(records)), *(str(counts[v]) for v in VERDICTS),
            f"{scanned:.1f}", f"{sum(r.build_seconds for r in records):.1f}",
            f"{sum(r.check_seconds for r in records):.1f}"]


def reason_key(record: Record) -> str:
    """A skip reason grouped with its kind: a missing argument by name, an error without numbers."""
    if record.missing:
        return f"needs {', '.join(record.missing)}"
    text = record.last_error or record.reason or ""
    return "no candidate ran: " + re.sub(r"\d+", "N", text)[:90]


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--library", action="append", choices=[lib.name for lib in LIBRARIES],
                        help="only this library (repeatable)")
    parser.add_argument("--json", metavar="PATH", help="write one record per layer to PATH")
    parser.add_argument("--check-timeout", metavar="S", type=float, default=60.0,
                        help="stop a gradient check after S seconds (default 60)")
    options = parser.parse_args(argv)
    chosen = [lib for lib in LIBRARIES if not options.library or lib.name in options.library]
    rows, records, errors = [], [], []
    for library in chosen:
        if importlib.util.find_spec(library.package) is None:
            print(f"{library.name}: not installed (pip install -c benchmarks/constraints.txt "
                  f"{library.name})")
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found, scanned, failed = scan(library, options.check_timeout)
        records += found
        errors += failed
        rows.append(summary_row(library.name, found, scanned))
    if not rows:
        return
    scanned_total = sum(float(row[-3]) for row in rows)
    rows.append(summary_row("total", records, scanned_total))
    print()
    print(format_table(["library", "layers", "inferred", "to a verdict", *VERDICTS,
                        "scan s", "build s", "check s"], rows))
    for error in errors:
        print(f"import error: {error}")
    skipped = collections.Counter(reason_key(r) for r in records if not r.inferred)
    print(f"\ntop reasons for a skip ({sum(skipped.values())} layers):")
    for reason, count in skipped.most_common(TOP_REASONS):
        print(f"{count:4d}  {reason}")
    failures = collections.Counter(r.detail for r in records if r.verdict == "error")
    if failures:
        print(f"\ntop errors of inferred examples ({sum(failures.values())} layers):")
        for detail, count in failures.most_common(TOP_REASONS):
            print(f"{count:4d}  {re.sub(r'[0-9]+', 'N', detail)[:110]}")
    if options.json:
        with open(options.json, "w", encoding="utf-8") as out:
            json.dump({"layers": [asdict(r) for r in records]}, out, indent=1)


if __name__ == "__main__":
    main()

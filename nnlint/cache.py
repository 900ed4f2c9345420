"""Results of earlier runs, keyed by what decides them: the file's bytes, the rules run and nnlint.

An entry is one small JSON file named by the SHA-256 of (nnlint's fingerprint, the rule codes run,
the file's content); the fingerprint changes with nnlint's version and any edit to its own
sources, LibCST's installation and the Python version, so a stale result is never read. Entries
are written to a temporary file and renamed into place, so several processes can share the folder;
an entry that cannot be read or parsed is a miss (and is rewritten). A folder that cannot be
written disables caching silently: the cache never fails a lint.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from . import __version__

CACHE_FOLDER = ".nnlint_cache"

# Written on creation: backup and search tools skip the folder, and git ignores it without any
# .gitignore entry in the user's project (as pytest and ruff do for theirs).
_MARKERS = {
    "CACHEDIR.TAG": "Signature: 8a477f597d28d172789f06886806bc55\n"
                    "# This folder holds nnlint's result cache; see https://bford.info/cachedir/\n",
    ".gitignore": "# Created by nnlint\n*\n",
}


def fingerprint() -> str:
    """A digest of everything besides the file and the rules that decides nnlint's findings."""
    digest = hashlib.sha256(f"{__version__}\0{sys.version}".encode())
    package = Path(__file__).resolve().parent
    for path in sorted(package.rglob("*.py")):
        stat = path.stat()
        digest.update(f"\0{path.relative_to(package)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    spec = importlib.util.find_spec("libcst")
    if spec is not None and spec.origin:
        stat = os.stat(spec.origin)
        digest.update(f"\0{spec.origin}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:20]


class ResultCache:
    """Findings (as rows, without the path) per file content, in ``root/.nnlint_cache/``."""

    def __init__(self, folder: Path) -> None:
        self.top = folder
        self.folder = folder / fingerprint()
        self._writable: Optional[bool] = None

    def key(self, data: bytes, codes: Sequence[str]) -> str:
        digest = hashlib.sha256(",".join(sorted(codes)).encode())
        digest.update(b"\0")
        digest.update(data)
        return digest.hexdigest()

    def get(self, key: str) -> Optional[List[list]]:
        """The stored rows, or None when the entry is missing or unreadable."""
        try:
            rows = json.loads((self.folder / f"{key}.json").read_bytes())
        except (OSError, ValueError):
            return None
        if not isinstance(rows, list) or not all(isinstance(r, list) and len(r) == 6 for r in rows):
            return None
        return rows

    def put(self, key: str, rows: List[list]) -> None:
        self._write(f"{key}.json", json.dumps(rows, separators=(",", ":")))

    def rule_table(self) -> Optional[Tuple[Dict[str, str], List[str]]]:
        """(code -> name of every rule, the opt-in codes), when an earlier run stored them."""
        try:
            table = json.loads((self.folder / "rules.json").read_bytes())
            names, opt_in = table["names"], table["opt_in"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if isinstance(names, dict) and all(isinstance(v, str) for v in names.values()) \
                and isinstance(opt_in, list):
            return names, opt_in
        return None

    def put_rule_table(self, names: Dict[str, str], opt_in: List[str]) -> None:
        self._write("rules.json", json.dumps({"names": names, "opt_in": opt_in}))

    def _write(self, name: str, text: str) -> None:
        if not self._ready():
            return
        temporary = None
        try:
            handle, temporary = tempfile.mkstemp(dir=self.folder, prefix=".", suffix=".tmp")
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(text)
            os.replace(temporary, self.folder / name)
        except OSError:
            self._writable = False
            if temporary is not None and os.path.exists(temporary):
                os.unlink(temporary)

    def _ready(self) -> bool:
        if self._writable is None:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                for marker, content in _MARKERS.items():
                    if not (self.top / marker).exists():
                        (self.top / marker).write_text(content, encoding="utf-8")
                self._writable = True
            except OSError:
                self._writable = False
        return self._writable

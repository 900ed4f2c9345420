"""Older releases of a package, loaded beside the installed one under the same import name.

A release is installed into its own folder (``pip install --no-deps --no-build-isolation
--target RELEASES/NAME-VERSION NAME==VERSION``) and imported with that folder first on the path;
the installed package's modules are put back afterwards, so both versions live in one process
(each function keeps the module globals it was defined with).
"""
from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Dict, Tuple

RELEASES = Path(os.environ.get("GRADIENT_CORPUS_RELEASES", "/tmp/gradient-corpus-releases"))

_loaded: Dict[Tuple[str, str], ModuleType] = {}


def _modules_of(name: str) -> Dict[str, ModuleType]:
    return {key: module for key, module in sys.modules.items()
            if key == name or key.startswith(name + ".")}


def load_release(name: str, version: str) -> ModuleType:
    """The package ``name`` as released in ``version``; ImportError with the install line if absent."""
    if (name, version) in _loaded:
        return _loaded[(name, version)]
    folder = RELEASES / f"{name}-{version}"
    if not (folder / name).is_dir():
        raise ImportError(f"{name} {version} is not installed in {folder}: pip install --no-deps "
                          f"--no-build-isolation --target {folder} {name}=={version}")
    installed = _modules_of(name)
    for key in installed:
        del sys.modules[key]
    sys.path.insert(0, str(folder))
    try:
        module = importlib.import_module(name)
    finally:
        sys.path.remove(str(folder))
        for key in _modules_of(name):
            del sys.modules[key]
        sys.modules.update(installed)
    _loaded[(name, version)] = module
    return module

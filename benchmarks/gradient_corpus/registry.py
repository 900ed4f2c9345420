"""Every corpus case, by package family, with the mutants of the correct ones.

A family whose package is not installed (or cannot import here) contributes no cases; ``missing()``
says which and why, so the benchmark and the tests can name them.
"""
from __future__ import annotations

import importlib
from typing import Callable, Dict, List

from .case import CORRECT, Case
from .taps import Mutant, mutants

# family module -> the packages it imports (what to install when it is missing)
FAMILIES: Dict[str, str] = {
    "sparse_activations": "entmax sparsemax",
    "solvers": "qpth cvxpylayers torchdiffeq",
    "sorting": "torchsort",
    "spiking": "snntorch",
    "quantization": "vector-quantize-pytorch",
    "vision": "kornia",
    "transformers": "x-transformers",
    "medical": "monai",
    "graphs": "torch-geometric",
    "genuine_bugs": "entmax snntorch",
}


def _family_cases(family: str) -> Callable[[], List[Case]]:
    return importlib.import_module(f"{__package__}.{family}").cases


def families() -> Dict[str, List[Case]]:
    """Cases per family, for the families whose packages import."""
    result = {}
    for family in FAMILIES:
        try:
            result[family] = _family_cases(family)()
        except ImportError:
            continue
    return result


def missing() -> Dict[str, str]:
    """Families whose packages do not import here, with the import error."""
    result = {}
    for family in FAMILIES:
        try:
            _family_cases(family)()
        except ImportError as error:
            result[family] = f"{FAMILIES[family]}: {error}"
    return result


def all_cases() -> List[Case]:
    return [case for cases in families().values() for case in cases]


def all_mutants(cases: List[Case]) -> List[Mutant]:
    return [mutant for case in cases if case.label == CORRECT for mutant in mutants(case)]

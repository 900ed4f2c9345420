"""Runtime checks that catch silently wrong neural networks (a pytest plugin and a plain API).

The names below load on first use, so that the pytest plugin adds no torch import to test runs
that do not use it.
"""
from __future__ import annotations

import importlib
import importlib.util
from typing import Any

_EXPORTS = {
    "check_gradients": "pytest_nncheck.gradients.check",
    "symmetric": "pytest_nncheck.gradients.constraints",
    "zero_sum": "pytest_nncheck.gradients.constraints",
    "assert_gradients": "pytest_nncheck.gradients.check",
    "check_against_reference": "pytest_nncheck.against_reference.check",
    "assert_against_reference": "pytest_nncheck.against_reference.check",
    "reference": "pytest_nncheck.against_reference.registry",
    "registered_reference": "pytest_nncheck.against_reference.registry",
    "RegisteredReference": "pytest_nncheck.against_reference.registry",
    "check_initial_loss": "pytest_nncheck.sanity.initial_loss",
    "assert_initial_loss": "pytest_nncheck.sanity.initial_loss",
    "check_overfit": "pytest_nncheck.sanity.overfit",
    "assert_overfit": "pytest_nncheck.sanity.overfit",
    "check_training": "pytest_nncheck.health.training",
    "assert_training": "pytest_nncheck.health.training",
    "watch": "pytest_nncheck.health.watch",
    "Watcher": "pytest_nncheck.health.watch",
    "TrainingHealthWarning": "pytest_nncheck.health.watch",
    "TrainingHealthError": "pytest_nncheck.health.watch",
    "TrainingReport": "pytest_nncheck.health.report",
    "Problem": "pytest_nncheck.reports",
    "check_batch_independence": "pytest_nncheck.recipe.batch_independence",
    "assert_batch_independence": "pytest_nncheck.recipe.batch_independence",
    "check_causality": "pytest_nncheck.recipe.causality",
    "assert_causality": "pytest_nncheck.recipe.causality",
    "check_input_independent_baseline": "pytest_nncheck.recipe.baseline",
    "assert_input_independent_baseline": "pytest_nncheck.recipe.baseline",
    "check_parameters_update": "pytest_nncheck.recipe.parameters_update",
    "assert_parameters_update": "pytest_nncheck.recipe.parameters_update",
    "model": "pytest_nncheck.recipe.models",
    "ModelSpec": "pytest_nncheck.recipe.models",
    "example": "pytest_nncheck.discovery",
    "skip": "pytest_nncheck.discovery",
    "Example": "pytest_nncheck.discovery",
    "find_layers": "pytest_nncheck.discovery",
    "build_example": "pytest_nncheck.discovery",
    "CannotBuild": "pytest_nncheck.discovery",
    "NNCheckError": "pytest_nncheck.errors",
    "GradientEntry": "pytest_nncheck.reports",
    "GradientReport": "pytest_nncheck.reports",
    "InitialLossReport": "pytest_nncheck.reports",
    "OverfitReport": "pytest_nncheck.reports",
    "ReferenceEntry": "pytest_nncheck.reports",
    "ReferenceReport": "pytest_nncheck.reports",
    "RecipeReport": "pytest_nncheck.reports",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'pytest_nncheck' has no attribute {name!r}")
    _require_torch()
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def _require_torch() -> None:
    """One clear line when PyTorch is missing: the checks use the project's own torch."""
    if importlib.util.find_spec("torch") is None:
        raise ImportError("pytest-nncheck's runtime checks need PyTorch, which is not installed "
                          "here; install the torch your project uses (e.g. pip install torch)")


def __dir__() -> list:
    return __all__

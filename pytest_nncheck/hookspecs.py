"""Hooks a repository can implement in its conftest.py."""
from __future__ import annotations

from typing import Any, Callable, Dict, List


def pytest_nncheck_examples(config: Any) -> Dict[Any, Callable[[], tuple]]:
    """Return ``{LayerClass or "module.Class": factory}``; ``factory()`` gives ``(layer, *inputs)``
    or a ``pytest_nncheck.Example`` (which may carry check options and forward keyword arguments).

    Used by ``pytest --nncheck`` for layers whose example inputs cannot be inferred; a private or
    abstract class named here is collected too.
    """


def pytest_nncheck_models(config: Any) -> List[Any]:
    """Return ``pytest_nncheck.ModelSpec`` objects: models to run the sanity and recipe checks on.

    Each gets the checks of ``pytest_nncheck.recipe.models.MODEL_CHECKS`` that apply to it (initial
    loss, overfit, batch independence, causality for sequence models, the input-independent
    baseline, parameter updates) as collected items under ``pytest --nncheck``; the same as
    ``@pytest_nncheck.model(...)`` on the model's class.
    """

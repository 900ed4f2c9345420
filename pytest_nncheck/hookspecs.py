"""Hooks a repository can implement in its conftest.py."""
from __future__ import annotations

from typing import Any, Callable, Dict


def pytest_nncheck_examples(config: Any) -> Dict[Any, Callable[[], tuple]]:
    """Return ``{LayerClass or "module.Class": factory}``; ``factory()`` gives ``(layer, *inputs)``
    or a ``pytest_nncheck.Example`` (which may carry check options and forward keyword arguments).

    Used by ``pytest --nncheck`` for layers whose example inputs cannot be inferred; a private or
    abstract class named here is collected too.
    """

"""One dispatch mode that lets the checker's watchers see every op of a forward.

The decision record (kinks.py) and the precision tracer (precision.py) both need each aten op with
its arguments and result; one mode serves both, so a forward is intercepted once. A watcher's own
failure is the checker's bug, never the user's: it is kept and re-raised as nncheck's own error
after the forward returns.
"""
from __future__ import annotations

from typing import Any, List, Optional

from torch.utils._python_dispatch import TorchDispatchMode


class ForwardObserver(TorchDispatchMode):
    """Calls ``before``/``after`` of each watcher around every op of the forward."""

    def __init__(self, watchers: List[Any]) -> None:
        super().__init__()
        self.watchers = watchers
        self.failure: Optional[BaseException] = None

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # Recent torch wraps a mode's __torch_dispatch__ to disable dynamo, which imports
        # torch._dynamo (about a second) on first use. The checker never compiles, so opt out.
        return False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: D105
        kwargs = kwargs or {}
        self._notify("before", func, args, kwargs)
        out = func(*args, **kwargs)
        self._notify("after", func, args, kwargs, out)
        return out

    def _notify(self, moment: str, *event: Any) -> None:
        if self.failure is not None:
            return
        try:
            for watcher in self.watchers:
                getattr(watcher, moment)(*event)
        except Exception as error:  # the user's forward must go on; the error is reported after
            self.failure = error

"""``HealthCallback``: ``watch`` for a Lightning ``Trainer`` (only when Lightning is installed).

    trainer = Trainer(callbacks=[HealthCallback()])
    trainer.fit(model)
    print(trainer.callbacks[0].report)

The training loss is read from what ``training_step`` returns (a tensor or a dict with "loss"),
the validation loss from the logged ``val_loss`` when there is one. Activations are measured when
``training_step`` calls the LightningModule itself (``self(x)``).
"""
from __future__ import annotations

from typing import Any, Optional

try:
    from lightning.pytorch import Callback
except ImportError:
    try:
        from pytorch_lightning import Callback
    except ImportError as error:
        raise ImportError("HealthCallback needs Lightning (pip install lightning or "
                          "pytorch-lightning); without it, use pytest_nncheck.watch in your "
                          "own loop") from error

from .report import TrainingReport
from .watch import DEFAULT_EVERY, Watcher


class HealthCallback(Callback):
    """Watches the first optimizer's steps of ``trainer.fit``; ``report`` is set when fit ends."""

    def __init__(self, every: int = DEFAULT_EVERY, on_problem: str = "warn",
                 validation_key: str = "val_loss") -> None:
        self.every, self.on_problem, self.validation_key = every, on_problem, validation_key
        self.watcher: Optional[Watcher] = None
        self.report: Optional[TrainingReport] = None

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        optimizer = trainer.optimizers[0] if trainer.optimizers else None
        self.watcher = Watcher(pl_module, optimizer, every=self.every,
                               on_problem=self.on_problem).__enter__()

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if self.watcher is not None and loss is not None:
            self.watcher.record(loss)

    def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        value = trainer.callback_metrics.get(self.validation_key)
        if self.watcher is not None and value is not None and not trainer.sanity_checking:
            self.watcher.record_validation(value)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        if self.watcher is not None:
            self.report = self.watcher.close()
            self.watcher = None

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        if self.watcher is not None:
            self.report = self.watcher.close(raise_problems=False)
            self.watcher = None

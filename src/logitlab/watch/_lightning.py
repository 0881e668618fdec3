"""A PyTorch Lightning callback: watch ``fit`` and log the counts to the trainer's logger."""

from __future__ import annotations

from typing import Any

try:
    from lightning.pytorch import Callback
except ModuleNotFoundError:  # the standalone package
    from pytorch_lightning import Callback  # type: ignore[assignment]

from logitlab.watch._watcher import Watcher

__all__ = ["LightningCallback"]


class LightningCallback(Callback):
    """Watch training from ``on_fit_start`` to ``on_fit_end``.

    Every ``log_every_n_steps`` (the trainer's, unless given) and at the end, logs per code
    the elements affected so far, ``logitlab/<CODE>/affected``, and per site
    ``logitlab/<CODE>/<file>:<line>``, through ``trainer.logger.log_metrics`` (which reads
    the counts: one device sync per logging step).  The report is :attr:`watcher`'s.
    """

    def __init__(self, log_every_n_steps: int | None = None, **watch_options: Any) -> None:
        super().__init__()
        self.watcher = Watcher(**watch_options)
        self.log_every_n_steps = log_every_n_steps
        self.logged: dict[str, float] = {}

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        if not self.watcher.active:
            self.watcher.__enter__()

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self.watcher.on_step(trainer.global_step)
        every = self.log_every_n_steps or getattr(trainer, "log_every_n_steps", 50) or 50
        if trainer.global_step % every == 0:
            self._log(trainer)

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        self._log(trainer)
        self.watcher.__exit__(None, None, None)

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self.watcher.__exit__(None, None, None)

    def _log(self, trainer: Any) -> None:
        import os

        report = self.watcher.report()
        metrics: dict[str, float] = {}
        for f in report.findings:
            key = f"logitlab/{f.code}/affected"
            metrics[key] = metrics.get(key, 0.0) + f.affected
            metrics[f"logitlab/{f.code}/{os.path.basename(f.file)}:{f.line}"] = float(f.affected)
        self.logged = metrics
        logger = getattr(trainer, "logger", None)
        if metrics and logger is not None:
            logger.log_metrics(metrics, step=trainer.global_step)

"""The Lightning callback, with a real Trainer and a real CSVLogger."""

from __future__ import annotations

import csv

import pytest
import torch
from torch import nn

pl = pytest.importorskip("lightning.pytorch")


class Tiny(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 1), nn.Sigmoid())
        self.loss = nn.BCELoss()

    def training_step(self, batch, batch_idx):
        x, y = batch
        return self.loss(self.net(x).squeeze(1), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_callback_logs_counts_to_csv(tmp_path):
    from logitlab.watch import LightningCallback

    torch.manual_seed(0)
    x = torch.randn(32, 3) * 100  # |logit| far past 17: sigmoid is exactly 0 or 1
    y = (torch.rand(32) > 0.5).float()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)
    callback = LightningCallback(full=True, warn=False)
    logger = pl.loggers.CSVLogger(tmp_path, name="run")
    trainer = pl.Trainer(
        max_steps=4,
        accelerator="cpu",
        logger=logger,
        callbacks=[callback],
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        log_every_n_steps=1,
    )
    trainer.fit(Tiny(), loader)
    report = callback.watcher.report()
    (finding,) = [f for f in report.findings if f.code == "LGL001"]
    assert finding.calls == 4 and finding.file == __file__
    assert finding.affected > 0
    with open(logger.log_dir + "/metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    logged = [
        float(r["logitlab/LGL001/affected"]) for r in rows if r.get("logitlab/LGL001/affected")
    ]
    assert logged and logged[-1] == finding.affected
    assert report.step_source == "on_step"

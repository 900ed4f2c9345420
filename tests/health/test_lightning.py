import warnings

import pytest
import torch
from torch import nn

lightning = pytest.importorskip("pytorch_lightning", reason="Lightning is not installed "
                                                            "(pip install pytorch-lightning)")

from pytest_nncheck import TrainingReport  # noqa: E402
from pytest_nncheck.health.lightning import HealthCallback  # noqa: E402


class DeadTiny(lightning.LightningModule):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
        with torch.no_grad():
            self.net[0].bias.fill_(-50.0)

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_callback_watches_a_real_trainer():
    generator = torch.Generator().manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(24, 8, generator=generator),
                                          torch.randint(0, 2, (24,), generator=generator))
    callback = HealthCallback(every=1)
    trainer = lightning.Trainer(max_steps=3, accelerator="cpu", devices=1, logger=False,
                                enable_checkpointing=False, enable_progress_bar=False,
                                enable_model_summary=False, callbacks=[callback])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(DeadTiny(), torch.utils.data.DataLoader(data, batch_size=8))
    report = callback.report
    assert isinstance(report, TrainingReport) and report.steps == 3 and len(report.losses) == 3
    assert report.parameters["net.0.weight"].steps == [0, 1, 2]
    assert "dead-relu" in {p.code for p in report.problems}

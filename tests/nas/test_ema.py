"""The weight average (nas.train.ema): TF's decay warm-up, exact tracking, and what it copies."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from nas.train import ModelEma, TrainConfig, ema_decay_at, fit
from space import ArchSpec, StageSpec, StemSpec, build


def test_decay_warmup_on_worked_numbers() -> None:
    assert ema_decay_at(0, decay=0.9999) == pytest.approx(0.1)  # (1 + 0) / (10 + 0)
    assert ema_decay_at(90, decay=0.9999) == pytest.approx(0.91)  # 91 / 100
    assert ema_decay_at(10**6, decay=0.9999) == 0.9999  # capped at the decay
    assert ema_decay_at(8990, decay=0.999) == pytest.approx(0.999)  # 8991 / 9000
    assert ema_decay_at(0, decay=0.9999, warmup=False) == 0.9999


def _scalar_model(value: float) -> nn.Linear:
    m = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        m.weight.fill_(value)
    return m


def test_constant_decay_converges_geometrically() -> None:
    model = _scalar_model(0.0)
    ema = ModelEma(model, decay=0.5, warmup=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    got = []
    for _ in range(3):
        ema.update(model)
        got.append(float(ema.module.weight))
    assert got == pytest.approx([0.5, 0.75, 0.875])
    assert ema.updates == 3 and not ema.module.weight.requires_grad


def test_first_warmup_update_mostly_copies() -> None:
    model = _scalar_model(0.0)
    ema = ModelEma(model, decay=0.9999)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model)  # decay 0.1: 0.1 * 0 + 0.9 * 1
    assert float(ema.module.weight) == pytest.approx(0.9)
    assert ema.current_decay == pytest.approx(2 / 11)


def test_batchnorm_statistics_are_averaged_and_step_counts_copied() -> None:
    model = nn.BatchNorm1d(2)
    ema = ModelEma(model, decay=0.5, warmup=False)
    model.train()
    model(torch.tensor([[1.0, 3.0], [3.0, 5.0]]))  # running_mean -> 0.1 * (2, 4)
    ema.update(model)
    assert ema.module.running_mean.tolist() == pytest.approx([0.1, 0.2])
    assert int(ema.module.num_batches_tracked) == 1


def test_state_round_trip() -> None:
    model = _scalar_model(2.0)
    ema = ModelEma(model, decay=0.9)
    ema.update(_scalar_model(4.0))
    other = ModelEma(_scalar_model(0.0), decay=0.5, warmup=False)
    other.load_state_dict(ema.state_dict())
    assert (other.decay, other.warmup, other.updates) == (0.9, True, 1)
    assert float(other.module.weight) == float(ema.module.weight)


@pytest.mark.parametrize("decay", [-0.1, 1.0, True])
def test_bad_decay(decay: float) -> None:
    with pytest.raises(ValueError, match="0 <= ema decay < 1"):
        ModelEma(_scalar_model(0.0), decay=decay)


def test_ema_differs_from_and_tracks_the_raw_weights_during_training(synthetic_ds) -> None:
    spec = ArchSpec(name="ema-tiny", stem=StemSpec(channels=4), stages=(
        StageSpec("mbconv", 1, 3, 2, 8, expand_ratio=2.0),), head_channels=16, in_channels=1,
        num_classes=10, resolution=16, dropout=0.0, drop_connect=0.0)
    model = build(spec, seed=0)
    x = synthetic_ds.train_images[:128].float() / 255 - 0.5
    y = synthetic_ds.train_labels[:128]
    ema = ModelEma(model, decay=0.9, warmup=True)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    expected = {k: v.clone() for k, v in start.items()}
    steps = [0]

    def on_step(m: nn.Module) -> None:
        d = ema_decay_at(steps[0], decay=0.9)
        for k, v in m.state_dict().items():
            if v.is_floating_point():
                expected[k] = d * expected[k] + (1 - d) * v.detach()
        ema.update(m)
        steps[0] += 1

    config = TrainConfig(epochs=2, batch_size=16, lr=0.05, threads=1, channels_last=False)
    fit(model, x, y, x[:32], y[:32], config=config, seed=0, on_step=on_step)
    w = "classifier.weight"
    raw, avg, init = model.state_dict()[w], ema.module.state_dict()[w], start[w]
    assert steps[0] == 16 and ema.updates == 16
    torch.testing.assert_close(avg, expected[w])  # exactly the stated average of the trajectory
    assert not torch.allclose(avg, raw)  # it differs from the raw weights ...
    assert (avg - raw).norm() < 0.5 * (init - raw).norm()  # ... but follows them

"""The training recipes (nas.train.recipes) and TF's RMSProp, on worked numbers."""
from __future__ import annotations

import copy
import dataclasses
import json
import math
import pickle

import pytest
import torch

from nas.train import (OPTIMIZERS, RECIPES, SCHEDULES, Recipe, RMSpropTF, TrainConfig, lr_at,
                       make_recipe, scaled_lr)
from space import get_model

B0 = get_model("efficientnet-b0")


@pytest.mark.parametrize("name", RECIPES.names())
def test_every_recipe_gives_a_valid_config_and_keeps_the_architecture(name: str) -> None:
    r = make_recipe(name, B0, batch_size=32, epochs=3)
    assert isinstance(r, Recipe) and r.name == name
    assert r.train.batch_size == 32 and r.train.epochs == 3
    assert r.train.optimizer in OPTIMIZERS and r.train.schedule in SCHEDULES
    # Only training-time settings change; the network's shape does not.
    assert r.spec.stages == B0.stages and r.spec.stem == B0.stem
    assert (r.spec.dropout, r.spec.drop_connect, r.spec.activation) == (0.2, 0.2, "silu")
    assert r.ema_decay is None or 0 < r.ema_decay < 1


def test_paper_recipe_is_the_papers() -> None:
    r = make_recipe("paper", B0.replace(bn_momentum=0.1), batch_size=64, epochs=350)
    t = r.train
    assert t.optimizer == "rmsprop_tf" and t.momentum == 0.9 and t.extra["rmsprop_eps"] == 1e-3
    assert t.weight_decay == 1e-5 and t.label_smoothing == 0.1
    assert t.lr == pytest.approx(0.256 * 64 / 4096) == pytest.approx(0.004)
    assert t.schedule == "exponential" and t.warmup_epochs == 5.0
    assert (t.extra["decay_rate"], t.extra["decay_epochs"]) == (0.97, 2.4)
    assert r.spec.bn_momentum == 0.01  # TF's 0.99 in PyTorch's convention
    assert r.ema_decay == 0.9999 and r.ema_warmup


def test_train_config_extra_is_read_only_and_serializes_as_before() -> None:
    t = make_recipe("paper", B0, batch_size=64, epochs=10).train
    with pytest.raises(TypeError, match="read-only.*dataclasses.replace"):
        t.extra["decay_rate"] = 0.5  # type: ignore[index]
    with pytest.raises(TypeError, match="read-only"):
        t.extra.update(decay_rate=0.5)  # type: ignore[attr-defined]
    d = t.to_dict()
    assert type(d["extra"]) is dict and d["extra"] == {"decay_rate": 0.97, "decay_epochs": 2.4,
                                                       "rmsprop_eps": 1e-3}
    assert json.loads(json.dumps(dataclasses.asdict(t))) == json.loads(json.dumps(d))
    back = TrainConfig.from_dict(json.loads(json.dumps(d)))
    assert back == t and hash(back) == hash(t)
    assert pickle.loads(pickle.dumps(t)) == t and copy.deepcopy(t) == t
    changed = dataclasses.replace(t, extra={**t.extra, "decay_rate": 0.5})
    assert changed.extra["decay_rate"] == 0.5 and t.extra["decay_rate"] == 0.97
    with pytest.raises(TypeError, match="must be a mapping"):
        TrainConfig(extra=[("decay_rate", 0.5)])  # type: ignore[arg-type]


def test_paper_schedule_on_worked_numbers() -> None:
    t = make_recipe("paper", B0, batch_size=4096, epochs=350).train
    assert lr_at(0.0, t) == pytest.approx(0.0, abs=1e-9)
    assert lr_at(2.5, t) == pytest.approx(0.128)  # half-way through the 5-epoch warm-up
    assert lr_at(4.999, t) == pytest.approx(0.256 * 4.999 / 5)
    # After warm-up the staircase counts from epoch 0 (official exponential_decay): 5/2.4 -> 2.
    assert lr_at(5.0, t) == pytest.approx(0.256 * 0.97 ** 2) == pytest.approx(0.2408704)
    assert lr_at(7.1, t) == pytest.approx(0.256 * 0.97 ** 2)
    assert lr_at(7.3, t) == pytest.approx(0.256 * 0.97 ** 3)
    assert lr_at(100.0, t) == pytest.approx(0.256 * 0.97 ** 41)  # floor(100 / 2.4) = 41
    assert lr_at(349.9, t) == pytest.approx(0.256 * 0.97 ** 145)


def test_paper_warmup_is_capped_at_a_fifth_of_a_short_run() -> None:
    t = make_recipe("paper", B0, batch_size=128, epochs=2).train
    assert t.warmup_epochs == pytest.approx(0.4)
    assert lr_at(0.2, t) == pytest.approx(t.lr / 2)
    assert lr_at(1.0, t) == pytest.approx(t.lr)  # past warm-up, before the first 2.4-epoch step


def test_fast_recipe_scales_lr_warms_up_and_decays_by_cosine() -> None:
    r = make_recipe("fast", B0, batch_size=128, epochs=4)
    assert r.train.lr == pytest.approx(0.02)  # 0.01 per 64 images
    assert lr_at(0.05, r.train) == pytest.approx(0.01)  # half-way through the 0.1-epoch warm-up
    assert lr_at(0.1 + 3.9 / 2, r.train) == pytest.approx(0.01)  # half-way down the cosine
    assert lr_at(4.0, r.train) == pytest.approx(0.0, abs=1e-12)
    assert r.spec.bn_momentum == 0.1 and r.ema_decay == 0.999


def test_defaults_and_bad_values() -> None:
    assert make_recipe("paper", B0).train.epochs == 350
    assert make_recipe("fast", B0).train.batch_size == 64
    with pytest.raises(ValueError, match="epochs >= 1"):
        make_recipe("fast", B0, epochs=0)
    with pytest.raises(KeyError, match="fast, paper"):
        make_recipe("imagenet", B0)
    assert scaled_lr(0.256, batch_size=2048, base_batch=4096) == pytest.approx(0.128)


def _two_steps(opt_cls, **kw) -> list[float]:
    w = torch.nn.Parameter(torch.tensor([1.0]))
    opt = opt_cls([w], **kw)
    out = []
    for _ in range(2):
        opt.zero_grad()
        w.sum().backward()  # gradient 1
        opt.step()
        out.append(float(w.detach()))
    return out


def test_rmsprop_tf_on_worked_numbers() -> None:
    # ms starts at 1: ms = 0.9 + 0.1 = 1; mom = 0.1 / sqrt(1 + 1e-3); w = 1 - mom.
    first = 1 - 0.1 / math.sqrt(1.001)
    second = first - (0.9 + 1) * 0.1 / math.sqrt(1.001)
    got = _two_steps(RMSpropTF, lr=0.1, alpha=0.9, eps=1e-3, momentum=0.9)
    assert got == pytest.approx([first, second], rel=1e-6)
    # PyTorch's RMSprop (ms from 0, eps outside the root) takes a 3x larger first step.
    torch_first = 1 - 0.1 / (math.sqrt(0.1) + 1e-3)
    assert _two_steps(torch.optim.RMSprop, lr=0.1, alpha=0.9, eps=1e-3, momentum=0.9)[0] == \
        pytest.approx(torch_first, rel=1e-6)


def test_rmsprop_tf_weight_decay_is_an_l2_gradient() -> None:
    # gradient 1 + 0.5 * w(=1) = 1.5; ms = 0.9 + 0.1 * 2.25 = 1.125
    got = _two_steps(RMSpropTF, lr=0.1, alpha=0.9, eps=0.0, momentum=0.0, weight_decay=0.5)[0]
    assert got == pytest.approx(1 - 0.1 * 1.5 / math.sqrt(1.125))


def test_rmsprop_tf_is_registered() -> None:
    c = TrainConfig(optimizer="rmsprop_tf", lr=0.01, momentum=0.9, weight_decay=1e-5)
    opt = OPTIMIZERS.get("rmsprop_tf")([torch.nn.Parameter(torch.zeros(2))], c)
    assert isinstance(opt, RMSpropTF) and opt.defaults["eps"] == 1e-3

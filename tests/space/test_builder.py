"""build(spec): every zoo model and every registered block runs forward and backward, in
channels_last too, with the shapes, parameter counts and residuals the spec promises."""
from __future__ import annotations

import copy
import math
import dataclasses

import pytest
import torch
from torch import nn

from space.builder import ACTIVATIONS, BLOCKS, DropPath, Network, block_args, build
from space.counting import count_analytic, stage_table
from space.spec import ACTIVATIONS as SPEC_ACTIVATIONS
from space.spec import BLOCK_TYPES, ArchSpec, StageSpec, StemSpec
from space.zoo import get_model, list_models

RES = 32  # small, so the whole zoo runs in a few seconds


def _forward_backward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.zero_grad(set_to_none=True)
    y = model(x)
    y.square().mean().backward()
    return y


def _assert_finite_grads(model: nn.Module) -> None:
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"


def _feature_size(spec: ArchSpec, resolution: int) -> int:
    return int(stage_table(spec, resolution)[-2]["out_size"])


@pytest.mark.parametrize("name", list_models())
def test_zoo_forward_backward(name: str) -> None:
    spec = get_model(name).with_task(resolution=RES)
    model = build(spec, seed=0).train()
    x = torch.randn(2, spec.in_channels, RES, RES)
    y = _forward_backward(model, x)
    assert y.shape == (2, spec.num_classes)
    assert torch.isfinite(y).all()
    _assert_finite_grads(model)
    feats = model.forward_features(x)
    size = _feature_size(spec, RES)
    assert feats.shape == (2, spec.feature_channels, size, size)
    assert model.num_features == spec.feature_channels


def _tiny(block: str, **stage) -> ArchSpec:
    # Stage 2 repeats its block, so the second copy has stride 1 and equal channels: a residual.
    first = StageSpec(block, repeats=2, kernel=3, stride=2, out_channels=16,
                      expand_ratio=stage.pop("expand_ratio", 0.25 if block == "bottleneck" else
                                             (4.0 if block == "mbconv" else 1.0)),
                      se_ratio=0.25, **stage)
    return ArchSpec(name=f"tiny-{block}", stem=StemSpec(8), stages=(first,), head_channels=24,
                    num_classes=5, resolution=RES, drop_connect=0.2)


def test_blocks_registry_covers_the_spec_block_types() -> None:
    assert sorted(BLOCKS.names()) == sorted(BLOCK_TYPES)
    assert set(SPEC_ACTIVATIONS) <= set(ACTIVATIONS.names())
    with pytest.raises(KeyError, match="unknown block type 'foo'; known: bottleneck, conv, dsa"):
        BLOCKS.get("foo")


@pytest.mark.parametrize("block", BLOCKS.names())
def test_block_forward_backward_shapes_and_params(block: str) -> None:
    spec = _tiny(block)
    model = build(spec, seed=0).train()
    x = torch.randn(3, 3, RES, RES)
    y = _forward_backward(model, x)
    assert y.shape == (3, 5)
    assert torch.isfinite(y).all()
    _assert_finite_grads(model)
    # stem s2 (16) then the stage's s2 (8); the head conv keeps the size
    assert model.forward_features(x).shape == (3, 24, 8, 8)
    assert sum(p.numel() for p in model.parameters()) == count_analytic(spec).params


@pytest.mark.parametrize("block", BLOCKS.names())
def test_block_channels_last_matches_contiguous(block: str) -> None:
    spec = _tiny(block)
    model = build(spec, seed=0).eval()
    x = torch.randn(2, 3, RES, RES)
    with torch.no_grad():
        ref = model(x)
    model_cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        assert torch.allclose(model_cl(x_cl), ref, atol=1e-5, rtol=1e-4)
    y = _forward_backward(model_cl.train(), x_cl)
    assert torch.isfinite(y).all()
    _assert_finite_grads(model_cl)


def test_zoo_model_channels_last_matches_contiguous() -> None:
    spec = get_model("efficientnet-b0").with_task(resolution=RES)
    model = build(spec, seed=0).eval()
    x = torch.randn(2, 3, RES, RES)
    with torch.no_grad():
        ref = model(x)
        cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
        y = cl(x.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(y, ref, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("block, residuals", [
    ("mbconv", [False, True]), ("dsconv", [False, True]), ("dsa", [False, True]),
    ("conv", [False, True]), ("bottleneck", [True, True]),  # ResNet: projection shortcut first
])
def test_residuals_where_shapes_allow(block: str, residuals: list[bool]) -> None:
    blocks = list(build(_tiny(block)).stages[0])
    assert [b.use_residual for b in blocks] == residuals
    no_skip = list(build(_tiny(block, skip="none")).stages[0])
    assert [b.use_residual for b in no_skip] == [False, False]


@pytest.mark.parametrize("activation", SPEC_ACTIVATIONS)
def test_every_activation_builds_and_runs(activation: str) -> None:
    spec = _tiny("mbconv").replace(activation=activation)
    model = build(spec, seed=0)
    expected = type(ACTIVATIONS.get(activation)())
    assert any(isinstance(m, expected) for m in model.modules())
    assert torch.isfinite(model(torch.randn(2, 3, RES, RES))).all()


def test_block_args_unrolls_stages() -> None:
    spec = get_model("efficientnet-b0")
    args = block_args(spec)
    assert len(args) == spec.num_blocks == 16
    assert [a.stride for a in args[1:3]] == [2, 1]  # only a stage's first block strides
    assert [(a.in_channels, a.out_channels) for a in args[1:3]] == [(16, 24), (24, 24)]
    assert args[0].in_channels == spec.stem.channels
    # stochastic depth grows linearly with block index: drop_connect * i / n
    assert [a.drop_path for a in args] == pytest.approx([0.2 * i / 16 for i in range(16)])


def test_se_squeezes_from_block_input_channels() -> None:
    # Official EfficientNet: max(1, int(input_filters * se_ratio)), not from the expanded width.
    model = build(get_model("efficientnet-b0"))
    se = [m for m in model.modules() if m.__class__.__name__ == "SqueezeExcite"]
    assert len(se) == 16
    assert (se[0].reduce.in_channels, se[0].reduce.out_channels) == (32, 8)
    assert (se[1].reduce.in_channels, se[1].reduce.out_channels) == (96, 4)  # in 16, mid 96


def test_build_is_pure_and_seeded() -> None:
    spec = _tiny("mbconv")
    before = spec.to_dict()
    state = torch.random.get_rng_state()
    a = build(spec, seed=1).state_dict()
    assert torch.equal(torch.random.get_rng_state(), state)  # seeding leaves global RNG alone
    b = build(spec, seed=1).state_dict()
    c = build(spec, seed=2).state_dict()
    assert spec.to_dict() == before
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)
    assert isinstance(build(spec), Network)
    with pytest.raises(TypeError, match="build\\(\\) needs an ArchSpec, got dict"):
        build(before)  # type: ignore[arg-type]


def test_eval_is_deterministic_and_drop_path_drops_whole_samples() -> None:
    model = build(_tiny("mbconv"), seed=0).eval()
    x = torch.randn(4, 3, RES, RES)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
    drop = DropPath(0.5).train()
    torch.manual_seed(0)
    out = drop(torch.ones(64, 2, 3, 3))
    per_sample = out.flatten(1)
    # each sample is either dropped (0) or kept and rescaled by 1/keep (2), as a whole
    assert set(per_sample.unique().tolist()) == {0.0, 2.0}
    assert (per_sample.min(1).values == per_sample.max(1).values).all()
    assert torch.equal(DropPath(0.5).eval()(torch.ones(2, 3)), torch.ones(2, 3))


@pytest.mark.parametrize("name", list_models())
def test_zero_init_last_starts_every_residual_block_as_its_shortcut(name: str) -> None:
    """timm's zero_init_last: the last BN of each residual branch starts at gamma 0, so in eval
    mode every residual block passes its input through unchanged (its shortcut alone); nothing
    else changes: the same modules and shapes, the other weights equal to a plain build's."""
    spec = get_model(name).with_task(resolution=RES)
    plain, zeroed = build(spec, seed=0), build(spec, seed=0, zero_init_last=True)
    assert [(k, v.shape) for k, v in plain.state_dict().items()] == \
        [(k, v.shape) for k, v in zeroed.state_dict().items()]  # an export builds the same net
    residual = [m for m in zeroed.modules()
                if getattr(m, "use_residual", False) and m.last_bn() is not None]
    zeroed_bns = {id(m.last_bn()) for m in residual}
    for (k, a), (_, b) in zip(plain.named_modules(), zeroed.named_modules()):
        if isinstance(b, nn.BatchNorm2d):
            assert torch.equal(b.weight, torch.zeros_like(b.weight) if id(b) in zeroed_bns
                               else a.weight), k
        elif isinstance(b, (nn.Conv2d, nn.Linear)):
            assert torch.equal(a.weight, b.weight), k
    zeroed.eval()
    for block in residual:
        if block.shortcut is None:  # identity shortcut: the block is the identity
            x = torch.randn(2, block.branch[0][0].in_channels, 8, 8)
            assert torch.allclose(block.post_act(x), block(x))


@pytest.mark.parametrize("se_ratio", [0.0, 0.25])
@pytest.mark.parametrize("block", BLOCKS.names())
def test_zero_init_last_leaves_no_parameter_stuck(block: str, se_ratio: float) -> None:
    """After a few SGD steps every parameter of a zero-initialised network moves and gets a
    gradient. A branch that ends in an activation (regular conv, dsa) keeps its last BN's init:
    zeroed, it fed ReLU a constant 0, where the gradient is 0, and stayed the identity for good."""
    tiny = _tiny(block)
    spec = tiny.replace(stages=tuple(dataclasses.replace(s, se_ratio=se_ratio)
                                     for s in tiny.stages))
    torch.manual_seed(0)
    model = build(spec, seed=0, zero_init_last=True).train()
    start = {k: v.detach().clone() for k, v in model.named_parameters()}
    residual = [m for m in model.modules() if getattr(m, "use_residual", False)]
    assert residual, "the tiny spec's second block is a residual"
    ends_activated = block in ("conv", "dsa")
    assert all((m.last_bn() is None) is ends_activated for m in residual)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(16, 3, RES, RES), torch.randint(0, spec.num_classes, (16,))
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    for k, p in model.named_parameters():
        assert p.grad is not None and float(p.grad.abs().sum()) > 0, f"{k}: no gradient"
        assert not torch.equal(p.detach(), start[k]), f"{k}: never moved"


def test_zero_init_last_leaves_a_network_without_residuals_as_it_was() -> None:
    spec = get_model("mobilenet-v1").with_task(resolution=RES)
    assert not any(getattr(m, "use_residual", False) for m in build(spec).modules())
    a, b = build(spec, seed=3), build(spec, seed=3, zero_init_last=True)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(),
                                                 b.state_dict().values()))


def test_zero_init_head_starts_every_network_at_chance() -> None:
    """zero_init_head: the classifier's weights start at zero, so every input gets the same
    logits (its zero bias) and the first loss is ln(classes), not the ~7 of the default init;
    the rest of the network is initialised as without it."""
    spec = get_model("efficientnet-b0").with_task(resolution=RES, num_classes=10)
    plain, zeroed = build(spec, seed=0), build(spec, seed=0, zero_init_head=True)
    assert torch.count_nonzero(zeroed.classifier.weight) == 0
    assert torch.count_nonzero(plain.classifier.weight) > 0
    for (k, a), b in zip(plain.state_dict().items(), zeroed.state_dict().values()):
        assert k == "classifier.weight" or torch.equal(a, b), k
    x = torch.randn(4, spec.in_channels, RES, RES)
    with torch.no_grad():
        logits = zeroed.eval()(x)
    assert torch.equal(logits, torch.zeros_like(logits))
    loss = torch.nn.functional.cross_entropy(logits, torch.arange(4))
    assert abs(float(loss) - math.log(10)) < 1e-6

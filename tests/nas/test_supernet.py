"""The supernet (nas/supernet, issue 24): it holds every member of a space.

The key property: a member taken from the supernet (``extract``) and loaded into
``space.build(spec)`` computes what the supernet's active member computes, in eval mode, with
batch norm recalibrated the same way. Checked in float64 on weights perturbed away from their
initial values (identity kernel transforms and fresh batch-norm statistics would hide slicing
and ordering mistakes), for seeded samples of both shipped spaces and a user's space file.
"""
from __future__ import annotations

import random

import pytest
import torch

from nas.supernet import SuperNet, UnsupportedSpaceError, check_supported, extract
from nas.supernet.calibrate import recalibrate_bn
from space import build
from space.search_space import CONV_OPS, load_space

# A user's space exercising what the shipped ones do not: no head, two activations, kernels
# 3/5/7 (two chained transforms) and 1/3, three SE ratios, mbconv1 beside mbconv3/6 and the
# regular conv, widths below and above the skeleton, its own bn_eps.
USER_SPACE = """
name: user
stem: 8
head: null
activation: [relu, hard_swish]
fixed: {bn_eps: 0.01, bn_momentum: 0.1, dropout: 0.1, drop_connect: 0.1}
choices: {op: [conv, dsconv, mbconv1, mbconv3, mbconv6], kernel: [3, 5, 7],
          se_ratio: [0.0, 0.125, 0.25], skip: [identity, none], filters: [0.5, 1.0, 1.5],
          layers: [-1, 0, 1]}
stages:
  - [8, 1, 1]
  - [16, 2, 2]
  - {channels: 24, repeats: 1, stride: 1, choices: {kernel: [1, 3]}}
"""

SPACES = ("mnasnet", "efficientnet", "user")
TASK = {"mnasnet": (1, 10), "efficientnet": (1, 10), "user": (3, 7)}  # in_channels, classes


def _space(name, tmp_path_factory):
    if name != "user":
        return load_space(name)
    f = tmp_path_factory.mktemp("space") / "user.yaml"
    f.write_text(USER_SPACE)
    return load_space(str(f))


@torch.no_grad()
def _perturb(net: torch.nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    for name, p in net.named_parameters():
        if "transforms" in name:  # away from the identity, so a wrong transform shows
            p.add_(0.2 * torch.randn(p.shape, generator=g, dtype=p.dtype))
        elif name.endswith("bn.weight"):
            p.uniform_(0.5, 1.5, generator=g)
        else:
            p.add_(0.1 * torch.randn(p.shape, generator=g, dtype=p.dtype))


@pytest.fixture(scope="module", params=SPACES)
def supernet(request, tmp_path_factory):
    torch.manual_seed(0)
    space = _space(request.param, tmp_path_factory)
    in_ch, classes = TASK[request.param]
    net = SuperNet(space, in_channels=in_ch, num_classes=classes).double()
    _perturb(net, seed=1)
    return net.requires_grad_(False)


def _members(net: SuperNet, n: int, seed: int):
    rng = random.Random(seed)
    return [net.largest(), net.smallest()] + [net.sample(rng) for _ in range(n)]


def _batches(net: SuperNet, *, seed: int, n: int = 2, size: int = 6, res: int = 32):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(size, net.in_channels, res, res, generator=g, dtype=torch.float64) * 2 + 0.5
            for _ in range(n)]


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return torch.allclose(a, b, rtol=1e-9, atol=1e-9 * float(b.abs().max()))


def test_extracted_member_computes_what_the_supernet_computes(supernet):
    """For the largest, the smallest and 8 seeded random members: recalibrate the active member,
    extract, load into build(spec); eval outputs agree. Then recalibrating the built network on
    the same batches leaves them the same (both compute the same statistics)."""
    calib = _batches(supernet, seed=2)
    (x,) = _batches(supernet, seed=3, n=1, size=5)
    for spec in _members(supernet, 8, seed=4):
        supernet.set_active(spec)
        recalibrate_bn(supernet, calib)
        supernet.eval()
        want = supernet(x)
        model = build(spec).double()
        model.load_state_dict(extract(supernet))  # strict: the same keys and shapes
        model.eval()
        got = model(x)
        assert got.shape == (5, supernet.num_classes)
        assert _close(got, want), (spec.name, spec.stages, (got - want).abs().max())
        recalibrate_bn(model, calib)
        assert _close(model(x), want), spec.name


def test_extract_before_recalibration_and_after_training_mode(supernet):
    """Extraction copies whatever statistics the member has (here the fixture's, shared by
    every member), and the copy does not follow later changes to the supernet."""
    spec = supernet.sample(random.Random(11))
    supernet.set_active(spec).eval()
    (x,) = _batches(supernet, seed=5, n=1, size=3)
    state = extract(supernet)
    model = build(spec).double().eval()
    model.load_state_dict(state)
    assert _close(model(x), supernet(x))
    with torch.no_grad():
        next(supernet.parameters()).add_(1.0)
    assert not torch.equal(state["stem.0.weight"], supernet.stem.weight[:, :, :, :])


def test_members_are_what_the_space_says(supernet):
    """largest/smallest are members and bound the widths and depths; a non-member is refused
    with the field that differs."""
    space = supernet.space
    big, small = supernet.largest(), supernet.smallest()
    for spec in (big, small):
        assert space.encode(spec) is not None
    assert all(b.out_channels >= s.out_channels and b.repeats >= s.repeats
               and b.kernel >= s.kernel for b, s in zip(big.stages, small.stages))
    bad = big.replace(stages=(big.stages[0].__class__(**{**big.stages[0].__dict__, "kernel": 9}),)
                      + big.stages[1:])
    with pytest.raises(ValueError, match=r"stages\[0\]\.kernel=9 is not held"):
        supernet.set_active(bad)
    with pytest.raises(ValueError, match="num_classes"):
        supernet.set_active(big.with_task(num_classes=supernet.num_classes + 1))


def test_kernel_transform_is_learned_not_a_plain_crop(supernet):
    """A smaller kernel is the transformed centre of the larger one: changing a transform
    matrix changes the 3x3 member's output but not the largest-kernel member's."""
    big = supernet.largest()
    small_k = big.replace(stages=tuple(s.__class__(**{**s.__dict__, "kernel": min(
        supernet.space.stages[i].choices["kernel"])}) for i, s in enumerate(big.stages)))
    (x,) = _batches(supernet, seed=6, n=1, size=2)
    supernet.eval()
    outs = [supernet.set_active(s)(x) for s in (big, small_k)]
    saved = {k: v.clone() for k, v in supernet.state_dict().items() if "transforms" in k}
    try:
        with torch.no_grad():
            for name, p in supernet.named_parameters():
                if "transforms" in name:
                    p.mul_(1.5)
        after = [supernet.set_active(s)(x) for s in (big, small_k)]
    finally:
        supernet.load_state_dict(saved, strict=False)
    assert torch.equal(outs[0], after[0])
    assert not torch.allclose(outs[1], after[1])


def test_unsupported_block_type_is_refused_up_front(monkeypatch, tmp_path):
    """An op whose block type has no elastic form (here a ResNet bottleneck registered as a
    ConvOp) is named, with the fix, by check_supported and by SuperNet alike."""
    monkeypatch.setitem(CONV_OPS._items, "resnet", ("bottleneck", 0.25))
    f = tmp_path / "bad.yaml"
    f.write_text(USER_SPACE.replace("op: [conv,", "op: [resnet, conv,"))
    space = load_space(str(f))
    msg = r"stage 0 offers op 'resnet' \(block 'bottleneck'\).*no elastic form.*remove 'resnet'"
    with pytest.raises(UnsupportedSpaceError, match=msg):
        check_supported(space)
    with pytest.raises(ValueError, match="--evaluator proxy"):
        SuperNet(space, in_channels=1, num_classes=10)


@pytest.mark.parametrize("name", ["mnasnet", "efficientnet"])
def test_shipped_spaces_are_supported(name):
    check_supported(load_space(name))  # does not raise

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

from nas.supernet import SuperNet, UnsupportedSpaceError, check_supported, extract, family
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
    return torch.allclose(a, b, rtol=1e-9, atol=1e-9 * float(b.detach().abs().max()))


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


def test_extract_copies_the_members_statistics_and_layouts_agree(supernet):
    """Extraction copies whatever statistics the member has (here the fixture's, shared by
    every member), in either layout, and the copy does not follow later changes to the
    supernet."""
    spec = supernet.sample(random.Random(11))
    supernet.set_active(spec).eval()
    (x,) = _batches(supernet, seed=5, n=1, size=3)
    state = extract(supernet)
    model = build(spec).double().eval()
    model.load_state_dict(state)
    assert _close(model(x), supernet(x))
    try:  # the channels_last layout computes the same function
        assert _close(supernet.set_channels_last(True)(x), model(x))
    finally:
        supernet.set_channels_last(False)
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


def test_zero_init_last_starts_every_later_residual_block_as_its_shortcut(tmp_path_factory):
    """With zero_init_last (the default), a fresh supernet computes the same function at every
    depth of a member whose skips are 'identity' (eval mode: the extra blocks add zero);
    without it, depth changes the output."""
    space = _space("user", tmp_path_factory)
    (x,) = _batches(SuperNet(space, in_channels=3, num_classes=7), seed=9, n=1, size=2)
    for zero, same in ((True, True), (False, False)):
        torch.manual_seed(0)
        net = SuperNet(space, in_channels=3, num_classes=7, zero_init_last=zero).double().eval()
        # per stage an op whose branch ends in its batch norm (the zero-initialised families;
        # a regular conv or dsa branch ends activated and keeps its init)
        linear = tuple(next(op for op in st.choices["op"] if not op.startswith(("conv", "dsa")))
                       for st in space.stages)
        big = net.largest(ops=linear)
        depths = [max(1, st.repeats + min(st.choices["layers"])) for st in space.stages]
        shallow = big.replace(stages=tuple(s.__class__(**{**s.__dict__, "repeats": d})
                                           for s, d in zip(big.stages, depths)))
        assert [s.repeats for s in shallow.stages] != [s.repeats for s in big.stages]
        with torch.no_grad():
            a, b = net.set_active(big)(x), net.set_active(shallow)(x)
        assert torch.allclose(a, b) is same, zero
        assert net.settings()["zero_init_last"] is zero


def test_members_without_the_residual_do_not_start_constant(tmp_path_factory):
    """With zero_init_last, a member choosing skip 'none' runs its later blocks' last layer on
    a batch norm of its own that starts at one, so its output still depends on its input
    (a zero branch without a shortcut would be a constant, and the batch norms after it would
    divide by a zero variance). Its residual twin starts as its shortcut."""
    space = _space("user", tmp_path_factory)
    torch.manual_seed(0)
    net = SuperNet(space, in_channels=3, num_classes=7).double()
    (x,) = _batches(net, seed=10, n=1, size=4)
    linear = tuple(next(op for op in st.choices["op"] if not op.startswith(("conv", "dsa")))
                   for st in space.stages)  # zero-initialised families (see the test above)
    big = net.largest(ops=linear)
    plain = big.replace(stages=tuple(s.__class__(**{**s.__dict__, "skip": "none"})
                                     for s in big.stages))
    conv = net.stages[1][1]["conv"]  # ends activated: never zeroed, so it needs no twin
    assert conv.last_bn() is None and conv.plain_bn is None
    block = net.stages[1][1][family(plain.stages[1].block, plain.stages[1].expand_ratio)]
    assert block.plain_bn is not None and float(block.last_bn().weight.detach().abs().max()) == 0.0
    with torch.no_grad():
        out = net.train().set_active(plain)(x)
    assert torch.isfinite(out).all() and float(out.std(dim=0).max()) > 1e-3
    assert net.stages[1][0][family(plain.stages[1].block,
                                   plain.stages[1].expand_ratio)].plain_bn is None


def test_every_elastic_family_matches_the_builder(monkeypatch, tmp_path):
    """The families no shipped op reaches (``dsa``: MobileNetV1's activated pointwise) hold
    too, once a space offers them as a ConvOp."""
    from nas.supernet import ELASTIC_BLOCKS

    monkeypatch.setitem(CONV_OPS._items, "dsa", ("dsa", 1.0))
    f = tmp_path / "dsa.yaml"
    f.write_text(USER_SPACE.replace("op: [conv,", "op: [dsa, conv,"))
    space = load_space(str(f))
    torch.manual_seed(0)
    net = SuperNet(space, in_channels=3, num_classes=7).double().requires_grad_(False)
    _perturb(net, seed=2)
    families = {fam for stage in net.stages for blocks in stage for fam in blocks}
    assert families == set(ELASTIC_BLOCKS)
    calib, (x,) = _batches(net, seed=7), _batches(net, seed=8, n=1, size=3)
    rng = random.Random(9)
    for _ in range(6):
        params = space.sample(type("S", (), {"suggest_categorical": lambda self, n, c: (
            "dsa" if n.endswith("_op") else rng.choice(list(c)))})())
        spec = net.member(params)
        recalibrate_bn(net.set_active(spec), calib)
        model = build(spec).double()
        model.load_state_dict(extract(net))
        assert _close(model.eval()(x), net.eval()(x))


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


# --------------------------------------------------------------------------- scoring
@pytest.fixture(scope="module")
def tiny_task(synthetic_ds, tmp_path_factory):
    """The user space's supernet (float32, fresh) on synthetic 1x16x16 data, 10 classes."""
    from nas.data import TensorSplit, proxy_data

    data = proxy_data(synthetic_ds, resolution=16, train_samples=256, val_samples=100, seed=0)
    space = _space("user", tmp_path_factory)
    torch.manual_seed(0)
    net = SuperNet(space, in_channels=data.in_channels, num_classes=data.num_classes)
    return (net, TensorSplit(data.train_x, data.train_y), TensorSplit(data.val_x, data.val_y))


def test_score_candidate_is_the_built_networks_accuracy_and_deterministic(tiny_task):
    """The score is an accuracy; scoring B in between does not change A's score (every score
    starts from reset statistics); it equals the accuracy of build(spec) holding the extracted
    weights, recalibrated on the same batches."""
    from nas.supernet.calibrate import calibration_batches, score_candidate
    from nas.train import evaluate

    net, train, val = tiny_task
    calib = calibration_batches(train, num_batches=2, batch_size=32, seed=0)
    a, b = net.sample(random.Random(1)), net.smallest()
    first = score_candidate(net, a, calib_batches=calib, val_split=val)
    other = score_candidate(net, b, calib_batches=calib, val_split=val)
    again = score_candidate(net, a, calib_batches=calib, val_split=val)
    assert 0.0 <= first <= 1.0 and 0.0 <= other <= 1.0
    assert again == first
    model = build(a)
    model.load_state_dict(extract(net, a))
    recalibrate_bn(model, calib)
    (acc,) = evaluate(model, val, channels_last=False)
    assert acc == pytest.approx(first, abs=1.5 / len(val))  # at most one image may round apart


def test_calibration_batches_are_seeded_and_checked(tiny_task):
    from nas.supernet.calibrate import calibration_batches

    _, train, _ = tiny_task
    a = calibration_batches(train, num_batches=2, batch_size=16, seed=3)
    b = calibration_batches(train, num_batches=2, batch_size=16, seed=3)
    c = calibration_batches(train, num_batches=2, batch_size=16, seed=4)
    assert [x.shape for x in a] == [(16, 1, 16, 16)] * 2
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], c[0])
    with pytest.raises(ValueError, match="holds 256; pass fewer"):
        calibration_batches(train, num_batches=3, batch_size=100)
    with pytest.raises(ValueError, match="at least one batch"):
        recalibrate_bn(build(tiny_task[0].smallest()), [])


# --------------------------------------------------------------------------- training
def _fresh(tiny_task, seed=0):
    net, train, val = tiny_task
    torch.manual_seed(seed)
    return SuperNet(net.space, in_channels=net.in_channels, num_classes=net.num_classes)


def _config(**kw):
    from nas.train import TrainConfig

    base = dict(epochs=3, batch_size=32, lr=0.05, warmup_epochs=0.3, threads=1,
                channels_last=False)
    base.update(kw)
    return TrainConfig(**base)


@torch.no_grad()
def _loss(net, spec, split):
    net.set_active(spec).train()  # batch statistics: what the step's loss measures
    return float(torch.nn.functional.cross_entropy(net(split.x), split.labels))


def test_training_decreases_the_loss_of_the_largest_and_smallest(tiny_task):
    from nas.supernet.train import train_supernet

    net = _fresh(tiny_task)
    _, train, _ = tiny_task
    before = [_loss(net, s, train) for s in (net.largest(), net.smallest())]
    seen = []
    result = train_supernet(net, train, config=_config(), seed=0, n_random=1, on_step=seen.append)
    after = [_loss(net, s, train) for s in (net.largest(), net.smallest())]
    assert result.finished and result.steps == result.total_steps == 3 * 8
    assert [r.step for r in seen] == list(range(1, 25))
    # the smallest (8 channels, no head) learns slowly from a teacher that starts at chance
    assert after[0] < 0.5 * before[0] and after[1] < before[1] - 0.05, (before, after)


@pytest.mark.parametrize("distill", ["kl", "none"])
def test_resume_from_a_checkpoint_equals_the_unbroken_run(tiny_task, tmp_path, distill):
    """Stopped after 5 of 16 steps and resumed into a differently initialised supernet, a run
    ends with the very weights, optimizer state and losses of the unbroken run."""
    from nas.supernet.train import load_supernet_checkpoint, train_supernet

    _, train, _ = tiny_task
    cfg = _config(epochs=2)
    kw = dict(config=cfg, seed=7, n_random=2, distill=distill, checkpoint_every=3)
    whole = _fresh(tiny_task)
    full = train_supernet(whole, train, checkpoint_path=tmp_path / "a.pt", **kw)
    broken = _fresh(tiny_task)
    part = train_supernet(broken, train, checkpoint_path=tmp_path / "b.pt", stop_after=5, **kw)
    assert (part.steps, part.finished) == (5, False)
    assert load_supernet_checkpoint(tmp_path / "b.pt")["step"] == 5
    resumed = _fresh(tiny_task, seed=1)
    rest = train_supernet(resumed, train, checkpoint_path=tmp_path / "b.pt", **kw)
    assert (rest.resumed_from, rest.steps, rest.finished) == (5, 16, True)
    assert [h.loss_members for h in rest.history] == [h.loss_members for h in full.history]
    a, b = whole.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert load_supernet_checkpoint(tmp_path / "b.pt")["fingerprint"] == full.fingerprint


def test_ctrl_c_keeps_the_last_finished_step(tiny_task, tmp_path):
    """A KeyboardInterrupt (here from the progress callback after step 3) writes the checkpoint
    of the last finished step although none was due; the resumed run equals the unbroken one."""
    from nas.supernet.train import load_supernet_checkpoint, train_supernet

    _, train, _ = tiny_task
    kw = dict(config=_config(epochs=1), seed=3, n_random=1, checkpoint_every=100)
    whole = _fresh(tiny_task)
    train_supernet(whole, train, **kw)

    def interrupt(result):
        if result.step == 3:
            raise KeyboardInterrupt

    broken = _fresh(tiny_task)
    with pytest.raises(KeyboardInterrupt):
        train_supernet(broken, train, checkpoint_path=tmp_path / "k.pt", on_step=interrupt, **kw)
    assert load_supernet_checkpoint(tmp_path / "k.pt")["step"] == 3
    resumed = _fresh(tiny_task, seed=2)
    assert train_supernet(resumed, train, checkpoint_path=tmp_path / "k.pt", **kw).resumed_from == 3
    a, b = whole.state_dict(), resumed.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_checkpoint_of_other_settings_is_refused(tiny_task, tmp_path):
    from nas.supernet.train import train_supernet

    _, train, _ = tiny_task
    net = _fresh(tiny_task)
    train_supernet(net, train, config=_config(epochs=1), seed=0, n_random=0,
                   checkpoint_path=tmp_path / "c.pt", stop_after=1)
    with pytest.raises(ValueError, match="trained with other settings"):
        train_supernet(net, train, config=_config(epochs=1, lr=0.1), seed=0, n_random=0,
                       checkpoint_path=tmp_path / "c.pt")


def test_a_scoring_worker_loads_the_trained_supernet(tiny_task, tmp_path):
    """load_trained_supernet rebuilds the supernet a checkpoint holds (it scores what the
    trained one scores) and refuses a checkpoint of another space."""
    from nas.supernet import calibration_batches, load_trained_supernet, score_candidate
    from nas.supernet.train import train_supernet

    _, train, val = tiny_task
    net = _fresh(tiny_task)
    train_supernet(net, train, config=_config(epochs=1), seed=0, n_random=1,
                   checkpoint_path=tmp_path / "s.pt")
    loaded, info = load_trained_supernet(tmp_path / "s.pt", net.space)
    assert (info["step"], info["total_steps"], info["n_random"]) == (8, 8, 1)
    calib = calibration_batches(train, num_batches=2, batch_size=32)
    spec = net.sample(random.Random(5))
    assert score_candidate(loaded, spec, calib_batches=calib, val_split=val) == \
        score_candidate(net, spec, calib_batches=calib, val_split=val)
    with pytest.raises(ValueError, match="was trained on space 'user'.*not on 'mnasnet'"):
        load_trained_supernet(tmp_path / "s.pt", load_space("mnasnet"))


def test_bad_training_settings_are_named_with_the_fix(tiny_task):
    from nas.supernet.train import check_training
    from space.errors import UnknownNameError

    with pytest.raises(ValueError, match="n_random >= 0.*pass e.g. 2"):
        check_training(_config(), n_random=-1, distill="kl")
    with pytest.raises(UnknownNameError, match="known: ce, kl, none"):
        check_training(_config(), n_random=2, distill="mse")
    with pytest.raises(ValueError, match="pass --compile off"):
        check_training(_config(compile="default"), n_random=2, distill="kl")


def test_fingerprint_follows_what_the_weights_depend_on(tiny_task):
    from nas.supernet.train import fingerprint, supernet_settings

    net = tiny_task[0]

    def fp(config, **kw):
        base = dict(config=config, seed=0, n_random=2, distill="kl", train_images=256)
        return fingerprint(supernet_settings(net, **{**base, **kw}))

    base = fp(_config())
    assert base == fp(_config()) and len(base) == 12
    assert base == fp(_config(threads=2, eval_batch_size=100))  # how, not what
    assert len({base, fp(_config(lr=0.1)), fp(_config(), seed=1), fp(_config(), n_random=3),
                fp(_config(), distill="ce"), fp(_config(), data={"dataset": "cifar10"}),
                fp(_config(), rule="per-op")}) == 7


def test_sandwich_rules(tiny_task):
    """'extremes': the global largest and smallest (each stage's costliest and cheapest op);
    'per-op': one op per stage for the whole step, the largest and smallest of the elastic
    dimensions within it. Only the largest keeps dropout and drop-connect."""
    from nas.supernet.train import sandwich

    net = tiny_task[0]
    ext = sandwich(net, random.Random(0), 2, rule="extremes")
    assert ext[0] == net.largest() and ext[1] == net.smallest().replace(dropout=0.0,
                                                                          drop_connect=0.0)
    assert ext[0].dropout == 0.1 and all(m.dropout == 0.0 == m.drop_connect for m in ext[1:])
    seen_ops = set()
    for seed in range(6):
        members = sandwich(net, random.Random(seed), 3, rule="per-op")
        ops = {tuple((s.block, s.expand_ratio) for s in m.stages) for m in members}
        assert len(members) == 5 and len(ops) == 1
        seen_ops |= ops
        big, small = members[0], members[1]
        assert all(b.out_channels >= s.out_channels and b.repeats >= s.repeats
                   and b.kernel >= s.kernel for b, s in zip(big.stages, small.stages))
        for m in members:
            net.check_member(m)
    assert len(seen_ops) > 1


# --------------------------------------------------------------------- cheaper scoring
def test_score_candidate_equals_the_plain_path_and_reuses_each_weight(tiny_task, monkeypatch):
    """score_candidate (inference mode, weights made once per candidate) gives exactly what
    set_active + recalibrate_bn + nas.train.evaluate give with weights re-made per batch; and
    each layer's weight is made once for the candidate, not once per batch."""
    from nas.supernet import calibration_batches, score_candidate
    from nas.supernet.elastic import ElasticConvBN
    from nas.train import evaluate

    net, train, val = tiny_task
    calib = calibration_batches(train, num_batches=2, batch_size=32, seed=0)
    spec = net.sample(random.Random(3))
    net.set_channels_last(True)
    try:
        monkeypatch.setattr(ElasticConvBN, "cache_weights", False)
        net.set_active(spec)
        recalibrate_bn(net, calib)
        (plain,) = evaluate(net, val, batch_size=10, channels_last=True)
        monkeypatch.setattr(ElasticConvBN, "cache_weights", True)
        made = []
        real = ElasticConvBN.weight_for
        monkeypatch.setattr(ElasticConvBN, "weight_for",
                            lambda self, *a: made.append(self) or real(self, *a))
        score = score_candidate(net, spec, calib_batches=calib, val_split=val, batch_size=10)
    finally:
        net.set_channels_last(False)
    assert score == plain
    # 2 calibration and 10 evaluation batches; every conv layer made its weight once
    assert len(made) == len(set(map(id, made))) > 0


def test_reused_weights_follow_every_change_of_the_parameters(tiny_task):
    """Without autograd a layer reuses its last weight; an optimizer step, an in-place edit
    or load_state_dict makes it anew (the version counter), and a grad-enabled pass never
    reuses one."""
    net = _fresh(tiny_task)
    spec = net.sample(random.Random(4))
    net.set_active(spec).eval()
    x = torch.randn(4, net.in_channels, 16, 16)

    def fresh_output():
        from nas.supernet.elastic import ElasticConvBN

        ElasticConvBN.cache_weights = False
        try:
            with torch.no_grad():
                return net(x)
        finally:
            ElasticConvBN.cache_weights = True

    with torch.no_grad():
        before = net(x)
        assert torch.equal(net(x), before)
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    net(x).square().mean().backward()  # autograd on: nothing reused, gradients reach weights
    opt.step()
    with torch.no_grad():
        after_step = net(x)
    assert not torch.equal(after_step, before) and torch.equal(after_step, fresh_output())
    with torch.no_grad():
        net.stem.weight.mul_(-1.0)
        edited = net(x)
    assert torch.equal(edited, fresh_output()) and not torch.equal(edited, after_step)
    state = _fresh(tiny_task, seed=5).state_dict()
    net.load_state_dict(state)
    with torch.inference_mode():
        loaded = net(x)
    assert torch.equal(loaded, fresh_output())


def test_validation_subset_is_seeded_and_checked(tiny_task):
    from nas.supernet import validation_subset

    _, _, val = tiny_task
    a = validation_subset(val, 30, seed=0)
    assert len(a) == 30 and torch.equal(a.x, validation_subset(val, 30, seed=0).x)
    assert not torch.equal(a.x, validation_subset(val, 30, seed=1).x)
    rows = {tuple(r.flatten().tolist()) for r in val.x}
    assert all(tuple(r.flatten().tolist()) in rows for r in a.x)
    assert len(validation_subset((val.x, val.labels), len(val))) == len(val)
    for bad in (0, len(val) + 1, 2.5):
        with pytest.raises(ValueError, match=r"num_images <= 100.*pass e.g. 100"):
            validation_subset(val, bad)


def test_largest_first_trains_the_largest_alone_then_the_sandwich(tiny_task):
    """largest_first=1 of 2 epochs: the first epoch's steps train the largest alone (no other
    member's loss), the second the whole sandwich. It joins the fingerprint only when set."""
    from nas.supernet.train import check_training, fingerprint, supernet_settings, train_supernet

    net = _fresh(tiny_task)
    _, train, _ = tiny_task
    seen = []
    train_supernet(net, train, config=_config(epochs=2), seed=0, n_random=1, largest_first=1,
                   on_step=seen.append)
    assert [r.loss_members for r in seen[:8]] == [0.0] * 8
    assert all(r.loss_members > 0 for r in seen[8:]) and len(seen) == 16
    base = dict(config=_config(), seed=0, n_random=2, distill="kl", train_images=256)
    assert supernet_settings(net, **base) == supernet_settings(net, **base, largest_first=0)
    assert fingerprint(supernet_settings(net, **base)) != \
        fingerprint(supernet_settings(net, **base, largest_first=1))
    for bad in (-1, 3, True):
        with pytest.raises(ValueError, match="largest_first < epochs.*pass e.g. 0 or 1"):
            check_training(_config(epochs=3), n_random=2, distill="kl", largest_first=bad)


def test_uniform_rule_draws_every_member_from_the_space(tiny_task):
    """'uniform' (SPOS): 2 + n_random members, all drawn uniformly (seeded), none forced to an
    end; the first keeps the space's dropout as the teacher."""
    from nas.supernet.train import sandwich

    net = tiny_task[0]
    members = sandwich(net, random.Random(0), 2, rule="uniform")
    assert len(members) == 4 and len(set(members)) == 4
    assert net.largest() not in members and members[0].dropout == 0.1
    assert members == sandwich(net, random.Random(0), 2, rule="uniform")
    for m in members:
        net.check_member(m)

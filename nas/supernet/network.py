"""The supernet: one module that holds every member of a search space (issue 24, phase 1).

Once-for-All (Cai et al., ICLR 2020) and BigNAS (Yu et al., ECCV 2020) train one network whose
sub-networks are the candidates; a candidate is scored with the weights it inherits. Here the
candidates are the members of a :class:`space.search_space.SearchSpace` (MnasNet Sec. 4.1's
factorized space: per stage a ConvOp, kernel, SE ratio, skip, filters and layers), and the
supernet holds, per stage and depth position, one elastic block per op family
(:mod:`.blocks`), elastic in kernel, expansion, width and depth, with SE and skip as switches
(:mod:`.elastic`).

``SuperNet.set_active(spec)`` picks the member the forward pass runs; :func:`extract` gives that
member's weights as the state dict of ``space.build(spec)``, which then computes the same
function (tests/nas/test_supernet.py checks it for sampled members of every shipped space).
:func:`check_supported` says up front, with the fix, when a space holds something the supernet
cannot (so a command line can refuse before it writes anything).
"""
from __future__ import annotations

import hashlib
import json
import random
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from space.builder import ACTIVATIONS, BlockArgs, block_args
from space.counting import count_analytic
from space.scaling import round_filters
from space.search_space import CONV_OPS, DIMENSIONS, SearchSpace
from space.spec import ArchSpec, StemSpec

from .blocks import ELASTIC_BLOCKS, BlockSizes, family
from .elastic import ElasticConvBN

# The space dimensions the supernet makes elastic or switchable; a space that chooses along
# any other is refused by check_supported (a new dimension needs an elastic form first).
SUPPORTED_DIMENSIONS = ("op", "kernel", "se_ratio", "skip", "filters", "layers")


class UnsupportedSpaceError(ValueError):
    """The space holds something the supernet has no elastic form for; the message says what
    and how to proceed."""


def check_supported(space: SearchSpace) -> None:
    """Raise :class:`UnsupportedSpaceError` naming the first thing in ``space`` the supernet
    cannot hold, and the fix. Cheap (no weights are made): run it before writing anything."""
    if not isinstance(space, SearchSpace):
        raise TypeError(f"check_supported needs a SearchSpace (space.search_space.load_space), "
                        f"but got {type(space).__name__}")
    fix = "or pass --evaluator proxy, which trains every candidate from scratch"
    for i, st in enumerate(space.stages):
        unknown = sorted(set(st.choices) - set(SUPPORTED_DIMENSIONS))
        if unknown:
            raise UnsupportedSpaceError(
                f"space {space.name!r}: stage {i} chooses {unknown[0]!r}, a dimension the supernet "
                f"has no elastic form for (it holds {', '.join(SUPPORTED_DIMENSIONS)}); fix the "
                f"choice in the space file, {fix}")
        for op in st.choices["op"]:
            block, expand_ratio = CONV_OPS.get(op)
            if family(block, expand_ratio) not in ELASTIC_BLOCKS:
                raise UnsupportedSpaceError(
                    f"space {space.name!r}: stage {i} offers op {op!r} (block {block!r}), which has "
                    f"no elastic form in the supernet (it holds blocks "
                    f"{', '.join(sorted(ELASTIC_BLOCKS))}); remove {op!r} from the stage's op "
                    f"choices, {fix}")
    missing = [d for d in DIMENSIONS if d not in SUPPORTED_DIMENSIONS]
    if missing:  # the space module grew a dimension this supernet does not know
        raise UnsupportedSpaceError(f"search spaces choose {', '.join(missing)}, which the supernet "
                                    f"has no elastic form for; {fix}")


def space_fingerprint(space: SearchSpace) -> str:
    """12 hex digits of the space's full description: two spaces with one fingerprint hold the
    same members with the same training settings."""
    blob = json.dumps(space.to_dict(), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _stage_widths(space: SearchSpace, i: int) -> tuple[int, ...]:
    st = space.stages[i]
    return tuple(sorted({round_filters(st.channels, float(f)) for f in st.choices["filters"]}))


def _stage_depths(space: SearchSpace, i: int) -> tuple[int, ...]:
    st = space.stages[i]
    return tuple(sorted({max(1, st.repeats + int(d)) for d in st.choices["layers"]}))


class SuperNet(nn.Module):
    """Every member of ``space``, retargeted at ``in_channels`` and ``num_classes``.

    Layout: ``stem`` (fixed), ``stages[i][j][family]`` (an elastic block per stage ``i``, depth
    position ``j`` and op family), ``head`` (1x1 conv, elastic input; absent when the space has
    none) and ``classifier`` (elastic input when there is no head). Batch norm takes the space's
    ``bn_eps`` (so members compute what ``build`` does) and ``bn_momentum`` unless given; the
    running statistics only matter after :func:`~nas.supernet.calibrate.recalibrate_bn`.

    ``zero_init_last`` (default on) starts the last batch norm of every block that is residual
    in every member choosing skip 'identity' at zero. Measured on Fashion-MNIST at 32 px: the
    mnasnet space's largest member (24 blocks) stayed at chance for a whole epoch without it
    (loss 2.5-3.0 after 40 steps, and so did ``build`` of it), and fell to ~1.2-1.4 in 40
    steps with it (benchmarks/BENCHMARKS_supernet.md). Members that choose skip 'none' there
    use a last batch norm of their own (``plain_bn``, :mod:`.blocks`), which starts at one.
    ``zero_init_last`` is part of how the supernet is trained: it is in :meth:`settings`.
    Only a branch that ends in its batch norm is zeroed (mbconv, dsconv), as in ``space.build``:
    in the regular conv and dsa families that batch norm feeds a ReLU, whose gradient at 0 is 0,
    so a zeroed one stayed the identity for good (before the fix, their gamma was still exactly
    0 after 3 epochs; benchmarks/BENCHMARKS_supernet.md). Those families keep their init.
    """

    def __init__(self, space: SearchSpace, *, in_channels: int, num_classes: int,
                 bn_momentum: float | None = None, zero_init_last: bool = True,
                 zero_init_head: bool = False) -> None:
        super().__init__()
        check_supported(space)
        for name, v in (("in_channels", in_channels), ("num_classes", num_classes)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"`{name} >= 1` must hold, but got {name}={v!r}; pass the "
                                 f"dataset's (e.g. 1 and 10 for fashion-mnist)")
        self.space = space
        self.in_channels, self.num_classes = in_channels, num_classes
        ref = self._reference()
        self.bn_eps = ref.bn_eps
        if bn_momentum is not None and not (isinstance(bn_momentum, (int, float))
                                            and 0 < bn_momentum <= 1):
            raise ValueError(f"`0 < bn_momentum <= 1` must hold, but got bn_momentum="
                             f"{bn_momentum!r}; pass e.g. 0.1, or None for the space's")
        self.bn_momentum = ref.bn_momentum if bn_momentum is None else float(bn_momentum)
        bn = dict(eps=self.bn_eps, momentum=self.bn_momentum)
        self.stem = ElasticConvBN(in_channels, ref.stem.channels, (ref.stem.kernel,), **bn)
        stages = []
        in_max = ref.stem.channels
        for i in range(len(space.stages)):
            stages.append(_stage(space, i, in_max, bn, zero_init_last=bool(zero_init_last)))
            in_max = max(_stage_widths(space, i))
        self.stages = nn.ModuleList(stages)
        self.head = ElasticConvBN(in_max, space.head, (1,), **bn) if space.head is not None else None
        self.classifier = nn.Linear(space.head if space.head is not None else in_max, num_classes)
        r = 1.0 / self.classifier.out_features ** 0.5  # space.builder's init
        nn.init.uniform_(self.classifier.weight, -r, r)
        nn.init.zeros_(self.classifier.bias)
        self.zero_init_head = bool(zero_init_head)
        if zero_init_head:  # space.builder's zero_init_head: every member starts at chance
            nn.init.zeros_(self.classifier.weight)
        self.zero_init_last = bool(zero_init_last)
        if zero_init_last:
            self._zero_init_last()
        self._acts: dict[str, nn.Module] = {}
        self._largest: ArchSpec | None = None
        self._smallest: ArchSpec | None = None
        self.channels_last = False
        self._active: tuple[ArchSpec, list[BlockArgs]] | None = None

    @torch.no_grad()
    def _zero_init_last(self) -> None:
        # Every block past a stage's first keeps its shapes, so with skip 'identity' it is a
        # residual block in every member: its branch starts at zero and the block as its
        # shortcut (space.builder's zero_init_last; BigNAS Sec. 3.1). A first block is residual
        # only for members whose widths agree, so it keeps its initial weights.
        for i, stage in enumerate(self.stages):
            if "identity" in self.space.stages[i].choices["skip"]:
                for position in list(stage)[1:]:
                    for block in position.values():
                        if (bn := block.last_bn()) is not None:  # not a branch ending activated
                            nn.init.zeros_(bn.weight)

    # ------------------------------------------------------------------ members
    def _reference(self) -> ArchSpec:
        params = {f"s{i}_{d}": st.choices[d][0] for i, st in enumerate(self.space.stages)
                  for d in DIMENSIONS}
        return self.member(params)

    def member(self, params: Mapping[str, Any], *, name: str = "candidate") -> ArchSpec:
        """The member spec of a space params dict, retargeted at this supernet's task."""
        return self.space.to_spec(params, name=name).with_task(in_channels=self.in_channels,
                                                               num_classes=self.num_classes)

    def largest(self, ops: tuple[str, ...] | None = None) -> ArchSpec:
        """Every dimension at its largest: widest, deepest, largest kernel and SE, identity skip,
        and per stage the op with the most multiply-adds, or stage ``i``'s ``ops[i]`` when
        given (the sandwich rule's top)."""
        if ops is not None:
            return self.member(_extreme_params(self.space, largest=True, ops=ops), name="largest")
        if self._largest is None:  # the space is frozen: count once, not at every step
            self._largest = self.member(_extreme_params(self.space, largest=True), name="largest")
        return self._largest

    def smallest(self, ops: tuple[str, ...] | None = None) -> ArchSpec:
        """Every dimension at its smallest (the sandwich's bottom), but skip 'identity' where
        offered, as the largest: it costs no multiply-adds, and with it the smallest trains
        from a zero-initialised branch as the largest does. Ops as :meth:`largest`'s."""
        if ops is not None:
            return self.member(_extreme_params(self.space, largest=False, ops=ops),
                               name="smallest")
        if self._smallest is None:
            self._smallest = self.member(_extreme_params(self.space, largest=False),
                                         name="smallest")
        return self._smallest

    def sample(self, rng: random.Random, ops: tuple[str, ...] | None = None) -> ArchSpec:
        """A member drawn uniformly per dimension (SPOS / BigNAS random members); with ``ops``,
        stage ``i`` takes ``ops[i]``."""
        fixed = {} if ops is None else {f"s{i}_op": op for i, op in enumerate(ops)}
        return self.member(self.space.sample(_RandomSuggester(rng, fixed)), name="random")

    def sample_ops(self, rng: random.Random) -> tuple[str, ...]:
        """One ConvOp per stage, drawn uniformly (SPOS's single path over the op choice)."""
        return tuple(rng.choice(list(st.choices["op"])) for st in self.space.stages)

    def check_member(self, spec: ArchSpec) -> None:
        """Raise ValueError unless the supernet holds ``spec``, naming the field that differs."""
        if not isinstance(spec, ArchSpec):
            raise TypeError(f"a member must be an ArchSpec, but got {type(spec).__name__}")
        space = self.space

        def fail(what: str, value: Any, held: Any) -> None:
            raise ValueError(f"{what}={value!r} is not held by the supernet of space "
                             f"{space.name!r} (it holds {held}); pass a member of the space, "
                             f"e.g. space.to_spec(params).with_task(in_channels="
                             f"{self.in_channels}, num_classes={self.num_classes})")

        if spec.in_channels != self.in_channels:
            fail("in_channels", spec.in_channels, self.in_channels)
        if spec.num_classes != self.num_classes:
            fail("num_classes", spec.num_classes, self.num_classes)
        if spec.stem != StemSpec(space.stem):
            fail("stem", spec.stem, StemSpec(space.stem))
        if spec.head_channels != space.head:
            fail("head_channels", spec.head_channels, space.head)
        if spec.activation not in space.activation:
            fail("activation", spec.activation, list(space.activation))
        if spec.bn_eps != self.bn_eps:
            fail("bn_eps", spec.bn_eps, self.bn_eps)
        if len(spec.stages) != len(space.stages):
            fail("number of stages", len(spec.stages), len(space.stages))
        for i, (s, st) in enumerate(zip(spec.stages, space.stages)):
            ops = [CONV_OPS.get(op) for op in st.choices["op"]]
            if (s.block, s.expand_ratio) not in ops:
                fail(f"stages[{i}] block/expand_ratio", (s.block, s.expand_ratio), ops)
            for what, value, held in (
                    ("kernel", s.kernel, st.choices["kernel"]),
                    ("se_ratio", s.se_ratio, st.choices["se_ratio"]),
                    ("skip", s.skip, st.choices["skip"]),
                    ("stride", s.stride, (st.stride,)),
                    ("out_channels", s.out_channels, _stage_widths(space, i)),
                    ("repeats", s.repeats, _stage_depths(space, i))):
                if value not in held:
                    fail(f"stages[{i}].{what}", value, list(held))

    def set_active(self, spec: ArchSpec) -> SuperNet:
        """Make ``spec`` (a member) the network the forward pass runs; returns self."""
        self.check_member(spec)
        self._active = (spec, block_args(spec))
        return self

    def set_channels_last(self, channels_last: bool = True) -> SuperNet:
        """Run every conv in the channels_last layout (or back in NCHW); returns self.

        The input layout cannot say it: a one-channel image is contiguous in both. The weights
        stay as they are; each member's sliced weight is restrided as it is used."""
        for m in self.modules():
            if isinstance(m, ElasticConvBN):
                m.channels_last = bool(channels_last)
        self.channels_last = bool(channels_last)
        return self

    @property
    def active(self) -> ArchSpec:
        if self._active is None:
            raise RuntimeError("no member is active; call supernet.set_active(spec) first")
        return self._active[0]

    # ------------------------------------------------------------------ forward
    def _act(self, name: str) -> nn.Module:
        if name not in self._acts:
            self._acts[name] = ACTIVATIONS.get(name)()
        return self._acts[name]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spec = self.active
        args = self._active[1]
        act = self._act(spec.activation)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = act(self.stem(x, spec.stem.channels, spec.stem.kernel, spec.stem.stride))
        for a, block in zip(args, self._blocks(spec)):
            x = block(x, a, act)
        if self.head is not None:
            x = act(self.head(x, spec.head_channels, 1, 1))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        x = F.dropout(x, spec.dropout, self.training)
        return F.linear(x, self.classifier.weight[:, :x.shape[1]], self.classifier.bias)

    def _blocks(self, spec: ArchSpec) -> list[nn.Module]:
        """The elastic block each of ``spec``'s blocks runs on, in network order."""
        return [self.stages[i][j][family(s.block, s.expand_ratio)]
                for i, s in enumerate(spec.stages) for j in range(s.repeats)]

    def settings(self) -> dict[str, Any]:
        """What the weights' layout depends on (for config.json and the fingerprint)."""
        return {"space": self.space.name, "space_fingerprint": space_fingerprint(self.space),
                "in_channels": self.in_channels, "num_classes": self.num_classes,
                "bn_momentum": self.bn_momentum, "zero_init_last": self.zero_init_last,
                # only when on: a supernet trained before the option keeps its fingerprint
                **({"zero_init_head": True} if self.zero_init_head else {})}


@torch.no_grad()
def extract(supernet: SuperNet, spec: ArchSpec | None = None) -> dict[str, torch.Tensor]:
    """The weights ``spec`` (default: the active member) inherits, as the state dict of
    ``space.build(spec)``: kernel transforms applied, channels sliced, running statistics
    included. Copies, so training the supernet on does not change them."""
    spec = supernet.active if spec is None else spec
    supernet.check_member(spec)
    state: dict[str, torch.Tensor] = {}

    def put(prefix: str, layer: dict[str, torch.Tensor]) -> None:
        state.update({f"{prefix}.{k}": v.detach().clone() for k, v in layer.items()})

    put("stem", supernet.stem.export(spec.in_channels, spec.stem.channels, spec.stem.kernel))
    blocks, args = supernet._blocks(spec), block_args(spec)
    k = 0
    for i, s in enumerate(spec.stages):
        for j in range(s.repeats):
            put(f"stages.{i}.{j}", blocks[k].export(args[k]))
            k += 1
    if supernet.head is not None:
        put("head", supernet.head.export(spec.stages[-1].out_channels, spec.head_channels, 1))
    c = spec.feature_channels
    put("classifier", {"weight": supernet.classifier.weight[:, :c],
                       "bias": supernet.classifier.bias})
    return state


def _stage(space: SearchSpace, i: int, in_max: int, bn: dict[str, float], *,
           zero_init_last: bool) -> nn.ModuleList:
    """Stage ``i``'s depth positions, each a ModuleDict of one elastic block per op family,
    sized for the largest member (input ``in_max`` channels at position 0). Positions that
    :meth:`SuperNet._zero_init_last` zeroes get a ``plain_bn`` when skip 'none' is offered."""
    st = space.stages[i]
    switch = zero_init_last and {"identity", "none"} <= set(st.choices["skip"])
    out_max = max(_stage_widths(space, i))
    ops = [CONV_OPS.get(op) for op in st.choices["op"]]
    positions = []
    for j in range(max(_stage_depths(space, i))):
        blocks = {}
        for fam in sorted({family(b, e) for b, e in ops}):
            sizes = BlockSizes(in_channels=in_max if j == 0 else out_max, out_channels=out_max,
                               kernels=tuple(st.choices["kernel"]),
                               expand_ratios=tuple(e for b, e in ops if family(b, e) == fam),
                               se_ratio=max(float(r) for r in st.choices["se_ratio"]),
                               plain_bn=switch and j > 0, **bn)
            blocks[fam] = ELASTIC_BLOCKS.get(fam)(sizes)
        positions.append(nn.ModuleDict(blocks))
    return nn.ModuleList(positions)


class _RandomSuggester:
    """An Optuna-trial-like object that draws every categorical uniformly from ``rng``, but
    answers the parameters in ``fixed`` as given."""

    def __init__(self, rng: random.Random, fixed: Mapping[str, Any] | None = None) -> None:
        self.rng, self.fixed = rng, dict(fixed or {})

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        choice = self.rng.choice(list(choices))  # drawn either way: the stream stays aligned
        return self.fixed.get(name, choice)


def _extreme_params(space: SearchSpace, *, largest: bool,
                    ops: tuple[str, ...] | None = None) -> dict[str, Any]:
    pick = max if largest else min
    params: dict[str, Any] = {}
    if len(space.activation) > 1:
        params["activation"] = space.activation[0]
    for i, st in enumerate(space.stages):
        for d in ("kernel", "se_ratio", "filters", "layers"):
            params[f"s{i}_{d}"] = pick(st.choices[d])
        skips = st.choices["skip"]
        params[f"s{i}_skip"] = "identity" if "identity" in skips else skips[0]
        params[f"s{i}_op"] = st.choices["op"][0] if ops is None else ops[i]
    if ops is not None:
        return params
    for i, st in enumerate(space.stages):  # per stage, the op with the most (fewest) MACs
        def macs(op: str) -> int:
            return count_analytic(space.to_spec({**params, f"s{i}_op": op})).macs

        params[f"s{i}_op"] = pick(st.choices["op"], key=macs)
    return params

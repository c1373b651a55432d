"""Frozen architecture specs: the one source of truth for a network.

An :class:`ArchSpec` describes a whole network with every rounding already applied (EfficientNet
paper, Sec. 3 and 4; MnasNet paper, Sec. 4 for the factorized per-stage description). It is
validated when made, round-trips through JSON with a ``schema_version``, and has a stable hash.
Builders, counters and scalers are pure functions of a spec; nothing mutates one.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

SCHEMA_VERSION = 1

BLOCK_TYPES = ("mbconv", "dsconv", "dsa", "conv", "bottleneck")
ACTIVATIONS = ("relu", "relu6", "silu", "swish", "hard_swish")
SKIPS = ("identity", "none")


class SpecError(ValueError):
    """A spec field breaks a rule; the message names the field path, the value and the rule."""


def _fail(path: str, rule: str, value: Any) -> None:
    raise SpecError(f"{path} {rule}, got {value!r}")


def _check_int(path: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(path, "must be an integer", value)
    if value < minimum:
        _fail(path, f"must be >= {minimum}", value)


def _check_float(path: str, value: Any, *, lo: float, hi: float, lo_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _fail(path, "must be a number", value)
    if value != value or value > hi or value < lo or (lo_open and value == lo):
        bracket = "(" if lo_open else "["
        _fail(path, f"must be in {bracket}{lo}, {hi}]", value)


def _store_floats(obj: Any, *names: str) -> None:
    # 6 and 6.0 are the same ratio: store floats so that equal specs also serialise and hash
    # the same (arch_hash reads the JSON form, where 6 and 6.0 differ).
    for name in names:
        value = getattr(obj, name)
        if isinstance(value, int) and not isinstance(value, bool):
            object.__setattr__(obj, name, float(value))


def _check_choice(path: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        _fail(path, f"must be one of {', '.join(choices)}", value)


@dataclass(frozen=True)
class StemSpec:
    """The first convolution (plus ResNet's max-pool)."""

    channels: int
    kernel: int = 3
    stride: int = 2
    maxpool: bool = False

    def validate(self, path: str = "stem") -> None:
        _check_int(f"{path}.channels", self.channels, minimum=1)
        _check_int(f"{path}.kernel", self.kernel, minimum=1)
        if self.kernel % 2 == 0:
            _fail(f"{path}.kernel", "must be odd", self.kernel)
        _check_int(f"{path}.stride", self.stride, minimum=1)
        if not isinstance(self.maxpool, bool):
            _fail(f"{path}.maxpool", "must be true or false", self.maxpool)


@dataclass(frozen=True)
class StageSpec:
    """A run of ``repeats`` identical blocks; only the first has ``stride`` and changes channels.

    ``expand_ratio`` multiplies the block's input channels for ``mbconv`` (inverted bottleneck,
    MobileNetV2) and gives the bottleneck width as a fraction of ``out_channels`` for
    ``bottleneck`` (ResNet: 0.25). Other block types ignore it and must leave it at 1.
    ``se_ratio`` sizes squeeze-and-excitation from the block's input channels, as the official
    EfficientNet code does: ``max(1, int(in_channels * se_ratio))``; 0 means no SE.
    ``skip='identity'`` adds a residual wherever shapes allow (stride 1, same channels);
    ``bottleneck`` always has one, with a projection shortcut when shapes change.
    """

    block: str
    repeats: int
    kernel: int
    stride: int
    out_channels: int
    expand_ratio: float = 1.0
    se_ratio: float = 0.0
    skip: str = "identity"

    def __post_init__(self) -> None:
        _store_floats(self, "expand_ratio", "se_ratio")

    def validate(self, path: str = "stage") -> None:
        _check_choice(f"{path}.block", self.block, BLOCK_TYPES)
        _check_int(f"{path}.repeats", self.repeats, minimum=1)
        _check_int(f"{path}.kernel", self.kernel, minimum=1)
        if self.kernel % 2 == 0:
            _fail(f"{path}.kernel", "must be odd", self.kernel)
        _check_int(f"{path}.stride", self.stride, minimum=1)
        if self.stride > 2:
            _fail(f"{path}.stride", "must be 1 or 2", self.stride)
        _check_int(f"{path}.out_channels", self.out_channels, minimum=1)
        _check_float(f"{path}.expand_ratio", self.expand_ratio, lo=0.0, hi=16.0, lo_open=True)
        if self.block in ("dsconv", "dsa", "conv") and self.expand_ratio != 1:
            _fail(f"{path}.expand_ratio", f"must be 1 for block {self.block!r}", self.expand_ratio)
        if self.block == "bottleneck" and self.expand_ratio > 1:
            _fail(f"{path}.expand_ratio", "must be <= 1 for block 'bottleneck' (ResNet: 0.25)",
                  self.expand_ratio)
        _check_float(f"{path}.se_ratio", self.se_ratio, lo=0.0, hi=1.0)
        _check_choice(f"{path}.skip", self.skip, SKIPS)


@dataclass(frozen=True)
class ArchSpec:
    """A whole network. ``head_channels=None`` means no 1x1 head conv (ResNet, MobileNetV1)."""

    name: str
    stem: StemSpec
    stages: tuple[StageSpec, ...]
    head_channels: int | None = 1280
    activation: str = "silu"
    bn_eps: float = 1e-3
    bn_momentum: float = 0.01
    dropout: float = 0.2
    drop_connect: float = 0.2
    in_channels: int = 3
    num_classes: int = 1000
    resolution: int = 224
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        # Accept lists from JSON/users but store tuples so the spec stays hashable and frozen.
        if not isinstance(self.stages, tuple):
            object.__setattr__(self, "stages", tuple(self.stages))
        _store_floats(self, "bn_eps", "bn_momentum", "dropout", "drop_connect")
        self.validate()

    def validate(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            _fail("name", "must be a non-empty string", self.name)
        if not isinstance(self.stem, StemSpec):
            _fail("stem", "must be a StemSpec", self.stem)
        self.stem.validate("stem")
        if len(self.stages) == 0:
            _fail("stages", "must hold at least one stage", list(self.stages))
        for i, stage in enumerate(self.stages):
            if not isinstance(stage, StageSpec):
                _fail(f"stages[{i}]", "must be a StageSpec", stage)
            stage.validate(f"stages[{i}]")
        if self.head_channels is not None:
            _check_int("head_channels", self.head_channels, minimum=1)
        _check_choice("activation", self.activation, ACTIVATIONS)
        _check_float("bn_eps", self.bn_eps, lo=0.0, hi=1.0, lo_open=True)
        _check_float("bn_momentum", self.bn_momentum, lo=0.0, hi=1.0)
        _check_float("dropout", self.dropout, lo=0.0, hi=0.99)
        _check_float("drop_connect", self.drop_connect, lo=0.0, hi=0.99)
        _check_int("in_channels", self.in_channels, minimum=1)
        _check_int("num_classes", self.num_classes, minimum=1)
        _check_int("resolution", self.resolution, minimum=8)

    # ----------------------------------------------------------------- derived views
    @property
    def num_blocks(self) -> int:
        return sum(s.repeats for s in self.stages)

    @property
    def feature_channels(self) -> int:
        """Channels entering the classifier."""
        return self.head_channels if self.head_channels is not None else self.stages[-1].out_channels

    def replace(self, **changes: Any) -> ArchSpec:
        return dataclasses.replace(self, **changes)

    def with_task(self, *, in_channels: int | None = None, num_classes: int | None = None,
                  resolution: int | None = None) -> ArchSpec:
        """The same architecture re-targeted at another input/label space."""
        return self.replace(
            in_channels=self.in_channels if in_channels is None else in_channels,
            num_classes=self.num_classes if num_classes is None else num_classes,
            resolution=self.resolution if resolution is None else resolution,
        )

    # ----------------------------------------------------------------- serialization
    def to_dict(self, *, include_meta: bool = True) -> dict[str, Any]:
        d = {
            "schema_version": SCHEMA_VERSION,
            "name": self.name,
            "stem": dataclasses.asdict(self.stem),
            "stages": [dataclasses.asdict(s) for s in self.stages],
            "head_channels": self.head_channels,
            "activation": self.activation,
            "bn_eps": self.bn_eps,
            "bn_momentum": self.bn_momentum,
            "dropout": self.dropout,
            "drop_connect": self.drop_connect,
            "in_channels": self.in_channels,
            "num_classes": self.num_classes,
            "resolution": self.resolution,
        }
        if include_meta and self.meta:
            d["meta"] = dict(self.meta)
        return d

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)

    def arch_hash(self) -> str:
        """Stable 12-hex-digit hash of the architecture: name and meta excluded, so two
        specs that build the same network hash the same."""
        d = self.to_dict(include_meta=False)
        d.pop("name")
        blob = json.dumps(d, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ArchSpec:
        return spec_from_dict(data)

    @classmethod
    def from_json(cls, text: str) -> ArchSpec:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise SpecError(f"spec is not valid JSON: {e}") from None
        return spec_from_dict(data)


_STEM_FIELDS = {f.name for f in dataclasses.fields(StemSpec)}
_STAGE_FIELDS = {f.name for f in dataclasses.fields(StageSpec)}
_ARCH_FIELDS = {f.name for f in dataclasses.fields(ArchSpec)} | {"schema_version"}


def _check_keys(path: str, data: Any, allowed: set[str], required: set[str]) -> None:
    if not isinstance(data, Mapping):
        _fail(path or "spec", "must be a JSON object", type(data).__name__)
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise SpecError(f"{path + '.' if path else ''}{unknown[0]} is not a known field; "
                        f"known fields: {', '.join(sorted(allowed))}")
    missing = sorted(required - set(data))
    if missing:
        raise SpecError(f"{path + '.' if path else ''}{missing[0]} is required but missing")


def spec_from_dict(data: Mapping[str, Any]) -> ArchSpec:
    """Build and validate an ArchSpec from plain data (e.g. parsed JSON)."""
    _check_keys("", data, _ARCH_FIELDS, {"name", "stem", "stages"})
    version = data.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        _fail("schema_version", f"must be {SCHEMA_VERSION} (this version of efficientnas)", version)
    _check_keys("stem", data["stem"], _STEM_FIELDS, {"channels"})
    if not isinstance(data["stages"], list):
        _fail("stages", "must be a list", data["stages"])
    stages = []
    for i, s in enumerate(data["stages"]):
        _check_keys(f"stages[{i}]", s, _STAGE_FIELDS, {"block", "repeats", "kernel", "stride",
                                                        "out_channels"})
        stage = StageSpec(**s)
        stage.validate(f"stages[{i}]")
        stages.append(stage)
    stem = StemSpec(**data["stem"])
    rest = {k: v for k, v in data.items() if k not in ("schema_version", "stem", "stages")}
    if "meta" in rest and not isinstance(rest["meta"], Mapping):
        _fail("meta", "must be a JSON object", rest["meta"])
    return ArchSpec(stem=stem, stages=tuple(stages), **rest)


def load_spec(path: str | Path) -> ArchSpec:
    """Read a spec file; errors name the file and the offending field."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise SpecError(f"cannot read spec file {str(p)!r}: {e.strerror}") from None
    try:
        return ArchSpec.from_json(text)
    except SpecError as e:
        raise SpecError(f"{p}: {e}") from None


def save_spec(spec: ArchSpec, path: str | Path) -> Path:
    from .io import atomic_write_text

    return atomic_write_text(path, spec.to_json() + "\n")

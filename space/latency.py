"""Latency lookup tables: what to time for a space, and the prediction from a table (pure parts).

MnasNet (Sec. 3) measured each candidate's latency on a phone; a lookup table of per-block
latencies (FBNet, Sec. 3.2; nn-Meter) makes that cheap: a network's latency is predicted as the
sum of its blocks' entries plus a fitted per-network overhead (input copy, dispatch, allocator
warm-up that no single block sees). This module only describes and adds; the timing itself lives
in ``nas.latency`` because it depends on the machine.

A block's entry is keyed by everything that changes its cost: type, kernel, expand ratio, SE
ratio, whether its residual is applied (``skip='identity'`` on a block whose shapes change builds
the same module as ``skip='none'``, so both map to one key), in/out channels, stride, activation
and the input size. The stem and the head (head conv, pooling, classifier) have entries too.
Keys are strings so that a table is plain JSON.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .builder import BlockArgs, block_args
from .counting import _out
from .objective import parse_latency  # re-exported: the table and the target speak ms
from .spec import ArchSpec
from .search_space import SearchSpace

__all__ = ["LatencyKey", "LatencyTable", "LatencyTableError", "TABLE_SCHEMA", "TABLE_FILE",
           "TABLE_ATTR", "block_key",
           "spec_keys", "space_keys", "predict_ms", "fit_overhead", "parse_latency",
           "load_table", "save_table", "MissingEntryError", "random_params", "table_from_dict"]

TABLE_SCHEMA = 1
# Where a latency search keeps the table it predicted with: a file in its run folder, and an
# attribute of its study (nas.search writes both; results reads them).
TABLE_FILE = "latency_table.json"
TABLE_ATTR = "latency_table"


class LatencyTableError(ValueError):
    """A table file that is broken, or that belongs to another space or device."""


class MissingEntryError(LatencyTableError):
    """A spec holds a block the table has no entry for (a spec outside the table's space)."""


@dataclass(frozen=True, order=True)
class LatencyKey:
    """One timed piece of a network at one input size (``size``: the input's height = width)."""

    kind: str  # "stem" | "block" | "head"
    block: str
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    expand_ratio: float
    se_ratio: float
    residual: bool
    activation: str
    size: int
    extra: int = 0  # stem: 1 if a max-pool follows; head: number of classes

    def __str__(self) -> str:
        res = "res" if self.residual else "nores"
        return (f"{self.kind}:{self.block}:k{self.kernel}:e{self.expand_ratio:g}:"
                f"se{self.se_ratio:g}:{res}:{self.activation}:i{self.in_channels}:"
                f"o{self.out_channels}:s{self.stride}:r{self.size}:x{self.extra}")

    @classmethod
    def parse(cls, text: str) -> "LatencyKey":
        parts = text.split(":")
        if len(parts) != 12:
            raise LatencyTableError(f"latency key {text!r} must have 12 ':'-separated fields")
        try:
            kind, block, k, e, se, res, act, i, o, s, r, x = parts
            return cls(kind=kind, block=block, in_channels=int(i[1:]), out_channels=int(o[1:]),
                       kernel=int(k[1:]), stride=int(s[1:]), expand_ratio=float(e[1:]),
                       se_ratio=float(se[2:]), residual=res == "res", activation=act,
                       size=int(r[1:]), extra=int(x[1:]))
        except ValueError:
            raise LatencyTableError(f"latency key {text!r} is malformed") from None

    def block_args(self) -> BlockArgs:
        """The builder's arguments for this entry (BN settings do not change eval-mode cost)."""
        return BlockArgs(block=self.block, in_channels=self.in_channels,
                         out_channels=self.out_channels, kernel=self.kernel, stride=self.stride,
                         expand_ratio=self.expand_ratio, se_ratio=self.se_ratio,
                         skip="identity" if self.residual else "none",
                         activation=self.activation, bn_eps=1e-3, bn_momentum=0.01, drop_path=0.0)


def block_key(a: BlockArgs, size: int) -> LatencyKey:
    residual = a.skip == "identity" if a.block == "bottleneck" else a.has_residual
    return LatencyKey("block", a.block, a.in_channels, a.out_channels, a.kernel, a.stride,
                      float(a.expand_ratio), float(a.se_ratio), residual, a.activation, size)


def _stem_key(spec: ArchSpec, size: int) -> LatencyKey:
    return LatencyKey("stem", "conv", spec.in_channels, spec.stem.channels, spec.stem.kernel,
                      spec.stem.stride, 1.0, 0.0, False, spec.activation, size,
                      int(spec.stem.maxpool))


def _stem_out(spec: ArchSpec, size: int) -> int:
    size = _out(size, spec.stem.kernel, spec.stem.stride)
    return _out(size, 3, 2) if spec.stem.maxpool else size


def _head_key(spec: ArchSpec, size: int) -> LatencyKey:
    head = spec.head_channels or 0
    return LatencyKey("head", "conv" if head else "none", spec.stages[-1].out_channels, head,
                      1, 1, 1.0, 0.0, False, spec.activation, size, spec.num_classes)


def spec_keys(spec: ArchSpec, resolution: int | None = None) -> list[LatencyKey]:
    """The entries a spec is made of, in network order (stem, every block, head)."""
    size = int(resolution or spec.resolution)
    keys = [_stem_key(spec, size)]
    size = _stem_out(spec, size)
    for a in block_args(spec):
        keys.append(block_key(a, size))
        size = _out(size, a.kernel, a.stride)
    keys.append(_head_key(spec, size))
    return keys


def space_keys(space: SearchSpace, resolution: int) -> list[LatencyKey]:
    """Every entry any member of ``space`` can contain at ``resolution``, sorted.

    Built from the space's own ``stage_spec`` over every stage's choice combinations, so it
    rounds channels exactly as members do: a stage's first block meets every out-channel count
    the previous stage can have; its other blocks (when some choice gives it more than one)
    run at its own width with stride 1.
    """
    keys: set[LatencyKey] = set()
    for act in space.activation:
        probe = space.to_spec(_first_params(space) | ({"activation": act}
                                                      if len(space.activation) > 1 else {}))
        size = _stem_out(probe, resolution)
        keys.add(_stem_key(probe, resolution))
        in_set = {probe.stem.channels}
        for i in range(len(space.stages)):
            stages = {space.stage_spec(i, c) for c in space._stage_combos(i)}
            for st in stages:
                for cin in in_set:
                    keys.add(_key_of(st, cin, st.stride, size, act, probe))
                    if st.repeats > 1:
                        after = _out(size, st.kernel, st.stride)
                        keys.add(_key_of(st, st.out_channels, 1, after, act, probe))
            size = _out(size, 3, space.stages[i].stride)  # every kernel is odd: same size
            in_set = {st.out_channels for st in stages}
        for cin in in_set:
            keys.add(_head_key(_with_last(probe, cin), size))
    return sorted(keys)


def random_params(space: SearchSpace, *, seed: int | None) -> dict[str, Any]:
    """A uniformly random member's params (each choice independently), reproducible by seed."""
    import random

    rng = random.Random(seed)

    class _Pick:
        def suggest_categorical(self, name: str, choices: Any) -> Any:
            return rng.choice(list(choices))

    return space.sample(_Pick())


def _first_params(space: SearchSpace) -> dict[str, Any]:
    return {k: v for i in range(len(space.stages)) for k, v in next(space._stage_combos(i)).items()}


def _with_last(spec: ArchSpec, out_channels: int) -> ArchSpec:
    import dataclasses

    last = dataclasses.replace(spec.stages[-1], out_channels=out_channels)
    return dataclasses.replace(spec, stages=spec.stages[:-1] + (last,))


def _key_of(st, cin: int, stride: int, size: int, act: str, spec: ArchSpec) -> LatencyKey:
    a = BlockArgs(block=st.block, in_channels=cin, out_channels=st.out_channels,
                  kernel=st.kernel, stride=stride, expand_ratio=st.expand_ratio,
                  se_ratio=st.se_ratio, skip=st.skip, activation=act, bn_eps=spec.bn_eps,
                  bn_momentum=spec.bn_momentum, drop_path=0.0)
    return block_key(a, size)


# ----------------------------------------------------------------------------- the table
@dataclass(frozen=True)
class LatencyTable:
    """Per-entry median latencies (ms) of one space on one device, plus the fitted overhead.

    ``device`` names the machine and how it was timed: CPU model, torch version, threads,
    batch and runtime (``torch`` or ``onnxruntime``). A table answers only for its own space,
    resolution and device (:meth:`check`).
    """

    space: str
    resolution: int
    device: Mapping[str, Any]
    entries: Mapping[str, float]
    overhead_ms: float = 0.0
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def check(self, *, space: str | None = None, device: Mapping[str, Any] | None = None,
              source: str = "latency table") -> None:
        """Raise LatencyTableError when the table is for another space or device."""
        if space is not None and space != self.space:
            raise LatencyTableError(
                f"{source} was built for space {self.space!r}, not {space!r}; build one with "
                f"nas latency-table --space {space}")
        if device is not None:
            diff = [f"{k} {self.device.get(k)!r} (here {v!r})" for k, v in device.items()
                    if self.device.get(k) != v]
            if diff:
                raise LatencyTableError(
                    f"{source} was measured on another device: {'; '.join(diff)}; build one "
                    f"here with nas latency-table --space {self.space}")

    def fingerprint(self) -> str:
        """A short hash of what predictions depend on (space, resolution, device, entries,
        overhead): two tables with one fingerprint predict alike."""
        import hashlib

        d = self.to_dict()
        d.pop("meta")
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {"schema": TABLE_SCHEMA, "space": self.space, "resolution": self.resolution,
                "device": dict(self.device), "overhead_ms": self.overhead_ms,
                "meta": dict(self.meta), "entries": dict(sorted(self.entries.items()))}


def predict_ms(table: LatencyTable, spec: ArchSpec, *, resolution: int | None = None,
               overhead: bool = True) -> float:
    """Predicted latency (ms): the sum of the spec's entries (+ the table's fitted overhead)."""
    total = 0.0
    for key in spec_keys(spec, resolution or table.resolution):
        value = table.entries.get(str(key))
        if value is None:
            raise MissingEntryError(
                f"latency table for space {table.space!r} has no entry {key}; {spec.name!r} "
                f"holds a block outside that space or resolution ({table.resolution})")
        total += value
    return total + (table.overhead_ms if overhead else 0.0)


def fit_overhead(sums_ms: Sequence[float], measured_ms: Sequence[float]) -> float:
    """The per-network constant c minimising the mean squared *relative* error of sum + c.

    Relative, because the goal is "within +-10%": min sum(((s_i + c) / m_i - 1)^2) over c has
    the closed form c = sum((m_i - s_i) / m_i^2) / sum(1 / m_i^2).
    """
    if len(sums_ms) != len(measured_ms) or not sums_ms:
        raise ValueError(f"fit_overhead needs equally long non-empty lists, got {len(sums_ms)} "
                         f"sums and {len(measured_ms)} measurements")
    num = sum((m - s) / m ** 2 for s, m in zip(sums_ms, measured_ms))
    den = sum(1.0 / m ** 2 for m in measured_ms)
    return num / den


# ----------------------------------------------------------------------------- files
def save_table(table: LatencyTable, path: str | Path) -> None:
    from .io import atomic_write_text

    atomic_write_text(Path(path), json.dumps(table.to_dict(), indent=1) + "\n")


def load_table(path: str | Path) -> LatencyTable:
    """Read and validate a table file; a broken one is a LatencyTableError naming the file."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise LatencyTableError(f"latency table {str(p)!r} is not valid JSON: {e}") from None
    return table_from_dict(data, source=f"latency table {str(p)!r}")


def table_from_dict(data: Any, *, source: str = "latency table") -> LatencyTable:
    def bad(rule: str) -> LatencyTableError:
        return LatencyTableError(f"{source} {rule}; rebuild it with nas latency-table")

    if not isinstance(data, dict):
        raise bad("must be a JSON object")
    if data.get("schema") != TABLE_SCHEMA:
        raise bad(f"has schema {data.get('schema')!r}, expected {TABLE_SCHEMA}")
    for k, t in (("space", str), ("resolution", int), ("device", dict), ("entries", dict)):
        if not isinstance(data.get(k), t):
            raise bad(f"needs {k!r} as a JSON {t.__name__}")
    entries = data["entries"]
    for k, v in entries.items():
        LatencyKey.parse(k)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise bad(f"entry {k!r} must be a non-negative number of ms, got {v!r}")
    overhead = data.get("overhead_ms", 0.0)
    if isinstance(overhead, bool) or not isinstance(overhead, (int, float)) \
            or not math.isfinite(overhead):
        raise bad(f"overhead_ms must be a finite number, got {overhead!r}")
    return LatencyTable(space=data["space"], resolution=data["resolution"],
                        device=data["device"], entries={k: float(v) for k, v in entries.items()},
                        overhead_ms=float(overhead), meta=data.get("meta") or {})


def keys_missing(table: LatencyTable, keys: Iterable[LatencyKey]) -> list[str]:
    return [str(k) for k in keys if str(k) not in table.entries]


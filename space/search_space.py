"""The MnasNet factorized hierarchical search space, as data (MnasNet paper, Sec. 4.1).

A space is a skeleton of stages (MobileNetV2's by default) plus, for every stage independently,
choices of ConvOp, kernel, SE ratio, skip, output filters (a multiplier on the skeleton's
channels, rounded to 8) and layers (a delta on the skeleton's repeats). Strides follow the
skeleton; a stage keeps at least one layer, so the network always downsamples as the skeleton
does. Any dimension may be overridden per stage.

Spaces are files (YAML or JSON) a user can write; ``mnasnet`` and ``efficientnet`` ship with the
package. Sampling is define-by-run on an Optuna trial with stable parameter names
(``s3_op``, ``s3_kernel``, ...). ``to_spec(params)`` is a pure function, so a trial's params always
rebuild the same spec, and ``encode(spec)`` finds the params of a member spec (so known networks
such as EfficientNet-B0 can be enqueued as trials).
"""
from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping, Protocol

from .errors import UnknownNameError
from .registry import Registry
from .scaling import round_filters
from .spec import ACTIVATIONS, ArchSpec, SpecError, StageSpec, StemSpec

# ConvOp name -> (block type, expand ratio). MnasNet: regular conv, depthwise-separable conv,
# MBConv; "mbconv1" is MBConv without expansion (EfficientNet-B0's first stage).
CONV_OPS: Registry[tuple[str, float]] = Registry("conv op")
CONV_OPS.add("conv", ("conv", 1.0))
CONV_OPS.add("dsconv", ("dsconv", 1.0))
CONV_OPS.add("mbconv1", ("mbconv", 1.0))
CONV_OPS.add("mbconv3", ("mbconv", 3.0))
CONV_OPS.add("mbconv6", ("mbconv", 6.0))

DIMENSIONS = ("op", "kernel", "se_ratio", "skip", "filters", "layers")

DEFAULT_CHOICES: dict[str, tuple[Any, ...]] = {
    "op": ("conv", "dsconv", "mbconv3", "mbconv6"),
    "kernel": (3, 5),
    "se_ratio": (0.0, 0.25),
    "skip": ("identity", "none"),
    "filters": (0.75, 1.0, 1.25),
    "layers": (-1, 0, 1),
}


class Suggester(Protocol):
    """What a space needs from an Optuna trial (``optuna.Trial`` satisfies it)."""

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...


@dataclass(frozen=True)
class StageChoices:
    channels: int
    repeats: int
    stride: int
    choices: Mapping[str, tuple[Any, ...]]

    def options(self) -> list[tuple[str, tuple[Any, ...]]]:
        return [(d, self.choices[d]) for d in DIMENSIONS]


@dataclass(frozen=True)
class SearchSpace:
    name: str
    stem: int
    head: int | None
    stages: tuple[StageChoices, ...]
    activation: tuple[str, ...] = ("relu",)
    fixed: Mapping[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ sampling
    def sample(self, trial: Suggester) -> dict[str, Any]:
        """Define-by-run sampling; returns the params dict (names are stable)."""
        params: dict[str, Any] = {}
        if len(self.activation) > 1:
            params["activation"] = trial.suggest_categorical("activation", list(self.activation))
        for i, st in enumerate(self.stages):
            for dim, choices in st.options():
                params[f"s{i}_{dim}"] = trial.suggest_categorical(f"s{i}_{dim}", list(choices))
        return params

    def distributions(self) -> dict[str, Any]:
        """Optuna distributions of every parameter (for enqueueing or ask/tell)."""
        from optuna.distributions import CategoricalDistribution

        out: dict[str, Any] = {}
        if len(self.activation) > 1:
            out["activation"] = CategoricalDistribution(list(self.activation))
        for i, st in enumerate(self.stages):
            for dim, choices in st.options():
                out[f"s{i}_{dim}"] = CategoricalDistribution(list(choices))
        return out

    # ------------------------------------------------------------------ params -> spec
    def stage_spec(self, i: int, params: Mapping[str, Any]) -> StageSpec:
        st = self.stages[i]
        get = _getter(params, i, st)
        block, expand = CONV_OPS.get(get("op"))
        return StageSpec(
            block=block, repeats=max(1, st.repeats + int(get("layers"))), kernel=int(get("kernel")),
            stride=st.stride, out_channels=round_filters(st.channels, float(get("filters"))),
            expand_ratio=expand, se_ratio=float(get("se_ratio")), skip=str(get("skip")),
        )

    def to_spec(self, params: Mapping[str, Any], *, name: str = "candidate") -> ArchSpec:
        """The deployment spec for a params dict. Pure: same params, same spec."""
        activation = params.get("activation", self.activation[0])
        if activation not in self.activation:
            raise SpecError(f"activation must be one of {', '.join(self.activation)}, "
                            f"got {activation!r}")
        stages = tuple(self.stage_spec(i, params) for i in range(len(self.stages)))
        return ArchSpec(name=name, stem=StemSpec(self.stem), stages=stages,
                        head_channels=self.head, activation=activation,
                        meta={"space": self.name, "params": dict(params)}, **self.fixed)

    # ------------------------------------------------------------------ membership
    def encode(self, spec: ArchSpec) -> dict[str, Any] | None:
        """Params that rebuild ``spec``'s architecture (stem, stages, head, activation), or
        None if it is not a member. Training settings (dropout, drop-connect, BN) are fixed
        by the space and not compared."""
        if spec.stem != StemSpec(self.stem) or spec.head_channels != self.head:
            return None
        if len(spec.stages) != len(self.stages) or spec.activation not in self.activation:
            return None
        params: dict[str, Any] = {}
        if len(self.activation) > 1:
            params["activation"] = spec.activation
        for i, target in enumerate(spec.stages):
            found = None
            for combo in self._stage_combos(i):
                if self.stage_spec(i, combo) == target:
                    found = combo
                    break
            if found is None:
                return None
            params.update(found)
        return params

    def contains(self, spec: ArchSpec) -> bool:
        return self.encode(spec) is not None

    def _stage_combos(self, i: int) -> Iterable[dict[str, Any]]:
        dims = self.stages[i].options()
        for values in itertools.product(*(c for _, c in dims)):
            yield {f"s{i}_{d}": v for (d, _), v in zip(dims, values)}

    # ------------------------------------------------------------------ size
    def size(self) -> tuple[int, int]:
        """(nominal, distinct): the product of choice counts, and the number of distinct
        architectures (some choices coincide, e.g. layers -1 and 0 on a one-layer stage)."""
        nominal = len(self.activation)
        distinct = len(self.activation)
        for i, st in enumerate(self.stages):
            nominal *= math.prod(len(c) for _, c in st.options())
            distinct *= len({self.stage_spec(i, c) for c in self._stage_combos(i)})
        return nominal, distinct

    # ------------------------------------------------------------------ serialization
    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "stem": self.stem, "head": self.head,
            "activation": list(self.activation), "fixed": dict(self.fixed),
            "stages": [{"channels": s.channels, "repeats": s.repeats, "stride": s.stride,
                        "choices": {k: list(v) for k, v in s.choices.items()}}
                       for s in self.stages],
        }


def _getter(params: Mapping[str, Any], i: int, st: StageChoices):
    def get(dim: str) -> Any:
        key = f"s{i}_{dim}"
        if key not in params:
            raise KeyError(f"params lack {key!r}; a {len(DIMENSIONS)}-dimension choice is needed "
                           f"for every stage ({', '.join(DIMENSIONS)})")
        v = params[key]
        if v not in st.choices[dim]:
            raise SpecError(f"{key} must be one of {list(st.choices[dim])}, got {v!r}")
        return v

    return get


_FIXED_FIELDS = ("bn_eps", "bn_momentum", "dropout", "drop_connect")


def space_from_dict(data: Mapping[str, Any], *, source: str = "space") -> SearchSpace:
    """Validate plain data (a parsed YAML/JSON file) into a SearchSpace."""
    def fail(path: str, rule: str, value: Any) -> None:
        raise SpecError(f"{source}: {path} {rule}, got {value!r}")

    if not isinstance(data, Mapping):
        fail("space", "must be a mapping", type(data).__name__)
    allowed = {"name", "stem", "head", "stages", "choices", "activation", "fixed"}
    for k in data:
        if k not in allowed:
            fail(k, f"is not a known key (known: {', '.join(sorted(allowed))})", k)
    for k in ("name", "stem", "stages"):
        if k not in data:
            fail(k, "is required", None)
    base = dict(DEFAULT_CHOICES)
    for k, v in (data.get("choices") or {}).items():
        if k not in DIMENSIONS:
            fail(f"choices.{k}", f"is not a dimension (known: {', '.join(DIMENSIONS)})", k)
        base[k] = _check_choices(f"choices.{k}", k, v, fail)
    stages = []
    if not isinstance(data["stages"], list) or not data["stages"]:
        fail("stages", "must be a non-empty list", data["stages"])
    for i, s in enumerate(data["stages"]):
        if isinstance(s, (list, tuple)) and len(s) == 3:
            s = {"channels": s[0], "repeats": s[1], "stride": s[2]}
        if not isinstance(s, Mapping):
            fail(f"stages[{i}]", "must be [channels, repeats, stride] or a mapping", s)
        for key in ("channels", "repeats", "stride"):
            v = s.get(key)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                fail(f"stages[{i}].{key}", "must be a positive integer", v)
        if s["stride"] > 2:
            fail(f"stages[{i}].stride", "must be 1 or 2", s["stride"])
        choices = dict(base)
        for k, v in (s.get("choices") or {}).items():
            if k not in DIMENSIONS:
                fail(f"stages[{i}].choices.{k}", f"is not a dimension ({', '.join(DIMENSIONS)})", k)
            choices[k] = _check_choices(f"stages[{i}].choices.{k}", k, v, fail)
        stages.append(StageChoices(s["channels"], s["repeats"], s["stride"], choices))
    act = data.get("activation", "relu")
    act = tuple(act) if isinstance(act, list) else (act,)
    for a in act:
        if a not in ACTIVATIONS:
            fail("activation", f"must be among {', '.join(ACTIVATIONS)}", a)
    fixed = dict(data.get("fixed") or {})
    for k in fixed:
        if k not in _FIXED_FIELDS:
            fail(f"fixed.{k}", f"is not a fixed training setting ({', '.join(_FIXED_FIELDS)})", k)
    stem, head = data["stem"], data.get("head", 1280)
    if isinstance(stem, bool) or not isinstance(stem, int) or stem < 1:
        fail("stem", "must be a positive integer", stem)
    if head is not None and (isinstance(head, bool) or not isinstance(head, int) or head < 1):
        fail("head", "must be a positive integer or null", head)
    sp = SearchSpace(name=str(data["name"]), stem=stem, head=head, stages=tuple(stages),
                     activation=act, fixed=fixed)
    sp.to_spec({f"s{i}_{d}": st.choices[d][0] for i, st in enumerate(sp.stages)
                for d in DIMENSIONS})  # every first choice must make a valid spec
    return sp


def _check_choices(path: str, dim: str, v: Any, fail) -> tuple[Any, ...]:
    if not isinstance(v, list) or not v:
        fail(path, "must be a non-empty list", v)
    if len(set(map(repr, v))) != len(v):
        fail(path, "must not repeat a value", v)
    for x in v:
        ok = {
            "op": lambda x: x in CONV_OPS,
            "kernel": lambda x: isinstance(x, int) and x >= 1 and x % 2 == 1,
            "se_ratio": lambda x: isinstance(x, (int, float)) and 0 <= x <= 1,
            "skip": lambda x: x in ("identity", "none"),
            "filters": lambda x: isinstance(x, (int, float)) and x > 0,
            "layers": lambda x: isinstance(x, int) and not isinstance(x, bool),
        }[dim](x)
        if not ok:
            hint = f"known ops: {', '.join(CONV_OPS)}" if dim == "op" else "see README 'Search spaces'"
            fail(path, f"holds an invalid {dim} ({hint})", x)
    if dim in ("se_ratio", "filters"):
        return tuple(float(x) for x in v)
    return tuple(v)


def load_space(name_or_path: str | Path) -> SearchSpace:
    """A shipped space by name (``mnasnet``, ``efficientnet``) or a YAML/JSON file."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml", ".json") or p.exists():
        if not p.is_file():
            raise FileNotFoundError(f"search space file {str(p)!r} does not exist; pass a shipped "
                                    f"space ({', '.join(shipped_spaces())}) or a YAML/JSON file")
        return _parse(p.read_text(), source=str(p), json_like=p.suffix == ".json")
    name = str(name_or_path)
    if name not in shipped_spaces():
        raise UnknownNameError(f"unknown search space {name!r}; shipped: {', '.join(shipped_spaces())}, "
                       f"or pass a path to a .yaml/.json space file")
    text = resources.files("space").joinpath("spaces", f"{name}.yaml").read_text()
    return _parse(text, source=f"{name}.yaml", json_like=False)


def _parse(text: str, *, source: str, json_like: bool) -> SearchSpace:
    if json_like:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise SpecError(f"{source}: not valid JSON: {e}") from None
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise SpecError(_yaml_error(source, e)) from None
    return space_from_dict(data, source=source)


def _yaml_error(source: str, e: Exception) -> str:
    """Where the YAML breaks (1-based line and column), what is wrong, and a fix."""
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    what = "; ".join(str(x) for x in (getattr(e, "problem", None), getattr(e, "context", None))
                     if x) or str(e).splitlines()[0]
    return (f"{source}{where}: not valid YAML ({what}); fix the file there: close every [ "
            f"and {{, put a space after each ':', indent with spaces, not tabs (the shipped "
            f"space/spaces/mnasnet.yaml shows the layout)")


def shipped_spaces() -> list[str]:
    files = resources.files("space").joinpath("spaces").iterdir()
    return sorted(f.name.rsplit(".", 1)[0] for f in files if f.name.endswith(".yaml"))

"""Export a spec to the string notations other EfficientNet code bases read.

* **timm** ``arch_def`` (``timm/models/_efficientnet_builder.py``): one list per stage of block
  strings such as ``'ir_r2_k3_s2_e6_c24_se0.25'`` (type, repeats, kernel, stride, expansion,
  output channels, SE ratio, ``noskip``), plus the stem/head settings as timm's keyword names
  (``stem_size``, ``num_features``, ``act_layer``, ...) in :class:`TimmArchDef`.
* **TF** block strings of the official EfficientNet code (``efficientnet_builder.BlockDecoder``):
  ``'r1_k3_s11_e1_i32_o16_se0.25'``, the notation of the EfficientNet paper's released models
  (Sec. 4, Table 1). They describe MBConv blocks only, so only ``mbconv`` and ``dsconv`` stages
  can be written this way.

One formatter per block type, looked up in :data:`TIMM_BLOCKS` / :data:`TF_BLOCKS`.

timm notation per block type:

* ``mbconv`` with expansion != 1: ``ir_r{r}_k{k}_s{s}_e{e}_c{c}`` (timm ``InvertedResidual``).
* ``mbconv`` with expansion 1: ``ds_r{r}_k{k}_s{s}_e1_c{c}``. Our builder (like the official
  code) has no expansion conv then; timm's ``ir`` always adds one and its ``ds`` does not.
* ``dsconv``: ``ds_r{r}_k{k}_s{s}_e1_c{c}`` (linear pointwise, MnasNet's SepConv).

timm's decoder ignores ``e`` for ``ds``, and its own arch_defs disagree on writing it: the
EfficientNet family and MnasNet-A1 (``semnasnet``) write ``ds_r1_k3_s1_e1_c16...``, MnasNet-B1
and MobileNetV2 ``ds_r1_k3_s1_c16...``. We always write ``e1``, the EfficientNet form, so that
every EfficientNet zoo member's export equals timm's arch_def token for token; for MnasNet-B1
and MobileNetV2 the strings differ from timm's by that ignored token only.
B1..B7 are written with their widths and depths applied (``c``, ``r`` already rounded, as
timm's builder rounds B0's arch_def with ``round_chs_fn``/``depth_multiplier``, by the same
rules); build them in timm with multipliers 1.0.
* ``dsa``: ``dsa_...`` (activated pointwise, MobileNetV1). timm's ``dsa`` never has a residual,
  so ``skip == 'none'`` is its default and writes nothing; an identity skip is written ``_skip``
  so nothing is lost, though timm would not build it.
* ``conv``: ``cn_r{r}_k{k}_s{s}_c{c}`` (timm ``ConvBnAct``), with ``_skip`` when the spec asks
  for an identity residual, since timm's ``cn`` has none unless told. timm's ``cn`` has no SE:
  an ``_se`` option is kept so nothing is lost, but timm would not build it.
* ``bottleneck``: ``bot_r{r}_k{k}_s{s}_e{e}_c{c}``. Not a timm block type (timm's decoder
  rejects it, rightly): the ResNet v1.5 bottleneck, ``e`` = bottleneck width / ``c``
  (ResNet: 0.25), a projection shortcut when shapes change, ``_noskip`` = no shortcut at all.

``_se{x}`` follows whenever ``se_ratio > 0`` (SE width from the block's *input* channels, as in
the official EfficientNet code), ``_noskip`` whenever ``skip == 'none'`` (except ``cn`` and
``dsa``, above).
The activation is global in a spec, so it is ``act_layer`` in :class:`TimmArchDef` rather than a
per-block option. timm rounds expanded widths to multiples of 8; for channel counts that are not
multiples of 8 the network timm builds can differ slightly from ours.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Callable

from .registry import Registry
from .spec import ArchSpec, StageSpec


def _number(x: float) -> str:
    """6.0 -> '6', 0.25 -> '0.25': the official strings write whole ratios without a point."""
    x = float(x)
    return str(int(x)) if x.is_integer() else repr(x)


def _options(stage: StageSpec, *, expand: bool, skip_flag: str | None = "noskip") -> str:
    parts = [f"r{stage.repeats}", f"k{stage.kernel}", f"s{stage.stride}"]
    if expand:
        parts.append(f"e{_number(stage.expand_ratio)}")
    parts.append(f"c{stage.out_channels}")
    if stage.se_ratio > 0:
        parts.append(f"se{_number(stage.se_ratio)}")
    if skip_flag == "noskip" and stage.skip == "none":
        parts.append("noskip")
    if skip_flag == "skip" and stage.skip == "identity":
        parts.append("skip")
    return "_".join(parts)


# ----------------------------------------------------------------------------- timm
TIMM_BLOCKS: Registry[Callable[[StageSpec], str]] = Registry("timm block type")


@TIMM_BLOCKS.register("mbconv")
def _timm_mbconv(s: StageSpec) -> str:
    # Expansion 1 has no expansion conv in our builder (and the official code): that is timm's ds.
    return ("ds_" if s.expand_ratio == 1 else "ir_") + _options(s, expand=True)


TIMM_BLOCKS.add("dsconv", lambda s: "ds_" + _options(s, expand=True))  # e1, as timm's B0 has
TIMM_BLOCKS.add("dsa", lambda s: "dsa_" + _options(s, expand=False, skip_flag="skip"))
TIMM_BLOCKS.add("conv", lambda s: "cn_" + _options(s, expand=False, skip_flag="skip"))
TIMM_BLOCKS.add("bottleneck", lambda s: "bot_" + _options(s, expand=True))


def timm_block_string(stage: StageSpec) -> str:
    """One stage as a timm block string, e.g. ``'ir_r2_k3_s2_e6_c24_se0.25'``."""
    return TIMM_BLOCKS.get(stage.block)(stage)


@dataclass(frozen=True)
class TimmArchDef:
    """A timm-style description: ``arch_def`` (one list per stage) plus timm's keyword arguments.

    Fields timm's EfficientNet has no argument for (its stem is always 3x3, stride 2, no
    max-pool) are kept under our own names so that nothing about the network is lost.
    """

    arch_def: tuple[tuple[str, ...], ...]
    stem_size: int
    stem_kernel: int
    stem_stride: int
    stem_maxpool: bool
    num_features: int | None  # 1x1 head conv width; None: no head conv
    act_layer: str
    bn_eps: float
    bn_momentum: float  # PyTorch convention, as timm's norm layers take it
    drop_rate: float
    drop_path_rate: float
    in_chans: int
    num_classes: int
    resolution: int

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["arch_def"] = [list(stage) for stage in self.arch_def]
        return d


def export_timm(spec: ArchSpec) -> TimmArchDef:
    """The spec as a timm ``arch_def`` with its stem/head settings."""
    return TimmArchDef(
        arch_def=tuple((timm_block_string(s),) for s in spec.stages),
        stem_size=spec.stem.channels, stem_kernel=spec.stem.kernel, stem_stride=spec.stem.stride,
        stem_maxpool=spec.stem.maxpool, num_features=spec.head_channels,
        act_layer=spec.activation, bn_eps=spec.bn_eps, bn_momentum=spec.bn_momentum,
        drop_rate=spec.dropout, drop_path_rate=spec.drop_connect, in_chans=spec.in_channels,
        num_classes=spec.num_classes, resolution=spec.resolution,
    )


# ----------------------------------------------------------------------------- TF
def _tf_options(s: StageSpec, in_channels: int, expand_ratio: float) -> str:
    # Official BlockDecoder._encode_block_string: r, k, s (both axes), e, i, o, se, noskip.
    parts = [f"r{s.repeats}", f"k{s.kernel}", f"s{s.stride}{s.stride}",
             f"e{_number(expand_ratio)}", f"i{in_channels}", f"o{s.out_channels}"]
    if s.se_ratio > 0:
        parts.append(f"se{_number(s.se_ratio)}")
    if s.skip == "none":
        parts.append("noskip")
    return "_".join(parts)


TF_BLOCKS: Registry[Callable[[StageSpec, int], str]] = Registry("TF block type")
TF_BLOCKS.add("mbconv", lambda s, cin: _tf_options(s, cin, s.expand_ratio))
# A linear depthwise-separable conv is exactly the official MBConv with expand_ratio 1.
TF_BLOCKS.add("dsconv", lambda s, cin: _tf_options(s, cin, 1.0))


def tf_block_strings(spec: ArchSpec) -> list[str]:
    """The official EfficientNet block strings, one per stage (``'r1_k3_s11_e1_i32_o16_se0.25'``).

    Raises ValueError for a stage whose block is not an MBConv (``mbconv`` or ``dsconv``).
    """
    out = []
    in_channels = spec.stem.channels
    for i, s in enumerate(spec.stages):
        if s.block not in TF_BLOCKS:
            raise ValueError(
                f"stages[{i}].block must be one of {', '.join(TF_BLOCKS.names())} for TF "
                f"EfficientNet block strings (they describe MBConv blocks only), but got "
                f"{s.block!r} in {spec.name!r}; export it with format 'timm' or 'json' instead")
        out.append(TF_BLOCKS.get(s.block)(s, in_channels))
        in_channels = s.out_channels
    return out


# ----------------------------------------------------------------------------- formats
FORMATS: Registry[Callable[[ArchSpec], str]] = Registry("export format")
FORMATS.add("json", lambda spec: spec.to_json())
FORMATS.add("timm", lambda spec: json.dumps(export_timm(spec).to_dict(), indent=2))
FORMATS.add("tf", lambda spec: "\n".join(tf_block_strings(spec)))


def export_text(spec: ArchSpec, fmt: str) -> str:
    """The spec written in format ``fmt`` (one of :data:`FORMATS`), as text without a final
    newline."""
    return FORMATS.get(fmt)(spec)

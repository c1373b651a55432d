"""Reference models as frozen specs, with the numbers they must hit in ../REFERENCE.md.

EfficientNet-B0 is Table 1 of the EfficientNet paper; B1..B7 use the official (hand-set)
width/depth/resolution/dropout table from the TF reference implementation, scaled with
:func:`space.scaling.scale`. MnasNet-A1 is Fig. 7 of the MnasNet paper (timm ``semnasnet_100``),
MnasNet-B1 is torchvision's ``mnasnet1_0``, MobileNetV1/V2 and ResNet-50 follow their papers
and torchvision.
"""
from __future__ import annotations

from typing import Callable

from .registry import Registry
from .scaling import scale
from .spec import ArchSpec, StageSpec, StemSpec

ZOO: Registry[Callable[[], ArchSpec]] = Registry("zoo model")

S = StageSpec

EFFICIENTNET_B0_STAGES = (
    S("mbconv", 1, 3, 1, 16, 1, 0.25), S("mbconv", 2, 3, 2, 24, 6, 0.25),
    S("mbconv", 2, 5, 2, 40, 6, 0.25), S("mbconv", 3, 3, 2, 80, 6, 0.25),
    S("mbconv", 3, 5, 1, 112, 6, 0.25), S("mbconv", 4, 5, 2, 192, 6, 0.25),
    S("mbconv", 1, 3, 1, 320, 6, 0.25),
)

# (width, depth, resolution, dropout): efficientnet_builder.efficientnet_params
EFFICIENTNET_PARAMS: dict[str, tuple[float, float, int, float]] = {
    "b0": (1.0, 1.0, 224, 0.2), "b1": (1.0, 1.1, 240, 0.2), "b2": (1.1, 1.2, 260, 0.3),
    "b3": (1.2, 1.4, 300, 0.3), "b4": (1.4, 1.8, 380, 0.4), "b5": (1.6, 2.2, 456, 0.4),
    "b6": (1.8, 2.6, 528, 0.5), "b7": (2.0, 3.1, 600, 0.5),
}


def efficientnet_b0() -> ArchSpec:
    return ArchSpec(name="efficientnet-b0", stem=StemSpec(32), stages=EFFICIENTNET_B0_STAGES,
                    head_channels=1280, activation="silu", bn_eps=1e-3, bn_momentum=0.01,
                    dropout=0.2, drop_connect=0.2, resolution=224)


def _efficientnet(variant: str) -> Callable[[], ArchSpec]:
    width, depth, res, dropout = EFFICIENTNET_PARAMS[variant]

    def make() -> ArchSpec:
        base = efficientnet_b0()
        if variant == "b0":
            return base
        out = scale(base, depth=depth, width=width, name=f"efficientnet-{variant}")
        return out.replace(resolution=res, dropout=dropout,
                           meta={**out.meta, "official_table": True})

    make.__name__ = f"efficientnet_{variant}"
    return make


for _v in EFFICIENTNET_PARAMS:
    ZOO.add(f"efficientnet-{_v}", _efficientnet(_v))


@ZOO.register("mnasnet-a1")
def mnasnet_a1() -> ArchSpec:
    return ArchSpec(
        name="mnasnet-a1", stem=StemSpec(32),
        stages=(S("dsconv", 1, 3, 1, 16, skip="none"), S("mbconv", 2, 3, 2, 24, 6),
                S("mbconv", 3, 5, 2, 40, 3, 0.25), S("mbconv", 4, 3, 2, 80, 6),
                S("mbconv", 2, 3, 1, 112, 6, 0.25), S("mbconv", 3, 5, 2, 160, 6, 0.25),
                S("mbconv", 1, 3, 1, 320, 6)),
        head_channels=1280, activation="relu", bn_eps=1e-3, bn_momentum=0.01, dropout=0.2,
        drop_connect=0.0)


@ZOO.register("mnasnet-b1")
def mnasnet_b1() -> ArchSpec:
    return ArchSpec(
        name="mnasnet-b1", stem=StemSpec(32),
        stages=(S("dsconv", 1, 3, 1, 16, skip="none"), S("mbconv", 3, 3, 2, 24, 3),
                S("mbconv", 3, 5, 2, 40, 3), S("mbconv", 3, 5, 2, 80, 6),
                S("mbconv", 2, 3, 1, 96, 6), S("mbconv", 4, 5, 2, 192, 6),
                S("mbconv", 1, 3, 1, 320, 6)),
        head_channels=1280, activation="relu", bn_eps=1e-5, bn_momentum=0.0003, dropout=0.2,
        drop_connect=0.0)


@ZOO.register("mobilenet-v1")
def mobilenet_v1() -> ArchSpec:
    return ArchSpec(
        name="mobilenet-v1", stem=StemSpec(32),
        stages=(S("dsa", 1, 3, 1, 64, skip="none"), S("dsa", 2, 3, 2, 128, skip="none"),
                S("dsa", 2, 3, 2, 256, skip="none"), S("dsa", 6, 3, 2, 512, skip="none"),
                S("dsa", 2, 3, 2, 1024, skip="none")),
        head_channels=None, activation="relu", bn_eps=1e-3, bn_momentum=0.01, dropout=0.0,
        drop_connect=0.0)


@ZOO.register("mobilenet-v2")
def mobilenet_v2() -> ArchSpec:
    return ArchSpec(
        name="mobilenet-v2", stem=StemSpec(32),
        stages=(S("mbconv", 1, 3, 1, 16, 1), S("mbconv", 2, 3, 2, 24, 6),
                S("mbconv", 3, 3, 2, 32, 6), S("mbconv", 4, 3, 2, 64, 6),
                S("mbconv", 3, 3, 1, 96, 6), S("mbconv", 3, 3, 2, 160, 6),
                S("mbconv", 1, 3, 1, 320, 6)),
        head_channels=1280, activation="relu6", bn_eps=1e-5, bn_momentum=0.1, dropout=0.2,
        drop_connect=0.0)


@ZOO.register("resnet-50")
def resnet_50() -> ArchSpec:
    return ArchSpec(
        name="resnet-50", stem=StemSpec(64, kernel=7, stride=2, maxpool=True),
        stages=(S("bottleneck", 3, 3, 1, 256, 0.25), S("bottleneck", 4, 3, 2, 512, 0.25),
                S("bottleneck", 6, 3, 2, 1024, 0.25), S("bottleneck", 3, 3, 2, 2048, 0.25)),
        head_channels=None, activation="relu", bn_eps=1e-5, bn_momentum=0.1, dropout=0.0,
        drop_connect=0.0)


def get_model(name: str) -> ArchSpec:
    """A zoo model's spec by name; an unknown name lists the known ones."""
    return ZOO.get(name)()


def list_models() -> list[str]:
    return ZOO.names()

"""The deployment configuration: where a network will run, whatever its proxy task is.

EfficientNet counts FLOPS (multiply-adds) at the deployment input (224 px, 3 channels, 1000
ImageNet classes for B0), not at the small proxy task the candidates train on. Both stages and
the dashboards need it, so it lives on the ground floor.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

from .search_space import SearchSpace
from .spec import ArchSpec


@dataclass(frozen=True)
class Deployment:
    """Where the network will run: MACs are counted here, whatever the proxy task is."""

    resolution: int = 224
    in_channels: int = 3
    num_classes: int = 1000

    def __post_init__(self) -> None:
        for name, lo, fix in (("resolution", 8, "--deploy-resolution 224"),
                              ("in_channels", 1, "--deploy-channels 3"),
                              ("num_classes", 1, "--deploy-classes 1000")):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ValueError(f"`deploy {name} >= {lo}` must hold, but got {name}={v!r}; "
                                 f"pass e.g. {fix}")

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> Deployment:
        return cls(**dict(d or {}))


def deployment_spec(space: SearchSpace, params: Mapping[str, Any], deploy: Deployment,
                    name: str) -> ArchSpec:
    """The spec a sampled point of ``space`` deploys as (counted and emitted at ``deploy``)."""
    return space.to_spec(dict(params), name=name).with_task(
        in_channels=deploy.in_channels, num_classes=deploy.num_classes,
        resolution=deploy.resolution)

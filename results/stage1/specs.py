"""Trial rows to architectures, through the run's own search space and deployment: the spec of a
trial table row (:class:`Specs`) and its one-line form (:func:`arch_line`, the hover text and
tables of every figure).
"""
from __future__ import annotations

import math
from typing import Any


def params_of(row: Any) -> dict[str, Any] | None:
    out = {k[2:]: v for k, v in row.items() if k.startswith("p_")}
    if not out or any(v is None or (isinstance(v, float) and math.isnan(v)) for v in out.values()):
        return None
    return out


def arch_line(spec: Any) -> str:
    """A spec in one line: stem, timm block string per stage, head, activation."""
    from space.export import timm_block_string

    head = f"head{spec.head_channels}" if spec.head_channels else "nohead"
    return " ".join([f"stem{spec.stem.channels}", *map(timm_block_string, spec.stages), head,
                     spec.activation])


class Specs:
    """Trial params -> deployment spec, through the run's own search space."""

    def __init__(self, config: dict[str, Any]) -> None:
        from space.deploy import Deployment
        from space.search_space import load_space

        self.space = load_space(config.get("space", "mnasnet"))
        self.deploy = Deployment.from_dict(config.get("deploy"))

    def spec(self, row: Any, name: str = "candidate") -> Any:
        from space.deploy import deployment_spec

        params = params_of(row)
        return None if params is None else deployment_spec(self.space, params, self.deploy, name)

    def arch(self, row: Any) -> str:
        spec = self.spec(row)
        return arch_line(spec) if spec is not None else "(architecture unknown)"

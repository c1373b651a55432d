"""Stage 2's config: everything that decides what stage 2 trains (:class:`GridSearchConfig`),
written to the run's ``config.json``, and the family timing's defaults.

Light on purpose (no torch, optuna or ray at import): ``gridsearch --help`` states these
defaults. The stage that runs it is :mod:`gridsearch.search`.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from nas.engine.fidelity import Ladder, check_reduction_factor, parse_rungs
from nas.latency_settings import LatencySettings
from nas.proxy import ProxyConfig, stable_train
from space.errors import UnknownNameError
from space.scaling import check_coefficients

from .family import ROUNDINGS, check_phis
from .grid import Grid, Point

if TYPE_CHECKING:
    from nas.engine.finalists import FinalistPlan

__all__ = ["SELECTORS", "WARMUP", "DEFAULT_REPEATS", "GridSearchConfig", "default_proxy"]

# One untimed pass is enough for eager CPU torch: the first pass allocates and picks kernels
# (B0 at 224 px: 140 ms, then 86 and 91 ms), the next ones are steady. More would cost B7 at
# 600 px seconds each.
WARMUP = 1
# Timed passes per member: with one warm-up, 6 passes of B0..B7 (86 GMACs per pass with the
# paper's coefficients) took 82 s on one thread of a loaded 2-core machine, B7 alone 33 s
# (benchmarks/BENCHMARKS_latency.md).
DEFAULT_REPEATS = 5

# How the winning point is chosen (results.store.rank_key: larger wins, ties to fewer MACs).
SELECTORS = ("accuracy", "reward")


def default_proxy() -> ProxyConfig:
    """Stage 2's proxy: stage 1's stable recipe (:func:`nas.evaluate.stable_train`: warm-up,
    label smoothing, clipping, zero-init of the last BN of each residual branch) with one
    epoch, because the grid holds ~100 points, on 6,000 images at 32 px x gamma. Stage 1's
    proxy moved to 12,000 images at 24 px; stage 2 keeps the task its stable reference was
    trained on, where no proxy ranked the kept points beyond the noise
    (benchmarks/BENCHMARKS_fidelity.md, "Stage 2 against its stable reference")."""
    return ProxyConfig(resolution=32, train_samples=6000, train=stable_train(epochs=1))


@dataclass(frozen=True)
class GridSearchConfig:
    """Everything that decides what stage 2 trains; written to the run's ``config.json``."""

    base: str = "efficientnet-b0"
    phi: float = 1.0
    grid: Grid = field(default_factory=Grid)
    coefficients: Point | None = None
    select: str = "accuracy"
    compare_single: bool = False
    compare_seeds: int = 3
    family: tuple[int, int] = (0, 7)
    rounding: str = "paper"
    # The fidelity ladder (epochs after which points are compared; None: no racing, every
    # point trains fully) and the finalists: the top `finalists` distinct points retrained with
    # `finalist_seeds` seeds, the best mean wins (0: the grid's best single training wins).
    rungs: tuple[int, ...] | None = None
    # The ladder's keep fraction (with `rungs`): at each rung only the best 1/reduction_factor
    # go on. 3 as before: by default nothing is raced (the proxy is 1 epoch), and no race of
    # grid points has been measured to say otherwise (stage 1's 2 is its own measurement).
    reduction_factor: int = 3
    finalists: int = 4
    finalist_seeds: int = 3
    # the finalists' training length in epochs (None: the proxy's, as the grid trains)
    finalist_epochs: int | None = None
    seed: int | None = 0
    proxy: ProxyConfig = field(default_factory=default_proxy)
    # gridsearch --latency: time the emitted family on this machine with this setting, once, at
    # the run's final write (None: nothing is timed); `latency_repeats` timed passes per member.
    # Neither changes what is trained, so both may change on --resume.
    latency: LatencySettings | None = None
    latency_repeats: int = DEFAULT_REPEATS

    def __post_init__(self) -> None:
        if isinstance(self.phi, bool) or not isinstance(self.phi, (int, float)) \
                or not math.isfinite(self.phi) or self.phi < 0:
            raise ValueError(f"`phi >= 0` must hold, but got phi={self.phi!r}; pass e.g. --phi 1")
        if self.select not in SELECTORS:
            raise UnknownNameError(f"unknown --select {self.select!r}; known: "
                                   f"{', '.join(SELECTORS)}")
        ROUNDINGS.get(self.rounding)  # an unknown name lists the known ones
        self.finalist_plan()  # validates finalists, finalist_seeds, finalist_epochs
        if self.rungs is not None:
            object.__setattr__(self, "rungs",
                               parse_rungs(self.rungs, epochs=self.proxy.train.epochs))
        check_reduction_factor(self.reduction_factor)
        if isinstance(self.compare_seeds, bool) or not isinstance(self.compare_seeds, int) \
                or self.compare_seeds < 1:
            raise ValueError(f"`compare_seeds >= 1` must hold, but got "
                             f"compare_seeds={self.compare_seeds!r}; pass e.g. --compare-seeds 3")
        if self.compare_single and self.phi <= 0:
            raise ValueError(f"--compare-single needs `phi > 0` (at phi 0 every scaling is the "
                             f"base), but got phi={self.phi:g}; pass e.g. --phi 1")
        # the coefficients here; how far phi may go depends on the base, so it is checked
        # once, with the base (Stage2: gridsearch.family.check_scale)
        c = self.scale_point()
        check_coefficients(c.alpha, c.beta, c.gamma, 0)
        object.__setattr__(self, "family", check_phis(tuple(self.family)))
        if self.latency is not None and not isinstance(self.latency, LatencySettings):
            raise TypeError(f"latency must be a LatencySettings or None, but got "
                            f"{type(self.latency).__name__}; pass e.g. LatencySettings()")
        if isinstance(self.latency_repeats, bool) or not isinstance(self.latency_repeats, int) \
                or self.latency_repeats < 1:
            raise ValueError(f"`latency_repeats >= 1` must hold, but got "
                             f"latency_repeats={self.latency_repeats!r}; pass e.g. "
                             f"--latency-repeats {DEFAULT_REPEATS}")

    def ladder(self) -> Ladder | None:
        """The ladder the points are raced on (None: not raced, every point trains fully)."""
        return None if self.rungs is None else Ladder(self.rungs, self.reduction_factor)

    @property
    def selected_by(self) -> str:
        return "given" if self.coefficients is not None else self.select

    def scale_point(self) -> Point:
        """The point that scales the base furthest: the given coefficients, else the grid's
        largest corner (what phi is bounded by)."""
        if self.coefficients is not None:
            return self.coefficients
        g = self.grid
        return Point(g.alpha_range[1], g.beta_range[1], g.gamma_range[1])

    def finalist_plan(self) -> FinalistPlan:
        """The finalists (none for given coefficients: there is no grid to choose from)."""
        from nas.engine.finalists import FinalistPlan  # here: it imports optuna

        plan = FinalistPlan(self.finalists, self.finalist_seeds, self.finalist_epochs)
        return plan if self.coefficients is None else FinalistPlan(0, plan.seeds)

    def to_dict(self) -> dict[str, Any]:
        return {"stage": 2, "base": self.base, "phi": self.phi, "grid": self.grid.to_dict(),
                "coefficients": None if self.coefficients is None else asdict(self.coefficients),
                "select": self.select, "compare_single": self.compare_single,
                "compare_seeds": self.compare_seeds, "family": list(self.family),
                "rounding": self.rounding,
                "rungs": None if self.rungs is None else list(self.rungs),
                "reduction_factor": self.reduction_factor,
                "finalists": self.finalists, "finalist_seeds": self.finalist_seeds,
                "finalist_epochs": self.finalist_epochs, "seed": self.seed,
                "proxy": self.proxy.to_dict(),
                "latency": None if self.latency is None else self.latency.to_dict(),
                "latency_repeats": self.latency_repeats}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GridSearchConfig:
        if str(d.get("stage", 2)) != "2" or "grid" not in d:
            raise ValueError(f"not a gridsearch run's config (stage={d.get('stage')!r}, "
                             f"expected 2); pass the --out folder of a gridsearch run")
        c = d.get("coefficients")
        return cls(base=d["base"], phi=d["phi"], grid=Grid.from_dict(d["grid"]),
                   coefficients=None if c is None else Point(**c), select=d["select"],
                   compare_single=d["compare_single"],
                   # runs saved before these settings compared one seed, rounded as the paper
                   compare_seeds=d.get("compare_seeds", 1), family=tuple(d["family"]),
                   rounding=d.get("rounding", "paper"),
                   # runs from before the ladder and the finalists had neither
                   rungs=None if d.get("rungs") is None else tuple(d["rungs"]),
                   # runs from before the setting kept the best third
                   reduction_factor=d.get("reduction_factor", 3),
                   finalists=d.get("finalists", 0), finalist_seeds=d.get("finalist_seeds", 3),
                   finalist_epochs=d.get("finalist_epochs"),  # runs from before: the proxy's
                   seed=d["seed"], proxy=ProxyConfig.from_dict(d["proxy"]),
                   # runs from before --latency timed nothing
                   latency=LatencySettings.from_dict(d.get("latency")),
                   latency_repeats=d.get("latency_repeats", DEFAULT_REPEATS))

"""Stage 1's config: everything that decides what stage 1 searches (:class:`SearchConfig`),
written to the run's ``config.json``.

Light on purpose (no torch, optuna or ray at import): ``nas search --help`` states its defaults.
The stage that runs it is :mod:`nas.search`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from nas.engine.budget import check_budget
from nas.engine.fidelity import Ladder, check_reduction_factor, parse_rungs
from nas.engine.registries import PRUNERS, SAMPLERS
from nas.latency_settings import LatencySettings
from nas.proxy import ProxyConfig
from nas.stage1.supernet_config import EVALUATORS, SupernetConfig
from space.deploy import Deployment
from space.objective import METRICS, Objective, make_objective

if TYPE_CHECKING:
    from nas.engine.finalists import FinalistPlan

__all__ = ["SearchConfig"]


@dataclass(frozen=True)
class SearchConfig:
    """Everything that decides what stage 1 searches; written to the run's ``config.json``.

    The target is T in MACs (``target_macs``, ``--target-flops``) or in milliseconds on this
    device (``target_latency_ms``, ``--target-latency``): exactly one of them. Latency is
    predicted from a latency table (``latency_table``, else the cached one for this device,
    built when missing) timed with ``latency`` (threads, batch, runtime)."""

    target_macs: int | None = None
    space: str = "mnasnet"
    trials: int | None = 60
    timeout: float | None = 600.0  # the search's; the finalists run after it (README: budget)
    # The run's wall-time target, search and finalists together: the search starts no trial
    # that would leave the finalists less than their measured time (nas.engine.budget). 780 s
    # keeps a bare `make search` within 15 minutes with setup on a slow 2-core machine
    # (BENCHMARKS.md); a run recorded before the setting had none, and still has (from_dict).
    budget: float | None = 780.0
    sampler: str = "tpe"
    constraint: str = "soft"
    a: float | None = None
    b: float | None = None
    seed: int | None = 0
    # No race by default since issue 23: against the stable 3-epoch reference, the 2-epoch
    # proxy ranks the 24 fidelity networks near the reference's own seed-vs-seed ceiling, and
    # the race on rungs 1,2 (ASHA) far below it: epoch 1 stops slow starters the reference
    # ranks high (BENCHMARKS_fidelity.md). `--pruner asha` races; run folders keep their own.
    pruner: str = "none"
    enqueue: tuple[str, ...] = ()
    proxy: ProxyConfig = field(default_factory=ProxyConfig)
    deploy: Deployment = field(default_factory=Deployment)
    # The fidelity ladder: epochs after which trials are compared (None: 1, 3, 9, ... up to the
    # proxy's epochs; the top rung is the proxy's epochs). nas.engine.fidelity.
    rungs: tuple[int, ...] | None = None
    # The ladder's keep fraction: at each rung only the best 1/reduction_factor go on. 2 since
    # issue 23: over 24 networks x 3 seeds, rung 1 keeping half kept 3.62 of the 4 best to the
    # top rung, keeping a third (the default before) 2.37, for 11% more epochs (BENCHMARKS.md).
    # A run recorded before the setting existed kept a third, and still does (from_dict).
    reduction_factor: int = 2
    # The top `finalists` distinct architectures are retrained with `finalist_seeds` seeds
    # after the search; B0 is the best mean (0: B0 is the search's best). nas.engine.finalists.
    finalists: int = 4
    finalist_seeds: int = 3
    # The finalists' training length in epochs (None: the proxy's, as the search trains). A
    # longer one ranks networks whose 2-epoch scores differ from a long training's
    # (BENCHMARKS_fidelity.md, "Longer finalists"); it costs the search trials' time.
    finalist_epochs: int | None = None
    target_latency_ms: float | None = None
    # How latency is timed here (None unless the search predicts latency: a latency target or
    # objective), and the table file to predict with (None: the cache for this device).
    latency: LatencySettings | None = None
    latency_table: str | None = None
    # A multi-objective sampler's objectives: ("accuracy", "macs" or "latency"); None: the
    # target's metric.
    objectives: tuple[str, ...] | None = None
    # How search trials are scored (nas.stage1.supernet_config): trained from scratch
    # ("proxy") or by inheritance from one trained supernet ("supernet", with `supernet`).
    evaluator: str = "proxy"
    supernet: SupernetConfig = field(default_factory=SupernetConfig)

    def __post_init__(self) -> None:
        self._check_evaluator()
        SAMPLERS.get(self.sampler)
        PRUNERS.get(self.pruner)
        self._check_target()
        if self.trials is not None and self.trials < 1:
            raise ValueError(f"`trials >= 1` must hold, but got trials={self.trials}; "
                             f"pass e.g. --trials 60")
        if self.timeout is not None and not self.timeout >= 0:  # NaN too
            raise ValueError(f"`timeout >= 0` must hold (seconds; 0 = no limit), but got "
                             f"timeout={self.timeout:g}; pass e.g. --timeout 600, or "
                             f"--timeout 0 for no limit")
        if self.timeout == 0:  # --timeout 0: no limit
            object.__setattr__(self, "timeout", None)
        object.__setattr__(self, "budget", check_budget(self.budget))  # 0: none
        object.__setattr__(self, "enqueue", tuple(self.enqueue))
        self.objective()  # validates target, constraint, a, b
        self.finalist_plan()  # validates finalists, finalist_seeds, finalist_epochs
        if self.rungs is not None:
            object.__setattr__(self, "rungs",
                               parse_rungs(self.rungs, epochs=self.proxy.train.epochs))
        check_reduction_factor(self.reduction_factor)

    def _check_evaluator(self) -> None:
        if self.evaluator not in EVALUATORS:
            raise ValueError(f"--evaluator must be one of {', '.join(EVALUATORS)}, but got "
                             f"{self.evaluator!r}; pass e.g. --evaluator supernet")
        if self.evaluator == "proxy" and self.supernet != SupernetConfig():
            raise ValueError("--supernet-epochs, --supernet-random, --calib-images and "
                             "--score-val-samples set the supernet evaluator, but the search "
                             "uses --evaluator proxy; add --evaluator supernet or drop them")
        if self.evaluator == "supernet" and self.finalists < 1:
            raise ValueError(f"--evaluator supernet needs `finalists >= 1` (B0 is chosen by "
                             f"stand-alone training, not by inherited weights), but got "
                             f"--finalists {self.finalists}; pass e.g. --finalists 4")

    def _check_target(self) -> None:
        given = [f for f, v in (("--target-flops", self.target_macs),
                                ("--target-latency", self.target_latency_ms)) if v is not None]
        if len(given) != 1:
            raise ValueError(
                "give one target, --target-flops (MACs) or --target-latency (ms on this "
                f"device), but got {' and '.join(given) if given else 'neither'}; pass e.g. "
                "--target-flops 400M or --target-latency 20ms")
        if self.objectives is not None:
            objectives = tuple(self.objectives)
            object.__setattr__(self, "objectives", objectives)
            if not self.multi_objective:
                raise ValueError(f"--objectives needs a multi-objective sampler, but got "
                                 f"--sampler {self.sampler}; pass --sampler nsga2 or drop "
                                 f"--objectives")
            if len(objectives) != 2 or objectives[0] != "accuracy" \
                    or objectives[1] not in METRICS:
                raise ValueError(f"--objectives must be accuracy,<cost> with a cost among "
                                 f"{', '.join(METRICS)}, but got {','.join(objectives)!r}; "
                                 f"pass e.g. --objectives accuracy,latency")
        if not self.uses_latency and (self.latency is not None
                                      or self.latency_table is not None):
            raise ValueError("--latency-table and --latency-threads/-batch/-runtime need a "
                             "latency target or objective, but the search has neither; pass "
                             "e.g. --target-latency 20ms or --objectives accuracy,latency")

    @property
    def metric(self) -> str:
        """What the target is in: ``macs`` or ``latency`` (space.objective.METRICS)."""
        return "latency" if self.target_latency_ms is not None else "macs"

    @property
    def target(self) -> float:
        return float(self.target_latency_ms if self.metric == "latency" else self.target_macs)

    @property
    def value_objectives(self) -> tuple[str, ...]:
        """What a multi-objective sampler optimizes: accuracy up, the cost down."""
        return self.objectives or ("accuracy", self.metric)

    @property
    def uses_latency(self) -> bool:
        """Whether trials predict latency (a latency target, or a latency objective)."""
        return self.metric == "latency" or (self.multi_objective
                                            and "latency" in self.value_objectives)

    def ladder(self) -> Ladder:
        """The given rungs, else 1, 3, 9, ... up to the proxy's epochs (the rung spacing does
        not follow the keep fraction: nas.engine.fidelity.RUNG_SPACING)."""
        if self.rungs is None:
            return Ladder.of_epochs(self.proxy.train.epochs,
                                    reduction_factor=self.reduction_factor)
        return Ladder(self.rungs, self.reduction_factor)

    def finalist_plan(self) -> FinalistPlan:
        from nas.engine.finalists import FinalistPlan  # here: it imports optuna

        return FinalistPlan(self.finalists, self.finalist_seeds, self.finalist_epochs)

    def objective(self) -> Objective:
        return make_objective(self.target, constraint=self.constraint, a=self.a, b=self.b,
                              metric=self.metric)

    @property
    def multi_objective(self) -> bool:
        return SAMPLERS.get(self.sampler).multi_objective

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["enqueue"] = list(self.enqueue)
        d["rungs"] = None if self.rungs is None else list(self.rungs)
        d["latency"] = None if self.latency is None else self.latency.to_dict()
        d["objectives"] = None if self.objectives is None else list(self.objectives)
        if self.evaluator == "proxy":  # a proxy run's config.json holds no supernet settings
            d.pop("supernet")
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SearchConfig:
        # run settings, not search settings
        skip = ("stage", "storage", "study_name", "backend", "device", "supernet_settings",
                "supernet_fingerprint")
        d = {k: v for k, v in d.items() if k not in skip}
        d["proxy"] = ProxyConfig.from_dict(d["proxy"])
        d["deploy"] = Deployment.from_dict(d.get("deploy"))
        d["enqueue"] = tuple(d.get("enqueue", ()))
        d.setdefault("finalists", 0)  # runs from before the finalists had none
        if d.get("rungs") is not None:
            d["rungs"] = tuple(d["rungs"])
        d.setdefault("budget", None)  # runs from before the setting had no run budget
        d.setdefault("reduction_factor", 3)  # runs from before the setting kept the best third
        d["latency"] = LatencySettings.from_dict(d.get("latency"))
        if d.get("objectives") is not None:
            d["objectives"] = tuple(d["objectives"])
        d["supernet"] = SupernetConfig.from_dict(d.get("supernet"))
        return cls(**d)

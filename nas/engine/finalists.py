"""Finalists: after the race, the best distinct candidates trained again with several seeds.

A search's best score is the maximum of many noisy numbers, so it is biased upwards (the
winner's curse) and the seed-to-seed spread of one training can be larger than the spread of
the top ten. So, once the search's budget is spent, the engine takes the top ``k`` distinct
candidates (distinct reuse keys; ranked by the stage's ``reward``, the value the search told)
and trains each again, at the top fidelity (the full proxy training, never pruned), with
``seeds`` fresh seeds. The winner is the finalist with the best **mean** reward over its seeds.

Finalist runs are ordinary trials **in the same study**, enqueued with the source trial's
parameters and the user attributes ``finalist`` (True), ``finalist_of`` (the source trial's
number) and ``finalist_seed`` (0 .. seeds-1). Their reuse key is the source's key plus the seed
index, and their training seed is drawn from that key (so it differs from the search's seed and
from the other finalist seeds, and is the same on every resume). So a run killed in the middle
of the finalists keeps every finished seed, and ``--resume`` trains only the missing ones.
Once a finalist is enqueued the search is over: a resumed run goes straight to the finalists.

How a stage uses it: give the stage a ``finalists`` attribute (a :class:`FinalistPlan`; a stage
without one runs none), record the per-trial ``reward`` in :meth:`Stage.score`, and read the
table with :func:`finalist_table` when writing outputs (:func:`choose` picks the winner). The
driver (:func:`nas.engine.run_study`) runs the phase; the local and Ray backends run the
finalist trials like any other.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Sequence

from optuna.trial import FrozenTrial, TrialState

from .fidelity import FINALIST
from .recorder import FINISHED, is_interrupted, reuse_key, stale_numbers

__all__ = ["FINALIST", "FINALIST_OF", "FINALIST_SEED", "FinalistPlan", "FinalistRow",
           "plan_of", "is_finalist", "finalist_key", "search_trials", "search_count",
           "begun", "top_distinct", "enqueue_finalists", "waiting_finalists", "finalist_table",
           "choose", "mean_std"]

FINALIST_OF = "finalist_of"
FINALIST_SEED = "finalist_seed"
SCORE = "reward"  # the user attribute both stages record and the finalists rank by


@dataclass(frozen=True)
class FinalistPlan:
    """``k`` distinct candidates (0: no finalists, today's behaviour), each trained with
    ``seeds`` seeds."""

    k: int = 0
    seeds: int = 3

    def __post_init__(self) -> None:
        if not isinstance(self.k, int) or isinstance(self.k, bool) or self.k < 0:
            raise ValueError(f"`finalists >= 0` must hold, but got finalists={self.k!r}; pass "
                             f"e.g. --finalists 4 (0 = no finalists)")
        if not isinstance(self.seeds, int) or isinstance(self.seeds, bool) or self.seeds < 1:
            raise ValueError(f"`finalist_seeds >= 1` must hold, but got "
                             f"finalist_seeds={self.seeds!r}; pass e.g. --finalist-seeds 3")

    @property
    def enabled(self) -> bool:
        return self.k > 0


def plan_of(stage: Any) -> FinalistPlan:
    """The stage's plan (its ``finalists`` attribute), else none."""
    plan = getattr(stage, "finalists", None)
    return plan if plan is not None else FinalistPlan()


def is_finalist(t: Any) -> bool:
    return bool(t.user_attrs.get(FINALIST))


def finalist_key(key: str, seed_index: int) -> str:
    """The reuse key of a finalist run: its source's key and its seed index."""
    return f"{key}#finalist-seed-{seed_index}"


def search_trials(trials: Iterable[FrozenTrial]) -> list[FrozenTrial]:
    return [t for t in trials if not is_finalist(t)]


def search_count(study: Any) -> int:
    """Search trials that count against the search's budget (finished, not interrupted)."""
    stale = set(stale_numbers(study))
    return sum(1 for t in study.get_trials(deepcopy=False, states=FINISHED)
               if not is_finalist(t) and not is_interrupted(t, stale))


def begun(study: Any) -> bool:
    """Whether the finalists have been enqueued (the search is then over)."""
    return any(is_finalist(t) for t in study.get_trials(deepcopy=False))


def _score(t: FrozenTrial) -> float | None:
    v = t.user_attrs.get(SCORE)
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def top_distinct(trials: Iterable[FrozenTrial], k: int) -> list[FrozenTrial]:
    """The ``k`` best COMPLETE search trials by score, one per reuse key (the earliest trial
    of a key; ties: the earlier trial)."""
    done = [t for t in search_trials(trials)
            if t.state == TrialState.COMPLETE and _score(t) is not None]
    done.sort(key=lambda t: (-_score(t), t.number))  # type: ignore[operator]
    out: list[FrozenTrial] = []
    seen: set[str | None] = set()
    for t in done:
        key = reuse_key(t)
        if key in seen:
            continue
        seen.add(key)
        out.append(t)
        if len(out) == k:
            break
    return out


def _carried(t: FrozenTrial) -> dict[str, Any]:
    from .study import _carried as carried

    return carried(t)


def enqueue_finalists(study: Any, plan: FinalistPlan) -> int:
    """Enqueue every finalist run not yet finished, running or waiting; the number enqueued.
    The finalists are the top ``plan.k`` of the search when first enqueued, and stay those on
    every resume."""
    if not plan.enabled:
        return 0
    trials = study.get_trials(deepcopy=False)
    stale = set(stale_numbers(study))
    have = {(t.user_attrs.get(FINALIST_OF), t.user_attrs.get(FINALIST_SEED)) for t in trials
            if is_finalist(t) and not is_interrupted(t, stale)}
    chosen = sorted({t.user_attrs[FINALIST_OF] for t in trials if is_finalist(t)})
    by_number = {t.number: t for t in trials}
    sources = ([by_number[n] for n in chosen] if chosen else top_distinct(trials, plan.k))
    n = 0
    for src in sources:
        for i in range(plan.seeds):
            if (src.number, i) in have:
                continue
            study.enqueue_trial(dict(src.params), user_attrs={
                **_carried(src), FINALIST: True, FINALIST_OF: src.number, FINALIST_SEED: i},
                skip_if_exists=False)
            n += 1
    return n


def waiting_finalists(study: Any) -> int:
    return sum(1 for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
               if is_finalist(t))


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1; NaN for one value)."""
    n = len(values)
    if n == 0:
        return float("nan"), float("nan")
    mean = sum(values) / n
    if n == 1:
        return mean, float("nan")
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


@dataclass(frozen=True)
class FinalistRow:
    """One finalist: its source trial and search score, and its runs (one per seed index)."""

    trial: int  # the source (search) trial
    key: str | None
    search_reward: float | None
    runs: list[dict[str, Any]] = field(default_factory=list)  # seed index, seed, trial, state,
    #                                                            accuracy, reward
    mean: float = float("nan")
    std: float = float("nan")
    accuracy_mean: float = float("nan")
    done: int = 0  # seeds COMPLETE
    seeds: int = 0  # seeds planned

    @property
    def complete(self) -> bool:
        return self.seeds > 0 and self.done == self.seeds

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("mean", "std", "accuracy_mean"):
            d[k] = None if not math.isfinite(d[k]) else d[k]
        d["complete"] = self.complete
        return d


def finalist_table(trials: Iterable[FrozenTrial], *, seeds: int) -> list[FinalistRow]:
    """Every finalist of a study, best mean first (incomplete ones after the complete ones):
    per seed, mean and std of the reward over its COMPLETE seeds, and the search's own
    score."""
    trials = list(trials)
    by_number = {t.number: t for t in trials}
    runs: dict[int, dict[int, FrozenTrial]] = {}
    for t in trials:
        if not is_finalist(t):
            continue
        src, i = t.user_attrs.get(FINALIST_OF), t.user_attrs.get(FINALIST_SEED)
        slot = runs.setdefault(int(src), {})
        # a seed run again (interrupted, then resumed) is its latest finished trial
        if i not in slot or (t.state == TrialState.COMPLETE
                             or slot[i].state != TrialState.COMPLETE):
            slot[i] = t
    rows = []
    for src, slot in runs.items():
        source = by_number.get(src)
        got = []
        for i in sorted(slot):
            t = slot[i]
            got.append({"seed_index": i, "seed": t.user_attrs.get("seed"), "trial": t.number,
                        "state": t.state.name, "accuracy": t.user_attrs.get("accuracy"),
                        "reward": t.user_attrs.get(SCORE)
                        if t.state == TrialState.COMPLETE else None})
        rewards = [r["reward"] for r in got if r["reward"] is not None]
        accs = [r["accuracy"] for r in got if r["reward"] is not None]
        mean, std = mean_std(rewards)
        rows.append(FinalistRow(
            trial=src, key=reuse_key(source) if source is not None else None,
            search_reward=_score(source) if source is not None else None, runs=got,
            mean=mean, std=std, accuracy_mean=mean_std(accs)[0], done=len(rewards),
            seeds=seeds))
    rows.sort(key=lambda r: (not r.complete, -(r.mean if math.isfinite(r.mean) else -1e300),
                             r.trial))
    return rows


def choose(rows: Sequence[FinalistRow]) -> FinalistRow | None:
    """The winner: the complete finalist with the best mean reward (None while none is
    complete)."""
    done = [r for r in rows if r.complete and math.isfinite(r.mean)]
    return max(done, key=lambda r: (r.mean, -r.trial), default=None)

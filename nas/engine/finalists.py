"""Finalists: after the race, the best distinct candidates trained again with several seeds.

A search's best score is the maximum of many noisy numbers, so it is biased upwards (the
winner's curse) and the seed-to-seed spread of one training can be larger than the spread of
the top ten. So, once the search's budget is spent, the engine takes the top ``k`` distinct
candidates (distinct reuse keys; ranked by the stage's ``reward``, the value the search told)
and trains each again, at the top fidelity (the full proxy training, never pruned; or for
``epochs`` epochs, a longer training than the search's), with ``seeds`` fresh seeds. The winner
is the finalist with the best **mean** reward over its seeds.

Finalist runs are ordinary trials **in the same study**, enqueued with the source trial's
parameters and the user attributes ``finalist`` (True), ``finalist_of`` (the source trial's
number) and ``finalist_seed`` (0 .. seeds-1). Their reuse key is the source's key plus the seed
index, and their training seed is drawn from that key (so it differs from the search's seed and
from the other finalist seeds, and is the same on every resume). So a run killed in the middle
of the finalists keeps every finished seed, and ``--resume`` trains only the missing ones.
Once a finalist is enqueued the search is over: a resumed run goes straight to the finalists.

How a stage uses it: give the stage a ``finalists`` attribute (a :class:`FinalistPlan`; a stage
without one runs none), record the per-trial ``reward`` in :meth:`Stage.score`, and read the
table with :func:`finalist_table` when writing outputs (:func:`choose` picks the winner, and
:func:`noise_verdict` says whether its lead over the runner-up stands out of the seeds' noise). The
driver (:func:`nas.engine.run_study`) runs the phase; the local and Ray backends run the
finalist trials like any other.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Iterable, Mapping, Sequence

from optuna.trial import FrozenTrial, TrialState

from space.stats import mean_std  # the one mean/std, shared with the dashboards

from .fidelity import FINALIST
from .recorder import FINISHED, carried, is_interrupted, reuse_key, stale_numbers

__all__ = ["FINALIST", "FINALIST_OF", "FINALIST_SEED", "FINALIST_ATTRS", "FinalistPlan",
           "FinalistRow", "plan_of", "is_finalist", "finalist_key", "search_trials",
           "search_count", "begun", "top_distinct", "enqueue_finalists", "finalist_sources",
           "shortfall", "waiting_finalists", "finalist_table", "choose", "chosen", "MEASURES",
           "mean_std", "NoiseVerdict", "noise_verdict", "finalist_verdict", "verdict_text"]

FINALIST_OF = "finalist_of"
FINALIST_SEED = "finalist_seed"
# what a finalist run is enqueued with besides its source's own (a retry of it carries them)
FINALIST_ATTRS = (FINALIST, FINALIST_OF, FINALIST_SEED)
SCORE = "reward"  # the user attribute both stages record and the finalists rank by


@dataclass(frozen=True)
class FinalistPlan:
    """``k`` distinct candidates (0: no finalists, today's behaviour), each trained with
    ``seeds`` seeds, for ``epochs`` epochs (None: the search's proxy training, its top
    rung)."""

    k: int = 0
    seeds: int = 3
    epochs: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.k, int) or isinstance(self.k, bool) or self.k < 0:
            raise ValueError(f"`finalists >= 0` must hold, but got finalists={self.k!r}; pass "
                             f"e.g. --finalists 4 (0 = no finalists)")
        if not isinstance(self.seeds, int) or isinstance(self.seeds, bool) or self.seeds < 1:
            raise ValueError(f"`finalist_seeds >= 1` must hold, but got "
                             f"finalist_seeds={self.seeds!r}; pass e.g. --finalist-seeds 3")
        if self.epochs is not None and (not isinstance(self.epochs, int)
                                        or isinstance(self.epochs, bool) or self.epochs < 1):
            raise ValueError(f"`finalist_epochs >= 1` must hold, but got "
                             f"finalist_epochs={self.epochs!r}; pass e.g. --finalist-epochs 8 "
                             f"(or leave it out: the finalists train as long as the search)")
        if self.epochs is not None and self.k == 0:
            raise ValueError(f"--finalist-epochs {self.epochs} sets how long the finalists "
                             f"train, but --finalists 0 trains none; pass e.g. --finalists 4, "
                             f"or drop --finalist-epochs")

    @property
    def enabled(self) -> bool:
        return self.k > 0

    def describe(self) -> str:
        """e.g. "4 finalist(s) x 3 seed(s)", "... x 8 epoch(s)" with :attr:`epochs`; "no
        finalists"."""
        if not self.enabled:
            return "no finalists"
        each = "" if self.epochs is None else f" x {self.epochs} epoch(s)"
        return f"{self.k} finalist(s) x {self.seeds} seed(s){each}"

    def task(self, proxy: Any) -> Any:
        """The proxy task a finalist run trains on: the search's ``proxy`` (a
        :class:`nas.proxy.ProxyConfig`), for :attr:`epochs` epochs when given."""
        if self.epochs is None or self.epochs == proxy.train.epochs:
            return proxy
        return replace(proxy, train=replace(proxy.train, epochs=self.epochs))


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


def enqueue_finalists(study: Any, plan: FinalistPlan, *, carry: Sequence[str] = ()) -> int:
    """Enqueue every finalist run not yet finished, running or waiting; the number enqueued.
    The finalists are the top ``plan.k`` of the search when first enqueued, and stay those on
    every resume. Each run carries the user attributes ``carry`` names that its source holds
    (what the source was enqueued with: the stage's ``enqueue_attrs``)."""
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
                **carried(src, carry), FINALIST: True, FINALIST_OF: src.number, FINALIST_SEED: i},
                skip_if_exists=False)
            n += 1
    return n


def finalist_sources(trials: Iterable[FrozenTrial]) -> list[int]:
    """The search trials the finalists retrain (their ``finalist_of``), in order."""
    return sorted({int(t.user_attrs[FINALIST_OF]) for t in trials if is_finalist(t)})


def shortfall(trials: Iterable[FrozenTrial], plan: FinalistPlan, *,
              label: str = "trial") -> str | None:
    """Why fewer than ``plan.k`` finalists are trained, in words (None when there are ``k``):
    only COMPLETE search trials with a score count, and one per distinct network (reuse key),
    so pruned, failed and interrupted trials and repeats of a network do not."""
    trials = list(trials)
    sources = finalist_sources(trials)
    if not plan.enabled or len(sources) >= plan.k:
        return None
    search = search_trials(trials)
    scored = [t for t in search if t.state == TrialState.COMPLETE and _score(t) is not None]
    distinct = len({reuse_key(t) for t in scored})
    left_out = [f"{n} {what}" for what, n in (
        ("pruned", sum(1 for t in search if t.state == TrialState.PRUNED)),
        ("failed or interrupted", sum(1 for t in search if t.state == TrialState.FAIL)),
        ("still running or waiting", sum(1 for t in search if not t.state.is_finished())),
        ("repeat(s) of a network already counted", len(scored) - distinct)) if n]
    why = f" (not counted: {', '.join(left_out)})" if left_out else ""
    return (f"finalists: {len(sources)} of the {plan.k} asked for (--finalists {plan.k}), "
            f"each with {plan.seeds} seed(s): the search completed {len(scored)} {label}(s) "
            f"holding {distinct} distinct network(s){why}")


def waiting_finalists(study: Any) -> int:
    return sum(1 for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
               if is_finalist(t))


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


MEASURES = (SCORE, "accuracy")  # what a finalist's seeds are averaged over to choose


def _mean_of(row: FinalistRow, by: str) -> float:
    if by not in MEASURES:
        raise ValueError(f"finalists are chosen by one of {', '.join(MEASURES)}, but got "
                         f"by={by!r}; pass e.g. --select reward")
    return row.mean if by == SCORE else row.accuracy_mean


def choose(rows: Sequence[FinalistRow], *, by: str = SCORE) -> FinalistRow | None:
    """The one finalist chooser, both stages': the complete finalist with the best mean
    ``by`` over its seeds (the reward, stage 1 and stage 2's ``--select reward``; or the
    accuracy, ``--select accuracy``), ties to the earlier source trial; None while none is
    complete."""
    done = [r for r in rows if r.complete and math.isfinite(_mean_of(r, by))]
    return max(done, key=lambda r: (_mean_of(r, by), -r.trial), default=None)


def chosen(trials: Sequence[FrozenTrial], plan: FinalistPlan, *, search_best: FrozenTrial | None,
           by: str = SCORE) -> tuple[FrozenTrial | None, FinalistRow | None, list[FinalistRow]]:
    """The stage's chosen trial, its finalist row and the finalists table (:func:`finalist_table`;
    empty without finalists): with finalists, the source trial of the :func:`choose` winner; before
    any finalist is complete (or without finalists), ``search_best``, the stage's best single
    training."""
    rows = finalist_table(trials, seeds=plan.seeds) if plan.enabled else []
    winner = choose(rows, by=by)
    if winner is None:
        return search_best, None, rows
    return next(t for t in trials if t.number == winner.trial), winner, rows


@dataclass(frozen=True)
class NoiseVerdict:
    """Whether the chosen finalist's lead over the runner-up is larger than the seeds' noise.

    ``lead`` is the chosen one's mean minus the runner-up's, ``spread`` their combined seed
    spread (:func:`noise_verdict` defines it) and ``within_noise`` is ``lead <= spread``.
    ``within_noise`` is None when it cannot be judged: no runner-up (``runner_up`` None: a single
    complete finalist), or no spread (``spread`` None: one seed on either side)."""

    chosen: int  # the source trial of the chosen finalist
    runner_up: int | None  # the source trial of the next best mean, None when there is none
    measure: str  # what the means are of: "reward" (stage 1) or stage 2's --select
    lead: float | None  # chosen mean - runner-up mean
    spread: float | None  # sqrt(std_chosen^2 + std_runner_up^2), sample stds (n - 1)
    within_noise: bool | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def noise_verdict(values: Mapping[int, Sequence[float]], chosen: int, *,
                  measure: str = SCORE) -> NoiseVerdict:
    """Judge the choice of ``chosen`` among finalists whose per-seed values are ``values``
    (source trial -> the finished seeds' rewards or accuracies; complete finalists only).

    The runner-up is the other finalist with the best mean (ties: the earlier trial). The
    *combined seed spread* is ``sqrt(s_c^2 + s_r^2)``, where ``s_c`` and ``s_r`` are the sample
    standard deviations (n - 1) of the two finalists' per-seed values: it is the standard
    deviation of the difference between one more training of each, so a lead smaller than it is
    one that a fresh pair of seeds reverses often. It is deliberately not the standard error of
    the difference of the means (smaller by sqrt(seeds)): what the user takes away is one
    network, trained again, and with 2-3 seeds a standard error is itself a guess. The choice
    is **within noise** when the lead is not larger than that, ``lead <= spread`` (so two
    finalists tied with no spread at all are within noise too, not a clear lead of 0). With one
    seed on either side there is no spread, and with one finalist no runner-up: then
    ``within_noise`` is None (cannot be judged)."""
    if chosen not in values:
        raise KeyError(f"the chosen finalist (trial {chosen}) is not among the finalists "
                       f"judged ({sorted(values)}); pass the values of every complete finalist")
    means = {n: mean_std(list(v)) for n, v in values.items() if len(v)}
    if chosen not in means:
        raise ValueError(f"the chosen finalist (trial {chosen}) has no finished seed; judge a "
                         f"complete finalist")
    others = [n for n in means if n != chosen]
    if not others:
        return NoiseVerdict(chosen=chosen, runner_up=None, measure=measure, lead=None,
                            spread=None, within_noise=None)
    runner_up = max(others, key=lambda n: (means[n][0], -n))
    (m_c, s_c), (m_r, s_r) = means[chosen], means[runner_up]
    lead = m_c - m_r
    if not (math.isfinite(s_c) and math.isfinite(s_r)):  # one seed: no spread to judge by
        return NoiseVerdict(chosen=chosen, runner_up=runner_up, measure=measure, lead=lead,
                            spread=None, within_noise=None)
    spread = math.hypot(s_c, s_r)
    return NoiseVerdict(chosen=chosen, runner_up=runner_up, measure=measure, lead=lead,
                        spread=spread, within_noise=lead <= spread)


def finalist_verdict(rows: Sequence[FinalistRow], chosen: FinalistRow, *,
                     measure: str = SCORE) -> NoiseVerdict:
    """:func:`noise_verdict` over the complete finalists of a :func:`finalist_table`, on the
    per-seed ``measure`` (``reward`` or ``accuracy``) of their finished seeds."""
    values = {r.trial: [float(x[measure]) for x in r.runs
                        if x["reward"] is not None and x.get(measure) is not None]
              for r in rows if r.complete}
    return noise_verdict(values, chosen.trial, measure=measure)


def _num(x: float) -> str:
    return f"{x:.2g}"


def verdict_text(v: NoiseVerdict, *, chosen: str, runner_up: str | None = None) -> str:
    """The verdict in words, naming the two as ``chosen`` and ``runner_up`` (e.g. "B0 (trial
    2)" and "trial 21"), e.g. "B0 (trial 2) and trial 21 are within noise (0.0038 apart in
    mean reward, combined seed std 0.023): ..."."""
    other = runner_up if runner_up is not None else f"trial {v.runner_up}"
    if v.runner_up is None:
        return (f"{chosen} is the only complete finalist: there is no runner-up to compare "
                f"it with")
    what = f"mean {v.measure}"
    if v.spread is None:
        return (f"{chosen} leads {other} by {_num(v.lead)} in {what}, but with one seed the "
                f"seed spread is unknown, so whether the lead is more than noise cannot be "
                f"judged (pass --finalist-seeds 3)")
    if v.within_noise:
        return (f"{chosen} and {other} are within noise ({_num(v.lead)} apart in {what}, "
                f"combined seed std {_num(v.spread)}): other seeds could reverse the order")
    return (f"{chosen} leads {other} by {_num(v.lead)} in {what}, more than their combined "
            f"seed std {_num(v.spread)}")

"""Training the supernet: the sandwich rule with in-place distillation (issue 24, phase 1).

BigNAS (Yu et al., ECCV 2020, Sec. 3.1-3.2) and AttentiveNAS/AlphaNet train every member at
once: each step runs the **largest** member, the **smallest** and ``n_random`` members drawn
uniformly (the sandwich rule), accumulating their gradients before one optimizer step. The
largest learns from the labels; the others learn from its detached predictions (**in-place
distillation**, :data:`DISTILL_LOSSES`). As BigNAS regularizes only the biggest child, only the
largest member gets the space's dropout and drop-connect.

A space that chooses an op per stage has one weight family per op, so "largest" needs a rule
(:data:`SANDWICH_RULES`): ``extremes`` (the default) takes each stage's costliest op for the
largest and cheapest for the smallest, as BigNAS's rule reads; ``per-op`` draws one op per stage
for the step (SPOS's single path) and takes the largest and smallest within it; ``uniform``
draws every member of the step from the space (SPOS's uniform sampling, no ends). After one epoch
on Fashion-MNIST (mnasnet space) ``extremes`` scored 0.69 (largest) and 0.43 (smallest) and
``per-op`` left every member at chance (benchmarks/BENCHMARKS_supernet.md).

How to train is a :class:`nas.train.TrainConfig` (optimizer, schedule, learning rate, epochs,
batch size, label smoothing for the largest), looked up in the same registries as the proxy
evaluator's loop, so the stable recipe plugs in unchanged.

Resumable: every ``checkpoint_every`` steps the model, optimizer, step and history are written
atomically. Randomness is a pure function of ``(seed, step)``: the epoch's data order, the step's
random members and the step's dropout draws are each seeded from them, so a run resumed from a
checkpoint continues exactly as the unbroken run would have (the checkpoint's RNG state is the
seed and the step). The settings and their fingerprint (:func:`supernet_settings`,
:func:`fingerprint`) are stored with it; a checkpoint of other settings is refused.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F

from nas.train.loop import OPTIMIZERS, PRECISIONS, TrainConfig, as_split, lr_at, set_threads
from space.io import atomic_write
from space.registry import Registry
from space.spec import ArchSpec

from .network import SuperNet

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "efficientnas-supernet-checkpoint"
CHECKPOINT_VERSION = 1

# (student logits, teacher probabilities) -> loss; the teacher is the largest member, detached.
DISTILL_LOSSES: Registry[Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None] = \
    Registry("distillation loss")
DISTILL_LOSSES.add("kl", lambda s, t: F.kl_div(F.log_softmax(s, 1), t, reduction="batchmean"))
# BigNAS/OFA's soft-target cross-entropy: KL's gradient, plus the teacher's entropy as an offset
DISTILL_LOSSES.add("ce", lambda s, t: -(t * F.log_softmax(s, 1)).sum(1).mean())
DISTILL_LOSSES.add("none", None)  # every member learns from the labels (no distillation)


def check_training(config: TrainConfig, *, n_random: int, distill: str,
                   rule: str = "extremes", largest_first: float = 0.0) -> None:
    """Raise ValueError (or UnknownNameError) for settings the supernet cannot train with, each
    with the fix. Cheap: run it before writing anything."""
    if isinstance(n_random, bool) or not isinstance(n_random, int) or n_random < 0:
        raise ValueError(f"`n_random >= 0` must hold (random members per step besides the "
                         f"largest and smallest), but got n_random={n_random!r}; pass e.g. 2")
    if isinstance(largest_first, bool) or not isinstance(largest_first, (int, float)) \
            or not 0 <= largest_first < config.epochs:
        raise ValueError(f"`0 <= largest_first < epochs` must hold (epochs that train the "
                         f"largest member alone before the sandwich), but got largest_first="
                         f"{largest_first!r} with epochs={config.epochs}; pass e.g. 0 or 1")
    DISTILL_LOSSES.get(distill)
    SANDWICH_RULES.get(rule)
    if config.compile != "off":
        raise ValueError(f"the supernet cannot train with compile={config.compile!r}: its shapes "
                         f"change with every member, so torch.compile would recompile at every "
                         f"step; pass --compile off")


def supernet_settings(supernet: SuperNet, *, config: TrainConfig, seed: int, n_random: int,
                      distill: str, train_images: int, rule: str = "extremes",
                      data: Mapping[str, Any] | None = None,
                      largest_first: float = 0.0) -> dict[str, Any]:
    """What the trained weights depend on, as plain data (for config.json and summary.json).
    How the run executes (threads, evaluation batch size) is left out, so it may change on a
    resume. ``data`` says which images (dataset, resolution, samples, split seed).
    ``largest_first`` is recorded only when it is not 0, so settings from before it existed
    keep their fingerprint."""
    train = config.to_dict()
    for how in ("threads", "eval_batch_size"):
        train.pop(how)
    out = {"supernet": supernet.settings(), "train": train, "seed": seed,
           "n_random": n_random, "distill": distill, "rule": rule, "train_images": train_images,
           "data": dict(data or {})}
    if largest_first:
        out["largest_first"] = float(largest_first)
    return out


def fingerprint(settings: dict[str, Any]) -> str:
    """12 hex digits of :func:`supernet_settings`: equal fingerprints, equal training."""
    blob = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class StepResult:
    step: int  # 1-based, over the whole run
    epoch: float  # fractional epoch at the step's start
    lr: float
    loss_largest: float  # the largest member's loss on the labels
    loss_members: float  # mean loss of the other members (distillation or labels)


@dataclass
class SupernetTrainResult:
    steps: int  # steps done, this call and before it
    total_steps: int
    seconds: float  # this call's wall time
    resumed_from: int  # the step the call started at (0: a fresh run)
    history: list[StepResult] = field(default_factory=list)
    fingerprint: str = ""

    @property
    def finished(self) -> bool:
        return self.steps >= self.total_steps


def _derive(seed: int, what: str, index: int) -> int:
    """An independent 63-bit seed for ``what`` at ``index``: randomness as a pure function of
    (seed, step), so a resumed run draws what the unbroken run drew."""
    digest = hashlib.sha256(f"{seed}:{what}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _autocast(device: torch.device, precision: str) -> Any:
    dtype = PRECISIONS.get(precision)
    return torch.autocast(device_type=device.type, dtype=dtype or torch.float32,
                          enabled=dtype is not None)


# How one step picks its members: (supernet, rng, n_random) -> [largest, smallest, random...].
SANDWICH_RULES: Registry[Callable[[SuperNet, random.Random, int], list[ArchSpec]]] = \
    Registry("sandwich rule")


@SANDWICH_RULES.register("extremes")
def _extremes(supernet: SuperNet, rng: random.Random, n_random: int) -> list[ArchSpec]:
    # BigNAS's rule as written: the largest takes each stage's most costly op, the smallest the
    # cheapest. With one weight family per op they then share no weights.
    return [supernet.largest(), supernet.smallest()] + \
        [supernet.sample(rng) for _ in range(n_random)]


@SANDWICH_RULES.register("per-op")
def _per_op(supernet: SuperNet, rng: random.Random, n_random: int) -> list[ArchSpec]:
    # SPOS over the op choice, BigNAS within it: one op per stage is drawn for the step and
    # every member takes it, so the sandwich's ends share weights and every family is trained
    # at both ends of its elastic range.
    ops = supernet.sample_ops(rng)
    return [supernet.largest(ops), supernet.smallest(ops)] + \
        [supernet.sample(rng, ops) for _ in range(n_random)]


@SANDWICH_RULES.register("uniform")
def _uniform(supernet: SuperNet, rng: random.Random, n_random: int) -> list[ArchSpec]:
    # SPOS's uniform sampling (Guo et al., ECCV 2020): the step's 2 + n_random members (as many
    # as the sandwich's) are all drawn from the distribution the candidates come from; the
    # first one is the teacher (pass distill="none" for labels only, as SPOS).
    return [supernet.sample(rng) for _ in range(2 + n_random)]


def sandwich(supernet: SuperNet, rng: random.Random, n_random: int, *,
             rule: str = "extremes") -> list[ArchSpec]:
    """One step's members by ``rule`` (:data:`SANDWICH_RULES`): the largest (with the space's
    dropout and drop-connect), the smallest, then ``n_random`` drawn from ``rng`` (these
    without regularization, as BigNAS)."""
    members = SANDWICH_RULES.get(rule)(supernet, rng, n_random)
    quiet = dict(dropout=0.0, drop_connect=0.0)
    return members[:1] + [m.replace(**quiet) for m in members[1:]]


def supernet_steps(train_images: int, config: TrainConfig) -> tuple[int, int]:
    """(steps per epoch, total steps) of a supernet training run (e.g. a progress bar's)."""
    per_epoch = max(1, math.ceil(train_images / config.batch_size))
    return per_epoch, per_epoch * config.epochs


def load_supernet_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint written by :func:`train_supernet`: a dict with ``fingerprint``,
    ``settings``, ``step``, ``total_steps``, ``model``, ``optimizer`` and ``history``."""
    p = Path(path)
    try:
        raw = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # zip/pickle errors have no common base class
        raise ValueError(f"{str(p)!r} is not a supernet checkpoint ({type(e).__name__}); delete "
                         f"it or pass another checkpoint path") from None
    if not isinstance(raw, dict) or raw.get("format") != CHECKPOINT_FORMAT \
            or raw.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{str(p)!r} is not a version-{CHECKPOINT_VERSION} supernet checkpoint; "
                         f"delete it or pass another checkpoint path")
    return raw


def train_supernet(supernet: SuperNet, train: Any, *, config: TrainConfig, seed: int = 0,
                   n_random: int = 2, distill: str = "kl", rule: str = "extremes",
                   checkpoint_path: str | Path | None = None,
                   checkpoint_every: int = 50, stop_after: int | None = None,
                   on_step: Callable[[StepResult], None] | None = None,
                   data: Mapping[str, Any] | None = None,
                   largest_first: float = 0.0) -> SupernetTrainResult:
    """Train ``supernet`` in place for ``config.epochs`` epochs over ``train`` (a split, or
    ``(x, y)`` tensors) with the sandwich ``rule`` (:data:`SANDWICH_RULES`) and in-place
    distillation.

    With ``checkpoint_path``, a checkpoint there (of the same settings) is resumed, and one is
    written atomically every ``checkpoint_every`` steps, at ``stop_after``, at the end, and on
    Ctrl-C (KeyboardInterrupt, re-raised) after the last finished step. ``stop_after`` stops
    once that many steps (counted over the whole run) are done, e.g. for a time budget.
    ``on_step`` sees every step's :class:`StepResult` (a progress bar; it may raise to stop).
    ``data`` (the dataset, resolution, sample counts, ...) joins the fingerprinted settings.
    ``largest_first`` (epochs, fractional) trains the largest member alone, on the labels,
    before the sandwich starts (the first phase of Once-for-All's progressive shrinking); the
    learning-rate schedule runs over the whole of ``config.epochs`` either way.
    """
    check_training(config, n_random=n_random, distill=distill, rule=rule,
                   largest_first=largest_first)
    if checkpoint_every < 1:
        raise ValueError(f"`checkpoint_every >= 1` must hold, but got {checkpoint_every}")
    set_threads(config.threads)
    device = next(supernet.parameters()).device
    split = (as_split(*train) if isinstance(train, tuple) else as_split(train)).to(device)
    n = len(split)
    steps_per_epoch, total = supernet_steps(n, config)
    settings = supernet_settings(supernet, config=config, seed=seed, n_random=n_random,
                                 distill=distill, train_images=n, rule=rule, data=data,
                                 largest_first=largest_first)
    fp = fingerprint(settings)
    opt = OPTIMIZERS.get(config.optimizer)(supernet.parameters(), config)
    path = Path(checkpoint_path) if checkpoint_path is not None else None
    step, history = _resume(path, fp, supernet, opt)
    start = step

    def save() -> None:
        if path is not None:
            state = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
                     "fingerprint": fp, "settings": json.loads(json.dumps(settings, default=str)),
                     "step": step, "total_steps": total, "model": supernet.state_dict(),
                     "optimizer": opt.state_dict(), "history": [h.__dict__ for h in history]}
            atomic_write(path, lambda tmp: torch.save(state, tmp))

    losses = _Losses(DISTILL_LOSSES.get(distill),
                     torch.nn.CrossEntropyLoss(label_smoothing=config.label_smoothing))
    end = total if stop_after is None else min(total, max(start, stop_after))
    supernet.set_channels_last(config.channels_last).train()
    t0 = time.perf_counter()
    updating = False
    try:
        with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
            while step < end:
                epoch, within = divmod(step, steps_per_epoch)
                order = torch.randperm(n, generator=torch.Generator().manual_seed(
                    _derive(seed, "data", epoch)))
                xb, yb = split.batch(order[within * config.batch_size:
                                           (within + 1) * config.batch_size].to(device))
                lr = lr_at(epoch + within / steps_per_epoch, config)
                for g in opt.param_groups:
                    g["lr"] = lr
                torch.manual_seed(_derive(seed, "torch", step))
                members = sandwich(supernet, random.Random(_derive(seed, "members", step)),
                                   n_random, rule=rule)
                if step < largest_first * steps_per_epoch:
                    members = members[:1]  # progressive shrinking's first phase: the largest
                values = _sandwich_step(supernet, opt, members, xb, yb, losses, config=config,
                                        step=step + 1)
                updating = True  # an interrupt now would leave weights half-updated
                opt.step()
                step += 1
                updating = False
                history.append(StepResult(step=step, epoch=epoch + within / steps_per_epoch,
                                          lr=lr, loss_largest=values[0],
                                          loss_members=sum(values[1:]) / max(1, len(values) - 1)))
                if step % checkpoint_every == 0 or step == end:
                    save()
                if on_step is not None:
                    on_step(history[-1])
    except KeyboardInterrupt:
        if not updating:  # else the last periodic checkpoint stands
            save()  # the last finished step: nothing finished is lost
        raise
    return SupernetTrainResult(steps=step, total_steps=total, seconds=time.perf_counter() - t0,
                               resumed_from=start, history=history, fingerprint=fp)


@dataclass(frozen=True)
class _Losses:
    distill: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None
    labels: torch.nn.Module


def _sandwich_step(supernet: SuperNet, opt: torch.optim.Optimizer, members: list[ArchSpec],
                   xb: torch.Tensor, yb: torch.Tensor, losses: _Losses, *, config: TrainConfig,
                   step: int) -> list[float]:
    """Forward and backward ``members`` (the largest first, the teacher), summing their
    gradients (clipped per ``config``) for one optimizer step; each member's loss. A loss that
    is not finite raises before the weights change."""
    device = xb.device
    opt.zero_grad(set_to_none=True)
    out, teacher = [], None
    for k, spec in enumerate(members):
        supernet.set_active(spec)
        with _autocast(device, config.precision):
            logits = supernet(xb)
            if k == 0 or losses.distill is None:
                loss = losses.labels(logits, yb)
            else:
                loss = losses.distill(logits.float(), teacher)
        loss.backward()
        if k == 0:
            teacher = F.softmax(logits.detach().float(), 1)
        out.append(loss.detach())
    values = torch.stack(out).tolist()  # one sync per step
    if not all(math.isfinite(v) for v in values):
        raise FloatingPointError(f"supernet training loss became {values} (largest first) at "
                                 f"step {step}; lower the learning rate (lr={config.lr})")
    if config.grad_clip:
        torch.nn.utils.clip_grad_norm_(supernet.parameters(), config.grad_clip)
    return values


def _resume(path: Path | None, fp: str, supernet: SuperNet,
            opt: torch.optim.Optimizer) -> tuple[int, list[StepResult]]:
    """Load the checkpoint at ``path`` (if any) into ``supernet`` and ``opt``; its step and
    history. One of other settings (another fingerprint) is refused."""
    if path is None or not path.exists():
        return 0, []
    ckpt = load_supernet_checkpoint(path)
    if ckpt["fingerprint"] != fp:
        raise ValueError(f"checkpoint {str(path)!r} was trained with other settings "
                         f"(fingerprint {ckpt['fingerprint']}, these give {fp}); pass the "
                         f"settings it was written with, or another checkpoint path")
    supernet.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optimizer"])
    return int(ckpt["step"]), [StepResult(**h) for h in ckpt["history"]]

def load_trained_supernet(path: str | Path, space: Any, *,
                          device: torch.device | str = "cpu") -> tuple[SuperNet, dict[str, Any]]:
    """The supernet a checkpoint holds, rebuilt over ``space`` (which must be the space it was
    trained on: the fingerprints are compared), in eval mode, and the checkpoint's settings
    (with ``step`` and ``total_steps``). What a scoring worker loads once."""
    from .network import space_fingerprint

    ckpt = load_supernet_checkpoint(path)
    held = ckpt["settings"]["supernet"]
    if held["space_fingerprint"] != space_fingerprint(space):
        raise ValueError(f"supernet checkpoint {str(path)!r} was trained on space "
                         f"{held['space']!r} (fingerprint {held['space_fingerprint']}), not on "
                         f"{space.name!r} ({space_fingerprint(space)}); pass the space it was "
                         f"trained on, or train a supernet for this one")
    net = SuperNet(space, in_channels=held["in_channels"], num_classes=held["num_classes"],
                   bn_momentum=held["bn_momentum"], zero_init_last=held["zero_init_last"],
                   zero_init_head=held.get("zero_init_head", False))
    net.load_state_dict(ckpt["model"])
    info = {**ckpt["settings"], "fingerprint": ckpt["fingerprint"], "step": ckpt["step"],
            "total_steps": ckpt["total_steps"]}
    return net.to(device).eval(), info

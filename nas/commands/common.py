"""What the search commands share: the proxy and backend flags, and one table-driven resume check.

A command describes its flags as :class:`Flag` rows: where each lands in the command's frozen
config (a dotted path such as ``proxy.train.epochs``), how its text is parsed, and whether it may
change on ``--resume``. :func:`apply_flags` builds a config from the flags given;
:func:`check_resume` refuses, with one line naming the flag, the run's value and the new one, a
flag that would change what a resumed run computes. ``nas search`` and ``gridsearch`` both go
through here, so they resume the same way.

Registry-backed flags list their choices from the registries, and the defaults their help shows
come from the config dataclasses.

Why one file of over 400 lines: it is the one table of the flags both search commands share
(the group titles, proxy, run folder, backend and latency rows, with their resume rules); split
by group, a reader would follow one table through five files.
"""
from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

S = argparse.SUPPRESS  # absent flags stay absent, so --resume can tell what was given
EXIT_NO_RESULT = 1  # a run that finished no trial (nothing to emit), in both stages

# The argument groups: one title per idea, the same in both search commands (issue 25), so
# that --help reads as a table of contents and a flag both share sits under the same title in
# each. A command's own ideas get groups of their own (gridsearch's base & family).
GROUP_TARGET = "target & objective"
GROUP_SEARCH = "search"
GROUP_LADDER = "ladder & finalists"
GROUP_PROXY = "proxy task"
GROUP_LATENCY = "latency"
GROUP_BACKEND = "backend & device"
GROUP_RUN = "run folder & storage"

__all__ = ["S", "EXIT_NO_RESULT", "GROUP_TARGET", "GROUP_SEARCH", "GROUP_LADDER", "GROUP_PROXY",
           "GROUP_LATENCY", "GROUP_BACKEND", "GROUP_RUN", "Flag", "PROXY_FLAGS", "RUNGS_FLAG",
           "REDUCTION_FACTOR_FLAG", "add_reduction_factor_argument", "zero_is_none",
           "parse_rungs_flag", "parse_reduction_factor_flag", "rungs_set_epochs", "default_of",
           "get_path", "set_path", "apply_flags", "check_resume", "add_proxy_arguments",
           "add_run_arguments", "add_backend_arguments", "add_device_arguments", "LATENCY_FLAGS",
           "add_latency_arguments", "backend_from_args", "given_flags", "RunRequest",
           "request_from_args", "exit_code", "latency_line"]


def _same(v: Any) -> Any:
    return v


@dataclass(frozen=True)
class Flag:
    dest: str  # argparse dest
    path: str  # dotted attribute path in the command's config
    parse: Callable[[Any], Any] = _same
    on_resume: bool = False  # may change on --resume (changes what is run, not its results)
    option: str | None = None  # the flag as typed, when not --<dest with dashes>

    @property
    def name(self) -> str:
        return self.option or "--" + self.dest.replace("_", "-")


def default_of(cls: type, path: str) -> Any:
    """A dataclass field's default (``TrainConfig``'s ``epochs``), for help texts."""
    f = cls.__dataclass_fields__[path]  # type: ignore[attr-defined]
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory()  # type: ignore[misc]


def get_path(obj: Any, path: str) -> Any:
    """The value at ``path``; None where a part on the way is None (a run without latency
    settings has no ``latency.threads``)."""
    for part in path.split("."):
        if obj is None:
            return None
        obj = getattr(obj, part)
    return obj


def set_path(obj: Any, path: str, value: Any) -> Any:
    """``obj`` (a frozen dataclass) with the attribute at ``path`` replaced (validated by the
    dataclasses' own ``__post_init__``)."""
    head, _, rest = path.partition(".")
    if not rest:
        return dataclasses.replace(obj, **{head: value})
    return dataclasses.replace(obj, **{head: set_path(getattr(obj, head), rest, value)})


def apply_flags(config: Any, given: Mapping[str, Any], flags: Iterable[Flag]) -> Any:
    for f in flags:
        if f.dest in given:
            config = set_path(config, f.path, f.parse(given[f.dest]))
    return config


def check_resume(saved: Any, given: Mapping[str, Any], flags: Iterable[Flag]) -> None:
    """A resumed run keeps what it computes: a given flag that would change it is an error."""
    for f in flags:
        if f.dest not in given or f.on_resume:
            continue
        have, new = get_path(saved, f.path), f.parse(given[f.dest])
        if new != have:
            raise ValueError(f"{f.name} {given[f.dest]!r} differs from the resumed run's "
                             f"{have!r}; a resumed run keeps its settings: drop {f.name} or "
                             f"start a new run with another --out")


def given_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The flags the user gave (absent ones are suppressed), without the CLI's own keys."""
    return {k: v for k, v in vars(args).items() if not k.startswith("_") and
            k not in ("command", "verbose", "config")}


def zero_is_none(v: Any) -> Any:
    """``--timeout 0`` and ``--grad-clip 0``: no limit, no clipping."""
    return None if v == 0 else v


def parse_rungs_flag(v: Any) -> tuple[int, ...]:
    from nas.engine.fidelity import parse_rungs

    return parse_rungs(v)


def rungs_set_epochs(given: dict[str, Any]) -> None:
    """``--rungs 1,3,9`` alone trains 9 epochs: the top rung is the training's length (both
    stages' rule)."""
    if "rungs" in given and "epochs" not in given:
        given["epochs"] = parse_rungs_flag(given["rungs"])[-1]


# --rungs, in both stages; a command lists it after --epochs: the top rung must equal it
RUNGS_FLAG = Flag("rungs", "rungs", parse_rungs_flag)


def parse_reduction_factor_flag(v: Any) -> int:
    from nas.engine.fidelity import parse_reduction_factor

    return parse_reduction_factor(v)


# --reduction-factor, in both stages: the ladder's keep fraction (what a run computes, so it
# stays on --resume). Parsed here, not by argparse, so a bad value is the rule's own one line.
REDUCTION_FACTOR_FLAG = Flag("reduction_factor", "reduction_factor", parse_reduction_factor_flag)


def add_reduction_factor_argument(g: Any, *, default: int, reads: str) -> None:
    """``--reduction-factor N``, one help text in both stages; ``default`` is the command's,
    ``reads`` says what reads it there."""
    g.add_argument("--reduction-factor", default=S, metavar="N",
                   help=f"the ladder's keep fraction: at each rung only the best 1/N go on "
                        f"(ASHA's reduction factor; a whole number >= 2; 2 keeps half, 3 a "
                        f"third; {reads}; a resumed run keeps its own) (default {default})")


# ----------------------------------------------------------------------------- proxy flags
PROXY_FLAGS: tuple[Flag, ...] = (
    Flag("dataset", "proxy.dataset"),
    Flag("data_dir", "proxy.data_dir"),
    Flag("train_samples", "proxy.train_samples"),
    Flag("val_samples", "proxy.val_samples"),
    Flag("proxy_resolution", "proxy.resolution"),
    Flag("epochs", "proxy.train.epochs"),
    Flag("batch_size", "proxy.train.batch_size"),
    Flag("lr", "proxy.train.lr"),
    Flag("warmup_epochs", "proxy.train.warmup_epochs"),
    Flag("optimizer", "proxy.train.optimizer"),
    Flag("weight_decay", "proxy.train.weight_decay"),
    Flag("label_smoothing", "proxy.train.label_smoothing"),
    Flag("grad_clip", "proxy.train.grad_clip", parse=zero_is_none),
    Flag("zero_init_last", "proxy.zero_init_last"),
    Flag("zero_init_head", "proxy.zero_init_head"),
    Flag("schedule", "proxy.train.schedule"),
    Flag("threads", "proxy.train.threads"),
    Flag("precision", "proxy.train.precision"),
    Flag("compile", "proxy.train.compile", on_resume=True),
    Flag("device", "proxy.device", on_resume=True),
    Flag("seed", "seed"),
)


class _HelpOverrides:
    """An argument group whose help texts a command replaces by dest (stage 2's ``--epochs``
    means epochs per grid point), through argparse's public ``add_argument`` only."""

    def __init__(self, group: Any, helps: Mapping[str, str]) -> None:
        self.group, self.helps, self.used = group, dict(helps), set()

    def add_argument(self, *flags: str, **kwargs: Any) -> Any:
        dest = kwargs.get("dest") or flags[-1].lstrip("-").replace("-", "_")
        if dest in self.helps:
            kwargs["help"] = self.helps[dest]
            self.used.add(dest)
        return self.group.add_argument(*flags, **kwargs)

    def check_used(self) -> None:
        unknown = sorted(set(self.helps) - self.used)
        if unknown:  # a misspelt dest would silently keep stage 1's text
            raise KeyError(f"no proxy flag with dest {unknown}; known: see add_proxy_arguments")


def add_proxy_arguments(p: argparse.ArgumentParser, base: Any, *, seed: int | None = 0,
                        helps: Mapping[str, str] | None = None) -> None:
    """The proxy task's flags (dataset and training recipe, :data:`GROUP_PROXY`), shared by
    ``nas search`` and ``gridsearch``; ``base`` is the command's default ProxyConfig (the
    defaults the help states), ``helps`` the help texts (by dest) where the command's meaning
    or default differs."""
    from nas.train.config import OPTIMIZERS, SCHEDULES

    t = base.train
    g = _HelpOverrides(p.add_argument_group(GROUP_PROXY, "what a candidate is trained on and "
                                            "how it is scored"), helps or {})
    g.add_argument("--dataset", default=S, help=f"fashion-mnist, cifar10, folder:PATH, "
                   f"synthetic (default {base.dataset})")
    g.add_argument("--data-dir", default=S, help="folder holding the dataset files "
                   "(fashion-mnist default: /usr/share/datasets/fashion-mnist)")
    g.add_argument("--epochs", type=int, default=S,
                   help=f"proxy training epochs (default {t.epochs})")
    g.add_argument("--train-samples", type=int, default=S, help=f"training images per trial, "
                   f"drawn from the training split (default {base.train_samples})")
    g.add_argument("--val-samples", type=int, default=S, help=f"validation images held out from "
                   f"the training split (default {base.val_samples}); more score each training "
                   f"with less noise, for forward passes (BENCHMARKS_fidelity.md)")
    g.add_argument("--proxy-resolution", type=int, default=S,
                   help=f"input size the proxy task trains at (default {base.resolution})")
    g.add_argument("--batch-size", type=int, default=S,
                   help=f"training batch size (default {t.batch_size}); without --lr the "
                   f"learning rate scales linearly with it")
    g.add_argument("--lr", type=float, default=S, help=f"peak learning rate (default {t.lr:g} "
                   f"at batch {t.batch_size})")
    g.add_argument("--warmup-epochs", type=float, default=S, help=f"linear warm-up from 0 to "
                   f"--lr over this many epochs (default {t.warmup_epochs:g})")
    g.add_argument("--optimizer", default=S, choices=OPTIMIZERS.names(),
                   help=f"{', '.join(OPTIMIZERS)} (default {t.optimizer})")
    g.add_argument("--weight-decay", type=float, default=S,
                   help=f"weight decay (default {t.weight_decay:g})")
    g.add_argument("--label-smoothing", type=float, default=S, help=f"label smoothing of the "
                   f"training loss, in [0, 1) (default {t.label_smoothing:g})")
    g.add_argument("--grad-clip", type=float, default=S, help=f"clip the gradient's norm to "
                   f"this (default {t.grad_clip or 0:g}; 0: no clipping)")
    g.add_argument("--zero-init-last", action=argparse.BooleanOptionalAction, default=S,
                   help=f"start the last batch norm of every residual branch at zero, so "
                   f"each residual block starts as its shortcut (default "
                   f"{'on' if base.zero_init_last else 'off'})")
    g.add_argument("--zero-init-head", action=argparse.BooleanOptionalAction, default=S,
                   help=f"start the classifier's weights at zero, so every network starts at "
                   f"chance rather than at a loss of ~7 (default "
                   f"{'on' if base.zero_init_head else 'off'})")
    g.add_argument("--schedule", default=S, choices=SCHEDULES.names(),
                   help=f"{', '.join(SCHEDULES)} (default {t.schedule})")
    g.add_argument("--seed", type=int, default=S, help=f"seed for sampling and training "
                   f"(default {seed}; the held-out split is fixed)")
    g.check_used()


def add_run_arguments(p: argparse.ArgumentParser, *, command: str) -> None:
    """The run folder and the study's storage (:data:`GROUP_RUN`), shared by ``nas search``
    and ``gridsearch``."""
    r = p.add_argument_group(GROUP_RUN, "where the run is written and its study kept")
    r.add_argument("-o", "--out", default=S, help="run folder (default runs/<timestamp>)")
    r.add_argument("--resume", action="store_true", default=S,
                   help=f"continue the run in --out (or the newest {command} run under runs/)")
    r.add_argument("--storage", default=S, help="Optuna storage URL (default: a JournalStorage "
                   "file in the run folder), e.g. postgresql://user:password@host:5432/db")
    r.add_argument("--study-name", default=S, help="the study's name in --storage (default: the "
                   "run folder's name in a database, the stage's in a journal file)")
    r.add_argument("--join", action="store_true", default=S, help="add this driver to the "
                   "existing study --study-name in --storage (a database): it runs the study's "
                   "own settings and shares its budget; give it its own --out")
    r.add_argument("--heartbeat", type=int, default=S, help="seconds between a database "
                   "driver's heartbeats; a trial silent for 3 of them is a dead driver's and "
                   "runs again, once (default 10)")


def add_device_arguments(g: Any, train: Any) -> None:
    """``--device``, ``--precision`` and ``--compile``, the same in ``nas search``,
    ``gridsearch`` and ``nas train``; ``train`` is the TrainConfig whose defaults the help
    states."""
    from nas.train.config import COMPILE_MODES, PRECISION_DTYPES

    g.add_argument("--device", default=S, help="auto (a CUDA GPU if torch sees one, else the "
                   "CPU), cpu, cuda, cuda:N; may change on --resume (default auto)")
    g.add_argument("--precision", default=S, choices=PRECISION_DTYPES.names(),
                   help=f"bf16: autocast forward and loss to bfloat16 (default "
                   f"{train.precision})")
    g.add_argument("--compile", default=S, choices=COMPILE_MODES.names(),
                   help=f"torch.compile the training step; reduce-overhead records CUDA "
                   f"graphs on a GPU (default {train.compile}; may change on --resume)")


# ----------------------------------------------------------------------------- latency flags
# How latency is measured here (nas.latency.LatencySettings): the same flags wherever a command
# predicts or measures latency (nas search's latency target, gridsearch's family latency).
LATENCY_FLAGS: tuple[Flag, ...] = (
    Flag("latency_threads", "latency.threads"),
    Flag("latency_batch", "latency.batch"),
    Flag("latency_runtime", "latency.runtime"),
    Flag("latency_clock", "latency.clock"),
)


def add_latency_arguments(g: Any) -> None:
    """``--latency-threads``, ``--latency-batch``, ``--latency-runtime`` and
    ``--latency-clock`` (defaults from :class:`nas.latency.LatencySettings`, stated literally
    so ``--help`` needs no torch)."""
    from .latency_table import CLOCK_NAMES, RUNTIME_NAMES

    g.add_argument("--latency-threads", type=int, default=S, help="intra-op threads latency "
                   "is measured with (default 1)")
    g.add_argument("--latency-batch", type=int, default=S,
                   help="batch size latency is measured at (default 1)")
    g.add_argument("--latency-runtime", default=S, choices=RUNTIME_NAMES,
                   help="eager torch, or ONNX Runtime (needs efficientnas[onnx]) (default torch)")
    g.add_argument("--latency-clock", default=S, choices=CLOCK_NAMES,
                   help="wall: elapsed time; cpu: the timing thread's CPU time, which other "
                        "jobs on a shared machine do not inflate (needs --latency-threads 1) "
                        "(default wall)")


# ----------------------------------------------------------------------------- backend flags
BACKEND_KEYS = {"backend": "name", "address": "address", "workers": "workers",
                "cpus_per_trial": "cpus_per_trial", "gpus_per_trial": "gpus_per_trial",
                "max_retries": "max_retries", "trials_per_device": "trials_per_device"}


def add_backend_arguments(p: argparse.ArgumentParser, train: Any) -> None:
    """Where trials run and on what (``nas.backends``, :data:`GROUP_BACKEND`), shared by
    ``nas search`` and ``gridsearch``; ``train`` is the TrainConfig whose defaults the help
    states. The backend's own flags, ``--device`` and ``--compile`` may change on --resume:
    they change where trials run, never what they compute (``--precision`` and ``--threads``
    are the proxy's training settings, :data:`PROXY_FLAGS`, and stay)."""
    from nas.backends import BACKENDS, BackendConfig

    g = p.add_argument_group(GROUP_BACKEND, "where trials run, on what device, with how many "
                             "threads")
    add_device_arguments(g, train)
    g.add_argument("--threads", type=int, default=S,
                   help="torch threads per trial (default: all cores)")
    g.add_argument("--backend", default=S, choices=BACKENDS.names(),
                   help=f"{', '.join(BACKENDS)} (default {default_of(BackendConfig, 'name')}: "
                   f"in this process, one trial at a time; ray: Ray Tune trials on this machine "
                   f"or a Ray cluster)")
    g.add_argument("--address", default=S, help="Ray cluster to run on, e.g. 10.0.0.5:6379 "
                   "(default: $RAY_ADDRESS, else start Ray on this machine); needs --backend ray")
    g.add_argument("--workers", type=int, default=S, help="trials run at once (ray default: as "
                   "many as the cluster's CPUs allow at --cpus-per-trial each)")
    g.add_argument("--cpus-per-trial", type=float, default=S,
                   help=f"CPUs Ray reserves for each trial; torch threads follow them unless "
                   f"--threads is given (default {default_of(BackendConfig, 'cpus_per_trial'):g})")
    g.add_argument("--gpus-per-trial", type=float, default=S,
                   help=f"GPUs Ray reserves for each trial; with one the trial trains on it "
                   f"(default {default_of(BackendConfig, 'gpus_per_trial'):g})")
    g.add_argument("--trials-per-device", type=int, default=S, help=f"local backend: trials "
                   f"trained at once on the one --device, each in its own process; torch "
                   f"threads are shared out unless --threads is given (default "
                   f"{default_of(BackendConfig, 'trials_per_device')})")
    g.add_argument("--max-retries", type=int, default=S, help=f"times a trial whose worker died "
                   f"is started again before it counts as failed (default "
                   f"{default_of(BackendConfig, 'max_retries')})")


def backend_from_args(given: dict[str, Any], saved: Mapping[str, Any] | None = None) -> Any:
    """Pop the backend flags from ``given`` and apply them to ``saved`` (a resumed run's) or to
    the defaults."""
    from nas.backends import BackendConfig

    changes = {v: given.pop(k) for k, v in BACKEND_KEYS.items() if k in given}
    base = {**(saved or {}), **changes}
    if changes.get("name") == "local":  # moving a run back to local drops the Ray settings
        base = {k: v for k, v in base.items() if k in changes or k == "max_retries"}
    return BackendConfig.from_dict(base)


# ----------------------------------------------------------------------------- one run
@dataclass(frozen=True)
class RunRequest:
    """What a search command runs: the config, the run folder and where trials run."""

    config: Any
    out: str | None
    resume: bool
    storage: Any  # nas.engine.StorageConfig
    backend: Any  # nas.backends.BackendConfig


def request_from_args(args: argparse.Namespace, *, stage: str, flags: Sequence[Flag],
                      from_dict: Callable[[Mapping[str, Any]], Any],
                      fresh: Callable[[dict[str, Any], Any], Any],
                      check: Callable[[dict[str, Any]], None] | None = None) -> RunRequest:
    """The run a search command's flags ask for. A fresh run applies ``flags`` to
    ``fresh(given, base)``, where ``base`` is the config of a run folder's config.json given as
    ``--config`` (None without one; :mod:`nas.commands.config_file`); ``--resume`` reopens the
    run of ``stage`` (``--out``, else the newest), refuses a flag that would change it
    (:func:`check_resume`), and applies those that may."""
    from nas.engine import resume_dir
    from results.rundir import read_config

    from nas.engine import StorageConfig
    from nas.engine.study import joined_config

    given = given_flags(args)
    resume = bool(given.pop("resume", False))
    out = given.pop("out", None)
    storage = StorageConfig(url=given.pop("storage", None),
                            study_name=given.pop("study_name", None),
                            join=bool(given.pop("join", False)),
                            heartbeat=given.pop("heartbeat", StorageConfig.heartbeat))
    if check is not None:
        check(given)
    base_run = getattr(args, "_base", None)  # a run folder's config.json, as --config
    if base_run is not None and (resume or storage.join):
        flag = "--resume" if resume else "--join"
        raise ValueError(f"--config {args.config} is a run's config.json, which starts a new "
                         f"run like it; {flag} continues a run with its own settings: drop "
                         f"--config or {flag}")
    if storage.join:
        if resume:
            raise ValueError("--join and --resume exclude each other: --join adds a driver "
                             "with a new --out, --resume continues the run in --out")
        backend = backend_from_args(given)
        config = from_dict(joined_config(storage, stage=stage))
        check_resume(config, given, flags)  # a joined study keeps its settings
        config = apply_flags(config, given, [f for f in flags if f.on_resume])
    elif resume:
        run_dir = resume_dir(stage, out)
        saved = read_config(run_dir)
        backend = backend_from_args(given, saved.get("backend"))
        config = from_dict(saved)
        check_resume(config, given, flags)
        config = apply_flags(config, given, [f for f in flags if f.on_resume])
        out = str(run_dir)
    else:
        saved = None if base_run is None else _config_of(base_run, from_dict, args.config)
        backend = backend_from_args(given, None if base_run is None else base_run.get("backend"))
        base = fresh(given, saved)
        if saved is not None and "rungs" in given:  # --rungs replaces the run's ladder (it is
            base = dataclasses.replace(base, rungs=None)  # applied after --epochs)
        config = _scale_lr(apply_flags(base, given, flags), base.proxy.train, given)
    return RunRequest(config=config, out=out, resume=resume, storage=storage, backend=backend)


def _config_of(run: Mapping[str, Any], from_dict: Callable[[Mapping[str, Any]], Any],
               path: str) -> Any:
    """The config a run folder's config.json (given as --config) records; a value of the
    wrong kind is bad input, named with the file."""
    try:
        return from_dict(run)
    except (TypeError, KeyError, AttributeError) as e:
        what = f"no {e}" if isinstance(e, KeyError) else str(e).splitlines()[0]
        raise ValueError(f"--config {path}: not a config this command can run ({what}); pass "
                         f"a run folder's config.json as written, or a file of flags") from None


def _scale_lr(config: Any, base: Any, given: Mapping[str, Any]) -> Any:
    """``--batch-size B`` without ``--lr``: the default learning rate, set for the default
    batch, scaled linearly to B (Goyal et al.; :func:`nas.train.recipes.scaled_lr`)."""
    from nas.train.recipes import scaled_lr

    if "batch_size" not in given or "lr" in given:
        return config
    lr = scaled_lr(base.lr, batch_size=config.proxy.train.batch_size, base_batch=base.batch_size)
    return set_path(config, "proxy.train.lr", lr)


def exit_code(*, interrupted: bool, found: bool) -> int:
    """130 when interrupted, else 0 when the run has a result, else :data:`EXIT_NO_RESULT`."""
    if interrupted:
        return 130
    return 0 if found else EXIT_NO_RESULT


def latency_line(latency: Mapping[str, Any] | None) -> str | None:
    """B0's latency from summary.json's ``latency`` block, in one line: 'predicted 0.45 ms,
    measured 0.51 ms on this device (1 thread(s), batch 1, torch)'; None for a run that
    predicts no latency."""
    best = (latency or {}).get("best") or {}
    if best.get("predicted_ms") is None:
        return None
    d = latency["device"]
    measured = (f", measured {best['measured_ms']:.2f} ms" if best.get("measured_ms") is not None
                else "")
    return (f"predicted {best['predicted_ms']:.2f} ms{measured} on this device "
            f"({d['threads']} thread(s), batch {d['batch']}, {d['runtime']})")

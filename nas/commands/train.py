"""``nas train MODEL``: train a spec or zoo model to completion with a recipe (nas.train)."""
from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path
from typing import Any

from .config_file import RunConfig, add_config_argument, read_config_file

NAME = "train"
HELP = ("train a model to completion (MODEL: zoo name, spec .json or search run folder) with "
        "the paper's or a fast recipe; checkpoints every epoch, --resume continues")

log = logging.getLogger(__name__)

S = argparse.SUPPRESS  # absent flags stay absent, so --resume can tell what was given

# flag dest -> TrainJob field
FLAGS = ("dataset", "data_dir", "recipe", "epochs", "batch_size", "resolution", "train_samples",
         "val_samples", "ema_decay", "seed", "device", "threads", "keep", "precision", "compile")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Every flag in a named group; the device flags are the search commands' own."""
    from nas.train.config import TrainConfig

    from .common import GROUP_BACKEND, add_device_arguments

    g = p.add_argument_group("model & data", "what is trained, on what")
    a = g.add_argument
    a("model", metavar="MODEL", nargs="?", default=S,
      help="zoo name (see `nas list`), spec .json file, or search run folder with best.json "
      "(or the model of --config FILE)")
    a("--dataset", metavar="NAME", default=S, help="fashion-mnist, cifar10, folder:PATH, "
      "synthetic[:k=v,...] (default fashion-mnist)")
    a("--data-dir", metavar="DIR", default=S, help="folder holding the dataset files "
      "(fashion-mnist default: /usr/share/datasets/fashion-mnist)")
    a("--resolution", metavar="R", type=int, default=S, help="input size in pixels (default: "
      "the spec's, capped at the dataset's image size but at least 32)")
    a("--train-samples", metavar="N", type=int, default=S,
      help="training images drawn from the training split (default: all not held out)")
    a("--val-samples", metavar="N", type=int, default=S, help="validation images held out from "
      "the training split (default: a tenth, at most 5000)")
    g = p.add_argument_group("training recipe", "how it is trained")
    a = g.add_argument
    a("--recipe", metavar="NAME", default=S, help="fast (SGD, cosine, short CPU runs) or paper "
      "(TF RMSProp, 0.97 every 2.4 epochs, EMA; see nas.train.recipes) (default fast)")
    a("--epochs", metavar="E", type=int, default=S,
      help="epochs to train (default: the recipe's, fast 5, paper 350); with --resume, a new "
      "length: the schedule is re-planned to end at E (not below the epochs already done)")
    a("--batch-size", metavar="B", type=int, default=S, help="images per step (default: fast "
      "64, paper 128); the learning rate scales linearly with it")
    a("--ema-decay", metavar="D", type=float, default=S, help="decay of the weight average "
      "(default: the recipe's, fast 0.999, paper 0.9999; 0 turns it off)")
    a("--seed", metavar="S", type=int, default=S,
      help="seed for the split, init, shuffle and dropout (default 0)")
    a("--no-channels-last", dest="channels_last", action="store_false", default=S,
      help="train in NCHW instead of channels_last")
    g = p.add_argument_group(GROUP_BACKEND, "where it trains")
    add_device_arguments(g, TrainConfig())
    g.add_argument("--threads", metavar="T", type=int, default=S, help="torch CPU threads "
                   "(default: all cores; 1 is much faster when other jobs share the CPU)")
    g = p.add_argument_group("run folder", "where the run is written, and its checkpoints")
    a = g.add_argument
    a("--out", metavar="DIR", default=S, help="run folder (default runs/train-<timestamp>)")
    a("--resume", action="store_true", default=S,
      help="continue the run in --out from its newest checkpoint (with --epochs E: extend it)")
    a("--keep", metavar="K", type=int, default=S, help="checkpoints kept, newest first "
      "(default 3)")
    add_config_argument(p, help="read flags from a YAML or JSON file (keys: the flags' names, "
                        "e.g. epochs: 5, model: efficientnet-b0), or a nas train run folder's "
                        "config.json to train the same job again with a new --out; flags given "
                        "here win over the file")


def _template() -> dict[str, Any]:
    from nas.train import TrainJob

    return {"stage": "train", "job": TrainJob(model="").to_dict()}


# A nas train run's config.json as --config: its job is the settings as given; the rest is
# what they resolved to (the recipe's TrainConfig, the EMA decay, the device, the spec's hash)
RUN_CONFIG = RunConfig(stage="train", command="nas train", template=_template,
                       outputs=frozenset({"stage", "train", "recipe", "ema_decay", "arch_hash",
                                          "device", "replanned_from"}),
                       flags_of=lambda run: run.get("job") or {})


def make_job(given: dict[str, Any], base: Any) -> Any:
    """``base`` (a TrainJob) with the flags the user gave applied."""
    keys = set(FLAGS) | {"channels_last", "model"}
    return dataclasses.replace(base, **{k: v for k, v in given.items() if k in keys})


def run(args: argparse.Namespace) -> int:
    from nas.train import TrainJob, load_job, train

    args = read_config_file(args, RUN_CONFIG)
    given = {k: v for k, v in vars(args).items() if not k.startswith("_") and
             k not in ("command", "verbose", "config")}
    resume = bool(given.pop("resume", False))
    out = given.pop("out", None)
    if resume:
        if out is None:
            raise ValueError("--resume needs --out DIR naming the nas train run to continue")
        job = make_job(given, load_job(out))
    else:
        if "model" not in given:
            raise ValueError("MODEL is required: nas train MODEL (a zoo name, a spec .json file "
                             "or a search run folder), or model: in the --config file")
        job = make_job(given, TrainJob(model=given["model"]))
        if out is None:
            import datetime as _dt

            out = str(Path("runs") / _dt.datetime.now().strftime("train-%Y%m%d-%H%M%S"))
    result = train(job, out=out, resume=resume)
    t = result.test
    print(f"run folder: {result.run_dir}", file=sys.stdout)
    print(f"epochs: {len(result.epochs)}  last val top-1: "
          f"{result.epochs[-1]['val_top1']:.4f}" if result.epochs else "epochs: 0", file=sys.stdout)
    print(f"test top-1: {t['top1']:.4f}  top-5: {t['top5']:.4f}", file=sys.stdout)
    if "top1_ema" in t:
        print(f"test top-1 (EMA weights): {t['top1_ema']:.4f}  top-5: {t['top5_ema']:.4f}",
              file=sys.stdout)
    if result.checkpoint is not None:
        print(f"checkpoint: {result.checkpoint}  ({cam_hint(result)})", file=sys.stdout)
    return 0


def cam_hint(result: Any) -> str:
    """A ``nas cam`` command that works on the run's checkpoint, or why there is none: at a
    resolution whose last feature map is 1x1 (32 px through a stride-32 network) ``nas cam``
    refuses, so it is not suggested."""
    from nas.cam import flat_maps

    why = flat_maps(result.spec, result.spec.resolution)
    if why is not None:
        return f"no nas cam: the model {why}"
    images = 8 if result.val_images is None else max(1, min(8, result.val_images))
    return f"nas cam {result.checkpoint} --images {images}"

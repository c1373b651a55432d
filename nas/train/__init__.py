"""Training: the one loop both search stages and ``nas train`` use, and ``nas train`` itself.

- :mod:`.loop`: :class:`TrainConfig`, the optimizer and schedule registries, :func:`fit`,
  :func:`evaluate`, :func:`lr_at` (stage 1's proxy evaluator and stage 2's grid points train
  with it too);
- :mod:`.recipes`: the ``paper`` and ``fast`` recipes (EfficientNet Sec. 5.2);
- :mod:`.ema`: the weight average the official code keeps;
- :mod:`.job`: :class:`TrainJob` (what the user asked for), resume checks, :func:`prepare`;
- :mod:`.checkpoint`: one checkpoint per epoch, saved atomically and loaded checked;
- :mod:`.run`: :func:`train`, the run folder (config.json, metrics.csv, results.json).
"""
from __future__ import annotations

from .checkpoint import (CHECKPOINT_DIR, Checkpoint, check_classes, check_same_spec,
                         list_checkpoints, load_checkpoint, model_from_checkpoint,
                         save_checkpoint)
from .ema import ModelEma, ema_decay_at
from .job import (RESUME_MUTABLE, Setup, TrainJob, check_resume_epochs, check_resume_job,
                  load_job, pick_device, prepare)
from .loop import (OPTIMIZERS, SCHEDULES, EpochResult, FitResult, RMSpropTF, TrainConfig,
                   evaluate, fit, lr_at, set_threads)
from .recipes import RECIPES, Recipe, make_recipe, param_groups, scaled_lr
from .run import METRIC_COLUMNS, TrainResult, train

__all__ = [
    # the loop
    "TrainConfig", "OPTIMIZERS", "SCHEDULES", "RMSpropTF", "EpochResult", "FitResult",
    "fit", "evaluate", "lr_at", "set_threads",
    # recipes and the weight average
    "RECIPES", "Recipe", "make_recipe", "scaled_lr", "param_groups", "ModelEma", "ema_decay_at",
    # nas train
    "TrainJob", "Setup", "RESUME_MUTABLE", "prepare", "pick_device", "load_job",
    "check_resume_job", "check_resume_epochs", "Checkpoint", "CHECKPOINT_DIR",
    "list_checkpoints", "load_checkpoint", "save_checkpoint", "check_same_spec",
    "check_classes", "model_from_checkpoint", "METRIC_COLUMNS", "TrainResult", "train",
]

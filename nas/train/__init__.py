"""Training: the one loop both search stages and ``nas train`` use, and ``nas train`` itself.

- :mod:`.config`: :class:`TrainConfig`, the optimizer and schedule registries (light);
- :mod:`.loop`: :func:`fit`, :func:`evaluate` (stage 1's proxy evaluator and stage 2's grid
  points train with it too);
- :mod:`.recipes`: the ``paper`` and ``fast`` recipes (EfficientNet Sec. 5.2);
- :mod:`.ema`: the weight average the official code keeps;
- :mod:`.job`: :class:`TrainJob` (what the user asked for), resume checks, :func:`prepare`;
- :mod:`.checkpoint`: one checkpoint per epoch, saved atomically and loaded checked;
- :mod:`.run`: :func:`train`, the run folder (config.json, metrics.csv, results.json).
"""
from __future__ import annotations

from space.lazy import exports, lazy_exports

# name -> the module that defines it, imported on first use (so --help needs no torch)
__getattr__, __dir__, __all__ = lazy_exports(__name__, globals(), {
    **exports("checkpoint", ("CHECKPOINT_DIR", "Checkpoint", "check_classes", "check_same_spec",
                             "list_checkpoints", "load_checkpoint", "model_from_checkpoint",
                             "save_checkpoint")),
    **exports("ema", ("ModelEma", "ema_decay_at")),
    **exports("job", ("RESUME_MUTABLE", "Setup", "TrainJob", "check_resume_epochs",
                      "check_resume_job", "load_job", "pick_device", "prepare")),
    **exports("config", ("TrainConfig", "OPTIMIZERS", "SCHEDULES", "lr_at")),
    **exports("loop", ("EpochResult", "FitResult", "evaluate", "fit", "set_threads")),
    **exports("optim", ("RMSpropTF",)),
    **exports("recipes", ("RECIPES", "Recipe", "make_recipe", "param_groups", "scaled_lr")),
    **exports("run", ("METRIC_COLUMNS", "TrainResult", "train")),
})

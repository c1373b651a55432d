"""Weight sharing for stage 1: one supernet holds every member of a search space (issue 24).

Once-for-All (Cai et al., ICLR 2020) and BigNAS (Yu et al., ECCV 2020): train one network whose
sub-networks are the candidates, then score each candidate with the weights it inherits, after
recalibrating its batch-norm statistics. The pieces:

- :mod:`.elastic`, :mod:`.blocks`: elastic layers and blocks (kernel, expansion, width, SE and
  skip switches), one weight family per ConvOp;
- :mod:`.network`: :class:`SuperNet` (``set_active(spec)`` runs a member), :func:`extract` (a
  member's weights as ``space.build(spec)``'s state dict), :func:`check_supported`;
- :mod:`.calibrate`: :func:`recalibrate_bn` and :func:`score_candidate`;
- :mod:`.train`: :func:`train_supernet` (sandwich rule, in-place distillation, resumable
  checkpoints), :func:`supernet_settings` and :func:`fingerprint` (for config.json), and
  :func:`load_trained_supernet` (what a scoring worker loads once).

How ``nas search --evaluator supernet`` is meant to sit on it: before anything is written,
:func:`check_supported` (the space) and :func:`check_training` (the settings) raise a one-line
ValueError; phase 1 calls :func:`train_supernet` with the run folder's checkpoint path (a killed
run resumes mid-training) and stores :func:`supernet_settings` and its :func:`fingerprint` in
config.json; phase 2 loads the checkpoint once per worker (:func:`load_trained_supernet`),
draws fixed :func:`calibration_batches` (and, for a cheaper search, a :func:`validation_subset`),
and scores each trial's spec with :func:`score_candidate`.
"""
from __future__ import annotations

from .blocks import ELASTIC_BLOCKS, BlockSizes, family
from .calibrate import calibration_batches, recalibrate_bn, score_candidate, validation_subset
from .network import (SUPPORTED_DIMENSIONS, SuperNet, UnsupportedSpaceError, check_supported,
                      extract, space_fingerprint)
from .train import (DISTILL_LOSSES, SANDWICH_RULES, StepResult, SupernetTrainResult, check_training, fingerprint,
                    load_supernet_checkpoint, load_trained_supernet, sandwich, supernet_settings,
                    supernet_steps, train_supernet)

__all__ = [
    "ELASTIC_BLOCKS", "BlockSizes", "family",
    "SUPPORTED_DIMENSIONS", "SuperNet", "UnsupportedSpaceError", "check_supported", "extract",
    "space_fingerprint",
    "calibration_batches", "recalibrate_bn", "score_candidate", "validation_subset",
    "DISTILL_LOSSES", "SANDWICH_RULES", "StepResult", "SupernetTrainResult", "check_training", "fingerprint",
    "load_supernet_checkpoint", "load_trained_supernet", "sandwich", "supernet_settings",
    "supernet_steps", "train_supernet",
]

"""``nas search``'s weight-sharing evaluator flags (issue 24): ``--evaluator`` and the supernet's
settings, in one argument group, as :class:`~nas.commands.common.Flag` rows landing in
:class:`nas.stage1.supernet_config.SupernetConfig`. None may change on ``--resume``: each changes
what the run computes."""
from __future__ import annotations

import argparse

from .common import S, Flag, default_of

__all__ = ["SUPERNET_FLAGS", "add_supernet_arguments"]

# --evaluator first: the supernet's settings are checked against it (SearchConfig)
SUPERNET_FLAGS: tuple[Flag, ...] = (
    Flag("evaluator", "evaluator"),
    Flag("supernet_epochs", "supernet.epochs"),
    Flag("supernet_random", "supernet.n_random"),
    Flag("calib_images", "supernet.calib_images"),
    Flag("score_val_samples", "supernet.score_val_samples"),
)


def add_supernet_arguments(p: argparse.ArgumentParser) -> None:
    """The group "supernet (weight-sharing evaluator)"; defaults from the config dataclasses,
    so ``--help`` needs no torch."""
    from nas.stage1.config import SearchConfig
    from nas.stage1.supernet_config import EVALUATORS, SupernetConfig

    def d(name: str) -> object:
        return default_of(SupernetConfig, name)

    g = p.add_argument_group("supernet (weight-sharing evaluator)")
    g.add_argument("--evaluator", default=S, choices=EVALUATORS,
                   help=f"how search trials are scored: proxy trains each candidate from "
                   f"scratch; supernet trains one weight-sharing supernet in the run folder "
                   f"(resumable), scores each candidate with the weights it inherits (batch "
                   f"norm recalibrated, validation accuracy), then trains the finalists "
                   f"stand-alone (default {default_of(SearchConfig, 'evaluator')})")
    g.add_argument("--supernet-epochs", type=int, default=S, metavar="E",
                   help=f"supernet training epochs over the proxy's training images, with "
                   f"the proxy's recipe (default {d('epochs')})")
    g.add_argument("--supernet-random", type=int, default=S, metavar="N",
                   help=f"random members per step besides the largest and smallest (the "
                   f"sandwich rule; default {d('n_random')})")
    g.add_argument("--calib-images", type=int, default=S, metavar="N",
                   help=f"training images each candidate's batch norm is recalibrated on "
                   f"(the same for every candidate; default {d('calib_images')})")
    g.add_argument("--score-val-samples", type=int, default=S, metavar="N",
                   help="validation images a candidate is scored on (default: all of "
                   "--val-samples; fewer score faster)")

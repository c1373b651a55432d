"""``nas cam CHECKPOINT``: class activation maps of a trained network (nas.cam)."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

NAME = "cam"
HELP = ("render class activation maps (last conv features x classifier weights) of a nas train "
        "checkpoint for N validation images, as an HTML or PNG grid")

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", metavar="CHECKPOINT",
                   help="a checkpoint .pt file or a nas train run folder (its newest checkpoint)")
    p.add_argument("--images", type=int, default=8, metavar="N",
                   help="validation images to show (default 8)")
    p.add_argument("-o", "--out", default=None, metavar="FILE",
                   help="cam.html (self-contained Plotly page) or cam.png (default: cam.html in "
                        "the checkpoint's run folder)")
    p.add_argument("--output", dest="out", help=argparse.SUPPRESS)  # 0.1's name for --out
    p.add_argument("--dataset", metavar="NAME", default=None,
                   help="dataset to draw images from (default: the one it was trained on; "
                        "another must have as many classes)")
    p.add_argument("--data-dir", metavar="DIR", default=None,
                   help="folder holding the dataset files")
    p.add_argument("--weights", default="ema", choices=("ema", "raw"),
                   help="the averaged (EMA, default; raw if the run kept none) or raw weights")
    p.add_argument("--per-row", type=int, default=4, metavar="K",
                   help="images per row of the grid (default 4)")


def run(args: argparse.Namespace) -> int:
    from nas.cam import checkpoint_cam, write_cam

    if args.per_row < 1:
        raise ValueError(f"`--per-row >= 1` must hold, but got {args.per_row}; pass e.g. "
                         f"--per-row 4")
    info = checkpoint_cam(args.checkpoint, images=args.images, dataset=args.dataset,
                          data_dir=args.data_dir, weights=args.weights)
    if args.out is None:
        src = Path(args.checkpoint)
        run_dir = src if src.is_dir() else (
            src.parent.parent if src.parent.name == "checkpoints" else src.parent)
        output = run_dir / "cam.html"
    else:
        output = Path(args.out)
    title = f"Class activation maps: {Path(args.checkpoint)} ({args.weights} weights)"
    path = write_cam(info, output, per_row=args.per_row, title=title)
    hits = int((info.predicted == info.labels).sum()) if info.labels is not None else 0
    print(f"wrote {path}: {len(info.predicted)} images, {hits} predicted correctly",
          file=sys.stdout)
    return 0

"""``nas show MODEL``: one network's stages with params and MACs (analytic, optionally fvcore).

MODEL is a zoo name, a spec .json file or a run folder with best.json (space.resolve). The
numbers are computed first (:func:`describe`, also what ``--json`` prints), then drawn.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

NAME = "show"
HELP = "show a model's stages, params and MACs (MODEL: zoo name, spec .json or run folder)"

log = logging.getLogger(__name__)

# Columns of the stage table: (key in space.counting.stage_table's rows, header).
STAGE_COLUMNS = (("stage", "stage"), ("block", "block"), ("repeats", "repeats"),
                 ("kernel", "kernel"), ("stride", "stride"), ("expand", "expand"), ("se", "se"),
                 ("skip", "skip"), ("out_channels", "out ch"), ("out_size", "out size"),
                 ("params", "params"), ("macs", "MACs"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL",
                        help="zoo name (see `nas list`), spec .json file, or run folder")
    add_task_arguments(parser)
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object (counts, stages, arch_hash, spec)")
    parser.add_argument("--fvcore", action="store_true",
                        help="also trace the built network with fvcore (slower) and compare")


def add_task_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--resolution", type=int, metavar="R",
                        help="input size in pixels (default: the model's own)")
    parser.add_argument("--num-classes", type=int, metavar="K", help="classifier outputs")
    parser.add_argument("--in-channels", type=int, metavar="C", help="input channels")


def load_model(args: argparse.Namespace) -> Any:
    """The spec MODEL names, re-targeted at --resolution/--num-classes/--in-channels."""
    from space.resolve import resolve_spec

    spec = resolve_spec(args.model)
    return spec.with_task(in_channels=args.in_channels, num_classes=args.num_classes,
                          resolution=args.resolution)


def describe(spec: Any, *, fvcore: bool = False) -> dict[str, Any]:
    """Everything ``nas show`` reports, as plain JSON-able data."""
    from space.counting import count_analytic, count_fvcore, stage_table

    counts = count_analytic(spec)
    info: dict[str, Any] = {
        "name": spec.name, "params": counts.params, "macs": counts.macs,
        "resolution": spec.resolution, "in_channels": spec.in_channels,
        "num_classes": spec.num_classes, "arch_hash": spec.arch_hash(),
        "stages": stage_table(spec), "spec": spec.to_dict(),
    }
    if fvcore:
        fv = count_fvcore(spec)
        info["fvcore"] = {"params": fv.params, "macs": fv.macs,
                          "uncounted_ops": dict(sorted(fv.uncounted_ops.items()))}
        if (fv.params, fv.macs) != (counts.params, counts.macs):
            log.warning("fvcore (%d params, %d MACs) disagrees with the analytic count "
                        "(%d params, %d MACs): please report this spec", fv.params, fv.macs,
                        counts.params, counts.macs)
    return info


def console() -> Any:
    """A rich console; wide when not writing to a terminal so that tables never wrap."""
    from rich.console import Console

    return Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def _cell(key: str, value: Any) -> str:
    if key == "params":
        return f"{value:,}"
    if key == "macs":
        return f"{value / 1e6:,.2f}M"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def draw(info: dict[str, Any]) -> None:
    from rich import box
    from rich.table import Table

    r = info["resolution"]
    table = Table(title=f"{info['name']} at {r}x{r}, {info['in_channels']} input channels, "
                        f"{info['num_classes']} classes (arch {info['arch_hash']})",
                  box=box.SIMPLE)
    for key, header in STAGE_COLUMNS:
        table.add_column(header, justify="left" if key in ("stage", "block", "skip") else "right")
    for row in info["stages"]:
        table.add_row(*(_cell(key, row[key]) for key, _ in STAGE_COLUMNS))
    out = console()
    out.print(table)
    out.print(f"total: {info['params']:,} params, {info['macs']:,} MACs "
              f"({info['macs'] / 1e9:.3f} GMACs) at {r}x{r}")
    if "fvcore" in info:
        fv = info["fvcore"]
        same = fv["macs"] == info["macs"] and fv["params"] == info["params"]
        out.print(f"fvcore: {fv['params']:,} params, {fv['macs']:,} MACs "
                  f"({'equal to' if same else 'DIFFERENT from'} the analytic count)")
        if fv["uncounted_ops"]:
            ops = ", ".join(f"{op} x{n}" for op, n in fv["uncounted_ops"].items())
            out.print(f"fvcore did not count (taken as zero): {ops}")


def run(args: argparse.Namespace) -> int:
    info = describe(load_model(args), fvcore=args.fvcore)
    if args.json:
        print(json.dumps(info))
    else:
        draw(info)
    return 0

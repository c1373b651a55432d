"""``nas list``: the zoo models with params and MACs at their native resolution.

MACs are the analytic count, which equals fvcore's (space.counting) and takes microseconds.
``--json`` prints the same rows as one JSON list of ``{"name", "params", "macs", "resolution"}``.
"""
from __future__ import annotations

import argparse
import json
from typing import NamedTuple

NAME = "list"
HELP = "list the zoo models with params and GMACs at their native resolution"


class ZooRow(NamedTuple):
    name: str
    params: int
    macs: int
    resolution: int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true",
                        help='print one JSON list of {"name", "params", "macs", "resolution"}')


def zoo_rows() -> list[ZooRow]:
    from space.counting import count_analytic
    from space.zoo import get_model, list_models

    rows = []
    for name in list_models():
        spec = get_model(name)
        counts = count_analytic(spec)
        rows.append(ZooRow(name, counts.params, counts.macs, spec.resolution))
    return rows


def run(args: argparse.Namespace) -> int:
    rows = zoo_rows()
    if args.json:
        print(json.dumps([row._asdict() for row in rows]))
    else:
        draw(rows)
    return 0


def draw(rows: list[ZooRow]) -> None:
    from rich import box
    from rich.table import Table

    from nas.commands.show import console

    table = Table(title="zoo models (MACs at native resolution)", box=box.SIMPLE)
    table.add_column("model")
    table.add_column("params", justify="right")
    table.add_column("GMACs", justify="right")
    table.add_column("resolution", justify="right")
    for row in rows:
        table.add_row(row.name, f"{row.params:,}", f"{row.macs / 1e9:.2f}", str(row.resolution))
    console().print(table)

"""The page's tables: the top trials, and an architecture's stage table (B0's, or the best's)."""
from __future__ import annotations

from typing import Any

from ..html import fmt_macs, fmt_num, fmt_params, table_html
from .choices import choice_label
from .data import Stage1Info
from .latency import fmt_ms


STAGE_COLUMNS = (("stage", "stage"), ("block", "block"), ("repeats", "repeats"),
                 ("kernel", "kernel"), ("stride", "stride"), ("expand", "expand"), ("se", "se"),
                 ("skip", "skip"), ("out_channels", "out ch"), ("out_size", "out size"),
                 ("params", "params"), ("macs", "MACs"))


def stage_table_html(rows: list[dict[str, Any]], *, table_id: str) -> str:
    cells = [{**r, "params": f"{int(r['params']):,}", "macs": fmt_macs(r["macs"]),
              "expand": choice_label("expand", r["expand"]) if r["expand"] != "" else "",
              "se": choice_label("se", r["se"]) if r["se"] != "" else ""} for r in rows]
    return table_html(STAGE_COLUMNS, cells, table_id=table_id,
                      numeric=("repeats", "kernel", "stride", "out_channels", "out_size",
                               "params", "macs"))


def top_html(info: Stage1Info) -> str:
    rows = [{"number": t["number"], "reward": fmt_num(t["reward"]),
             "accuracy": fmt_num(t["accuracy"]), "macs": fmt_macs(t["macs"]),
             "latency_ms": fmt_ms(t["latency_ms"]), "params": fmt_params(t["params"]),
             "arch": t["arch"]} for t in info.top]
    latency = (("latency_ms", "latency (predicted)"),) if info.latency is not None else ()
    return table_html((("number", "trial"), ("reward", "reward"), ("accuracy", "accuracy"),
                       ("macs", "MACs"), *latency, ("params", "params"),
                       ("arch", "architecture")),
                      rows, numeric=("number", "reward", "accuracy", "macs", "latency_ms",
                                     "params"), table_id="top-trials")

"""The scaled family's table, beside the paper's B0..B7 (family.csv)."""
from __future__ import annotations

import math
from typing import Any

from ..html import finite, fmt_macs, fmt_num, fmt_params, table_html


FAMILY_COLUMNS = (("phi", "phi"), ("name", "name"), ("depth", "depth"), ("width", "width"),
                  ("resolution", "resolution"), ("params", "params"), ("macs", "MACs"),
                  ("macs_ratio", "MACs / B0"), ("ratio_vs_nominal", "/ 2^phi"),
                  ("latency_ms", "latency (ms)"), ("latency_iqr_ms", "IQR (ms)"),
                  ("rounding", "rounding"), ("paper_name", "paper"),
                  ("paper_params", "paper params"),
                  ("paper_macs", "paper FLOPS"), ("paper_depth", "paper depth"),
                  ("paper_width", "paper width"), ("paper_resolution", "paper resolution"))

LATENCY_COLUMNS = ("latency_ms", "latency_iqr_ms")


def family_columns(rows: list[dict[str, Any]]) -> tuple[tuple[str, str], ...]:
    """The family table's columns: the latency ones only where a member was timed."""
    timed = any(finite(r.get("latency_ms")) for r in rows)
    return tuple(c for c in FAMILY_COLUMNS if timed or c[0] not in LATENCY_COLUMNS)


def family_html(rows: list[dict[str, Any]]) -> str:
    def cell(k: str, v: Any) -> str:
        if k in ("params", "paper_params"):
            return fmt_params(v)
        if k in ("macs", "paper_macs"):
            return fmt_macs(v)
        if k in LATENCY_COLUMNS:
            return fmt_num(v, ".2f")
        if isinstance(v, float):
            return f"{v:g}" if math.isfinite(v) else "-"
        return "-" if v is None or v != v else str(v)

    columns = family_columns(rows)
    cells = [{k: cell(k, r.get(k)) for k, _ in columns} for r in rows]
    return table_html(columns, cells, table_id="family",
                      numeric=[k for k, _ in columns
                               if k not in ("name", "paper_name", "rounding")])


def family_note(family: list[dict[str, Any]] | None, missing: str) -> str:
    if not family:
        return f"family.csv {missing}."
    if not any(isinstance(r.get("paper_name"), str) for r in family):
        return "The paper's columns are filled when the base is EfficientNet-B0."
    return ""

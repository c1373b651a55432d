"""Atomic file writes, the one primitive every run-folder writer uses.

A reader (a dashboard, ``nas results``, a second driver) must never see half a file, so every
file the project writes goes to a hidden temporary beside its destination and is renamed over
it: on POSIX a rename within one folder is atomic.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Callable


def atomic_write(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp)`` on a temporary path beside ``path``, then rename it over ``path``.
    The temporary's name holds the pid, so concurrent writers never share one."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        tmp.replace(p)
    finally:
        if tmp.exists():
            tmp.unlink()
    return p


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def json_safe(obj: Any) -> Any:
    """JSON-safe: NaN/inf become null, tuples lists, keys strings."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def write_json(obj: Any, path: str | Path) -> Path:
    """``obj`` as indented JSON (NaN as null), written atomically."""
    return atomic_write_text(path, json.dumps(json_safe(obj), indent=2) + "\n")

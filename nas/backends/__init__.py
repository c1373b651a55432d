"""Backends: where a study's trials run (:mod:`nas.backends.base`)."""
from __future__ import annotations

from .base import BACKENDS, BackendConfig, open_backend

__all__ = ["BACKENDS", "BackendConfig", "open_backend"]

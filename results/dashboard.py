"""Dashboards: one self-contained HTML page per run folder, readable offline and rewritable
while the search runs (both searches write it when they finish; ``nas dashboard RUN_DIR`` at any
time, ``--watch`` to keep it fresh).

The stage's page comes from :data:`PAGES` (:mod:`results.stage1`,
:mod:`results.stage2`: each computes a NamedTuple of plain data, then draws it);
:mod:`results.html` turns it into one HTML file with plotly.js inlined.
"""
from __future__ import annotations

import datetime as _dt
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

from .html import Page, render, write_page
from .stage1 import Stage1Info, stage1_info, stage1_page
from .stage2 import Stage2Info, stage2_info, stage2_page
from .store import Run, load_run

log = logging.getLogger(__name__)

__all__ = ["DASHBOARD", "PAGES", "NoResultsYet", "Stage1Info", "Stage2Info", "stage1_info",
           "stage2_info", "watch", "write_dashboard"]

DASHBOARD = "dashboard.html"

PAGES: dict[int, Callable[[Run], Page]] = {1: stage1_page, 2: stage2_page}


def run_facts(run: Run) -> list[tuple[str, str]]:
    states = ", ".join(f"{n} {s}" for s, n in sorted(run.states().items()))
    source = "the Optuna study" if run.source == "study" else run.source
    live = run.storage[len("journal:"):] if run.storage.startswith("journal:") else run.storage
    return [("run", str(run.run_dir)), ("trials", states), ("read from", source),
            ("written", _dt.datetime.now().isoformat(timespec="seconds")),
            ("live study view", f"optuna-dashboard {live}")]


def banner(run: Run) -> str:
    running = run.states().get("RUNNING", 0)
    return (f"Search in progress: {running} trial(s) running. Run `nas dashboard "
            f"{run.run_dir}` again (or pass --watch) for newer results." if running else "")


class NoResultsYet(ValueError):
    """The run folder holds no complete trial (yet)."""


def check_has_results(run: Run) -> None:
    """A dashboard needs at least one complete trial: say clearly what the folder holds."""
    if not len(run.trials):
        raise NoResultsYet(f"run folder {str(run.run_dir)!r} has no trials yet (stage "
                           f"{run.stage}, read from {run.source}); run `nas dashboard` again "
                           f"once a trial has finished")
    if not len(run.completed()):
        states = ", ".join(f"{n} {s}" for s, n in sorted(run.states().items()))
        raise NoResultsYet(f"run folder {str(run.run_dir)!r} has no complete trial yet "
                           f"({states}); run `nas dashboard` again once a trial has finished")


def write_dashboard(run_dir: str | Path, out: str | Path | None = None, *,
                    refresh_s: float | None = None) -> Path:
    """Write the run's page to ``out`` (default ``RUN_DIR/dashboard.html``), atomically.

    ``refresh_s`` makes the page reload itself every so many seconds (for ``--watch``).
    """
    run = load_run(run_dir)
    check_has_results(run)
    page = PAGES[run.stage](run)
    page = replace(page, facts=[*run_facts(run), *page.facts], banner=banner(run),
                   refresh_s=refresh_s)
    path = Path(out) if out is not None else Path(run_dir) / DASHBOARD
    write_page(render(page), path)
    log.debug("dashboard written: %s", path)
    return path


def watch(run_dir: str | Path, out: str | Path | None = None, *, every_s: float,
          updates: int | None = None, sleep: Callable[[float], None] = time.sleep) -> Path:
    """Rewrite the page every ``every_s`` seconds (it reloads itself as often) until Ctrl-C
    or ``updates`` pages were written; the last page no longer reloads. A run with no complete
    trial yet is waited for.

    Ctrl-C is taken only while waiting: one that lands mid-write (mid-import even) propagates,
    and the last complete page stays as it was (pages are replaced atomically)."""
    path = Path(out) if out is not None else Path(run_dir) / DASHBOARD
    written = 0
    while updates is None or written < updates:
        try:
            write_dashboard(run_dir, out, refresh_s=every_s)
            written += 1
        except NoResultsYet as e:
            log.info("%s; waiting", e)
        if updates is not None and written >= updates:
            break
        try:
            sleep(every_s)
        except KeyboardInterrupt:
            break
    if not written:
        check_has_results(load_run(run_dir))  # says why nothing was written
    write_dashboard(run_dir, out)
    return path

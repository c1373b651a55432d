"""The pages in a real headless Chromium with no network, and the study in optuna-dashboard.

Chromium comes from Debian (``make browser`` installs it); the tests skip, saying so, where it
is missing. Each page is loaded from its file with every host name unresolvable, so a page that
needed the network would not draw. The page's own render report (written once every
``Plotly.newPlot`` promise resolved, into a JSON data block that is never shown: the tests check
that no part of it is visible text) says how many points Plotly drew; a screenshot of each page
is kept under the test's tmp folder and its path printed.
"""
from __future__ import annotations

import html
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from results.dashboard import stage1_info, write_dashboard
from results.html import REPORT_ID
from results.store import load_run

pytestmark = pytest.mark.slow

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def chromium() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no headless Chromium on PATH: run `make browser` (as root it runs "
                "`apt-get install -y chromium`), then run the tests again")


def run_bounded(cmd: list[str], *, timeout: float) -> str:
    """Run a browser and return its stdout; its whole process group is ended on timeout."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"{cmd[0]} did not finish within {timeout} s")
    return out


def headless(page: Path, profile: Path, *extra: str) -> list[str]:
    return [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--no-first-run", f"--user-data-dir={profile}",
            "--host-resolver-rules=MAP * ~NOTFOUND",  # offline: no host name resolves
            "--virtual-time-budget=15000", *extra, page.resolve().as_uri()]


def rendered_dom(page: Path, tmp_path: Path) -> str:
    """The page's DOM once Chromium has run its scripts (``--dump-dom``)."""
    return run_bounded(headless(page, tmp_path / "profile", "--dump-dom"), timeout=120)


def render_report(dom: str) -> dict:
    """The page's render report: the JSON in its ``<script type="application/json">`` block."""
    found = re.search(rf'<script(?P<attrs>[^>]*\bid="{REPORT_ID}"[^>]*)>(?P<body>.*?)</script>',
                      dom, re.DOTALL)
    assert found, "the page has no render report"
    assert 'type="application/json"' in found["attrs"], found["attrs"]
    assert 'data-state="rendered"' in found["attrs"], f"Plotly did not render: {found[0][:300]}"
    return json.loads(found["body"])


def visible_text(dom: str) -> str:
    """What a person can read on the page: the DOM without head, scripts, styles and elements
    marked hidden, tags stripped."""
    text = re.sub(r"<head\b.*?</head>", " ", dom, flags=re.DOTALL | re.IGNORECASE)
    text = re.sub(r"<(script|style|template)\b.*?</\1>", " ", text,
                  flags=re.DOTALL | re.IGNORECASE)
    text = re.sub(r'<(\w+)\b[^>]*\s(hidden|style="[^"]*display:\s*none)[^>]*>.*?</\1>', " ",
                  text, flags=re.DOTALL | re.IGNORECASE)
    return html.unescape(re.sub(r"<[^>]+>", " ", text))


def check_no_report_on_screen(dom: str) -> None:
    text = visible_text(dom)
    assert '"fig-' not in text and "svg_points" not in text, \
        "the render report is visible on the page: " + text[text.find("fig-") - 20:][:200]


def screenshot(page: Path, tmp_path: Path) -> Path:
    shot = tmp_path / f"{page.parent.name}-dashboard.png"
    run_bounded(headless(page, tmp_path / "profile-shot", "--window-size=1300,2400",
                         f"--screenshot={shot}"), timeout=120)
    assert shot.is_file() and shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")
    return shot


def test_stage1_page_renders_offline_with_every_point(stage1_dir, stage1_points, tmp_path,
                                                      record_property):
    page = write_dashboard(stage1_dir)
    dom = rendered_dom(page, tmp_path)
    check_no_report_on_screen(dom)
    report = render_report(dom)
    search = report["fig-search"]["traces"]
    info = stage1_info(load_run(stage1_dir))
    assert search["trials"]["svg_points"] == len(stage1_points)
    assert search["Pareto front"]["svg_points"] == len(info.front) == 4
    assert search["pruned"]["svg_points"] == 1
    progress = report["fig-progress"]["traces"]
    assert progress["best by trial"]["svg_points"] == len(stage1_points)
    assert report["fig-choices"]["traces"]["op"]["type"] == "heatmap"
    record_property("screenshot", str(screenshot(page, tmp_path)))


def test_a_latency_run_page_renders_offline(latency_run, tmp_path, record_property):
    page = write_dashboard(latency_run)
    dom = rendered_dom(page, tmp_path)
    check_no_report_on_screen(dom)
    report = render_report(dom)
    info = stage1_info(load_run(latency_run))
    drawn = {k: v["svg_points"] for k, v in report["fig-latency"]["traces"].items()}
    assert drawn["trials"] == len(info.points.number)
    assert drawn["Pareto front"] == len(info.front)
    assert (drawn["B0 measured"], drawn["finalists measured"], drawn["predicted (table)"]) == \
        (1, len(info.latency.timed) - 1, len(info.latency.timed))
    assert report["fig-search"]["traces"]["trials"]["svg_points"] == len(info.points.number)
    assert "B0 latency" in visible_text(dom)
    record_property("screenshot", str(screenshot(page, tmp_path)))


def test_stage2_page_renders_offline(stage2_dir, tmp_path, record_property):
    page = write_dashboard(stage2_dir)
    dom = rendered_dom(page, tmp_path)
    check_no_report_on_screen(dom)
    report = render_report(dom)
    assert report["fig-grid"]["traces"]["grid points"]["data_points"] == 5
    assert report["fig-ratio"]["traces"]["measured MACs / base MACs"]["svg_points"] == 4
    compare = report["fig-compare"]["traces"]
    assert {k: v["svg_points"] for k, v in compare.items()} == \
        {"depth": 1, "width": 1, "resolution": 1, "compound": 1}
    record_property("screenshot", str(screenshot(page, tmp_path)))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_study_journal_opens_in_optuna_dashboard(stage1_dir, stage1_points):
    pytest.importorskip("optuna_dashboard", reason="optuna-dashboard is a dev extra: "
                        "pip install -e '.[dev]'")
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", "from optuna_dashboard._cli import main; main()",
         str(stage1_dir / "study.journal"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies",
                                            timeout=5) as r:
                    studies = json.load(r)["study_summaries"]
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("optuna-dashboard did not serve the journal")
                time.sleep(0.5)
        assert [s["study_name"] for s in studies] == ["stage1"]
        sid = studies[0]["study_id"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies/{sid}",
                                    timeout=10) as r:
            trials = json.load(r)["trials"]
        states = [t["state"] for t in trials]
        assert states.count("Complete") == len(stage1_points) and "Running" in states
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)

"""The HTML report rendered for real in headless Chromium: screenshot, DOM and console.

Skips when no Chromium is installed, unless W2S_REQUIRE_BROWSER=1 (CI), where it fails instead.
Set W2S_SCREENSHOT_DIR to keep the screenshot.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from report.fake_runs import write_results

from w2sgen.report import build_report

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--enable-logging=stderr", "--v=0"]


def chromium() -> str:
    for name in (os.environ.get("W2S_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)  # type: ignore[return-value]
    msg = "headless Chromium is not installed (apt-get install chromium; make test does it as root)"
    if os.environ.get("W2S_REQUIRE_BROWSER") == "1":
        pytest.fail(msg + " and W2S_REQUIRE_BROWSER=1")
    pytest.skip(msg)


def browse(exe: str, page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([exe, *FLAGS, f"--user-data-dir={profile}", *args, page.resolve().as_uri()],
                          capture_output=True, text=True, timeout=90)


def console_lines(stderr: str) -> list[str]:
    """The page's console output (Chromium logs each message as INFO:CONSOLE ... with --v=0)."""
    return [ln for ln in stderr.splitlines() if ":CONSOLE" in ln or "Uncaught" in ln]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("browser") / "out"
    write_results(out, seeds=(0, 1), tasks=("toy",))
    return build_report(out, n_boot=200).path


def test_console_check_catches_errors(tmp_path):
    exe = chromium()
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><p>x</p><script>nope();</script></body></html>")
    r = browse(exe, bad, tmp_path / "profile", "--dump-dom")
    assert any("Uncaught ReferenceError" in ln for ln in console_lines(r.stderr)), r.stderr[-2000:]


def test_report_renders_with_plots_tables_and_no_console_errors(report, tmp_path):
    exe = chromium()
    r = browse(exe, report, tmp_path / "profile", "--dump-dom")
    assert r.returncode == 0, r.stderr[-2000:]
    dom = r.stdout
    assert console_lines(r.stderr) == []
    body = re.search(r"<body[^>]*>", dom).group(0)
    assert 'data-ready="1"' in body  # the inline script ran to its end
    assert 'data-images="5"' in body  # all five plots decoded
    assert dom.count("<table") == 6 and dom.count("<tr") > 25
    assert "Summary: PGR per task" in dom

    shot = tmp_path / "report.png"
    r = browse(exe, report, tmp_path / "profile", "--window-size=1280,2400", f"--screenshot={shot}")
    assert r.returncode == 0 and shot.is_file(), r.stderr[-2000:]
    assert console_lines(r.stderr) == []
    import matplotlib.image as mpimg

    img = mpimg.imread(shot)[..., :3]
    assert img.shape[:2] == (2400, 1280)
    ink = (img.mean(axis=2) < 0.9).mean()  # share of non-white pixels: text, tables and plots
    assert 0.03 < ink < 0.6 and np.unique(img.reshape(-1, 3), axis=0).shape[0] > 50
    if os.environ.get("W2S_SCREENSHOT_DIR"):
        Path(os.environ["W2S_SCREENSHOT_DIR"]).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(os.environ["W2S_SCREENSHOT_DIR"]) / "report.png")


def test_wide_tables_scroll_inside_the_page_instead_of_being_cut(report, tmp_path):
    """In a narrow window the summary table is wider than the page: it scrolls inside its box, its
    last column can be scrolled into view, and the page itself does not get wider than the window."""
    exe = chromium()
    r = browse(exe, report, tmp_path / "profile", "--window-size=800,900", "--dump-dom")
    assert r.returncode == 0, r.stderr[-2000:]
    body = re.search(r"<body[^>]*>", r.stdout).group(0)
    assert 'data-ready="1"' in body
    scrolling = int(re.search(r'data-scrolling="(\d+)"', body).group(1))
    assert scrolling >= 1  # the summary table (15 columns) does not fit in 800 px
    assert 'data-cut="0"' in body and 'data-overflow="0"' in body

"""Headless Chromium (Debian's `chromium` package): screenshot, DOM and console of a page."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from tests.conftest import require_tool

# Nothing may leave the machine: no updates, sync, QUIC or background fetches.
FLAGS = (
    "--headless",
    "--no-sandbox",  # runs as root in CI
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
)


@dataclass(frozen=True)
class Rendered:
    screenshot: Path
    dom: str
    log: str

    def console_problems(self) -> list[str]:
        """Console messages and script errors: a page without script must have none."""
        return [
            line
            for line in self.log.splitlines()
            if ":CONSOLE" in line or "Uncaught" in line or "Failed to load resource" in line
        ]


def _chromium(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            require_tool("chromium"),
            *FLAGS,
            f"--user-data-dir={profile}",
            *args,
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def render(page: Path, work: Path, width: int = 1280, height: int = 2000) -> Rendered:
    work.mkdir(parents=True, exist_ok=True)
    screenshot = work / "screenshot.png"
    shot = _chromium(
        page, work / "profile", f"--screenshot={screenshot}", f"--window-size={width},{height}"
    )
    assert screenshot.is_file(), shot.stderr[-3000:]
    dom = _chromium(page, work / "profile", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-3000:]
    return Rendered(screenshot=screenshot, dom=dom.stdout, log=shot.stderr + dom.stderr)


def pixel_std(png: Path) -> float:
    """Standard deviation of the grey levels: ~0 for a blank (single-colour) page."""
    with Image.open(png) as image:
        return float(np.asarray(image.convert("L"), dtype=np.float64).std())

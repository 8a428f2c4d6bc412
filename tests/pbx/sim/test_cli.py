"""``puente sim`` as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def sim(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "puente", "sim", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ.copy(),
    )


def test_sim_starts_and_stops() -> None:
    out = sim(
        "--ami-port", "0", "--duration-s", "0.5", "--agents", "2", "--wrapup-s", "5",
        "--no-silence-frames",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "simulated Asterisk: AMI on 127.0.0.1:" in out.stdout


def test_bad_model_file_is_named(tmp_path: Path) -> None:
    model = tmp_path / "model.yaml"
    model.write_text("outcomes: {human: 0.5, martian: 0.5}\n")
    out = sim("--ami-port", "0", "--duration-s", "0.5", "--model", str(model))
    assert out.returncode != 0
    assert "model.yaml" in out.stderr
    assert "martian" in out.stderr
    assert "Traceback" not in out.stderr

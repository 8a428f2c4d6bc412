"""``./dev``'s virtualenv stamp: what is installed covers what is needed, whichever came first.

Before, the stamp named one requirement set: ``./dev demo`` after ``./dev test`` reinstalled
the runtime set (and the next ``./dev test`` the development one), back and forth. The script
runs here on a copy of the project with a stand-in ``.venv/bin/python`` that logs each pip run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "dev", tmp_path / "dev")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(ROOT / "requirements", tmp_path / "requirements")
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text('#!/bin/sh\necho "$*" >>"$(dirname "$0")/../pip.log"\n')
    python.chmod(0o755)
    return tmp_path


def _venv(project: Path, kind: str) -> list[str]:
    """``./dev venv KIND``; the lock files pip was asked to install."""
    log = project / ".venv" / "pip.log"
    log.unlink(missing_ok=True)
    out = subprocess.run(
        ["bash", str(project / "dev"), "venv", kind],
        capture_output=True, text=True, timeout=60, env={**os.environ},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    runs = log.read_text().splitlines() if log.exists() else []
    return [r.split(" -r ")[1] for r in runs if " -r " in r]


def test_demo_after_test_installs_nothing_and_test_after_demo_only_once(project: Path) -> None:
    assert _venv(project, "dev") == ["requirements/dev-lock.txt"]  # a new venv: installed
    assert _venv(project, "run") == []  # ./dev demo after ./dev test: covered
    assert _venv(project, "dev") == []
    assert _venv(project, "run") == []


def test_the_runtime_set_first_then_the_development_tools_once(project: Path) -> None:
    assert _venv(project, "run") == ["requirements/lock.txt"]
    assert _venv(project, "dev") == ["requirements/dev-lock.txt"]  # pytest, ruff... missing
    assert _venv(project, "run") == []
    assert _venv(project, "dev") == []
    stamp = (project / ".venv" / ".puente-stamp").read_text().splitlines()
    assert stamp[0].startswith("project ")
    assert any(line.startswith("pytest==") for line in stamp)
    assert any(line.startswith("aiohttp==") for line in stamp)


def test_a_changed_lock_or_project_installs_again(project: Path) -> None:
    assert _venv(project, "dev") == ["requirements/dev-lock.txt"]
    lock = project / "requirements" / "lock.txt"
    lines = lock.read_text().splitlines()
    bumped = [f"{line}.post99" if line.startswith("aiohttp==") else line for line in lines]
    lock.write_text("\n".join(bumped) + "\n")
    assert _venv(project, "run") == ["requirements/lock.txt"]  # the new aiohttp
    stamp = (project / ".venv" / ".puente-stamp").read_text()
    # The new aiohttp only: the replaced version is no longer claimed.
    assert [line for line in stamp.splitlines() if line.startswith("aiohttp==")] == [
        next(line for line in bumped if line.startswith("aiohttp=="))
    ]
    assert _venv(project, "dev") == []  # the dev tools are still there, aiohttp is the new one
    with (project / "pyproject.toml").open("a") as f:
        f.write("\n# changed\n")
    assert _venv(project, "run") == ["requirements/lock.txt"]
    assert _venv(project, "dev") == ["requirements/dev-lock.txt"]
    assert _venv(project, "run") == []

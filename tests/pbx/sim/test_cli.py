"""``puente sim`` as a user runs it."""

from __future__ import annotations

import os
import socket
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


def test_bad_arguments_are_named_not_a_traceback(tmp_path: Path) -> None:
    model = tmp_path / "m.yaml"
    model.write_text("seed: 2026-02-30\n", encoding="utf-8")  # a date YAML cannot build
    dialplan = tmp_path / "extensions.conf"
    dialplan.write_bytes(b"[ctx]\nexten => s,1,NoOp(\xe9)\n")  # not UTF-8
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = str(taken.getsockname()[1])
    with taken:
        for args, named in [
            (["--ami-port", "70000"], "--ami-port 70000"),  # an OverflowError traceback
            (["--ami-port", port], f"cannot listen on 127.0.0.1:{port}"),  # an OSError one
            (["--host", "no-such-host.invalid"], "cannot listen on no-such-host.invalid"),
            (["--trunk-capacity", "-5"], "--trunk-capacity -5"),  # accepted before
            (["--agents", "-3"], "--agents -3"),
            (["--wrapup-s", "-10"], "--wrapup-s -10"),
            (["--audiosocket", "nonsense"], "--audiosocket 'nonsense'"),
            (["--agi", "127.0.0.1:x"], "--agi '127.0.0.1:x'"),
            (["--agi", "127.0.0.1:\u00b2"], "--agi '127.0.0.1:\u00b2'"),  # isdigit(), not int()
            (["--agi", "127.0.0.1:" + "0" * 4300 + "1"], "--agi '127.0.0.1:000"),  # int() raised
            (["--model", str(model)], "m.yaml: "),
            (["--dialplan", str(dialplan)], "extensions.conf: not UTF-8"),
            (["--duration-s", "nan"], "--duration-s nan"),
        ]:
            out = sim("--ami-port", "0", "--duration-s", "0.3", *args)
            assert out.returncode == 2, (args, out.stderr)
            assert named in out.stderr, (args, out.stderr)
            assert "Traceback" not in out.stderr, args

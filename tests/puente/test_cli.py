"""The ``puente`` console script, run as a user runs it (a subprocess)."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import re
import select
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from pbx.agi import encode_environment
from pbx.audiosocket import HANGUP_FRAME, encode_uuid_frame

PUENTE = [sys.executable, "-m", "puente"]


def run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PUENTE, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_help_lists_the_commands() -> None:
    out = run("--help")
    assert out.returncode == 0, out.stderr
    for command in ("run", "demo", "db", "bench"):
        assert re.search(rf"^\s+{command}\s", out.stdout, re.M), command


def test_bench_lists_the_benchmarks() -> None:
    out = run("bench")
    assert out.returncode == 0, out.stderr
    assert {"ami", "agi", "audiosocket"} <= set(json.loads(out.stdout)["benchmarks"])
    bad = run("bench", "nope")
    assert bad.returncode != 0
    assert "unknown benchmark 'nope'" in bad.stderr


def test_bad_setting_is_named_and_stops_the_start(database_url: str) -> None:
    out = run(
        "demo",
        "--duration-s",
        "1",
        env={"PUENTE_DATABASE_URL": database_url, "PUENTE_AGI_PORT": "forty"},
    )
    assert out.returncode != 0
    assert "PUENTE_AGI_PORT" in out.stderr
    assert "Traceback" not in out.stderr


def test_ami_enabled_without_a_secret_is_refused(database_url: str) -> None:
    out = run(
        "run",
        env={"PUENTE_DATABASE_URL": database_url, "PUENTE_AMI_ENABLED": "true"},
    )
    assert out.returncode != 0
    assert "PUENTE_AMI_SECRET" in out.stderr


async def test_demo_serves_the_protocols_and_stops_cleanly(database_url: str) -> None:
    env = {
        **os.environ,
        "PUENTE_DATABASE_URL": database_url,
        "PUENTE_AGI_PORT": "0",
        "PUENTE_AUDIOSOCKET_PORT": "0",
        "PUENTE_WEB_PORT": "0",
        "PUENTE_NODE_SHUTDOWN_GRACE_S": "5",
    }
    proc = await asyncio.create_subprocess_exec(
        *PUENTE,
        "demo",
        "--duration-s",
        "20",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    ports: dict[str, int] = {}
    assert proc.stderr is not None
    try:
        async with asyncio.timeout(30):
            while len(ports) < 3:
                line = (await proc.stderr.readline()).decode()
                assert line, "demo ended before its servers started"
                m = re.search(
                    r"(fastagi|audiosocket|pbx-sim) started: (?:AMI )?127\.0\.0\.1:(\d+)", line
                )
                if m:
                    ports[m.group(1)] = int(m.group(2))
        # The demo's PBX, the simulator, answers AMI with the real banner.
        r, w = await asyncio.open_connection("127.0.0.1", ports["pbx-sim"])
        assert await asyncio.wait_for(r.readline(), 5) == b"Asterisk Call Manager/11.0.0\r\n"
        w.close()
        # FastAGI: a flow that does not exist yet is closed at once, the dialplan goes on.
        r, w = await asyncio.open_connection("127.0.0.1", ports["fastagi"])
        w.write(encode_environment({"agi_network_script": "pay", "agi_callerid": "5550100"}))
        assert await asyncio.wait_for(r.read(), 5) == b""
        w.close()
        # AudioSocket: with no detector yet the call goes straight back (0x00), never held.
        r, w = await asyncio.open_connection("127.0.0.1", ports["audiosocket"])
        w.write(encode_uuid_frame(uuid.uuid4()))
        data = await asyncio.wait_for(r.read(), 5)
        assert data.endswith(HANGUP_FRAME)
        w.close()
    finally:
        if proc.returncode is None:
            proc.terminate()  # SIGTERM: the ordered drain
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert b"stopped" in err
    # Once started, what start-up made is kept out of the collector's scans (puente.heap).
    assert re.search(rb"heap settled: \d+ start-up objects frozen", err)


async def test_a_second_ctrl_c_stops_the_demo_at_once(database_url: str) -> None:
    # Ctrl-C drains: live calls get node.shutdown_grace_s (20 s) to end. An operator who
    # presses it again is not kept waiting (before: the second one did nothing).
    env = {
        **os.environ,
        "PUENTE_DATABASE_URL": database_url,
        "PUENTE_AGI_PORT": "0",
        "PUENTE_AUDIOSOCKET_PORT": "0",
        "PUENTE_WEB_PORT": "0",
        "PUENTE_NODE_SHUTDOWN_GRACE_S": "20",
    }
    proc = await asyncio.create_subprocess_exec(
        *PUENTE, "demo", "--duration-s", "120", env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    err = b""
    try:
        async with asyncio.timeout(60):
            while b"dialer started" not in err:
                line = await proc.stderr.readline()
                assert line, err.decode()[-2000:]
                err += line
        await asyncio.sleep(6)  # calls ringing and talking
        proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(10):
            while b"shutting down" not in err:
                err += await proc.stderr.readline()
        assert b"Ctrl-C again" in err
        await asyncio.sleep(1)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, rest = await asyncio.wait_for(proc.communicate(), 30)
        took_s = time.monotonic() - t0
        err += rest
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert took_s < 8, err.decode()[-2000:]
    assert proc.returncode == 0, err.decode()[-2000:]
    assert b"Traceback" not in err
    assert b"stop asked again; cancelling the rest" in err
    assert err.rstrip().endswith(b"stopped")


def test_db_status(database_url: str) -> None:
    out = run("db", "status", env={"PUENTE_DATABASE_URL": database_url})
    assert out.returncode == 0, out.stderr
    assert re.search(r"^0001\s+core\s+applied", out.stdout, re.M)


@pytest.mark.parametrize(
    ("command", "bad"),
    [("run", "nan"), ("run", "inf"), ("run", "-5"), ("demo", "nan"), ("demo", "0")],
)
def test_duration_must_be_finite_and_positive(command: str, bad: str) -> None:
    out = run(command, f"--duration-s={bad}")
    assert out.returncode == 2, out.stderr
    assert "--duration-s" in out.stderr
    assert "Traceback" not in out.stderr


def _service_env(database_url: str, **extra: str) -> dict[str, str]:
    return {
        "PUENTE_DATABASE_URL": database_url,
        "PUENTE_AMI_ENABLED": "false",
        "PUENTE_AGI_PORT": "0",
        "PUENTE_AUDIOSOCKET_PORT": "0",
        "PUENTE_WEB_PORT": "0",
        "PUENTE_NODE_SHUTDOWN_GRACE_S": "2",
        **extra,
    }


@pytest.mark.parametrize(
    ("component", "section"), [("web", "web"), ("fastagi", "agi"), ("audiosocket", "audiosocket")]
)
def test_a_port_in_use_is_named_without_a_traceback(
    database_url: str, component: str, section: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        variable = f"PUENTE_{section.upper()}_PORT"
        out = run(
            "run", "--duration-s", "20",
            env=_service_env(database_url, **{variable: str(port)}),
        )  # fmt: skip
    assert out.returncode == 2, out.stderr[-2000:]
    assert f"{component}: cannot start on 127.0.0.1:{port}" in out.stderr
    assert "in use" in out.stderr
    # ... and which setting moves it (before: only the address).
    assert f"set {variable}, or {section}.port in the config file" in out.stderr
    assert "Traceback" not in out.stderr


def test_the_log_level_option_is_obeyed_by_run_and_demo(database_url: str) -> None:
    # `puente --log-level WARNING run`: before, node.log_level (INFO by default) won over it.
    env = _service_env(database_url)
    quiet = run("--log-level", "WARNING", "run", "--duration-s", "1", env=env)
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert " INFO " not in quiet.stderr, quiet.stderr[-2000:]
    # Without the option, node.log_level (here from the environment) decides.
    env = _service_env(database_url, PUENTE_NODE_LOG_LEVEL="WARNING")
    assert " INFO " not in run("run", "--duration-s", "1", env=env).stderr
    loud = run("--log-level", "INFO", "run", "--duration-s", "1", env=env)
    assert "puente.app: stopped" in loud.stderr


def test_a_bad_host_is_named_without_a_traceback(database_url: str) -> None:
    out = run(
        "run", "--duration-s", "20",
        env=_service_env(database_url, PUENTE_AGI_HOST="no-such-host.invalid"),
    )  # fmt: skip
    assert out.returncode == 2, out.stderr[-2000:]
    assert "fastagi: cannot start on no-such-host.invalid:0" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize(
    "url",
    [
        "notaurl",
        "postgresql://bob:Sup3rS3cret@127.0.0.1:1/x",
        "postgresql://bob:Sup3rS3cret@127.0.0.1:99999/x",
    ],
)
def test_database_connection_failures_are_one_line(url: str) -> None:
    for argv in (("db", "status"), ("db", "migrate"), ("users", "token", "bob"),
                 ("reports", "daily", "--date", "2026-01-01")):  # fmt: skip
        out = run(*argv, env={"PUENTE_DATABASE_URL": url})
        assert out.returncode == 2, (argv, out.stderr[-2000:])
        assert "puente: cannot connect to the database" in out.stderr, argv
        assert "(the server PUENTE_DATABASE_URL names)" in out.stderr, argv  # which setting
        assert "Traceback" not in out.stderr, argv
        assert "Sup3rS3cret" not in out.stderr, argv


def test_a_log_level_that_is_not_one_is_refused_by_name() -> None:
    r = run("--log-level", "bogus", "compliance", "packs")
    assert r.returncode == 2
    assert "--log-level: invalid choice: 'BOGUS'" in r.stderr
    assert run("--log-level", "debug", "compliance", "packs").returncode == 0


def test_a_reader_that_goes_away_gets_no_traceback() -> None:
    # `puente compliance packs | head -1`: the pipe closes under the writer.
    r = subprocess.run(
        f"{sys.executable} -m puente compliance packs | (exec 0<&-; true)",
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
        executable="/bin/bash",
    )
    assert "Traceback" not in r.stderr, r.stderr
    assert "BrokenPipeError" not in r.stderr, r.stderr


def test_on_a_terminal_the_demo_summary_stays_on_one_screen(
    database_url: str, tmp_path: Path
) -> None:
    # Before: on a terminal the summary scrolled away, block after block, between log lines.
    # Now it is redrawn in place, and the log goes to .puente/demo.log (beside PUENTE_PG_DIR).
    env = {
        **os.environ,
        "PUENTE_DATABASE_URL": database_url,
        "PUENTE_PG_DIR": str(tmp_path / "pg"),
        "PUENTE_AGI_PORT": "0",
        "PUENTE_AUDIOSOCKET_PORT": "0",
        "PUENTE_WEB_PORT": "0",
        "PUENTE_NODE_SHUTDOWN_GRACE_S": "2",
    }
    pid, fd = pty.fork()
    if pid == 0:  # the child: the demo on a terminal of its own
        os.execve(sys.executable, [*PUENTE, "demo", "--duration-s", "12"], env)
    screen = bytearray()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if select.select([fd], [], [], 1)[0]:
            try:
                data = os.read(fd, 65536)
            except OSError:  # (EIO: the child closed the terminal)
                data = b""
            if not data:
                break
            screen += data
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    text = screen.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, text[-3000:]
    summaries = text.split("puente up ")
    assert len(summaries) >= 3, text[-3000:]  # redrawn at least twice
    first = text.index("puente up ")
    assert " INFO " not in text[first:].replace("INFO puente.app: stopped", ""), text[-3000:]
    assert "\x1b[J" in text[first:]  # back up over the summary, and drawn again
    assert f"log          {tmp_path / 'demo.log'}" in text
    log = (tmp_path / "demo.log").read_text()
    assert "shutting down" in log
    assert "Traceback" not in text + log


def test_a_file_name_that_is_not_utf8_is_shown_not_a_traceback(tmp_path: Path) -> None:
    # Printed to a stdout whose errors are strict (any UTF-8 locale but C.UTF-8), a name with
    # a byte that is not UTF-8 raised UnicodeEncodeError.
    bad = os.fsencode(tmp_path) + b"/m\xe9x.yaml"
    with open(bad, "w", encoding="utf-8") as f:
        f.write("pack: [unclosed\n")
    out = subprocess.run(
        [*PUENTE, "compliance", "validate", os.fsdecode(bad)],
        capture_output=True,
        timeout=60,
        env={**os.environ, "PYTHONIOENCODING": "utf-8:strict"},
    )
    text = (out.stdout + out.stderr).decode("utf-8", "replace")
    assert "Traceback" not in text, text
    assert out.returncode == 1, text
    assert "m\\udce9x.yaml" in text or "m\\xe9x.yaml" in text, text

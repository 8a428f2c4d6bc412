"""The ``puente`` console script, run as a user runs it (a subprocess)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import uuid

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


def test_a_port_in_use_is_named_without_a_traceback(database_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = run(
            "run", "--duration-s", "20",
            env=_service_env(database_url, PUENTE_WEB_PORT=str(port)),
        )  # fmt: skip
    assert out.returncode == 2, out.stderr[-2000:]
    assert f"web: cannot start on 127.0.0.1:{port}" in out.stderr
    assert "in use" in out.stderr
    assert "Traceback" not in out.stderr


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

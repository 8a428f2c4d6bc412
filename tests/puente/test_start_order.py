"""Every listening socket is bound before anything that dials starts: a port in use stops the
start before a call goes out, and a health probe is answered while the dialer starts."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from typing import Any

import pytest

from puente.wiring import build_components, load_component_settings

LISTENERS = ("audiosocket", "fastagi", "web")
DIALING = ("pbx-sim", "ami", "amd", "dialer")


@pytest.mark.parametrize("demo", [False, True])
def test_listeners_come_first_and_close_last(demo: bool) -> None:
    sections: dict[str, Any] = {"ami": {"secret": "x"}}
    settings = load_component_settings(sections, demo=demo)
    names = [c.name for c in build_components(settings, pool=None, demo=demo, node="n1")]
    assert set(LISTENERS) <= set(names)
    assert {"ami", "dialer"} <= set(names)
    last_listener = max(names.index(n) for n in LISTENERS)
    assert all(names.index(n) > last_listener for n in DIALING if n in names), names
    # The drain runs in reverse start order: the dialer's live calls end while the agents'
    # desktops (web) are still served; the AMD verdicts still have their AMI client.
    assert names.index("dialer") == len(names) - 1
    assert names.index("amd") == names.index("ami") + 1


def test_a_web_port_in_use_stops_the_demo_before_anything_dials(database_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {
            **os.environ,
            "PUENTE_DATABASE_URL": database_url,
            "PUENTE_AGI_PORT": "0",
            "PUENTE_AUDIOSOCKET_PORT": "0",
            "PUENTE_WEB_PORT": str(port),
            "PUENTE_NODE_SHUTDOWN_GRACE_S": "2",
        }
        out = subprocess.run(
            [sys.executable, "-m", "puente", "demo", "--duration-s", "30"],
            capture_output=True, text=True, timeout=60, env=env,
        )  # fmt: skip
    assert out.returncode == 2, out.stderr[-2000:]
    assert f"web: cannot start on 127.0.0.1:{port}" in out.stderr
    assert "set PUENTE_WEB_PORT, or web.port in the config file" in out.stderr
    # Nothing that dials was started (before: the dialer ran, then the web server failed).
    for name in DIALING:
        assert f"{name} started" not in out.stderr, out.stderr[-2000:]
    assert "running campaign" not in out.stderr
    assert "Traceback" not in out.stderr

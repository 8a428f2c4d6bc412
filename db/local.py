"""An embedded PostgreSQL server in a project-local directory, for the demo and the tests.

Production points ``PUENTE_DATABASE_URL`` at an existing server; without it, Puente runs its own
cluster from the system's PostgreSQL binaries:

- binaries: the newest ``/usr/lib/postgresql/*/bin``, else ``pg_config --bindir``; when neither
  exists and we are root on Debian, the ``postgresql`` package is installed;
- data: ``<project>/.puente/pg`` (override with ``PUENTE_PG_DIR``), listening on 127.0.0.1 and a
  free port only, with a random password (scram-sha-256) kept in a 0600 file beside the data;
- as root, the server runs as an unprivileged user (``postgres``, else ``nobody``) through
  ``runuser``/``setpriv``. We never change the permissions of directories we do not own: when
  that user cannot reach the project directory (a checkout under a 0700 home), the cluster
  lives in a private directory under the system temp dir instead, and we say so.

The server is a child of nobody: :meth:`LocalPostgres.stop` stops it (``pg_ctl stop -m fast``).
A server left running by a killed process is found through its ``postmaster.pid`` and reused.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from db._exceptions import LocalServerError

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = PROJECT_ROOT / ".puente" / "pg"
SUPERUSER = "puente"


@dataclass(frozen=True)
class LocalServerInfo:
    """How to reach a running embedded server."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    base_dir: Path

    def url(self, database: str = "postgres") -> str:
        return (
            f"postgresql://{quote(self.user)}:{quote(self.password, safe='')}"
            f"@{self.host}:{self.port}/{quote(database)}"
        )


def find_bindir() -> Path | None:
    """The newest PostgreSQL server binaries on this machine, or None."""
    candidates = []
    for p in Path("/usr/lib/postgresql").glob("*/bin"):
        if (p / "initdb").exists() and (p / "postgres").exists():
            m = re.match(r"(\d+)", p.parent.name)
            candidates.append((int(m.group(1)) if m else 0, p))
    if candidates:
        return max(candidates)[1]
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        p = Path(out.stdout.strip())
        if (p / "initdb").exists() and (p / "postgres").exists():
            return p
    for name in ("initdb", "postgres", "pg_ctl"):
        if not shutil.which(name):
            return None
    return Path(shutil.which("initdb")).resolve().parent  # type: ignore[arg-type]


def _install_postgresql() -> None:
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise LocalServerError(
            "PostgreSQL server binaries not found (looked in /usr/lib/postgresql/*/bin and "
            "pg_config --bindir). Install Debian's 'postgresql' package, or set "
            "PUENTE_DATABASE_URL to an existing server."
        )
    log.warning("PostgreSQL binaries not found: installing Debian's postgresql package")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "postgresql"],
    ):
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class _RunAs:
    """Runs server commands as an unprivileged user when we are root."""

    def __init__(self) -> None:
        self.user: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            for name in ("postgres", "nobody"):
                with contextlib.suppress(KeyError):
                    self.user = pwd.getpwnam(name)
                    break
            if self.user is None:
                raise LocalServerError("running as root, but neither 'postgres' nor 'nobody' exist")

    def argv(self, argv: list[str]) -> list[str]:
        if self.user is None:
            return argv
        if shutil.which("runuser"):
            return ["runuser", "-u", self.user.pw_name, "--", *argv]
        if shutil.which("setpriv"):
            return [
                "setpriv",
                f"--reuid={self.user.pw_uid}",
                f"--regid={self.user.pw_gid}",
                "--init-groups",
                *argv,
            ]
        raise LocalServerError("running as root, but neither runuser nor setpriv is available")

    def can_write(self, path: Path) -> bool:
        """Whether the server user can create files in ``path`` (which must exist)."""
        if self.user is None:
            return os.access(path, os.W_OK | os.X_OK)
        r = subprocess.run(self.argv(["test", "-w", str(path), "-a", "-x", str(path)]), check=False)
        return r.returncode == 0

    def chown(self, path: Path) -> None:
        if self.user is not None:
            os.chown(path, self.user.pw_uid, self.user.pw_gid)

    def run(self, argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(argv), capture_output=True, text=True, **kw)  # type: ignore[call-overload]


class LocalPostgres:
    """Initialise (once), start, and stop a PostgreSQL cluster in a project-local directory."""

    def __init__(self, base_dir: Path | None = None, host: str = "127.0.0.1") -> None:
        # Absolute: the server runs in its own working directory (a relative socket dir breaks).
        wanted = Path(base_dir or os.environ.get("PUENTE_PG_DIR") or DEFAULT_DIR)
        self.requested_dir = wanted.absolute()
        self.host = host
        self.runas = _RunAs()
        self.base_dir = self._choose_dir(self.requested_dir)
        self.data_dir = self.base_dir / "data"
        self.sock_dir = self.base_dir / "run"
        self.password_file = self.base_dir / "password"
        self.port_file = self.base_dir / "port"
        self.logfile = self.base_dir / "server.log"
        self.bindir: Path | None = None
        self.started_by_us = False

    # -- directory choice -----------------------------------------------------------------
    def _choose_dir(self, wanted: Path) -> Path:
        if self.runas.user is None:
            return wanted
        # Create what we can without touching permissions above `wanted`.
        try:
            wanted.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise LocalServerError(f"cannot create {wanted}: {e}") from e
        self.runas.chown(wanted)
        if self.runas.can_write(wanted):
            return wanted
        digest = hashlib.sha256(str(wanted).encode()).hexdigest()[:12]
        private = Path(tempfile.gettempdir()) / f"puente-pg-{digest}"
        log.warning(
            "user %r cannot reach %s (a parent directory is private); the embedded "
            "PostgreSQL cluster lives in %s instead",
            self.runas.user.pw_name,  # type: ignore[union-attr]
            wanted,
            private,
        )
        private.mkdir(mode=0o700, exist_ok=True)
        self.runas.chown(private)
        return private

    # -- lifecycle ------------------------------------------------------------------------
    def _bin(self, name: str) -> str:
        assert self.bindir is not None
        return str(self.bindir / name)

    def ensure_binaries(self) -> Path:
        self.bindir = find_bindir()
        if self.bindir is None:
            _install_postgresql()
            self.bindir = find_bindir()
        if self.bindir is None:
            raise LocalServerError("PostgreSQL binaries still not found after installing")
        return self.bindir

    def _initdb(self) -> None:
        password = secrets.token_urlsafe(24)
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.runas.chown(self.base_dir)
        # initdb reads the password from a file the server user can read; removed at once.
        fd, pwfile = tempfile.mkstemp(dir=self.base_dir, prefix=".pw-")
        try:
            os.write(fd, password.encode())
            os.close(fd)
            self.runas.chown(Path(pwfile))
            r = self.runas.run(
                [
                    self._bin("initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    SUPERUSER,
                    f"--pwfile={pwfile}",
                    "--auth=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                ],
                check=False,
            )
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(pwfile)
        if r.returncode != 0:
            raise LocalServerError(f"initdb failed in {self.data_dir}: {r.stderr.strip()[-2000:]}")
        fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(password)

    def _running_port(self) -> int | None:
        """The port of a server already running on our data dir, if any."""
        pidfile = self.data_dir / "postmaster.pid"
        if not pidfile.exists():
            return None
        r = self.runas.run([self._bin("pg_ctl"), "status", "-D", str(self.data_dir)], check=False)
        if r.returncode != 0:
            return None
        try:
            lines = pidfile.read_text().splitlines()
            return int(lines[3])
        except (OSError, IndexError, ValueError):
            return None

    def start(self, timeout_s: float = 30.0, *, durable: bool = False) -> LocalServerInfo:
        """Start the server (initialising the cluster the first time) and return how to reach it.

        Not ``durable`` (the demo, the tests): ``fsync``, ``synchronous_commit`` and
        ``full_page_writes`` off, for speed; a machine crash can lose or corrupt what was
        committed. ``durable`` (``puente run``): PostgreSQL's defaults. A server already running
        is reused as it was started (the URL's caller can ``SHOW fsync``)."""
        self.ensure_binaries()
        if not (self.data_dir / "PG_VERSION").exists():
            if self.data_dir.exists():
                shutil.rmtree(self.data_dir)
            self._initdb()
        password = self.password_file.read_text().strip()
        port = self._running_port()
        if port is not None:
            log.info("reusing the embedded PostgreSQL already running on port %d", port)
            return LocalServerInfo(self.host, port, SUPERUSER, password, self.base_dir)
        self.sock_dir.mkdir(exist_ok=True)
        self.runas.chown(self.sock_dir)
        if not self.logfile.exists():
            self.logfile.touch()
        self.runas.chown(self.logfile)
        last_error = ""
        # (the demo and the tests: fast, not crash-safe)
        fast = "" if durable else "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
        for _ in range(5):
            port = _free_port(self.host)
            opts = (
                f"-c listen_addresses={self.host} -p {port} -k {self.sock_dir} {fast}"
                "-c max_connections=200 -c shared_buffers=128MB"
            )
            t0 = time.monotonic()
            r = self.runas.run(
                [
                    self._bin("pg_ctl"),
                    "start",
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(self.logfile),
                    "-w",
                    "-t",
                    str(int(timeout_s)),
                    "-o",
                    opts,
                ],
                check=False,
                stdin=subprocess.DEVNULL,
            )
            if r.returncode == 0:
                self.port_file.write_text(str(port))
                self.started_by_us = True
                log.info(
                    "embedded PostgreSQL ready on %s:%d in %.2f s (data %s)",
                    self.host,
                    port,
                    time.monotonic() - t0,
                    self.data_dir,
                )
                return LocalServerInfo(self.host, port, SUPERUSER, password, self.base_dir)
            last_error = (r.stdout + r.stderr).strip()[-1500:]
            with contextlib.suppress(OSError):
                last_error += "\n" + self.logfile.read_text()[-1500:]
        raise LocalServerError(f"PostgreSQL did not start in {self.data_dir}: {last_error}")

    def stop(self) -> None:
        if self.bindir is None:
            self.ensure_binaries()
        if not (self.data_dir / "postmaster.pid").exists():
            return
        self.runas.run(
            [self._bin("pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "fast", "-w"],
            check=False,
            stdin=subprocess.DEVNULL,
        )

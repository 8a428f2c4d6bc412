"""Settings of the web server (the ``[web]`` section; ``PUENTE_WEB_<FIELD>`` variables)."""

from __future__ import annotations

import re
from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True)
class WebSettings:
    """The HTTP API and pages of one node.

    - ``secure_cookies``: mark the session cookie ``Secure`` (set it when Puente is behind TLS;
      a browser then never sends the cookie over plain HTTP).
    - ``session_ttl_s``: a session ends this long after login, used or not.
    - ``login_attempts_per_min``: login attempts allowed per client address and per user name
      in any 60 s; more are refused (429) without checking the password.
    - ``max_upload_bytes``: the largest lead file accepted (413 past it).
    - ``imports_at_once``: lead uploads loading at once on this node; one more is refused
      (429) before its file is read. Each holds two of the node's database connections (the
      import's lanes) for as long as it loads, beside the dialer's and the IVR's.
    - ``shutdown_timeout_s``: how long open requests get to finish when the server stops.
    - ``inbound_queue``: the queue inbound and IVR callers who ask for an agent wait in
      (``PUENTE_INBOUND_QUEUE`` in extensions.conf); when set, an agent who goes ready joins
      it too, besides its campaign's queue (with no campaign active, it alone). Empty (the
      default): none. Blending costs abandoned calls: a caller waits there up to 600 s, takes
      an agent the campaign's pacer counted as free, and the pacer's call for that agent is
      abandoned. Set it only where agents are not on a predictive (or progressive) campaign,
      and never to an active campaign's queue (then it is not joined).
    """

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8080
    secure_cookies: bool = False
    session_ttl_s: int = 8 * 3600
    login_attempts_per_min: int = 5
    max_upload_bytes: int = 200 * MIB
    imports_at_once: int = 2
    shutdown_timeout_s: float = 10.0
    inbound_queue: str = ""

    def validate(self) -> None:
        if not self.host:
            raise ValueError("host must not be empty")
        if not 0 <= self.port < 65536:
            raise ValueError(f"port {self.port} is out of range")
        if not 60 <= self.session_ttl_s <= 30 * 86400:
            raise ValueError(f"session_ttl_s {self.session_ttl_s} must be in [60, 2592000]")
        if not 1 <= self.login_attempts_per_min <= 1000:
            raise ValueError(
                f"login_attempts_per_min {self.login_attempts_per_min} must be in [1, 1000]"
            )
        if not 1024 <= self.max_upload_bytes <= 16 * 1024 * MIB:
            raise ValueError(f"max_upload_bytes {self.max_upload_bytes} must be in [1 KiB, 16 GiB]")
        if not 1 <= self.imports_at_once <= 16:
            raise ValueError(f"imports_at_once {self.imports_at_once} must be in [1, 16]")
        if not 0 < self.shutdown_timeout_s <= 300:
            raise ValueError(f"shutdown_timeout_s {self.shutdown_timeout_s} must be in (0, 300]")
        if self.inbound_queue and not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", self.inbound_queue):
            raise ValueError(
                f"inbound_queue {self.inbound_queue!r} must be a queue name (letters, digits, "
                "'_', '.', '-'), or empty for none"
            )

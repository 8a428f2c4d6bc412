"""AMI client settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from pbx.ami._message import DEFAULT_MAX_MESSAGE_BYTES


@dataclass(frozen=True)
class AmiSettings:
    # Off: the service runs without a PBX (the demo until the simulator is wired in).
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 5038
    username: str = "puente"
    secret: str = field(default="", repr=False)
    connect_timeout_s: float = 5.0
    login_timeout_s: float = 5.0
    action_timeout_s: float = 10.0
    ping_interval_s: float = 20.0
    ping_timeout_s: float = 5.0
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    # A refused login waits this long before the next try: never a tight retry loop.
    auth_failure_backoff_s: float = 30.0
    event_queue_size: int = 100_000
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    action_id_prefix: str = "puente"

    def validate(self) -> None:
        if self.enabled and not self.secret:
            raise ValueError("secret is required (set PUENTE_AMI_SECRET)")
        if not 0 < self.port < 65536:
            raise ValueError(f"port {self.port} is out of range")
        for name in (
            "connect_timeout_s",
            "login_timeout_s",
            "action_timeout_s",
            "ping_interval_s",
            "ping_timeout_s",
            "reconnect_min_s",
            "reconnect_max_s",
            "auth_failure_backoff_s",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be >= reconnect_min_s")
        if self.event_queue_size < 1:
            raise ValueError("event_queue_size must be >= 1")

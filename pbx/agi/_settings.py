"""FastAGI server settings."""

from __future__ import annotations

from dataclasses import dataclass

from pbx.agi._core import DEFAULT_MAX_ENV_BYTES, DEFAULT_MAX_LINE_BYTES


@dataclass(frozen=True)
class AgiSettings:
    host: str = "127.0.0.1"
    port: int = 4573
    # The whole agi_* block must arrive this soon after the TCP connect.
    env_timeout_s: float = 5.0
    # A command's answer must arrive this soon (commands that play or wait add their own time).
    command_timeout_s: float = 10.0
    # Extra time allowed on top of a command's own duration (GET DATA timeout, WAIT FOR DIGIT).
    media_margin_s: float = 5.0
    # STREAM FILE and EXEC have no duration we know in advance: the deadline for those.
    media_timeout_s: float = 300.0
    # Hard cap on one FastAGI session.
    session_timeout_s: float = 1800.0
    max_sessions: int = 2000
    max_env_bytes: int = DEFAULT_MAX_ENV_BYTES
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES

    def validate(self) -> None:
        if not 0 <= self.port < 65536:
            raise ValueError(f"port {self.port} is out of range")
        for name in (
            "env_timeout_s",
            "command_timeout_s",
            "media_margin_s",
            "media_timeout_s",
            "session_timeout_s",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")
        if self.max_sessions < 1:
            raise ValueError("max_sessions must be >= 1")
        if self.max_env_bytes < 512 or self.max_line_bytes < 256:
            raise ValueError("max_env_bytes must be >= 512 and max_line_bytes >= 256")

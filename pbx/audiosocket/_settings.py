"""AudioSocket server settings."""

from __future__ import annotations

from dataclasses import dataclass

from pbx.audiosocket._core import DEFAULT_MAX_FRAME_BYTES

#: app_audiosocket ends a call after 2,000 ms with no frame in either direction
#: (``MAX_WAIT_TIMEOUT_MSEC``); a keep-alive interval up to half of it leaves room for lag.
MAX_KEEPALIVE_INTERVAL_MS = 1000


@dataclass(frozen=True)
class AudioSocketSettings:
    host: str = "127.0.0.1"
    port: int = 9092
    # The UUID frame must arrive this soon after the TCP connect.
    uuid_timeout_s: float = 2.0
    # No frame from Asterisk for this long ends the call. Over Local channels Asterisk sends
    # nothing while the far end is silent, so this is generous; the app's deadline ends first.
    idle_timeout_s: float = 10.0
    # Hard cap on one call's AudioSocket session (AMD normally ends it within seconds).
    call_timeout_s: float = 60.0
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    # The length of one outgoing frame (the app's audio is cut into these; a keep-alive is one
    # frame of silence).
    keepalive_frame_ms: int = 20
    # Frames written per tick, in one send: 2 x 20 ms every 40 ms halves the syscalls of 1,000
    # calls; app_audiosocket reads them as two ordinary frames. 1 gives one frame per 20 ms.
    frames_per_tick: int = 2
    # A call with no app audio queued gets one frame of silence when nothing was written to it
    # for this long. app_audiosocket ends the call after 2 s with no frame either way
    # (MAX_WAIT_TIMEOUT_MSEC), and over a Local channel Asterisk sends nothing while the far
    # end is silent: this keeps the call alive. The caller hears silence either way. The gap
    # between two writes is this plus at most a tick (plus any loop lag): at most 1 s leaves
    # the rest of the 2 s for lag.
    keepalive_interval_ms: int = 500
    max_sessions: int = 2000
    # Incoming events buffered per call for a slow consumer (250 frames = 5 s at 20 ms).
    event_queue_frames: int = 250
    # Outgoing audio buffered per call (app prompts), in seconds.
    max_outgoing_s: float = 120.0

    def validate(self) -> None:
        if not 0 <= self.port < 65536:  # 0: any free port (tests, demo)
            raise ValueError(f"port {self.port} is out of range")
        if self.max_frame_bytes < 320 or self.max_frame_bytes > 65535:
            raise ValueError("max_frame_bytes must be between 320 and 65535")
        if self.keepalive_frame_ms not in (10, 20, 30, 40):
            raise ValueError("keepalive_frame_ms must be 10, 20, 30 or 40")
        if not 1 <= self.frames_per_tick <= 5:
            raise ValueError("frames_per_tick must be between 1 and 5")
        tick_ms = self.keepalive_frame_ms * self.frames_per_tick
        if tick_ms > 100:
            raise ValueError("keepalive_frame_ms x frames_per_tick must be at most 100 ms")
        if not tick_ms <= self.keepalive_interval_ms <= MAX_KEEPALIVE_INTERVAL_MS:
            raise ValueError(
                f"keepalive_interval_ms {self.keepalive_interval_ms} must be between the tick "
                f"({tick_ms} ms) and {MAX_KEEPALIVE_INTERVAL_MS} ms: app_audiosocket drops a "
                "call after 2,000 ms with no frame either way"
            )
        for name in ("uuid_timeout_s", "idle_timeout_s", "call_timeout_s", "max_outgoing_s"):
            # (max_outgoing_s sizes each call's buffer: 1e308 overflowed on every call)
            if not 0 < getattr(self, name) <= 86_400:
                raise ValueError(f"{name} must be > 0 and at most 86,400 (a day)")
        if self.max_sessions < 1 or self.event_queue_frames < 1:
            raise ValueError("max_sessions and event_queue_frames must be >= 1")

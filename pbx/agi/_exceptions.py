"""FastAGI errors raised to a flow."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pbx._exceptions import PbxError

if TYPE_CHECKING:
    from pbx.agi._core import AgiResponse


class AgiError(PbxError):
    """Root of FastAGI adapter errors."""


class AgiHangup(AgiError):
    """The caller is gone: channel commands can no longer reach them. End the flow."""


class AgiCommandError(AgiError):
    """Asterisk refused the command: 510 (unknown) or 520 (usage)."""

    def __init__(self, command: str, response: AgiResponse) -> None:
        verb = command.split(" ", 2)[:2]
        super().__init__(f"{' '.join(verb)!r}: {response.code} {response.text.splitlines()[0]}")
        self.response = response


class AgiCommandFailed(AgiError):
    """``200 result=-1`` on a live channel: the command failed, the caller is still there.

    res_agi answers ``-1`` both when the channel hangs up during a command and when the command
    fails (GET DATA, STREAM FILE, SAY ... on a missing sound file). ``CHANNEL STATUS`` tells
    them apart: it answered, so the caller is on the line. Go on (another file, the flow's error
    path); never hang up on the caller. Carries the verb only, never the arguments.
    """

    def __init__(self, verb: str, status: int | None = None) -> None:
        super().__init__(f"{verb} failed on a live channel (status {status})")
        self.verb = verb
        self.status = status


class AgiTimeout(AgiError):
    """No answer in time; the session is closed (one command at a time: no way to resync)."""


class AgiSessionClosed(AgiError):
    """The socket is closed: no more commands."""

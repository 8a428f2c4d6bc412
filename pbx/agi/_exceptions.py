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


class AgiTimeout(AgiError):
    """No answer in time; the session is closed (one command at a time: no way to resync)."""


class AgiSessionClosed(AgiError):
    """The socket is closed: no more commands."""

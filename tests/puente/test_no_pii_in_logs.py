"""No full phone number, card number, payment DTMF or secret in a log line (or an operator's
error message): the leaks found by the logging audit, each pinned by the line it wrote."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from db import DbError
from dialer.amd import LiveAmd
from dialer.amd._verdict import AmdStatus, AmdVerdict
from pbx.agi import AgiEnvironment
from pbx.agi._server import AgiSession
from pbx.ami import AmiMessage
from pbx.ami._protocol import ActionResult
from puente.database import connect
from puente.redact import mask_number, mask_numbers_in
from web import AccessLogger
from web._desktop import AgentHub
from web._keys import CLOCK, POOL

NUMBER = "+525512345678"
DIGITS = NUMBER[1:]


def _no_number(text: str) -> None:
    assert NUMBER not in text
    assert DIGITS not in text


# -- puente/redact.py -----------------------------------------------------------------------------
@pytest.mark.parametrize("number", ["5512345", "+1234567", "55123456", "551234567"])
def test_mask_number_never_gives_a_short_number_back_whole(number: str) -> None:
    masked = mask_number(number)
    assert masked != number
    assert masked.endswith(number[-4:])
    assert sum(c == "*" for c in masked) >= 3


def test_mask_number_keeps_its_shape_for_e164() -> None:
    assert mask_number(NUMBER) == "+52******5678"
    assert mask_numbers_in(f"/x/{NUMBER}/y/12") == "/x/+52******5678/y/12"


def test_agi_session_repr_masks_a_local_caller_id() -> None:
    session = AgiSession(None, None, "127.0.0.1:4000")  # type: ignore[arg-type]
    session.env = AgiEnvironment(
        {"agi_callerid": "5512345", "agi_network_script": "inbound", "agi_uniqueid": "1.1"}, ()
    )
    assert "5512345" not in repr(session)


# -- web: the access log ---------------------------------------------------------------------------
def test_access_log_masks_a_number_in_the_path(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.access")
    access = AccessLogger(logger, "")
    request = make_mocked_request("GET", f"/api/v1/blocks/{NUMBER}?e164={NUMBER}")
    with caplog.at_level(logging.INFO, logger="test.access"):
        access.log(request, web.Response(status=404), 0.001)
    assert "/api/v1/blocks/+52******5678 404" in caplog.text
    _no_number(caplog.text)


# -- web: the agent desktop's screen pop -----------------------------------------------------------
class _DatabaseAway:
    async def fetchrow(self, *args: Any) -> None:
        raise OSError("database away")


async def test_failed_screen_pop_does_not_log_the_agent_interface(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = web.Application()
    app[POOL] = _DatabaseAway()  # type: ignore[assignment]
    app[CLOCK] = lambda: datetime.now(UTC)
    hub = AgentHub(app, lambda: None)
    interface = f"PJSIP/{NUMBER}@remote-agents"  # a remote agent's own phone
    # An open desktop, its session live (a pop with no page open reads nothing, logs nothing).
    hub.pages[interface] = {object()}  # type: ignore[assignment]

    async def live(ws: object, interface: str) -> bool:
        return True

    hub._still_theirs = live  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="web._desktop"):
        await hub._pop(interface, "1795335254.12", 0.0)
    assert "screen pop for call 1795335254.12 failed: OSError" in caplog.text
    _no_number(caplog.text)


# -- AMD: a Setvar Asterisk refused ----------------------------------------------------------------
class _RefusingAmi:
    connected = True

    async def send_action(
        self, action: str, fields: list[tuple[str, str]], **kwargs: Any
    ) -> ActionResult:
        response = AmiMessage.from_pairs([("Response", "Error"), ("Message", "No such channel")])
        return ActionResult(action, "x", response)


async def test_refused_setvar_does_not_log_a_local_channel_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    amd = LiveAmd()
    attempt = str(uuid.uuid4())
    # A ``Local/ctx`` trunk: the channel's name holds the number dialed.
    amd.channels.on_newchannel({"Uniqueid": attempt, "Channel": f"Local/{NUMBER}@out-0001;1"})
    now = asyncio.get_running_loop().time()
    verdict = AmdVerdict(AmdStatus.HUMAN, "HUMAN-580-580", 1200)
    with caplog.at_level(logging.WARNING, logger="dialer.amd._call"):
        delivered = await amd._deliver(_RefusingAmi(), attempt, verdict, now, now)
    assert delivered is False
    assert f"amd {attempt}: Setvar failed (No such channel" in caplog.text
    _no_number(caplog.text)


# -- the database URL's password -------------------------------------------------------------------
@pytest.mark.parametrize("cut", ["/", "#", "?"])
async def test_connect_error_quotes_no_piece_of_the_password(cut: str) -> None:
    # Not percent-encoded, the password is cut in two by the URL parser, and asyncpg's message
    # quotes a piece as a port or a query field: the operator sees the message, maybe a log.
    password = f"Kq8wZt{cut}Rv3nXp"
    with pytest.raises(DbError) as raised:
        await connect(f"postgresql://puente:{password}@127.0.0.1:5432/puente", timeout_s=2)
    message = str(raised.value)
    assert "Kq8wZt" not in message
    assert "Rv3nXp" not in message
    assert "percent-encode" in message

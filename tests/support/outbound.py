"""The Originate Puente's dialer sends (outbound context, ChannelId = ActionID = the attempt
id), for tests that drive the simulator without a campaign."""

from __future__ import annotations

import uuid
from typing import Any

from pbx.ami import AmiClient


async def originate_outbound(
    client: AmiClient, number: str, *, timeout_ms: int, **variables: str
) -> tuple[str, Any]:
    """Send it; the attempt id and the Originate's handle (its response already checked)."""
    attempt = str(uuid.uuid4())
    var = [
        f"PUENTE_ATTEMPT={attempt}",
        "PUENTE_CAMPAIGN=c1",
        "PUENTE_QUEUE=collections",
        "PUENTE_MODE=predictive",
        *(f"{k}={v}" for k, v in variables.items()),
    ]
    handle = await client.originate(
        [
            ("Channel", f"PJSIP/{number}@trunk"),
            ("Context", "puente-outbound"),
            ("Exten", "s"),
            ("Priority", "1"),
            ("Timeout", str(timeout_ms)),
            ("ChannelId", attempt),
            ("CallerID", '"Puente" <+15550100000>'),
            ("Variable", var),
        ],
        action_id=attempt,
    )
    assert handle.response.ok, handle.response
    return attempt, handle

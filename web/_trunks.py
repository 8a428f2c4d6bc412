"""``GET /api/v1/trunks``: the trunks shared by campaigns, their channels and calls now.

Read-only: a trunk's channels are set with ``puente trunks set`` (audited), as the carrier
account changes (:mod:`dialer.trunks`).
"""

from __future__ import annotations

from typing import Any

from dialer.trunks import trunk_use
from web._api import ApiCall, ApiRoute
from web._campaigns import MANAGERS


async def list_trunks(call: ApiCall) -> Any:
    return {
        "trunks": [
            {"name": t.name, "channels": t.channels, "in_use": t.in_use,
             "campaigns": list(t.campaigns)}
            for t in await trunk_use(call.pool)
        ]
    }  # fmt: skip


ROUTES = [
    ApiRoute("GET", "/trunks", list_trunks,
             "Trunks shared by campaigns: channels (set with puente trunks set), calls on each "
             "now (attempts not yet final) and the campaigns dialing through it",
             "trunks", MANAGERS),
]  # fmt: skip

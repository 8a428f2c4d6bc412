"""Part of the composition root: builds the service's components from settings.

A component is something with a lifetime inside the service's TaskGroup: a protocol server, an
AMI client, later the dialer and the web server. Each gets its settings here and nowhere else.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

import asyncpg


class Component(Protocol):
    name: str

    async def start(self, tg: asyncio.TaskGroup) -> None:
        """Start serving; long-running work goes into ``tg``."""

    async def stop(self) -> None:
        """Stop accepting new work and drain what is live (called under a deadline)."""

    async def abort(self) -> None:
        """Cancel whatever is still live."""

    def status(self) -> str:
        """One line for the demo summary and the logs."""


def build_components(
    file_values: dict[str, dict[str, Any]], *, pool: asyncpg.Pool, demo: bool
) -> list[Component]:
    """The service's components, in start order."""
    components: list[Component] = []
    return components

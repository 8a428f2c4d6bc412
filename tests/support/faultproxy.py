"""A fault-injecting TCP proxy on loopback, for adapter adversity tests.

The idea is asyncpg's ``_testbase/fuzzer.py``: put a proxy between a client and a server and
break the connection in controlled ways: cut it mid-message, stall one direction, slow it
down to a few bytes per write, or inject garbage.

Directions: ``"c2s"`` is client to server (what the client writes), ``"s2c"`` the other way.

Usage::

    async with FaultProxy("127.0.0.1", server_port) as proxy:
        client connects to proxy.port
        proxy.stall("s2c")           # nothing reaches the client any more
        proxy.resume("s2c")
        proxy.cut_after("s2c", 100)  # forward 100 more bytes, then close both sides
        proxy.inject("s2c", b"garbage")
        await proxy.cut_all()
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

DIRECTIONS = ("c2s", "s2c")


@dataclass
class _Knobs:
    stalled: asyncio.Event = field(default_factory=asyncio.Event)  # set = flowing
    delay_s: float = 0.0
    chunk_bytes: int = 0  # 0: forward reads as they come
    cut_after: int | None = None  # bytes still to forward before cutting

    def __post_init__(self) -> None:
        self.stalled.set()


class _Link:
    """One proxied connection: two pumps and their writers."""

    def __init__(self, proxy: FaultProxy, client_w: asyncio.StreamWriter) -> None:
        self.proxy = proxy
        self.client_w = client_w
        self.server_w: asyncio.StreamWriter | None = None
        self.tasks: list[asyncio.Task[None]] = []

    def writer_for(self, direction: str) -> asyncio.StreamWriter | None:
        return self.server_w if direction == "c2s" else self.client_w

    def close(self) -> None:
        for w in (self.client_w, self.server_w):
            if w is not None and not w.is_closing():
                with contextlib.suppress(Exception):
                    w.transport.abort()
        for t in self.tasks:
            t.cancel()


class FaultProxy:
    def __init__(self, target_host: str, target_port: int, host: str = "127.0.0.1") -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.host = host
        self.port = 0
        self.knobs = {d: _Knobs() for d in DIRECTIONS}
        self.links: list[_Link] = []
        self.accepted = 0
        self.bytes_forwarded = {d: 0 for d in DIRECTIONS}
        self.refusing = False  # new connections are closed at once (the target is "down")
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> FaultProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._on_client, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        await self.cut_all()
        if self._server is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await self._server.wait_closed()

    # -- knobs ---------------------------------------------------------------------------
    def stall(self, direction: str) -> None:
        self.knobs[direction].stalled.clear()

    def resume(self, direction: str) -> None:
        self.knobs[direction].stalled.set()

    def set_delay(self, direction: str, delay_s: float) -> None:
        self.knobs[direction].delay_s = delay_s

    def set_chunking(self, direction: str, chunk_bytes: int) -> None:
        """Forward in pieces of at most ``chunk_bytes`` (a slow, dribbling peer)."""
        self.knobs[direction].chunk_bytes = chunk_bytes

    def cut_after(self, direction: str, nbytes: int) -> None:
        """Forward ``nbytes`` more bytes in ``direction``, then cut every connection."""
        self.knobs[direction].cut_after = nbytes

    def inject(self, direction: str, data: bytes) -> None:
        """Write ``data`` to every live connection in ``direction``, as if the peer sent it."""
        for link in self.links:
            w = link.writer_for(direction)
            if w is not None and not w.is_closing():
                w.write(data)

    async def cut_all(self) -> None:
        links, self.links = self.links, []
        for link in links:
            link.close()
        await asyncio.sleep(0)

    @property
    def live_connections(self) -> int:
        return len(self.links)

    # -- plumbing ------------------------------------------------------------------------
    async def _on_client(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter):
        if self.refusing:
            client_w.transport.abort()
            return
        self.accepted += 1
        link = _Link(self, client_w)
        try:
            async with asyncio.timeout(5):
                server_r, server_w = await asyncio.open_connection(
                    self.target_host, self.target_port
                )
        except (OSError, TimeoutError):
            client_w.transport.abort()
            return
        link.server_w = server_w
        self.links.append(link)
        link.tasks = [
            asyncio.create_task(self._pump(link, client_r, server_w, "c2s")),
            asyncio.create_task(self._pump(link, server_r, client_w, "s2c")),
        ]
        await asyncio.gather(*link.tasks, return_exceptions=True)
        link.close()
        if link in self.links:
            self.links.remove(link)

    async def _pump(
        self,
        link: _Link,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        direction: str,
    ) -> None:
        knobs = self.knobs[direction]
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                pieces = [data]
                if knobs.chunk_bytes:
                    n = knobs.chunk_bytes
                    pieces = [data[i : i + n] for i in range(0, len(data), n)]
                for piece in pieces:
                    await knobs.stalled.wait()
                    if knobs.delay_s:
                        await asyncio.sleep(knobs.delay_s)
                    if knobs.cut_after is not None:
                        if knobs.cut_after <= 0:
                            await self.cut_all()
                            return
                        if len(piece) >= knobs.cut_after:
                            piece = piece[: knobs.cut_after]
                            writer.write(piece)
                            self.bytes_forwarded[direction] += len(piece)
                            knobs.cut_after = None
                            await writer.drain()
                            await self.cut_all()
                            return
                        knobs.cut_after -= len(piece)
                    writer.write(piece)
                    self.bytes_forwarded[direction] += len(piece)
                    await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            # Half-close semantics are not needed by our protocols: one side gone, both gone.
            link.close()

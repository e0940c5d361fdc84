"""A TCP relay to a server that can go silent on the connections it holds without closing any, as a
NAT that forgot them or a machine that died would: neither side sees an error, only silence.
Connections made afterwards are relayed normally. Given a `port`, it can also stand for a server that
is not up yet: nothing listens there until `start()`."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field


@dataclass
class Blackhole:
    target_port: int
    port: int = 0
    _server: asyncio.Server | None = None
    _open: list[dict[str, bool]] = field(default_factory=list)
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> Blackhole:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)  # 0: any free one
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def swallow(self) -> None:
        """From now on, drop every byte of the connections open now, both ways."""
        for state in self._open:
            state["silent"] = True

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        state = {"silent": False}
        self._open.append(state)
        self._writers += [client_w, server_w]
        for reader, writer in ((client_r, server_w), (server_r, client_w)):
            task = asyncio.create_task(self._pump(reader, writer, state))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _pump(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: dict[str, bool]
    ) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                if not state["silent"]:
                    writer.write(data)
                    await writer.drain()
        if not state["silent"]:
            writer.close()

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

"""A raw HTTP server on 127.0.0.1 that misbehaves on purpose, for the transport's edge tests.

It reads one request per connection (request line, headers, a Content-Length body), records
it, and answers
with whatever bytes ``answer(request)`` returns: a malformed status line, a reply that echoes
the request back (key, query string and all), a redirect, a reply cut short, ...
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Seen:
    """One request as the server read it."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HostileServer:
    """``async with HostileServer(answer) as server``: ``server.url``, ``server.seen``."""

    answer: Callable[[Seen], bytes]
    seen: list[Seen] = field(default_factory=list)
    url: str = ""
    _server: asyncio.Server | None = None

    async def __aenter__(self) -> HostileServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if True:  # one request per connection: every reply closes it
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0"))
                body = await reader.readexactly(length) if length else b""
                seen = Seen(method, target, headers, body)
                self.seen.append(seen)
                writer.write(self.answer(seen))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


def reply(status: str, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    """Bytes of a reply with ``status`` (e.g. ``"500 Oops"``), ``body`` and ``headers``."""
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def echo(seen: Seen, status: str = "500 Internal Server Error") -> bytes:
    """An error reply whose JSON message repeats the whole request: a key-echoing proxy."""
    import json

    text = f"{seen.method} {seen.target} {seen.headers} {seen.body.decode('latin-1')}"
    body = json.dumps({"message": text, "error": text, "detail": text}).encode()
    return reply(status, body, {"Content-Type": "application/json"})

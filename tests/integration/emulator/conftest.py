"""Shared fixtures for the emulator's integration tests (all on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import base64
import io
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from ltx2.emulator import Emulator

EACHLABS_MODEL = "ltx-v-2-image-to-video-fast"
StartEmulator = Callable[..., Awaitable[Emulator]]


def make_jpeg(width: int = 320, height: int = 180, text: str = "test") -> bytes:
    from ltx2.emulator._render import synthetic_scene

    buf = io.BytesIO()
    synthetic_scene(text, width, height).save(buf, "JPEG", quality=85)
    return buf.getvalue()


@pytest.fixture
def jpeg() -> bytes:
    return make_jpeg()


@pytest.fixture
def data_uri(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def start_emulator() -> AsyncIterator[StartEmulator]:
    """Start emulators (stub render, time_scale 0.01, seed 0 unless told); stop them after."""
    started: list[Emulator] = []

    async def start(**kwargs: Any) -> Emulator:
        kwargs.setdefault("time_scale", 0.01)
        kwargs.setdefault("seed", 0)
        kwargs.setdefault("render", "stub")
        emu = Emulator(**kwargs)
        await emu.start()
        started.append(emu)
        return emu

    yield start
    for emu in started:
        await emu.stop()


@pytest.fixture
async def emu(start_emulator: StartEmulator) -> Emulator:
    return await start_emulator()


@pytest.fixture
async def hosted_image(
    http: aiohttp.ClientSession, jpeg: bytes
) -> Callable[[Emulator], Awaitable[str]]:
    """Upload the test JPEG through Eachlabs' presigned upload; returns its file URL."""

    async def upload(emu: Emulator) -> str:
        async with http.post(
            emu.provider_url("eachlabs") + "/v1/upload/presign",
            json={"content_type": "image/jpeg", "file_type": "image"},
            headers={"X-API-Key": "k"},
        ) as resp:
            assert resp.status == 200, await resp.text()
            urls = await resp.json()
        headers = {"Content-Type": "image/jpeg", **urls["required_headers"]}
        async with http.put(urls["presigned_url"], data=jpeg, headers=headers) as resp:
            assert resp.status == 200
        return str(urls["public_url"])

    return upload


@dataclass
class Receiver:
    """A webhook receiver: records every delivery; answers 500 to the first ``fail_first``."""

    url: str = ""
    fail_first: int = 0
    deliveries: list[tuple[dict[str, str], bytes, float]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.deliveries.append((dict(request.headers), body, time.monotonic()))
        self.arrived.set()
        if len(self.deliveries) <= self.fail_first:
            return web.Response(status=500)
        return web.Response(status=200)

    async def wait_for(self, count: int, timeout: float = 5.0) -> None:
        async def loop() -> None:
            while len(self.deliveries) < count:
                self.arrived.clear()
                await self.arrived.wait()

        await asyncio.wait_for(loop(), timeout)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rec.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    yield rec
    await runner.cleanup()


async def poll_statuses(
    fetch: Callable[[], Awaitable[str]],
    terminal: set[str],
    interval: float = 0.01,
    timeout: float = 10,
) -> list[str]:
    """Poll until a terminal status; return the distinct statuses in the order seen."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = await fetch()
        if not seen or seen[-1] != status:
            seen.append(status)
        if status in terminal:
            return seen
        await asyncio.sleep(interval)
    raise AssertionError(f"no terminal status within {timeout}s; saw {seen}")


@pytest.fixture
def poll() -> Callable[..., Awaitable[list[str]]]:
    return poll_statuses

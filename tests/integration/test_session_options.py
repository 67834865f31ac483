"""An injected ``session=`` keeps ltx2's ``Timeouts`` on every request (API calls, status
streams, downloads), and ``trust_env=True`` sends the client's requests through the proxy
the environment names, which the default ignores (issue 10, item 9)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

import ltx2
from ltx2._transport import Transport
from ltx2._types import HTTPCall
from ltx2.providers import get

CREATED = {"status": "success", "predictionID": "p-1"}
IMAGE = "https://cdn.example.com/cat.jpg"


async def serve(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def stalling() -> AsyncIterator[str]:
    """A server whose every answer stalls until the test ends: headers at once, then no
    byte (or, for POSTs, no answer at all)."""
    done = asyncio.Event()

    async def stall(request: web.Request) -> web.StreamResponse:
        if request.method == "POST":
            await done.wait()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await done.wait()
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", stall)
    async for url in serve(app):
        yield url
        done.set()


@pytest.fixture
async def patient_session() -> AsyncIterator[aiohttp.ClientSession]:
    """The app's own session, with a default timeout far longer than ltx2's."""
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600, sock_read=600))
    try:
        yield session
    finally:
        await session.close()


async def test_a_create_on_an_injected_session_times_out_by_ltx2s_timeouts(
    stalling: str, patient_session: aiohttp.ClientSession
) -> None:
    store = ltx2.MemoryStore()
    async with ltx2.Client(
        "eachlabs",
        api_key="k",
        base_url=stalling,
        session=patient_session,
        store=store,
        timeouts=ltx2.Timeouts(read=0.2),
    ) as client:
        async with asyncio.timeout(10):
            with pytest.raises(ltx2.TransportError, match="timed out"):
                await client.submit(image=IMAGE, prompt="a cat")
    assert not patient_session.closed


def _stream(transport: Transport, url: str) -> Callable[[], Awaitable[object]]:
    async def run() -> object:
        return [e async for e in transport.events(HTTPCall("GET", f"{url}/events", "stream"))]

    return run


def _chunks(transport: Transport, url: str) -> Callable[[], Awaitable[object]]:
    async def run() -> object:
        return [c async for c in transport.stream(f"{url}/video.mp4")]

    return run


@pytest.mark.parametrize("kind", ["status", "stream", "chunks", "download"])
async def test_every_kind_of_request_on_an_injected_session_keeps_the_read_timeout(
    kind: str, stalling: str, patient_session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    transport = Transport(
        get("eachlabs")("k", stalling),
        session=patient_session,
        timeouts=ltx2.Timeouts(read=0.2),
        retry=ltx2.RetryPolicy(enabled=False),
    )
    requests: dict[str, Callable[[], Awaitable[object]]] = {
        "status": lambda: transport.send(HTTPCall("GET", f"{stalling}/v1/prediction/p", "status")),
        "stream": _stream(transport, stalling),
        "chunks": _chunks(transport, stalling),
        "download": lambda: transport.download(f"{stalling}/video.mp4", tmp_path / "v.mp4"),
    }
    async with asyncio.timeout(10):
        with pytest.raises(ltx2.TransportError, match="timed out"):
            await requests[kind]()
    await transport.aclose()
    assert not patient_session.closed


@pytest.fixture
async def provider_and_proxy(
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[str, list[str], list[str]]]:
    """An Eachlabs stand-in and an HTTP proxy on 127.0.0.1, each recording what reached it;
    HTTP_PROXY names the proxy and no NO_PROXY spares 127.0.0.1."""
    direct: list[str] = []
    proxied: list[str] = []

    async def provider(request: web.Request) -> web.Response:
        direct.append(f"{request.method} {request.path}")
        return web.json_response(CREATED)

    async def proxy(request: web.Request) -> web.Response:
        # A forward proxy gets the absolute URL; this one answers for the provider.
        proxied.append(f"{request.method} {request.url}")
        return web.json_response({**CREATED, "predictionID": "via-proxy"})

    provider_app = web.Application()
    provider_app.router.add_post("/v1/prediction/", provider)
    proxy_app = web.Application()
    proxy_app.router.add_route("*", "/{tail:.*}", proxy)
    async for provider_url in serve(provider_app):
        async for proxy_url in serve(proxy_app):
            for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY",
                         "all_proxy", "http_proxy"):  # fmt: skip
                monkeypatch.delenv(name, raising=False)
            monkeypatch.setenv("HTTP_PROXY", proxy_url)
            yield provider_url, direct, proxied


@pytest.mark.parametrize("trust_env", [True, False, None], ids=["trust_env", "off", "default"])
async def test_trust_env_sends_requests_through_the_environments_proxy(
    trust_env: bool | None, provider_and_proxy: tuple[str, list[str], list[str]]
) -> None:
    provider_url, direct, proxied = provider_and_proxy
    options = {} if trust_env is None else {"trust_env": trust_env}
    async with ltx2.Client("eachlabs", api_key="k", base_url=provider_url, **options) as client:
        job = await client.submit(image=IMAGE, prompt="a cat")
    if trust_env:
        assert job.id == "via-proxy"
        assert proxied == [f"POST {provider_url}/v1/prediction/"]
        assert direct == []
    else:
        assert job.id == "p-1"
        assert proxied == []
        assert direct == ["POST /v1/prediction/"]


async def test_an_injected_session_keeps_its_own_trust_env(
    provider_and_proxy: tuple[str, list[str], list[str]],
) -> None:
    provider_url, direct, proxied = provider_and_proxy
    session = aiohttp.ClientSession(trust_env=True)
    client = ltx2.Client("eachlabs", api_key="k", base_url=provider_url, session=session)
    async with session, client:
        job = await client.submit(image=IMAGE, prompt="a cat")
    assert job.id == "via-proxy"
    assert proxied == [f"POST {provider_url}/v1/prediction/"]
    assert direct == []

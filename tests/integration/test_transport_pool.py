"""More calls than the connection pool holds: the wait for a free connection is not a
timeout (a create that waited its turn was never sent, and must not fail as 'timed out')."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web

import ltx2
from ltx2._transport import Transport
from ltx2._types import HTTPCall
from ltx2.providers import get


async def test_calls_queued_behind_a_full_pool_do_not_time_out() -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.3)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/x", slow)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/x"
    # Each call answers in 0.3 s, well within its own timeouts; with 8 connections, the
    # later calls wait up to 0.9 s for one, longer than ``connect``. (A session of one's
    # own: the transport's holds POOL_SIZE connections and is bounded the same way.)
    timeout = aiohttp.ClientTimeout(total=3, connect=0.4, sock_read=3)
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=8), timeout=timeout)
    transport = Transport(
        get("runcomfy")("key", None),
        session=session,
        retry=ltx2.RetryPolicy(enabled=False),  # a retry would hide the first failure
    )
    try:
        calls = [transport.send(HTTPCall("GET", url, "status")) for _ in range(32)]
        replies = await asyncio.gather(*calls, return_exceptions=True)
    finally:
        await session.close()
        await runner.cleanup()
    errors = [r for r in replies if isinstance(r, BaseException)]
    assert errors == []
    assert all(r.status == 200 for r in replies if not isinstance(r, BaseException))


async def test_a_create_that_timed_out_waiting_for_a_connection_is_retried_once_sent() -> None:
    """A session of one's own, shared with the app's other traffic: its only connection is
    busy, the create waits in aiohttp past ``connect`` and gets ConnectionTimeoutError. It was
    never sent, so it is retried, and exactly one create reaches the provider."""
    creates = 0

    async def create(request: web.Request) -> web.Response:
        nonlocal creates
        creates += 1
        return web.json_response({"status": "success", "predictionID": "p-1"})

    async def slow(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)  # the headers now, the body in 0.5 s
        await asyncio.sleep(0.5)
        await response.write(b"done")
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/prediction/", create)
    app.router.add_get("/slow", slow)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=1), timeout=aiohttp.ClientTimeout(connect=0.1)
    )
    store = ltx2.MemoryStore()
    try:
        client = ltx2.Client(
            "eachlabs",
            api_key="k",
            base_url=base,
            session=session,
            store=store,
            timeouts=ltx2.Timeouts(connect=0.1),
            retry=ltx2.RetryPolicy(attempts=20, base_delay=0.05, max_delay=0.1),
        )
        # The app's own request holds the one connection for 0.5 s.
        async with session.get(f"{base}/slow") as busy, client:
            creating = asyncio.ensure_future(
                client.submit(image="https://cdn.example.com/cat.jpg", prompt="a cat")
            )
            await busy.read()
            job = await creating
            (record,) = await store.unfinished("eachlabs")
    finally:
        await session.close()
        await runner.cleanup()
    assert job.id == "p-1"
    assert record.job_id == "p-1"
    assert creates == 1

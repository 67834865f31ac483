"""The receiver's edges, standalone and mounted: never a 500 (deep JSON, odd fal details, bad
encodings, non-UTF-8 headers), the token looked up before the body is read, gzip bombs and
``max_body`` refused while decoding, quiet disconnects, and tokens kept out of access logs."""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import json
import logging
import time
import zlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

import ltx2
from ltx2.stores._base import JobRecord, new_record
from ltx2.webhooks import RedactingAccessLogger, TokenRedactingFilter, redact_tokens

FAL_KEY = Ed25519PrivateKey.generate()


def _jwks() -> dict[str, Any]:
    raw = FAL_KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x}]}


def fal_signed(body: bytes, request_id: str = "req-1") -> dict[str, str]:
    now = str(int(time.time()))
    message = "\n".join([request_id, "user-1", now, hashlib.sha256(body).hexdigest()])
    return {
        "X-Fal-Webhook-Request-Id": request_id,
        "X-Fal-Webhook-User-Id": "user-1",
        "X-Fal-Webhook-Timestamp": now,
        "X-Fal-Webhook-Signature": FAL_KEY.sign(message.encode()).hex(),
        "Content-Type": "application/json",
    }


class Setup:
    """A store with one Eachlabs and one fal job, and a receiver on it, reachable at
    ``self.url`` standalone or mounted under ``/hooks/ltx2`` in a host app."""

    def __init__(self, store: ltx2.MemoryStore, url: str, receiver: ltx2.WebhookReceiver):
        self.store, self.url, self.receiver = store, url, receiver
        self.eachlabs: JobRecord
        self.fal: JobRecord

    def hook(self, record: JobRecord) -> str:
        return f"{self.url}/{record.provider}/{record.token}"


async def _serve(app: web.Application, **kw: Any) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, **kw)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


@pytest.fixture
async def jwks_url() -> AsyncIterator[str]:
    app = web.Application()

    async def keys(request: web.Request) -> web.Response:
        return web.json_response(_jwks())

    app.router.add_get("/jwks.json", keys)
    runner, url = await _serve(app, access_log=None)
    yield f"{url}/jwks.json"
    await runner.cleanup()


@pytest.fixture(params=["standalone", "mounted"])
async def setup(request: pytest.FixtureRequest, jwks_url: str) -> AsyncIterator[Setup]:
    store = ltx2.MemoryStore()
    receiver = ltx2.WebhookReceiver(store=store, max_body=1024, fal_jwks_urls=[jwks_url])
    if request.param == "standalone":
        url = await receiver.start("127.0.0.1", 0)
        runner = None
    else:
        host = web.Application()  # the host app's own limit (1 MiB) is not the receiver's
        host.add_subapp("/hooks/ltx2", receiver.app)
        runner, base = await _serve(host, access_log=None)
        url = f"{base}/hooks/ltx2"
    s = Setup(store, url, receiver)
    s.eachlabs = new_record("eachlabs", {}, owner=None, with_secret=True)
    s.fal = new_record("fal", {}, owner=None, with_secret=False)
    await store.add(s.eachlabs)
    await store.add(s.fal)
    try:
        yield s
    finally:
        if runner is not None:
            await runner.cleanup()
        await receiver.stop()


async def send(url: str, body: bytes, headers: dict[str, str] | None = None) -> int:
    async with (
        aiohttp.ClientSession(auto_decompress=False) as session,
        session.post(url, data=body, headers=headers or {}) as resp,
    ):
        return resp.status


async def raw(url: str, request: bytes) -> bytes:
    """Send ``request`` bytes as they are; the status line that comes back."""
    host, port = url.split("//")[1].split("/")[0].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        await writer.drain()
        return (await asyncio.wait_for(reader.readline(), 10)).strip()
    finally:
        writer.close()


def _path(url: str) -> str:
    return "/" + url.split("//")[1].split("/", 1)[1]


async def test_deep_json_with_a_valid_token_is_400(setup: Setup) -> None:
    setup.receiver.max_body = 300_000
    deep = b"[" * 100_000 + b"]" * 100_000
    secret = {"X-Webhook-Secret": setup.eachlabs.webhook_secret or ""}
    assert await send(setup.hook(setup.eachlabs), deep, secret) in (400, 413)
    setup.receiver.max_body = 1024 * 1024
    assert await send(setup.hook(setup.eachlabs), deep, secret) == 400
    deep_object = b'{"status":' * 50_000 + b"1" + b"}" * 50_000
    assert await send(setup.hook(setup.eachlabs), deep_object, secret) == 400


async def test_signed_fal_error_with_odd_detail_is_taken(setup: Setup) -> None:
    body = json.dumps(
        {
            "request_id": "req-1",
            "status": "ERROR",
            "error": "bad",
            "payload": {"detail": [{"loc": 5}]},
        }
    ).encode()
    assert await send(setup.hook(setup.fal), body, fal_signed(body)) == 200
    record = await setup.store.get(setup.fal.key)
    assert record is not None
    assert record.delivery is not None
    assert record.delivery.status is ltx2.JobStatus.FAILED


async def test_unauthenticated_bad_gzip_is_404_before_the_body_is_read(setup: Setup) -> None:
    url = f"{setup.url}/eachlabs/{'x' * 22}"
    assert await send(url, b"this is not gzip", {"Content-Encoding": "gzip"}) == 404
    # The same with the job's own token: the body is read, and does not decode.
    secret = {"X-Webhook-Secret": setup.eachlabs.webhook_secret or "", "Content-Encoding": "gzip"}
    assert await send(setup.hook(setup.eachlabs), b"this is not gzip", secret) == 400


async def test_non_utf8_secret_header_is_401(setup: Setup) -> None:
    body = json.dumps({"exec_id": "p", "status": "succeeded", "output": "https://c/v.mp4"})
    path = _path(setup.hook(setup.eachlabs))
    request = (
        (
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n"
        ).encode()
        + b"X-Webhook-Secret: \xff\xfe\xc3(\r\n\r\n"
        + body.encode()
    )
    assert await raw(setup.url, request) == b"HTTP/1.1 401 Unauthorized"


async def test_valid_gzip_delivery_is_taken(setup: Setup) -> None:
    body = gzip.compress(
        json.dumps({"exec_id": "p", "status": "succeeded", "output": "https://c/v.mp4"}).encode()
    )
    headers = {
        "X-Webhook-Secret": setup.eachlabs.webhook_secret or "",
        "Content-Encoding": "gzip",
        "Content-Type": "application/json",
    }
    assert await send(setup.hook(setup.eachlabs), body, headers) == 200


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_compression_bomb_is_413(setup: Setup, encoding: str) -> None:
    zeros = b" " * (32 * 1024 * 1024)
    bomb = gzip.compress(zeros) if encoding == "gzip" else zlib.compress(zeros)
    assert len(bomb) < 64 * 1024
    headers = {
        "X-Webhook-Secret": setup.eachlabs.webhook_secret or "",
        "Content-Encoding": encoding,
    }
    assert await send(setup.hook(setup.eachlabs), bomb, headers) == 413


async def test_max_body_is_enforced_when_mounted_too(setup: Setup) -> None:
    body = b'{"exec_id": "p", "status": "succeeded", "output": "' + b"x" * 4000 + b'"}'
    secret = {"X-Webhook-Secret": setup.eachlabs.webhook_secret or ""}
    assert await send(setup.hook(setup.eachlabs), body, secret) == 413

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        for _ in range(8):
            yield b" " * 1000

    assert await send(setup.hook(setup.eachlabs), chunks(), secret) == 413  # type: ignore[arg-type]


async def test_wrong_methods_and_unknown_paths(setup: Setup) -> None:
    async with aiohttp.ClientSession() as session:
        for method in ("GET", "PUT", "DELETE", "PATCH"):
            async with session.request(method, setup.hook(setup.eachlabs)) as resp:
                assert resp.status == 405
        for path in ("/nope/" + "t" * 22, "/fal/short", "/fal/" + "t" * 65, "/fal/%ff" * 3):
            async with session.post(setup.url + path, data=b"{}") as resp:
                assert resp.status in (404, 400)


async def test_sender_disconnecting_mid_body_logs_no_error(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    path = _path(setup.hook(setup.eachlabs))
    secret = setup.eachlabs.webhook_secret
    host, port = setup.url.split("//")[1].split("/")[0].split(":")
    for _ in range(3):
        _, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nX-Webhook-Secret: {secret}\r\n"
            'Content-Length: 900\r\n\r\n{"exec_id":'.encode()
        )
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.transport.abort()
    await asyncio.sleep(0.2)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []


async def test_mounted_access_log_filter_redacts_tokens(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = ltx2.MemoryStore()
    receiver = ltx2.WebhookReceiver(store=store)
    record = new_record("eachlabs", {}, owner=None, with_secret=True)
    await store.add(record)
    access = logging.getLogger("test.access.mounted")
    access.addFilter(TokenRedactingFilter())
    host = web.Application()
    host.add_subapp("/hooks/ltx2", receiver.app)
    runner, base = await _serve(host, access_log=access)
    caplog.set_level(logging.INFO, logger="test.access.mounted")
    try:
        url = f"{base}/hooks/ltx2/eachlabs/{record.token}"
        assert await send(url, b"{}", {"X-Webhook-Secret": "wrong"}) == 401
        assert await send(f"{base}/hooks/ltx2/fal/{'u' * 22}?x=1", b"{}") == 404
    finally:
        await runner.cleanup()
        await receiver.stop()
    lines = [r.getMessage() for r in caplog.records if r.name == "test.access.mounted"]
    assert len(lines) == 2
    assert all(record.token not in line and "u" * 22 not in line for line in lines)
    assert "/hooks/ltx2/eachlabs/[token]" in lines[0]


async def test_standalone_access_log_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    store = ltx2.MemoryStore()
    logger = logging.getLogger("test.access.standalone")
    receiver = ltx2.WebhookReceiver(store=store, access_log=logger)
    record = new_record("eachlabs", {}, owner=None, with_secret=True)
    await store.add(record)
    caplog.set_level(logging.INFO, logger="test.access.standalone")
    url = await receiver.start("127.0.0.1", 0)
    try:
        assert (
            await send(f"{url}/eachlabs/{record.token}", b"{}", {"X-Webhook-Secret": "no"}) == 401
        )
    finally:
        await receiver.stop()
    lines = [r.getMessage() for r in caplog.records if r.name == "test.access.standalone"]
    assert lines
    assert all(record.token not in line for line in lines)
    assert all(
        record.token not in str(getattr(r, "first_request_line", "")) for r in caplog.records
    )


def test_redact_tokens() -> None:
    line = '127.0.0.1 "POST /hooks/ltx2/fal/AbC-123_xyz789012345 HTTP/1.1" 200'
    assert redact_tokens(line) == '127.0.0.1 "POST /hooks/ltx2/fal/[token] HTTP/1.1" 200'
    assert redact_tokens("/fal/short") == "/fal/short"
    assert RedactingAccessLogger  # importable from ltx2.webhooks

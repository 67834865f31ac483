"""The receiver under hostile traffic, standalone and mounted in a host app: 10,000 requests
each — random bytes, truncated and deeply nested JSON, wrong methods, long paths and
headers, bad and bomb encodings, non-UTF-8 headers, forged secrets, duplicates — with the
legitimate deliveries of 100 real jobs mixed in. No 5xx, bounded memory, and every job that
got a legitimate delivery resolves with its video."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import random
import time
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aioresponses import CallbackResult, aioresponses
from yarl import URL

import ltx2

REQUESTS = 10_000
JOBS = 100
CONCURRENCY = 24
CREATE = "https://api.eachlabs.ai/v1/prediction/"
PROVIDERS = ("eachlabs", "fal", "gmicloud", "runcomfy", "aimlapi", "nope", "")


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


@dataclass
class Hook:
    url: str
    secret: str
    job_id: str


def _delivery(hook: Hook) -> bytes:
    body = {
        "exec_id": hook.job_id,
        "status": "succeeded",
        "output": f"https://cdn/{hook.job_id}.mp4",
    }
    return json.dumps(body).encode()


class Fuzzer:
    """Random hostile requests, from a seeded RNG; the legitimate ones are mixed in."""

    def __init__(self, base: str, hooks: list[Hook], seed: int) -> None:
        self.base = base
        self.hooks = hooks
        self.rng = random.Random(seed)
        self.statuses: Counter[int] = Counter()
        self.legit_sent: set[str] = set()
        host, port = base.split("//")[1].split("/")[0].split(":")
        self.host, self.port = host, int(port)
        self.prefix = "/" + base.split("//")[1].split("/", 1)[1] if base.count("/") > 2 else ""

    def _token(self) -> str:
        r = self.rng.random()
        if r < 0.3:
            return self.rng.choice(self.hooks).url.rsplit("/", 1)[1]
        if r < 0.6:
            return "".join(self.rng.choices("abcdefXYZ0123456789-_", k=22))
        return "".join(
            self.rng.choices("ab%/.~\u00e9\u4e2d0", k=self.rng.choice([1, 9, 10, 64, 65, 300]))
        )

    def _body(self) -> bytes:
        rng = self.rng
        kind = rng.randrange(9)
        valid = _delivery(rng.choice(self.hooks))
        if kind == 0:
            return rng.randbytes(rng.randrange(0, 3000))
        if kind == 1:
            return valid[: rng.randrange(len(valid))]
        if kind == 2:
            depth = rng.choice([10, 1000, 20_000])
            return b"[" * depth + b"]" * depth
        if kind == 3:
            return b'{"status":' * 3000 + b"1" + b"}" * 3000
        if kind == 4:
            return json.dumps(rng.choice([None, 1, "x", [], {}, {"status": 5}])).encode()
        if kind == 5:
            return b"\xff\xfe" + valid
        if kind == 6:
            return json.dumps(
                {"exec_id": "x", "status": "succeeded", "output": [{"error": 5}] * 50}
            ).encode()
        if kind == 7:
            return json.dumps(
                {"request_id": "r", "status": "ERROR", "payload": {"detail": [{"loc": 5}]}}
            ).encode()
        return valid

    async def one(self, session: aiohttp.ClientSession) -> None:
        rng = self.rng
        r = rng.random()
        if r < 0.08:  # a legitimate delivery (maybe a duplicate), signed with the job's secret
            hook = rng.choice(self.hooks)
            await self._send(
                session, "POST", hook.url, _delivery(hook), {"X-Webhook-Secret": hook.secret}
            )
            self.legit_sent.add(hook.job_id)
            return
        if r < 0.22:
            await self._raw()
            return
        method = rng.choice(["POST"] * 8 + ["GET", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
        provider = rng.choice(PROVIDERS)
        url = f"{self.base}/{provider}/{self._token()}"
        if rng.random() < 0.05:
            url += "/" + "a" * rng.choice([100, 5000, 20_000])
        headers: dict[str, str] = {}
        if rng.random() < 0.3:
            headers["X-Webhook-Secret"] = rng.choice(
                [self.rng.choice(self.hooks).secret, "wrong", ""]
            )
        if rng.random() < 0.1:
            headers["X-Long"] = "h" * rng.choice([100, 8000, 9000])
        if rng.random() < 0.1:
            headers["X-Webhook-Signature"] = rng.choice(["sha256=00", "sha256=" + "f" * 64, "junk"])
            headers["X-Webhook-Timestamp"] = rng.choice(
                ["1", "9" * 5000, str(int(time.time())), "x"]
            )
        if rng.random() < 0.1:
            headers.update({
                "X-Fal-Webhook-Request-Id": "r", "X-Fal-Webhook-User-Id": "u",
                "X-Fal-Webhook-Timestamp": rng.choice(["1" * 400, str(int(time.time()))]),
                "X-Fal-Webhook-Signature": rng.choice(["ab" * 64, "zz", ""]),
            })  # fmt: skip
        body = self._body()
        encoding = rng.random()
        if encoding < 0.08:
            headers["Content-Encoding"] = "gzip"
            body = gzip.compress(body) if rng.random() < 0.5 else body
        elif encoding < 0.12:
            headers["Content-Encoding"] = rng.choice(
                ["deflate", "br", "zstd", "x-unknown", "gzip, gzip"]
            )
            body = zlib.compress(body) if "deflate" in headers["Content-Encoding"] else body
        elif encoding < 0.125:  # a bomb: 32 MiB of spaces in ~32 KB
            headers["Content-Encoding"] = "gzip"
            body = BOMB
        await self._send(session, method, url, body, headers)

    async def _send(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: str,
        body: bytes,
        headers: dict[str, str],
    ) -> None:
        try:
            async with session.request(
                method, URL(url, encoded=True), data=body, headers=headers
            ) as resp:
                await resp.read()
                self.statuses[resp.status] += 1
        except (aiohttp.ClientError, ValueError):
            self.statuses[0] += 1  # the server closed on us (e.g. after a 413): not a 5xx

    async def _raw(self) -> None:
        """Requests aiohttp's client will not send: bad headers, lies about length, hangs."""
        rng = self.rng
        hook = rng.choice(self.hooks)
        path = self.prefix + "/eachlabs/" + hook.url.rsplit("/", 1)[1]
        body = _delivery(hook)
        kind = rng.randrange(5)
        if kind == 0:
            head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n".encode()
            data = head + b"X-Webhook-Secret: \xff\xfe\xc3(\r\n\r\n" + body
        elif kind == 1:  # Content-Length larger than what comes: the sender goes away
            data = (
                f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n".encode()
                + body[:20]
            )
        elif kind == 2:
            data = b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"
        elif kind == 3:
            data = b"\x16\x03\x01\x02\x00garbage\r\n\r\n"
        else:
            chunked = b"5\r\nhello\r\nzz\r\n"
            data = (
                f"POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
                + chunked
            )
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        except OSError:
            self.statuses[0] += 1
            return
        try:
            writer.write(data)
            await writer.drain()
            if kind == 1:
                writer.transport.abort()
                self.statuses[0] += 1
                return
            line = await asyncio.wait_for(reader.readline(), 5)
            parts = line.split()
            self.statuses[int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0] += 1
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            self.statuses[0] += 1
        finally:
            writer.close()
            # Closed for good before the test's loop ends (else its socket is left unclosed).
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def run(self, total: int) -> None:
        remaining = total

        async def worker(session: aiohttp.ClientSession) -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await self.one(session)

        connector = aiohttp.TCPConnector(limit=CONCURRENCY, force_close=False)
        async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:
            await asyncio.gather(*(worker(session) for _ in range(CONCURRENCY)))


BOMB = gzip.compress(b" " * (32 * 1024 * 1024), 9)


@pytest.fixture(params=["standalone", "mounted"])
async def served(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[ltx2.WebhookReceiver, Callable[[], str]]]:
    store = ltx2.MemoryStore()
    if request.param == "standalone":
        receiver = ltx2.WebhookReceiver(store=store, max_body=64 * 1024)
        await receiver.start("127.0.0.1", 0)
        yield receiver, lambda: receiver.public_url or ""
        await receiver.stop()
        return
    host = web.Application()

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="host app")

    host.router.add_get("/", hello)
    # As docs/deployment.md ("Security") advises a host app that takes untrusted compressed
    # bodies: leave them encoded, so the receiver decodes within its max_body. (With aiohttp's
    # default the host's server decodes up to 32 MiB per chunk before any handler runs; the
    # receiver still answers 413, see test_receiver_edges.py, but that memory is aiohttp's.)
    runner = web.AppRunner(host, access_log=None, auto_decompress=False)
    receiver = ltx2.WebhookReceiver(None, store=store, max_body=64 * 1024)
    host.add_subapp("/hooks/ltx2", receiver.app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    receiver.public_url = f"http://127.0.0.1:{port}/hooks/ltx2"
    yield receiver, lambda: receiver.public_url or ""
    await runner.cleanup()
    await receiver.stop()


async def test_receiver_fuzz_no_5xx_bounded_memory_jobs_resolve(
    served: tuple[ltx2.WebhookReceiver, Callable[[], str]],
) -> None:
    receiver, base = served
    hooks: list[Hook] = []
    counter = iter(range(10**6))

    def create(url: URL, **kw: Any) -> CallbackResult:
        body = kw["json"]
        job_id = f"p-{next(counter)}"
        hooks.append(Hook(body["webhook_url"], body["webhook_secret"], job_id))
        return CallbackResult(payload={"status": "success", "predictionID": job_id})

    started = time.monotonic()
    async with ltx2.Client(
        "eachlabs", api_key="k-fuzz-0123456789", webhooks=receiver, store=receiver.store,
        confirm_webhooks=False, limits=ltx2.Limits(),
        poll=ltx2.PollPolicy(first=3600, webhook_grace=1000),
    ) as client:  # fmt: skip
        # Only the creates are mocked: aioresponses records every request it sees (through
        # a unittest.mock), which would be a leak of the fuzzer's own making.
        with aioresponses(passthrough=["http://127.0.0.1"]) as m:
            m.post(CREATE, callback=create, repeat=True)
            jobs = [
                await client.submit(image="https://cdn.example.com/cat.jpg", prompt=f"p{i}")
                for i in range(JOBS)
            ]
        by_id = {job.id: job for job in jobs}
        fuzzer = Fuzzer(base(), hooks, seed=11)
        await fuzzer.run(200)  # warm up: first allocations, connection pools
        before = _rss()
        peak = before

        async def sample() -> None:
            nonlocal peak
            while True:
                peak = max(peak, _rss())
                await asyncio.sleep(0.05)

        sampler = asyncio.get_running_loop().create_task(sample())
        await fuzzer.run(REQUESTS)
        sampler.cancel()
        after = _rss()
        # Every job that got a legitimate delivery resolves with its own video.
        sent = [by_id[job_id] for job_id in fuzzer.legit_sent]
        assert len(sent) > JOBS // 2
        videos = await asyncio.wait_for(asyncio.gather(*sent), 30)
        for job, video in zip(sent, videos, strict=True):
            assert video.url == f"https://cdn/{job.id}.mp4"
    elapsed = time.monotonic() - started
    fives = {status: n for status, n in fuzzer.statuses.items() if status >= 500}
    assert fives == {}, fuzzer.statuses
    assert sum(fuzzer.statuses.values()) >= REQUESTS
    assert {s for s in fuzzer.statuses if s} <= {200, 400, 401, 404, 405, 413, 431}
    assert after - before < 64 * 1024 * 1024, (before, after, peak)
    assert peak - before < 64 * 1024 * 1024, (before, after, peak)
    assert elapsed < 60, fuzzer.statuses

"""A real WebhookReceiver on 127.0.0.1 with Eachlabs mocked by aioresponses: deliveries that
beat the create reply, duplicates, failures, forgeries, bad bodies, and missing webhooks."""

from __future__ import annotations

import asyncio
import io
import json
import re
from typing import Any

import aiohttp
import pytest
from aioresponses import CallbackResult, aioresponses
from tests.conftest import FAST_POLL, NO_BACKOFF
from yarl import URL

import ltx2

BASE = "https://api.eachlabs.ai"
CREATE = f"{BASE}/v1/prediction/"
IMAGE = "https://cdn.example.com/cat.jpg"
LOOPBACK = ["http://127.0.0.1"]


def client(rx: ltx2.WebhookReceiver, **kw: Any) -> ltx2.Client:
    kw.setdefault("poll", ltx2.PollPolicy(first=3600, webhook_grace=1000))
    kw.setdefault("retry", NO_BACKOFF)
    return ltx2.Client("eachlabs", api_key="k", webhooks=rx, **kw)


async def post(
    url: str, body: bytes | dict[str, Any], headers: dict[str, str] | None = None
) -> int:
    data: bytes | io.BytesIO = body if isinstance(body, bytes) else json.dumps(body).encode()
    if len(data) > 2**20:  # aiohttp warns (ResourceWarning) of large bodies given as bytes
        data = io.BytesIO(data)
    async with aiohttp.ClientSession() as s, s.post(url, data=data, headers=headers) as r:
        return r.status


def success(pid: str) -> dict[str, Any]:
    return {"exec_id": pid, "status": "succeeded", "output": f"https://cdn/{pid}.mp4", "error": ""}


def mock_eachlabs(
    m: aioresponses, pid: str, status: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Eachlabs' create answers ``pid`` and its status read answers ``status``; returns the
    dict that receives the create's body (webhook_url, webhook_secret) once it is sent."""
    sent: dict[str, Any] = {}

    def create(url: URL, **kw: Any) -> CallbackResult:
        sent.update(kw["json"])
        return CallbackResult(payload={"status": "success", "predictionID": pid})

    m.post(CREATE, callback=create)
    if status is not None:
        m.get(f"{BASE}/v1/prediction/{pid}", payload=status, repeat=True)
    return sent


async def test_delivery_before_create_reply_resolves_job(receiver: ltx2.WebhookReceiver) -> None:
    acks: list[int] = []

    async def create(url: URL, **kw: Any) -> CallbackResult:
        body = kw["json"]
        # Eachlabs finishes and calls back before its create reply reaches us.
        acks.append(
            await post(body["webhook_url"], success("p-early"),
                       {"X-Webhook-Secret": body["webhook_secret"]})
        )  # fmt: skip
        return CallbackResult(payload={"status": "success", "predictionID": "p-early"})

    with aioresponses(passthrough=LOOPBACK) as m:
        m.post(CREATE, callback=create)
        m.get(
            f"{BASE}/v1/prediction/p-early",
            payload={"status": "success", "output": "https://cdn/p-early.mp4"},
            repeat=True,
        )
        async with client(receiver) as c:
            job = await c.submit(image=IMAGE, prompt="p")
            video = await job.result(timeout=5)
        gets = m.requests.get(("GET", URL(f"{BASE}/v1/prediction/p-early")), [])
    assert acks == [200]
    assert video.url == "https://cdn/p-early.mp4"
    assert len(gets) == 1  # the delivery was confirmed with exactly one GET


async def test_webhook_resolves_and_duplicate_is_ignored(receiver: ltx2.WebhookReceiver) -> None:
    with aioresponses(passthrough=LOOPBACK) as m:
        sent = mock_eachlabs(m, "p-dup", {"status": "success", "output": "https://cdn/p-dup.mp4"})
        async with client(receiver) as c:
            job = await c.submit(image=IMAGE, prompt="p")
            assert sent["webhook_url"].startswith(f"{receiver.public_url}/eachlabs/")
            token = sent["webhook_url"].rsplit("/", 1)[1]
            assert len(token) >= 22  # 128 bits, urlsafe base64
            headers = {"X-Webhook-Secret": sent["webhook_secret"]}
            first = await post(sent["webhook_url"], success("p-dup"), headers)
            video = await job.result(timeout=5)
            again = await post(sent["webhook_url"], success("p-dup"), headers)
            late_failure = {"exec_id": "p-dup", "status": "failed", "output": "", "error": "x"}
            late = await post(sent["webhook_url"], late_failure, headers)
            await asyncio.sleep(0.05)
            assert job.status is ltx2.JobStatus.SUCCEEDED
    assert (first, again, late) == (200, 200, 200)
    assert video.url == "https://cdn/p-dup.mp4"
    assert receiver.stats["duplicate"] >= 1


async def test_failed_delivery_raises_job_failed(receiver: ltx2.WebhookReceiver) -> None:
    with aioresponses(passthrough=LOOPBACK) as m:
        sent = mock_eachlabs(
            m, "p-fail", {"status": "error", "message": "Content policy violation"}
        )
        async with client(receiver) as c:
            job = await c.submit(image=IMAGE, prompt="p")
            body = {"exec_id": "p-fail", "status": "failed", "output": "",
                    "error": "Content policy violation"}  # fmt: skip
            status = await post(
                sent["webhook_url"], body, {"X-Webhook-Secret": sent["webhook_secret"]}
            )
            with pytest.raises(ltx2.JobFailedError) as info:
                await job.result(timeout=5)
    assert status == 200
    assert info.value.message == "Content policy violation"


async def test_forged_deliveries_are_refused(receiver: ltx2.WebhookReceiver) -> None:
    with aioresponses(passthrough=LOOPBACK) as m:
        sent = mock_eachlabs(m, "p-forge")
        async with client(receiver) as c:
            job = await c.submit(image=IMAGE, prompt="p")
            url = sent["webhook_url"]
            secret = {"X-Webhook-Secret": sent["webhook_secret"]}
            wrong_token = url[:-4] + ("AAAA" if not url.endswith("AAAA") else "BBBB")
            assert await post(wrong_token, success("p-forge"), secret) == 404
            assert await post(url, success("p-forge"), {"X-Webhook-Secret": "guess"}) == 401
            assert await post(url, success("p-forge")) == 401
            other_provider = url.replace("/eachlabs/", "/fal/")
            assert await post(other_provider, success("p-forge"), secret) == 404
            assert await post(f"{receiver.public_url}/nope/abc", success("p-forge")) == 404
            await asyncio.sleep(0.05)
            assert job.status is ltx2.JobStatus.QUEUED
            assert not job.done


async def test_bad_json_and_oversize_bodies(receiver: ltx2.WebhookReceiver) -> None:
    with aioresponses(passthrough=LOOPBACK) as m:
        sent = mock_eachlabs(m, "p-bad")
        async with client(receiver) as c:
            job = await c.submit(image=IMAGE, prompt="p")
            url = sent["webhook_url"]
            secret = {"X-Webhook-Secret": sent["webhook_secret"]}
            assert await post(url, b"{not json", secret) == 400
            assert await post(url, b'["a list"]', secret) == 400
            assert await post(url, {"exec_id": "p-bad"}, secret) == 400  # no status
            big = b'{"pad": "' + b"x" * (1024 * 1024 + 10) + b'"}'
            assert await post(url, big, secret) == 413
            # the receiver is still up and the job still waits
            m.get(f"{BASE}/v1/prediction/p-bad", payload={"status": "success", "output": "u"})
            assert await post(url, success("p-bad"), secret) == 200
            assert (await job.result(timeout=5)).url == "u"


async def test_webhook_that_never_comes_is_resolved_by_the_poller(
    receiver: ltx2.WebhookReceiver,
) -> None:
    with aioresponses(passthrough=LOOPBACK) as m:
        m.post(CREATE, payload={"status": "success", "predictionID": "p-quiet"})
        m.get(
            f"{BASE}/v1/prediction/p-quiet",
            payload={"status": "success", "output": "https://cdn/q.mp4"},
        )
        async with client(receiver, poll=FAST_POLL) as c:
            job = await c.submit(image=IMAGE, prompt="p")
            video = await job.result(timeout=5)
    assert video.url == "https://cdn/q.mp4"


async def test_unconfirmed_delivery_does_not_resolve(receiver: ltx2.WebhookReceiver) -> None:
    """A delivery whose status read disagrees (still processing) is dropped, not trusted."""
    with aioresponses(passthrough=LOOPBACK) as m:
        sent = mock_eachlabs(m, "p-conf")
        m.get(f"{BASE}/v1/prediction/p-conf", payload={"status": "processing"})
        async with client(receiver) as c:
            job = await c.submit(image=IMAGE, prompt="p")
            headers = {"X-Webhook-Secret": sent["webhook_secret"]}
            assert await post(sent["webhook_url"], success("p-conf"), headers) == 200
            for _ in range(100):
                if m.requests.get(("GET", URL(f"{BASE}/v1/prediction/p-conf"))):
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.02)
            assert job.status is ltx2.JobStatus.RUNNING
            assert not job.done


async def test_receiver_mounts_as_subapp() -> None:
    from aiohttp import web

    rx = ltx2.WebhookReceiver("http://127.0.0.1:1/hooks/ltx2")
    app = web.Application()
    app.add_subapp("/hooks/ltx2", rx.app)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with aiohttp.ClientSession() as s:
            async with s.get(f"http://127.0.0.1:{port}/hooks/ltx2/health") as r:
                assert r.status == 200
            url = f"http://127.0.0.1:{port}/hooks/ltx2/eachlabs/{'A' * 22}"
            async with s.post(url, json=success("x")) as r:
                assert r.status == 404
    finally:
        await runner.cleanup()


async def test_fifty_jobs_never_exceed_limits() -> None:
    """50 jobs at once: never more than 10 running, never more than N creates a window."""
    period = 0.3
    limits = ltx2.Limits(creates_per_period=20, max_concurrent=10, period=period)
    loop = asyncio.get_running_loop()
    creates: list[float] = []
    running: set[str] = set()
    peak = 0
    polls: dict[str, int] = {}

    def create(url: URL, **kw: Any) -> CallbackResult:
        nonlocal peak
        pid = f"p{len(creates)}"
        creates.append(loop.time())
        running.add(pid)
        peak = max(peak, len(running))
        return CallbackResult(payload={"status": "success", "predictionID": pid})

    def status(url: URL, **kw: Any) -> CallbackResult:
        pid = url.path.rsplit("/", 1)[1]
        polls[pid] = polls.get(pid, 0) + 1
        if polls[pid] < 2:
            return CallbackResult(payload={"status": "processing"})
        running.discard(pid)
        return CallbackResult(payload={"status": "success", "output": f"https://cdn/{pid}"})

    with aioresponses() as m:
        m.post(CREATE, callback=create, repeat=True)
        m.get(re.compile(rf"^{re.escape(BASE)}/v1/prediction/p\d+$"), callback=status, repeat=True)
        async with ltx2.Client(
            "eachlabs", api_key="k-limits", poll=FAST_POLL, retry=NO_BACKOFF, limits=limits
        ) as c:
            jobs = await asyncio.gather(*(c.submit(image=IMAGE, prompt=f"{i}") for i in range(50)))
            videos = await asyncio.gather(*(j.result(timeout=30) for j in jobs))
    assert len(videos) == 50
    assert len(creates) == 50
    assert peak <= 10
    for i, t in enumerate(creates):
        in_window = [u for u in creates[i:] if u - t < period]
        assert len(in_window) <= 20


def signed(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The headers of a signed delivery (docs.eachlabs.ai, eachlabs/mintlify-docs
    api/webhooks/verifying-signatures.mdx), the legacy secret echo included."""
    import hashlib
    import hmac
    import time

    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {
        "X-Webhook-Signature": f"sha256={digest}",
        "X-Webhook-Timestamp": stamp,
        "X-Webhook-Secret": secret,
    }


async def test_signed_documented_failure_resolves_with_its_message_and_code(
    receiver: ltx2.WebhookReceiver,
) -> None:
    from tests.unit.providers._helpers import load_fixture

    # api/webhooks/payload-reference.mdx "Prediction Failed", signed as
    # api/webhooks/verifying-signatures.mdx says.
    documented = load_fixture("eachlabs", "webhook_failed.json")
    with aioresponses(passthrough=LOOPBACK) as m:
        sent = mock_eachlabs(m, "p-signed")
        async with client(receiver, confirm_webhooks=False) as c:
            job = await c.submit(image=IMAGE, prompt="p")
            raw = json.dumps({**documented, "exec_id": "p-signed"}, indent=2).encode()
            status = await post(sent["webhook_url"], raw, signed(sent["webhook_secret"], raw))
            with pytest.raises(ltx2.JobFailedError) as info:
                await job.result(timeout=5)
    assert status == 200
    error = documented["output"][0]["error"]
    assert info.value.message == error["error_message"]
    assert info.value.code == "EXECUTION_TIMEOUT"


async def test_bad_signatures_are_refused_even_with_the_right_secret_header(
    receiver: ltx2.WebhookReceiver,
) -> None:
    with aioresponses(passthrough=LOOPBACK) as m:
        sent = mock_eachlabs(m, "p-sig")
        async with client(receiver, confirm_webhooks=False) as c:
            job = await c.submit(image=IMAGE, prompt="p")
            url, secret = sent["webhook_url"], sent["webhook_secret"]
            raw = json.dumps(success("p-sig")).encode()
            altered = raw.replace(b"p-sig.mp4", b"evil.mp4")
            assert await post(url, altered, signed(secret, raw)) == 401  # body changed
            stale = signed(secret, raw, timestamp=1_000_000_000)
            assert await post(url, raw, stale) == 401  # outside 300 s
            wrong = signed("another-secret", raw)
            wrong["X-Webhook-Secret"] = secret
            assert await post(url, raw, wrong) == 401  # signed with another key
            bad_stamp = {**signed(secret, raw), "X-Webhook-Timestamp": "soon"}
            assert await post(url, raw, bad_stamp) == 401
            await asyncio.sleep(0.05)
            assert not job.done
            # Re-serialized JSON does not verify; the raw bytes as signed do.
            assert await post(url, raw, signed(secret, raw)) == 200
            video = await job.result(timeout=5)
    assert video.url == "https://cdn/p-sig.mp4"


async def test_replayed_delivery_of_another_job_before_create_reply_is_discarded(
    receiver: ltx2.WebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    """A delivery naming another job arrives before the create reply (a replay under this
    job's token): it must not resolve the new job with the other job's video (issue 11,
    item 7). Unconfirmed deliveries are the case where nothing else would catch it."""

    async def create(url: URL, **kw: Any) -> CallbackResult:
        body = kw["json"]
        acks.append(
            await post(body["webhook_url"], success("p-OTHER"),
                       {"X-Webhook-Secret": body["webhook_secret"]})
        )  # fmt: skip
        return CallbackResult(payload={"status": "success", "predictionID": "p-new"})

    acks: list[int] = []
    with aioresponses(passthrough=LOOPBACK) as m:
        m.post(CREATE, callback=create)
        m.get(
            f"{BASE}/v1/prediction/p-new",
            payload={"status": "success", "output": "https://cdn/p-new.mp4"},
            repeat=True,
        )
        poll = ltx2.PollPolicy(first=0.05, min_interval=0.05, max_interval=0.1, webhook_grace=0.001)
        async with client(receiver, confirm_webhooks=False, poll=poll) as c:
            job = await c.submit(image=IMAGE, prompt="p")
            video = await asyncio.wait_for(job.result(), 10)
    assert acks == [200]  # the receiver took it (the token was right)
    assert video.url == "https://cdn/p-new.mp4"  # never the other job's video
    assert any("p-OTHER" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)

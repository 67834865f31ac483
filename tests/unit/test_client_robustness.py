"""``Client`` under two kinds of trouble, against aioresponses (no sockets):

- a ``submit`` cancelled while its create is in flight still reads the reply, records the
  provider's id and cancels the job where the provider can (seed 000: Eachlabs
  ``POST /v1/prediction/{id}/cancel``; seed 004: AI/ML API has no cancel);
- a store that fails (Redis away longer than its retries, a locked SQLite file) in the
  client's background work — a status stream, a delivery's confirmation, a delivery written
  from a store notification — costs a log line and a poll, never the client's task group.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from aioresponses import CallbackResult, aioresponses
from tests.conftest import NO_BACKOFF
from yarl import URL

import ltx2
import ltx2._submitting as submitting_module

EACHLABS = "https://api.eachlabs.ai"
EACHLABS_CREATE = f"{EACHLABS}/v1/prediction/"
AIMLAPI_CREATE = "https://api.aimlapi.com/v2/video/generations"
FAL_CREATE = "https://queue.fal.run/fal-ai/ltx-2/image-to-video/fast"
FAL_REQUESTS = "https://queue.fal.run/fal-ai/ltx-2/requests"
IMAGE = "https://cdn.example.com/cat.jpg"
KEY = "sk-robust-secret-123"
#: Only reached when a test fails.
PATIENCE = 5.0
#: The poller never polls on its own schedule's first round (first=3600, and with a webhook
#: expected the grace is huge); once asked (poll_now), it polls again within 0.05 s.
HANDS_OFF = ltx2.PollPolicy(first=3600, webhook_grace=1000, min_interval=0.01, max_interval=0.05)


def stray_tasks(before: set[asyncio.Task[Any]]) -> list[str]:
    """Tasks started since ``before`` and still running, other than the client's poller."""
    names = []
    for task in asyncio.all_tasks() - before:
        name = task.get_name()
        if name.startswith("Task-"):
            name = getattr(task.get_coro(), "__qualname__", name)
        own = name.startswith("ltx2._poller.")
        if task is not asyncio.current_task() and not task.done() and not own:
            names.append(name)
    return names


def requests_to(m: aioresponses, method: str, url: str) -> list[object]:
    return m.requests.get((method, URL(url)), [])


class BlockedCreate:
    """A create whose reply waits until :meth:`release` (so it is in flight for as long as a
    test wants), then answers ``payload`` (or ``status``)."""

    def __init__(self, payload: dict[str, Any], status: int = 200) -> None:
        self.payload = payload
        self.status = status
        self.arrived = asyncio.Event()
        self.released = asyncio.Event()

    def release(self) -> None:
        self.released.set()

    async def reply(self, url: URL, **kw: Any) -> CallbackResult:
        self.arrived.set()
        await self.released.wait()
        return CallbackResult(status=self.status, payload=self.payload)


async def cancel_in_flight(submit: Callable[[], Any], create: BlockedCreate) -> asyncio.Task[Any]:
    """Start ``submit()``, cancel it once its create is at the provider, check it keeps
    waiting for the reply, then let the reply come. Returns the finished task."""
    task: asyncio.Task[Any] = asyncio.create_task(submit())
    with anyio.fail_after(PATIENCE):
        await create.arrived.wait()
    task.cancel()
    await asyncio.sleep(0.02)
    assert not task.done()  # still waiting, shielded, for the reply
    create.release()
    with anyio.fail_after(PATIENCE):
        await asyncio.wait([task])
    return task


# -- a submit cancelled while its create is in flight ----------------------------------------


async def test_cancelled_submit_cancels_the_job_once_the_create_reply_comes() -> None:
    create = BlockedCreate({"status": "success", "message": "ok", "predictionID": "p-late"})
    store = ltx2.MemoryStore()
    with aioresponses() as m:
        m.post(EACHLABS_CREATE, callback=create.reply)
        m.post(f"{EACHLABS}/v1/prediction/p-late/cancel", payload={"status": "success"})
        m.get(f"{EACHLABS}/v1/prediction/p-late", payload={"status": "cancelled"}, repeat=True)
        async with ltx2.Client("eachlabs", api_key=KEY, store=store, retry=NO_BACKOFF) as c:
            before = asyncio.all_tasks()
            task = await cancel_in_flight(lambda: c.submit(image=IMAGE, prompt="p"), create)
            assert task.cancelled()  # the CancelledError came out of submit
            assert stray_tasks(before) == []
            record = await store.find("eachlabs", "p-late")
            assert c._resolver.jobs == {}  # nothing of it is left in the client
        (cancel,) = requests_to(m, "POST", f"{EACHLABS}/v1/prediction/p-late/cancel")
        assert cancel.kwargs["headers"] == {"X-API-Key": KEY}  # type: ignore[attr-defined]
    assert record is not None
    assert record.status is ltx2.JobStatus.CANCELLED
    assert await store.unfinished("eachlabs") == []


async def test_anyio_cancelled_submit_cancels_the_job_and_reraises_once() -> None:
    """The same through an anyio cancel scope, which re-delivers its cancellation at every
    unshielded await: the scope catches exactly one cancellation, the clean-up completes."""
    create = BlockedCreate({"status": "success", "predictionID": "p-scope"})
    store = ltx2.MemoryStore()
    seen: list[type[BaseException]] = []
    with aioresponses() as m:
        m.post(EACHLABS_CREATE, callback=create.reply)
        m.post(f"{EACHLABS}/v1/prediction/p-scope/cancel", payload={"status": "success"})
        m.get(f"{EACHLABS}/v1/prediction/p-scope", payload={"status": "cancelled"}, repeat=True)
        async with ltx2.Client("eachlabs", api_key=KEY, store=store, retry=NO_BACKOFF) as c:
            before = asyncio.all_tasks()

            async def submit() -> None:
                try:
                    await c.submit(image=IMAGE, prompt="p")
                except BaseException as exc:
                    seen.append(type(exc))
                    raise

            with anyio.fail_after(PATIENCE):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(submit)
                    await create.arrived.wait()
                    asyncio.get_running_loop().call_later(0.02, create.release)
                    tg.cancel_scope.cancel()
            assert tg.cancel_scope.cancelled_caught
            assert stray_tasks(before) == []
        assert len(requests_to(m, "POST", f"{EACHLABS}/v1/prediction/p-scope/cancel")) == 1
    assert seen == [asyncio.CancelledError]
    record = await store.find("eachlabs", "p-scope")
    assert record is not None
    assert record.status is ltx2.JobStatus.CANCELLED


async def test_cancelled_submit_without_a_reply_in_the_grace_leaves_unknown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(submitting_module, "CREATE_CANCEL_GRACE", 0.05)
    create = BlockedCreate({"status": "success", "predictionID": "p-never"})  # never released
    store = ltx2.MemoryStore()
    with aioresponses() as m:
        m.post(EACHLABS_CREATE, callback=create.reply)
        async with ltx2.Client("eachlabs", api_key=KEY, store=store, retry=NO_BACKOFF) as c:
            before = asyncio.all_tasks()
            task = asyncio.create_task(c.submit(image=IMAGE, prompt="p"))
            with anyio.fail_after(PATIENCE):
                await create.arrived.wait()
            task.cancel()
            with anyio.fail_after(PATIENCE):
                await asyncio.wait([task])
            assert task.cancelled()
            assert stray_tasks(before) == []  # the create's own task was stopped too
        assert not any("cancel" in str(url) for _, url in m.requests)
    (record,) = await store.unfinished("eachlabs")
    assert record.job_id is None
    assert record.status is ltx2.JobStatus.UNKNOWN


async def test_cancelled_submit_whose_reply_is_a_400_forgets_the_record() -> None:
    """The reply that does come says nothing started: the rules for a failed create apply
    (the record goes), and nothing is cancelled."""
    create = BlockedCreate({"status": "error", "message": "Invalid input"}, status=400)
    store = ltx2.MemoryStore()
    with aioresponses() as m:
        m.post(EACHLABS_CREATE, callback=create.reply)
        async with ltx2.Client("eachlabs", api_key=KEY, store=store, retry=NO_BACKOFF) as c:
            task = await cancel_in_flight(lambda: c.submit(image=IMAGE, prompt="p"), create)
            assert task.cancelled()
        assert not any("cancel" in str(url) for _, url in m.requests)
    assert await store.unfinished("eachlabs") == []


async def test_cancelled_submit_on_a_provider_without_cancel_keeps_the_job_for_resume() -> None:
    """AI/ML API cannot cancel (seed 004): the job runs on, so its record keeps the id and
    stays pending, and resume() re-attaches it."""
    create = BlockedCreate({"id": "g-1", "status": "queued"})
    store = ltx2.MemoryStore()
    with aioresponses() as m:
        m.post(AIMLAPI_CREATE, callback=create.reply)
        m.get(
            re.compile(r"^https://api\.aimlapi\.com/v2/video/generations\?generation_id=g-1$"),
            payload={"id": "g-1", "status": "generating"},
            repeat=True,
        )
        async with ltx2.Client(
            "aimlapi", api_key=KEY, store=store, retry=NO_BACKOFF, poll=HANDS_OFF
        ) as c:
            before = asyncio.all_tasks()
            task = await cancel_in_flight(lambda: c.submit(image=IMAGE, prompt="p"), create)
            assert task.cancelled()
            assert stray_tasks(before) == []
            (record,) = await store.unfinished("aimlapi")
            assert record.job_id == "g-1"
            assert record.status is ltx2.JobStatus.QUEUED
            (job,) = await c.resume()
            assert job.id == "g-1"
            assert job.status is ltx2.JobStatus.RUNNING  # resume's first poll
        assert [method for method, _ in m.requests] == ["POST", "GET"]


# -- a failing store in background work ------------------------------------------------------


class FlakyStore(ltx2.MemoryStore):
    """A memory store whose ``update`` raises ``ConnectionError`` ``failures`` times (as a
    Redis store does once redis-py has given up), then works."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.failed = 0

    async def update(self, key: str, update: ltx2.StatusUpdate) -> Any:
        if self.failed < self.failures:
            self.failed += 1
            raise ConnectionError("store unreachable")
        return await super().update(key, update)


def fal_job(m: aioresponses, job_id: str, events: list[str]) -> None:
    """fal's queue for one request: create, an SSE status stream sending ``events``, status
    COMPLETED and the result (seed 001)."""
    base = f"{FAL_REQUESTS}/{job_id}"
    m.post(
        FAL_CREATE,
        payload={"request_id": job_id, "response_url": base, "status_url": f"{base}/status",
                 "cancel_url": f"{base}/cancel"},
    )  # fmt: skip
    stream = "".join(f"data: {event}\n\n" for event in events)
    m.get(
        re.compile(rf"^{re.escape(base)}/status/stream\?logs=1$"),
        body=stream,
        content_type="text/event-stream",
    )
    m.get(
        re.compile(rf"^{re.escape(base)}/status\?logs=1$"),
        payload={"status": "COMPLETED", "request_id": job_id},
        repeat=True,
    )
    m.get(base, payload={"video": {"url": f"https://cdn.example.com/{job_id}.mp4"}}, repeat=True)


async def test_status_stream_outlives_a_failing_store(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ltx2")
    store = FlakyStore(failures=2)  # the stream's write, then the poll it hands over to
    with aioresponses() as m:
        fal_job(m, "r-1", ['{"status": "IN_PROGRESS"}', '{"status": "COMPLETED"}'])
        fal_job(m, "r-2", ['{"status": "COMPLETED"}'])
        async with ltx2.Client(
            "fal", api_key=KEY, store=store, retry=NO_BACKOFF, poll=HANDS_OFF
        ) as c:
            first = await c.submit(image=IMAGE, prompt="one")
            video = await first.result(timeout=PATIENCE)
            assert store.failed == 2
            second = await c.submit(image=IMAGE, prompt="two")
            assert (await second.result(timeout=PATIENCE)).job_id == "r-2"
            assert c._lifecycle.running  # the client's task group is still up
    assert video.url == "https://cdn.example.com/r-1.mp4"
    assert "status stream of fal job" in caplog.text
    assert KEY not in caplog.text


async def test_delivery_confirmation_outlives_a_failing_store(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Eachlabs deliveries are confirmed by a status read (DESIGN.md): the confirmation's
    write fails, then the poll's; the job still resolves and the client goes on."""
    caplog.set_level(logging.INFO, logger="ltx2")
    store = FlakyStore(failures=2)
    with aioresponses() as m:
        for pid in ("p-a", "p-b"):
            m.post(EACHLABS_CREATE, payload={"status": "success", "predictionID": pid})
            m.get(
                f"{EACHLABS}/v1/prediction/{pid}",
                payload={"status": "success", "output": f"https://cdn.example.com/{pid}.mp4"},
                repeat=True,
            )
        async with ltx2.Client(
            "eachlabs", api_key=KEY, store=store, retry=NO_BACKOFF, poll=HANDS_OFF
        ) as c:
            for pid in ("p-a", "p-b"):
                job = await c.submit(image=IMAGE, prompt=pid)
                record = await store.find("eachlabs", pid)
                assert record is not None
                # What the receiver does with an authenticated delivery.
                delivered = ltx2.StatusUpdate(
                    ltx2.JobStatus.SUCCEEDED, "succeeded",
                    video_url=f"https://cdn.example.com/{pid}.mp4",
                )  # fmt: skip
                await store.deliver(record.token, delivered, pid)
                assert (await job.result(timeout=PATIENCE)).url.endswith(f"{pid}.mp4")
            assert store.failed == 2
            assert c._lifecycle.running  # the client's task group is still up
    assert "confirming a eachlabs delivery" in caplog.text
    assert KEY not in caplog.text


async def test_unconfirmed_delivery_write_failure_does_not_reach_the_deliverer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With confirmation off, a delivery is written from the store's notification: that
    write failing must not fail the one who delivered (the receiver, another replica's
    subscriber); a poll reads the status instead."""
    caplog.set_level(logging.INFO, logger="ltx2")
    store = FlakyStore(failures=1)
    with aioresponses() as m:
        m.post(EACHLABS_CREATE, payload={"status": "success", "predictionID": "p-c"})
        m.get(
            f"{EACHLABS}/v1/prediction/p-c",
            payload={"status": "success", "output": "https://cdn.example.com/p-c.mp4"},
            repeat=True,
        )
        async with ltx2.Client(
            "eachlabs", api_key=KEY, store=store, retry=NO_BACKOFF, poll=HANDS_OFF,
            confirm_webhooks=False,
        ) as c:  # fmt: skip
            job = await c.submit(image=IMAGE, prompt="p")
            record = await store.find("eachlabs", "p-c")
            assert record is not None
            delivered = ltx2.StatusUpdate(
                ltx2.JobStatus.SUCCEEDED, "succeeded", video_url="https://cdn.example.com/p-c.mp4"
            )
            _, accepted = await store.deliver(record.token, delivered, "p-c")  # does not raise
            assert accepted
            assert (await job.result(timeout=PATIENCE)).url.endswith("p-c.mp4")
            assert store.failed == 1
    assert "recording a eachlabs delivery" in caplog.text

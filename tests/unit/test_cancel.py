"""``Job.cancel()`` (issue 10, item 11): a cancel is a request. The job is CANCELLED when the
provider's status says so; a job that finishes anyway resolves with its (paid) video, and
``cancel()`` returns False: too late. Eachlabs' cancel is best effort (seed 000,
docs.eachlabs.ai); fal's only holds for queued requests (fal queue docs: a running one is only
signalled, a finished one answers ALREADY_COMPLETED)."""

from __future__ import annotations

import asyncio
import re

import anyio
import pytest
from aioresponses import aioresponses
from tests.conftest import NO_BACKOFF

import ltx2

EACHLABS = "https://api.eachlabs.ai"
EACHLABS_CREATE = f"{EACHLABS}/v1/prediction/"
FAL_CREATE = "https://queue.fal.run/fal-ai/ltx-2/image-to-video/fast"
FAL_REQUESTS = "https://queue.fal.run/fal-ai/ltx-2/requests"
IMAGE = "https://cdn.example.com/cat.jpg"
VIDEO = "https://cdn.example.com/out.mp4"
KEY = "sk-cancel-secret"
PATIENCE = 5.0
#: The poller stays away until asked (only the cancel's own reads reach the status URL).
HANDS_OFF = ltx2.PollPolicy(first=3600, webhook_grace=1000, min_interval=0.01, max_interval=0.02)


def eachlabs(m: aioresponses, pid: str, statuses: list[dict[str, object]]) -> None:
    m.post(EACHLABS_CREATE, payload={"status": "success", "predictionID": pid})
    m.post(f"{EACHLABS}/v1/prediction/{pid}/cancel", payload={"status": "success"})
    url = f"{EACHLABS}/v1/prediction/{pid}"
    for body in statuses[:-1]:
        m.get(url, payload=body)
    m.get(url, payload=statuses[-1], repeat=True)


def client(provider: str = "eachlabs", **kw: object) -> ltx2.Client:
    return ltx2.Client(provider, api_key=KEY, retry=NO_BACKOFF, poll=HANDS_OFF, **kw)  # type: ignore[arg-type]


async def test_a_job_that_finishes_despite_the_cancel_resolves_with_its_video() -> None:
    store = ltx2.MemoryStore()
    with aioresponses() as m:
        eachlabs(m, "p-done", [{"status": "success", "output": VIDEO}])
        async with client(store=store) as c:
            job = await c.submit(image=IMAGE, prompt="p")
            assert await job.cancel() is False  # too late
            assert job.status is ltx2.JobStatus.SUCCEEDED
            video = await job
    assert video.url == VIDEO
    record = await store.find("eachlabs", "p-done")
    assert record is not None
    assert record.status is ltx2.JobStatus.SUCCEEDED


async def test_the_job_is_cancelled_once_its_status_says_so() -> None:
    with aioresponses() as m:
        eachlabs(m, "p-c", [{"status": "processing"}, {"status": "cancelled"}])
        async with client() as c:
            job = await c.submit(image=IMAGE, prompt="p")
            assert await job.cancel() is True
            assert job.status is ltx2.JobStatus.CANCELLED
            with pytest.raises(ltx2.JobCancelledError):
                await job


async def test_a_cancel_not_confirmed_yet_leaves_the_job_followed_until_it_ends() -> None:
    """Still processing after the cancel's reads: not CANCELLED, and the job goes on to
    resolve with whatever comes (here: the video)."""
    statuses: list[dict[str, object]] = [{"status": "processing"}] * 4
    with aioresponses() as m:
        eachlabs(m, "p-slow", [*statuses, {"status": "success", "output": VIDEO}])
        async with client() as c:
            job = await c.submit(image=IMAGE, prompt="p")
            assert await job.cancel() is False
            assert job.status is not ltx2.JobStatus.CANCELLED
            with anyio.fail_after(PATIENCE):
                video = await job
    assert video.url == VIDEO


async def test_fal_already_completed_answer_keeps_the_result() -> None:
    base = f"{FAL_REQUESTS}/r-1"
    with aioresponses() as m:
        m.post(
            re.compile(rf"^{re.escape(FAL_CREATE)}(\?.*)?$"),
            payload={"request_id": "r-1", "response_url": base, "status_url": f"{base}/status",
                     "cancel_url": f"{base}/cancel"},
        )  # fmt: skip
        m.put(f"{base}/cancel", status=409, payload={"status": "ALREADY_COMPLETED"})
        m.get(
            re.compile(rf"^{re.escape(base)}/status(\?.*)?$"),
            payload={"status": "COMPLETED"},
            repeat=True,
        )
        m.get(base, payload={"video": {"url": VIDEO}}, repeat=True)
        # A receiver is given so that no status stream is opened (polls only).
        rx = ltx2.WebhookReceiver("https://hooks.example.com/ltx2")
        async with client("fal", webhooks=rx) as c:
            job = await c.submit(image=IMAGE, prompt="p")
            assert await job.cancel() is False
            video = await job
    assert video.url == VIDEO


async def test_a_cancelled_submit_whose_job_had_finished_is_not_recorded_cancelled() -> None:
    """The same rule for the cancel a cancelled ``submit`` sends for its create in flight."""
    arrived, released = asyncio.Event(), asyncio.Event()

    async def slow_create(url: object, **kw: object) -> object:
        from aioresponses import CallbackResult

        arrived.set()
        await released.wait()
        return CallbackResult(payload={"status": "success", "predictionID": "p-fin"})

    store = ltx2.MemoryStore()
    with aioresponses() as m:
        m.post(EACHLABS_CREATE, callback=slow_create)
        m.post(f"{EACHLABS}/v1/prediction/p-fin/cancel", payload={"status": "success"})
        m.get(f"{EACHLABS}/v1/prediction/p-fin", payload={"status": "success", "output": VIDEO})
        async with client(store=store) as c:
            task = asyncio.create_task(c.submit(image=IMAGE, prompt="p"))
            await arrived.wait()
            task.cancel()
            await asyncio.sleep(0.01)
            released.set()
            with anyio.fail_after(PATIENCE):
                await asyncio.wait([task])
    record = await store.find("eachlabs", "p-fin")
    assert record is not None
    assert record.status is ltx2.JobStatus.SUCCEEDED
    assert record.update is not None
    assert record.update.video_url == VIDEO

"""Issue 10, item 12, as a user sees each: a delivery whose confirming read still says
"processing" is re-checked soon; ``client.job(id)`` resolves when awaited; ``as_completed``
left by ``break`` creates nothing more; a cancelled ``generate()`` cancels its job at the
provider. (A second event loop: tests/unit/test_lifecycle.py.)"""

from __future__ import annotations

import asyncio
import gc
import re
from typing import Any

import anyio
import pytest
from aioresponses import aioresponses
from tests.conftest import NO_BACKOFF
from yarl import URL

import ltx2

EACHLABS = "https://api.eachlabs.ai"
EACHLABS_CREATE = f"{EACHLABS}/v1/prediction/"
IMAGE = "https://cdn.example.com/cat.jpg"
VIDEO = "https://cdn.example.com/out.mp4"
KEY = "sk-small-secret"
PATIENCE = 5.0
#: The poller never polls on its own (with a webhook expected, its first look is far away).
HANDS_OFF = ltx2.PollPolicy(first=3600, webhook_grace=1000, min_interval=0.01, max_interval=0.05)
FAST = ltx2.PollPolicy(first=0.01, min_interval=0.01, max_interval=0.02)


def creates(m: aioresponses) -> int:
    return len(m.requests.get(("POST", URL(EACHLABS_CREATE)), []))


async def test_a_delivery_whose_confirming_read_lags_is_rechecked_soon() -> None:
    """Eachlabs' status API can lag its own webhook: the first confirming GET still says
    "processing". The job resolves from a re-check, not from a poll minutes later."""
    store = ltx2.MemoryStore()
    url = f"{EACHLABS}/v1/prediction/p-lag"
    with aioresponses() as m:
        m.post(EACHLABS_CREATE, payload={"status": "success", "predictionID": "p-lag"})
        m.get(url, payload={"status": "processing"})
        m.get(url, payload={"status": "success", "output": VIDEO}, repeat=True)
        async with ltx2.Client(
            "eachlabs", api_key=KEY, store=store, retry=NO_BACKOFF, poll=HANDS_OFF
        ) as c:
            job = await c.submit(image=IMAGE, prompt="p")
            record = await store.find("eachlabs", "p-lag")
            assert record is not None
            delivered = ltx2.StatusUpdate(ltx2.JobStatus.SUCCEEDED, "succeeded", video_url=VIDEO)
            await store.deliver(record.token, delivered, "p-lag")  # what the receiver does
            with anyio.fail_after(PATIENCE):
                video = await job
    assert video.url == VIDEO


async def test_a_false_delivery_is_still_dropped_after_the_rechecks() -> None:
    store = ltx2.MemoryStore()
    url = f"{EACHLABS}/v1/prediction/p-false"
    with aioresponses() as m:
        m.post(EACHLABS_CREATE, payload={"status": "success", "predictionID": "p-false"})
        m.get(url, payload={"status": "processing"}, repeat=True)
        async with ltx2.Client(
            "eachlabs", api_key=KEY, store=store, retry=NO_BACKOFF, poll=HANDS_OFF
        ) as c:
            job = await c.submit(image=IMAGE, prompt="p")
            record = await store.find("eachlabs", "p-false")
            assert record is not None
            forged = ltx2.StatusUpdate(ltx2.JobStatus.SUCCEEDED, "succeeded", video_url=VIDEO)
            await store.deliver(record.token, forged, "p-false")
            with anyio.fail_after(PATIENCE):
                while (rec := await store.get(record.key)) and rec.delivery is not None:
                    await asyncio.sleep(0.01)
            assert not job.done
            assert 2 <= len(m.requests[("GET", URL(url))]) <= 4  # a few re-checks, bounded


async def test_a_job_handle_by_id_resolves_when_awaited() -> None:
    url = f"{EACHLABS}/v1/prediction/p-known"
    with aioresponses() as m:
        m.get(url, payload={"status": "processing"})
        m.get(url, payload={"status": "success", "output": VIDEO}, repeat=True)
        m.post(EACHLABS_CREATE, payload={"status": "success", "predictionID": "p-new"})
        async with ltx2.Client(
            "eachlabs", api_key=KEY, retry=NO_BACKOFF, poll=FAST,
            limits=ltx2.Limits(max_concurrent=1),
        ) as c:  # fmt: skip
            job = c.job("p-known")
            with anyio.fail_after(PATIENCE):
                video = await job
            assert video.url == VIDEO
            assert job.status is ltx2.JobStatus.SUCCEEDED
            # The handle took no job slot, and gave none back: the one slot is free.
            with anyio.fail_after(PATIENCE):
                assert (await c.submit(image=IMAGE, prompt="p")).id == "p-new"


async def test_as_completed_left_by_break_creates_nothing_more() -> None:
    with aioresponses() as m:
        m.post(
            EACHLABS_CREATE,
            callback=_numbered_create(),
            repeat=True,
        )
        m.get(
            re.compile(rf"^{re.escape(EACHLABS)}/v1/prediction/p-\d+$"),
            payload={"status": "success", "output": VIDEO},
            repeat=True,
        )
        async with ltx2.Client("eachlabs", api_key=KEY, retry=NO_BACKOFF, poll=FAST) as c:
            requests = [ltx2.VideoRequest(IMAGE, f"r{i}") for i in range(20)]
            jobs = c.as_completed(requests, concurrency=5)
            async for _ in jobs:
                break
            await asyncio.sleep(0.3)  # every job in flight finishes meanwhile
            assert creates(m) == 5  # the five in flight when the consumer stopped asking
            await jobs.aclose()
            gc.collect()


def _numbered_create() -> Any:
    from aioresponses import CallbackResult

    count = 0

    def reply(url: URL, **kw: Any) -> CallbackResult:
        nonlocal count
        count += 1
        return CallbackResult(payload={"status": "success", "predictionID": f"p-{count}"})

    return reply


@pytest.mark.parametrize("cancel", ["task.cancel", "asyncio.timeout"])
async def test_a_cancelled_generate_cancels_its_job_at_the_provider(cancel: str) -> None:
    store = ltx2.MemoryStore()
    url = f"{EACHLABS}/v1/prediction/p-gen"
    with aioresponses() as m:
        m.post(EACHLABS_CREATE, payload={"status": "success", "predictionID": "p-gen"})
        m.get(url, payload={"status": "processing"})
        m.get(url, payload={"status": "cancelled"}, repeat=True)
        m.post(f"{url}/cancel", payload={"status": "success"})
        async with ltx2.Client(
            "eachlabs", api_key=KEY, store=store, retry=NO_BACKOFF, poll=HANDS_OFF
        ) as c:
            if cancel == "task.cancel":
                task = asyncio.create_task(c.generate(image=IMAGE, prompt="p"))
                while creates(m) == 0:
                    await asyncio.sleep(0.005)
                await asyncio.sleep(0.02)
                task.cancel()
                with anyio.fail_after(PATIENCE):
                    await asyncio.wait([task])
                assert task.cancelled()
            else:
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(0.1):
                        await c.generate(image=IMAGE, prompt="p")
        assert len(m.requests.get(("POST", URL(f"{url}/cancel")), [])) == 1
    record = await store.find("eachlabs", "p-gen")
    assert record is not None
    assert record.status is ltx2.JobStatus.CANCELLED

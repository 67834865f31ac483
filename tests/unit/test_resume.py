"""``resume()`` (issue 10, item 13): the first status reads of the jobs it re-attaches run
concurrently, within the poller's bound; a job that finished in the store before a crash but
was never collected comes back finished, so its caller can collect it; a job collected
(awaited to its outcome) does not come back."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import anyio
import pytest
from aioresponses import CallbackResult, aioresponses

import ltx2
from ltx2._poller import Poller

BASE = "https://api.eachlabs.ai"
CREATE = f"{BASE}/v1/prediction/"
STATUS = re.compile(rf"^{re.escape(BASE)}/v1/prediction/p-\d+$")
IMAGE = "https://cdn.example.com/cat.jpg"
QUIET = ltx2.PollPolicy(first=3600, min_interval=3600, max_interval=3600)


def client(store: ltx2.stores.Store, **kw: Any) -> ltx2.Client:
    kw.setdefault("poll", QUIET)
    return ltx2.Client("eachlabs", api_key="sk-resume", store=store, **kw)


def mock_creates(m: aioresponses, n: int) -> None:
    ids = iter(range(n))

    def create(url: object, **kw: Any) -> CallbackResult:
        return CallbackResult(payload={"status": "success", "predictionID": f"p-{next(ids)}"})

    m.post(CREATE, callback=create, repeat=True)


async def submit_and_leave(store: ltx2.stores.Store, n: int) -> list[str]:
    """``n`` jobs submitted by a client that then goes away (its records stay pending)."""
    with aioresponses() as m:
        mock_creates(m, n)
        async with client(store, limits=ltx2.Limits()) as c:
            jobs = [await c.submit(image=IMAGE, prompt=f"job {i}") for i in range(n)]
    return [j.id for j in jobs]


async def test_first_reads_run_concurrently_within_the_pollers_bound() -> None:
    store = ltx2.MemoryStore()
    ids = await submit_and_leave(store, 50)
    running = 0
    most = 0

    async def slow_status(url: Any, **kw: Any) -> CallbackResult:
        nonlocal running, most
        running += 1
        most = max(most, running)
        try:
            await asyncio.sleep(0.2)
        finally:
            running -= 1
        return CallbackResult(payload={"status": "processing"})

    with aioresponses() as m:
        m.get(STATUS, callback=slow_status, repeat=True)
        async with client(store, limits=ltx2.Limits()) as c:
            with anyio.fail_after(30):
                jobs = await c.resume()
            reads = sum(len(v) for (method, _), v in m.requests.items() if method == "GET")
    assert sorted(j.id for j in jobs) == sorted(ids)
    assert reads == 50  # each read once, before resume() returned
    bound = Poller.__init__.__kwdefaults__["concurrency"]
    assert 1 < most <= bound, most


async def test_first_reads_never_exceed_the_bound_with_more_jobs_than_it() -> None:
    store = ltx2.MemoryStore()
    await submit_and_leave(store, 150)
    running = 0
    most = 0

    async def status(url: Any, **kw: Any) -> CallbackResult:
        nonlocal running, most
        running += 1
        most = max(most, running)
        try:
            await asyncio.sleep(0.01)
        finally:
            running -= 1
        return CallbackResult(payload={"status": "processing"})

    with aioresponses() as m:
        m.get(STATUS, callback=status, repeat=True)
        async with client(store, limits=ltx2.Limits()) as c:
            jobs = await c.resume()
    assert len(jobs) == 150
    assert 1 < most <= 64, most


def finished_status(url: Any, **kw: Any) -> CallbackResult:
    pid = str(url).rsplit("/", 1)[1]
    return CallbackResult(payload={"status": "success", "output": f"https://cdn/{pid}.mp4"})


async def test_a_job_that_finished_before_a_crash_comes_back_finished_until_collected() -> None:
    store = ltx2.MemoryStore()
    with aioresponses() as m, anyio.fail_after(20):
        mock_creates(m, 3)
        m.get(STATUS, callback=finished_status, repeat=True)
        async with client(store) as c:
            collected = await c.submit(image=IMAGE, prompt="awaited")
            await collected.refresh()
            await collected  # its caller got the video: collected
            finished = await c.submit(image=IMAGE, prompt="finished, never awaited")
            await finished.refresh()  # the store has it SUCCEEDED; the caller never saw it
            running = await c.submit(image=IMAGE, prompt="still running")
        # ... the process crashes here: `finished` finished but nobody collected it.
        m.get(f"{BASE}/v1/prediction/{running.id}", payload={"status": "processing"})
        async with client(store) as successor:
            jobs = {j.id: j for j in await successor.resume()}
            assert set(jobs) == {finished.id, running.id}
            again = jobs[finished.id]
            assert again.done
            assert again.status is ltx2.JobStatus.SUCCEEDED
            video = await again  # collects it
            assert video.url == f"https://cdn/{finished.id}.mp4"
        async with client(store) as third:
            later = {j.id for j in await third.resume()}
    assert later == {running.id}  # collected: it does not come back on every resume


async def test_a_failed_job_that_was_never_collected_comes_back_and_raises_its_error() -> None:
    store = ltx2.MemoryStore()
    with aioresponses() as m, anyio.fail_after(20):
        mock_creates(m, 1)
        m.get(STATUS, payload={"status": "error", "message": "content policy"}, repeat=True)
        async with client(store) as c:
            job = await c.submit(image=IMAGE, prompt="fails")
            await job.refresh()
        async with client(store) as successor:
            (again,) = await successor.resume()
            assert again.id == job.id
            assert again.status is ltx2.JobStatus.FAILED
            with pytest.raises(ltx2.JobFailedError, match="content policy"):
                await again
        async with client(store) as third:
            assert await third.resume() == []

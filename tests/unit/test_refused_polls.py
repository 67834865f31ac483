"""Status polls answered 404 or 401 (issue 10, item 5): after ``MAX_REFUSED`` (3) such answers
in a row, spaced by the poll schedule, the job ends with that error and its slot is free."""

from __future__ import annotations

import asyncio

import anyio
import pytest
from aioresponses import aioresponses
from tests.conftest import NO_BACKOFF
from yarl import URL

import ltx2

EACHLABS = "https://api.eachlabs.ai"
EACHLABS_CREATE = f"{EACHLABS}/v1/prediction/"
IMAGE = "https://cdn.example.com/cat.jpg"
KEY = "sk-refused-secret"
PATIENCE = 5.0
POLL = ltx2.PollPolicy(first=0.01, min_interval=0.01, max_interval=0.02)

REFUSALS = [
    (404, {"status": "error", "message": "Prediction not found"}, ltx2.NotFoundError),
    (401, {"status": "error", "message": "Invalid API key"}, ltx2.AuthenticationError),
    (403, {"status": "error", "message": "Forbidden"}, ltx2.AuthenticationError),
]


@pytest.mark.parametrize(("status", "body", "error"), REFUSALS)
async def test_refused_status_polls_end_the_job_and_free_its_slot(
    status: int, body: dict[str, str], error: type[ltx2.APIError]
) -> None:
    store = ltx2.MemoryStore()
    with aioresponses() as m:
        m.post(EACHLABS_CREATE, payload={"status": "success", "predictionID": "p-gone"})
        m.post(EACHLABS_CREATE, payload={"status": "success", "predictionID": "p-next"})
        m.get(f"{EACHLABS}/v1/prediction/p-gone", status=status, payload=body, repeat=True)
        m.get(f"{EACHLABS}/v1/prediction/p-next", payload={"status": "processing"}, repeat=True)
        async with ltx2.Client(
            "eachlabs", api_key=KEY, store=store, retry=NO_BACKOFF, poll=POLL,
            limits=ltx2.Limits(max_concurrent=1),
        ) as c:  # fmt: skip
            job = await c.submit(image=IMAGE, prompt="p")
            with anyio.fail_after(PATIENCE), pytest.raises(error) as info:
                await job
            assert info.value.status_code == status
            assert KEY not in str(info.value)
            polls = m.requests[("GET", URL(f"{EACHLABS}/v1/prediction/p-gone"))]
            assert len(polls) == 3
            await asyncio.sleep(0.1)
            assert len(polls) == 3  # no poll after the job ended
            # The one slot is free: the next submit goes through at once.
            with anyio.fail_after(PATIENCE):
                following = await c.submit(image=IMAGE, prompt="next")
            assert following.id == "p-next"
    record = await store.find("eachlabs", "p-gone")
    assert record is not None
    if status == 404:
        assert record.status is ltx2.JobStatus.FAILED  # over, also for resume()
        assert job.status is ltx2.JobStatus.FAILED
    else:
        assert record.status is ltx2.JobStatus.QUEUED  # a working key can still collect it


async def test_one_refused_poll_between_good_ones_does_not_end_the_job() -> None:
    url = f"{EACHLABS}/v1/prediction/p-blip"
    with aioresponses() as m:
        m.post(EACHLABS_CREATE, payload={"status": "success", "predictionID": "p-blip"})
        for _ in range(2):
            m.get(url, status=404, payload={"status": "error", "message": "not found"})
            m.get(url, payload={"status": "processing"})
        m.get(url, payload={"status": "success", "output": "https://cdn.example.com/v.mp4"})
        async with ltx2.Client("eachlabs", api_key=KEY, retry=NO_BACKOFF, poll=POLL) as c:
            job = await c.submit(image=IMAGE, prompt="p")
            with anyio.fail_after(PATIENCE):
                video = await job
    assert video.url == "https://cdn.example.com/v.mp4"

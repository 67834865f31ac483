"""Arguments are checked before anything is sent, with errors naming them (issue 13, items
9 and 10): timeouts, provider names, base URLs."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

import pytest
from aioresponses import aioresponses
from tests.conftest import FAST_POLL, NO_BACKOFF

import ltx2

BASE = "https://api.eachlabs.ai"
IMAGE = "https://cdn.example.com/cat.jpg"


@pytest.fixture
async def pending_job() -> AsyncIterator[ltx2.Job]:
    with aioresponses() as m:
        m.post(f"{BASE}/v1/prediction/", payload={"status": "success", "predictionID": "p-1"})
        m.get(f"{BASE}/v1/prediction/p-1", payload={"status": "processing"}, repeat=True)
        async with ltx2.Client("eachlabs", api_key="k", poll=FAST_POLL, retry=NO_BACKOFF) as c:
            yield await c.submit(image=IMAGE, prompt="p")


@pytest.mark.parametrize("bad", [-1, -0.5, "abc", "10", math.nan, math.inf, True, [1]])
async def test_result_timeout_that_is_not_a_duration_is_refused(
    pending_job: ltx2.Job, bad: object
) -> None:
    with pytest.raises(ltx2.InvalidRequestError, match="timeout") as err:
        await pending_job.result(timeout=bad)  # type: ignore[arg-type]
    assert err.value.field == "timeout"
    assert not pending_job.done


async def test_result_timeout_zero_asks_whether_it_has_finished(pending_job: ltx2.Job) -> None:
    with pytest.raises(ltx2.JobTimeoutError):
        await pending_job.result(timeout=0)


async def test_job_timeout_error_carries_the_job(pending_job: ltx2.Job) -> None:
    with pytest.raises(ltx2.JobTimeoutError) as err:
        await pending_job.result(timeout=0.01)
    assert err.value.job is pending_job
    assert "p-1" in str(err.value)


@pytest.mark.parametrize("name", ["connect", "read", "total"])
@pytest.mark.parametrize("bad", [-1, 0, "abc", math.nan])
def test_timeouts_that_are_not_durations_are_refused(name: str, bad: object) -> None:
    with pytest.raises(ltx2.InvalidRequestError, match=f"timeouts.{name}") as err:
        ltx2.Timeouts(**{name: bad})  # type: ignore[arg-type]
    assert err.value.field == f"timeouts.{name}"

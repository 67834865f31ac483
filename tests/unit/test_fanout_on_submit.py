"""``on_submit(job)`` on ``as_completed`` and ``gather`` (issue 13, item 12): a handle on
each job in flight, so one of twenty can be cancelled without ``submit`` and bookkeeping."""

from __future__ import annotations

import logging

import anyio
import pytest
from tests.unit.test_fanout import FakeEachlabs, api, client, requests

import ltx2

__all__ = ["api"]  # the fixture, imported for the tests below


async def test_as_completed_hands_over_each_job_in_flight_and_one_can_be_cancelled(
    api: FakeEachlabs,
) -> None:
    in_flight: dict[str, ltx2.Job] = {}
    all_submitted = anyio.Event()

    def on_submit(job: ltx2.Job) -> None:
        assert not job.done
        assert job.id
        in_flight[job.id] = job
        if len(in_flight) == 3:
            all_submitted.set()

    async def end_them() -> None:
        with anyio.fail_after(10):
            await all_submitted.wait()
        await in_flight["p-1"].cancel()  # the caller's bot cancels one job of three
        api.finish(0, 2)

    results: dict[str, ltx2.JobStatus] = {}
    async with client() as c, anyio.create_task_group() as tg:
        tg.start_soon(end_them)
        async for job in c.as_completed(requests(0, 1, 2), concurrency=3, on_submit=on_submit):
            results[job.id] = job.status
    assert sorted(in_flight) == ["p-0", "p-1", "p-2"]
    assert api.cancelled == ["p-1"]
    assert results == {
        "p-0": ltx2.JobStatus.SUCCEEDED,
        "p-1": ltx2.JobStatus.CANCELLED,
        "p-2": ltx2.JobStatus.SUCCEEDED,
    }


async def test_gather_calls_an_async_on_submit_once_per_created_job(api: FakeEachlabs) -> None:
    api.refuse.add("1")  # its create fails: no job, no on_submit
    seen: list[str] = []

    async def on_submit(job: ltx2.Job) -> None:
        await anyio.sleep(0)
        seen.append(job.id)
        if len(seen) == 2:
            api.finish(0, 2)

    async with client() as c:
        results = await c.gather(
            requests(0, 1, 2), concurrency=3, return_exceptions=True, on_submit=on_submit
        )
    assert sorted(seen) == ["p-0", "p-2"]
    assert isinstance(results[0], ltx2.Video)
    assert isinstance(results[1], ltx2.BadRequestError)
    assert isinstance(results[2], ltx2.Video)


async def test_a_broken_on_submit_is_logged_and_the_fan_out_goes_on(
    api: FakeEachlabs, caplog: pytest.LogCaptureFixture
) -> None:
    def on_submit(job: ltx2.Job) -> None:
        api.finish(job.id.removeprefix("p-"))
        raise RuntimeError("broken hook")

    async with client() as c:
        with caplog.at_level(logging.ERROR, logger="ltx2"):
            videos = await c.gather(requests(0, 1), on_submit=on_submit)
    assert [v.job_id for v in videos] == ["p-0", "p-1"]
    assert "on_submit" in caplog.text
    assert "broken hook" in caplog.text


async def test_on_submit_that_is_not_callable_is_refused_before_anything_is_sent(
    api: FakeEachlabs,
) -> None:
    async with client() as c:
        with pytest.raises(ltx2.InvalidRequestError, match="on_submit"):
            await c.gather(requests(0), on_submit="print")  # type: ignore[arg-type]
    assert api.created == []

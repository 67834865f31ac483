"""``Client.as_completed`` and ``Client.gather`` through the public API, against Eachlabs on
aioresponses (seed 000's shapes). The test decides when each job ends, so finishing order,
failures and cancellation are exact; no sockets, no real waiting beyond the fast poller."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest
from aioresponses import CallbackResult, aioresponses
from tests.conftest import FAST_POLL, NO_BACKOFF
from yarl import URL

import ltx2

BASE = "https://api.eachlabs.ai"
CREATE = f"{BASE}/v1/prediction/"
STATUS = re.compile(r"^https://api\.eachlabs\.ai/v1/prediction/(p-[\w-]+)$")
CANCEL = re.compile(r"^https://api\.eachlabs\.ai/v1/prediction/(p-[\w-]+)/cancel$")
IMAGE = "https://cdn.example.com/cat.jpg"
#: Long enough for anything that should happen; only reached when a test fails.
PATIENCE = 10.0


class FakeEachlabs:
    """Eachlabs on aioresponses. A request's prompt names its job (``p-<prompt>``); every job
    stays ``processing`` until the test ends it with :meth:`finish`."""

    def __init__(self, m: aioresponses) -> None:
        self.state: dict[str, str] = {}
        self.created: list[str] = []
        self.cancelled: list[str] = []
        self.refuse: set[str] = set()  # prompts whose create gets a 400
        self.max_running = 0
        self.changed = asyncio.Event()
        m.post(CREATE, callback=self._create, repeat=True)
        m.get(STATUS, callback=self._status, repeat=True)
        m.post(CANCEL, callback=self._cancel, repeat=True)

    @property
    def running(self) -> list[str]:
        return [job_id for job_id, st in self.state.items() if st == "processing"]

    def _touch(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    def _create(self, url: URL, **kw: Any) -> CallbackResult:
        prompt = kw["json"]["input"]["prompt"]
        if prompt in self.refuse:
            body = {"status": "error", "message": "Invalid input", "details": "image_url"}
            return CallbackResult(status=400, payload=body)
        job_id = f"p-{prompt}"
        self.state[job_id] = "processing"
        self.created.append(job_id)
        self.max_running = max(self.max_running, len(self.running))
        self._touch()
        return CallbackResult(payload={"status": "success", "predictionID": job_id})

    def _status(self, url: URL, **kw: Any) -> CallbackResult:
        job_id = url.path.rsplit("/", 1)[-1]
        st = self.state[job_id]
        body: dict[str, Any] = {"status": st, "predictionID": job_id, "output": None}
        if st == "success":
            body["output"] = f"https://cdn.example.com/{job_id}.mp4"
        elif st == "error":
            body["message"] = f"{job_id} broke"
        return CallbackResult(payload=body)

    def _cancel(self, url: URL, **kw: Any) -> CallbackResult:
        job_id = url.path.split("/")[-2]
        self.cancelled.append(job_id)
        if self.state[job_id] == "processing":
            self.state[job_id] = "cancelled"
        self._touch()
        return CallbackResult(payload={"status": "success"})

    def finish(self, *names: object, status: str = "success") -> None:
        for name in names:
            self.state[f"p-{name}"] = status
        self._touch()

    async def until(self, condition: Any) -> None:
        """Wait (at most PATIENCE seconds) until ``condition()`` holds."""
        with anyio.fail_after(PATIENCE):
            while not condition():
                await self.changed.wait()


@pytest.fixture
def api() -> Iterator[FakeEachlabs]:
    with aioresponses() as m:
        yield FakeEachlabs(m)


def client(key: str = "sk-fanout", **kw: Any) -> ltx2.Client:
    kw.setdefault("poll", FAST_POLL)
    kw.setdefault("retry", NO_BACKOFF)
    return ltx2.Client("eachlabs", api_key=key, **kw)


def requests(*names: object) -> list[ltx2.VideoRequest]:
    return [ltx2.VideoRequest(IMAGE, str(name)) for name in names]


def stray_tasks(before: set[asyncio.Task[Any]]) -> list[str]:
    """Tasks started since ``before``, still running, other than the client's own background
    work (its supervisor's poller; anyio names tasks after their function)."""
    names = []
    for task in asyncio.all_tasks() - before:
        name = task.get_name()
        if name.startswith("Task-"):  # unnamed: say what it runs
            name = getattr(task.get_coro(), "__qualname__", name)
        own = name.startswith(("ltx2._poller.", "ltx2._client."))
        if task is not asyncio.current_task() and not task.done() and not own:
            names.append(name)
    return names


# -- ordering ---------------------------------------------------------------------------------


async def test_as_completed_yields_in_finishing_order_and_reports_progress(
    api: FakeEachlabs,
) -> None:
    progress: list[tuple[int, int | None, str]] = []
    finish_order = [2, 0, 3, 1]
    ends = iter(finish_order)
    seen: list[str] = []
    async with client() as c:
        jobs = c.as_completed(
            requests(0, 1, 2, 3),
            concurrency=4,
            on_progress=lambda done, total, job: progress.append((done, total, job.id)),
        )
        await asyncio.sleep(0.05)
        assert api.created == []  # nothing is submitted before the iteration starts

        async def end_first() -> None:
            await api.until(lambda: len(api.created) == 4)
            api.finish(next(ends))

        async with anyio.create_task_group() as tg:
            tg.start_soon(end_first)
            async for job in jobs:
                seen.append(job.id)
                assert job.status is ltx2.JobStatus.SUCCEEDED
                assert job.request is not None
                assert job.request.prompt == job.id.removeprefix("p-")
                assert (await job).url.endswith(f"{job.id}.mp4")
                following = next(ends, None)
                if following is not None:
                    api.finish(following)  # the next one ends only now
    assert seen == [f"p-{i}" for i in finish_order]
    assert progress == [(i + 1, 4, f"p-{n}") for i, n in enumerate(finish_order)]


async def test_gather_returns_videos_in_input_order_whatever_the_finishing_order(
    api: FakeEachlabs,
) -> None:
    finished: list[str] = []
    reported = asyncio.Event()

    def on_progress(done: int, total: int | None, job: ltx2.Job) -> None:
        finished.append(job.id)
        reported.set()

    async def end_in_reverse() -> None:
        await api.until(lambda: len(api.created) == 4)
        for name in (3, 2, 1, 0):
            reported.clear()
            api.finish(name)
            await reported.wait()  # the client saw it end before the next one does

    async with client() as c, anyio.create_task_group() as tg:
        tg.start_soon(end_in_reverse)
        videos = await c.gather(requests(0, 1, 2, 3), concurrency=4, on_progress=on_progress)
    assert finished == ["p-3", "p-2", "p-1", "p-0"]
    assert [v.job_id for v in videos] == ["p-0", "p-1", "p-2", "p-3"]


async def test_gather_with_return_exceptions_keeps_every_failure_in_its_place(
    api: FakeEachlabs,
) -> None:
    api.refuse.add("2")  # its create gets a 400: never a job

    async def end_all() -> None:
        await api.until(lambda: len(api.created) == 4)
        api.finish(1, status="error")
        api.finish(4, status="cancelled")
        api.finish(0, 3)

    async with client() as c, anyio.create_task_group() as tg:
        tg.start_soon(end_all)
        results = await c.gather(requests(0, 1, 2, 3, 4), return_exceptions=True)
    assert len(results) == 5
    ok0, failed, refused, ok3, cancelled = results
    assert isinstance(ok0, ltx2.Video)
    assert isinstance(ok3, ltx2.Video)
    assert (ok0.job_id, ok3.job_id) == ("p-0", "p-3")
    assert isinstance(failed, ltx2.JobFailedError)
    assert failed.message == "p-1 broke"
    assert isinstance(refused, ltx2.BadRequestError)
    assert refused.status_code == 400
    assert isinstance(cancelled, ltx2.JobCancelledError)
    assert api.cancelled == []  # a failure in place stops nothing


async def test_a_failed_create_is_yielded_as_a_failed_job_that_raises_its_error(
    api: FakeEachlabs,
) -> None:
    api.refuse.add("bad")
    async with client() as c:
        jobs = [j async for j in c.as_completed(requests("bad"))]
    (job,) = jobs
    assert job.status is ltx2.JobStatus.FAILED
    assert job.id == ""  # never created at the provider
    with pytest.raises(ltx2.BadRequestError, match="Invalid input"):
        await job


# -- failures and cancellation ------------------------------------------------------------------


async def test_gather_first_failure_cancels_the_other_jobs_and_is_raised(
    api: FakeEachlabs,
) -> None:
    async with client() as c:
        before = set(asyncio.all_tasks())

        async def fail_one() -> None:
            await api.until(lambda: len(api.created) == 3)
            api.finish(1, status="error")

        async with anyio.create_task_group() as tg:
            tg.start_soon(fail_one)
            with pytest.raises(ltx2.JobFailedError, match="p-1 broke"):
                await c.gather(requests(0, 1, 2), concurrency=3)
        assert sorted(api.cancelled) == ["p-0", "p-2"]  # cancelled before gather raised
        assert stray_tasks(before) == []


async def test_cancelling_gather_cancels_what_was_submitted_and_leaves_no_task(
    api: FakeEachlabs,
) -> None:
    async with client() as c:
        before = set(asyncio.all_tasks())
        task = asyncio.create_task(c.gather(requests(0, 1, 2, 3, 4), concurrency=3))
        await api.until(lambda: len(api.created) == 3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # Only three were submitted (concurrency=3); all three were cancelled at Eachlabs
        # before the cancellation reached the caller, and the other two never started.
        assert sorted(api.cancelled) == ["p-0", "p-1", "p-2"]
        assert api.created == ["p-0", "p-1", "p-2"]
        assert stray_tasks(before) == []


async def end_when_created(api: FakeEachlabs, count: int, *names: object) -> None:
    await api.until(lambda: len(api.created) == count)
    api.finish(*names)


async def test_breaking_out_of_as_completed_in_aclosing_cancels_the_rest_at_once(
    api: FakeEachlabs,
) -> None:
    async with client() as c:
        before = set(asyncio.all_tasks())
        async with anyio.create_task_group() as tg:
            tg.start_soon(end_when_created, api, 3, 1)
            jobs = c.as_completed(requests(0, 1, 2), concurrency=3)
            async with contextlib.aclosing(jobs):
                async for job in jobs:
                    assert job.id == "p-1"
                    break
        # aclose() returned only after the other two were cancelled at Eachlabs.
        assert sorted(api.cancelled) == ["p-0", "p-2"]
        assert stray_tasks(before) == []


async def test_breaking_out_of_as_completed_without_aclosing_still_cancels_the_rest(
    api: FakeEachlabs,
) -> None:
    async with client() as c:
        before = set(asyncio.all_tasks())
        async with anyio.create_task_group() as tg:
            tg.start_soon(end_when_created, api, 3, 1)
            async for job in c.as_completed(requests(0, 1, 2), concurrency=3):
                assert job.id == "p-1"
                break
        # The generator is closed when it is collected (in CPython, right after the loop).
        await api.until(lambda: sorted(api.cancelled) == ["p-0", "p-2"])
        with anyio.fail_after(PATIENCE):
            while stray_tasks(before):
                await asyncio.sleep(0.01)


async def test_cancelling_the_consumer_of_as_completed_cancels_the_jobs(
    api: FakeEachlabs,
) -> None:
    async with client() as c:
        before = set(asyncio.all_tasks())

        async def consume() -> None:
            async for _ in c.as_completed(requests(0, 1), concurrency=2):
                pytest.fail("no job finishes in this test")

        task = asyncio.create_task(consume())
        await api.until(lambda: len(api.created) == 2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert sorted(api.cancelled) == ["p-0", "p-1"]
        assert stray_tasks(before) == []


# -- input ----------------------------------------------------------------------------------------


async def test_requests_are_pulled_lazily_from_a_generator(api: FakeEachlabs) -> None:
    pulled = 0

    def endless() -> Iterator[ltx2.VideoRequest]:
        nonlocal pulled
        while True:
            pulled += 1
            yield ltx2.VideoRequest(IMAGE, str(pulled - 1))

    async def end_them() -> None:
        while True:
            await api.until(lambda: bool(api.running))
            api.finish(*(job_id[2:] for job_id in api.running))

    async with client() as c, anyio.create_task_group() as tg:
        tg.start_soon(end_them)
        got = 0
        async with contextlib.aclosing(c.as_completed(endless(), concurrency=2)) as jobs:
            async for _ in jobs:
                got += 1
                if got == 5:
                    break
        tg.cancel_scope.cancel()
    # A request is pulled only for a free slot: at most two jobs in flight and two finished
    # ones waiting for the consumer.
    assert pulled <= got + 2 + 2
    assert api.max_running <= 2


async def test_an_async_iterable_of_requests_works(api: FakeEachlabs) -> None:
    async def produce() -> AsyncIterator[ltx2.VideoRequest]:
        for name in (0, 1, 2):
            yield ltx2.VideoRequest(IMAGE, str(name))

    async def end_them() -> None:
        await api.until(lambda: len(api.created) == 3)
        api.finish(0, 1, 2)

    calls: list[tuple[int, int | None]] = []

    async def on_progress(done: int, total: int | None, job: ltx2.Job) -> None:
        await asyncio.sleep(0)
        calls.append((done, total))

    async with client() as c, anyio.create_task_group() as tg:
        tg.start_soon(end_them)
        videos = await c.gather(produce(), on_progress=on_progress)
    assert [v.job_id for v in videos] == ["p-0", "p-1", "p-2"]
    assert calls == [(1, None), (2, None), (3, None)]  # an async iterable has no length


async def test_an_async_generator_that_awaits_is_pulled_by_one_worker_at_a_time(
    api: FakeEachlabs,
) -> None:
    # Several free workers pull at once; an async generator stepped twice at once would
    # raise "asynchronous generator is already running".
    async def produce() -> AsyncIterator[ltx2.VideoRequest]:
        for name in range(6):
            await asyncio.sleep(0.001)
            yield ltx2.VideoRequest(IMAGE, str(name))

    async def end_them() -> None:
        while True:
            await api.until(lambda: bool(api.running))
            api.finish(*(job_id[2:] for job_id in api.running))

    async with client() as c, anyio.create_task_group() as tg:
        tg.start_soon(end_them)
        videos = await c.gather(produce(), concurrency=4)
        tg.cancel_scope.cancel()
    assert [v.job_id for v in videos] == [f"p-{i}" for i in range(6)]


async def test_an_empty_fan_out_returns_at_once(api: FakeEachlabs) -> None:
    async with client() as c:
        assert await c.gather([], concurrency=50) == []
        assert [job async for job in c.as_completed(iter(()), concurrency=50)] == []
    assert api.created == []


async def test_an_item_that_is_not_a_video_request_is_refused_naming_it(
    api: FakeEachlabs,
) -> None:
    async def first_good_then_bad() -> AsyncIterator[Any]:
        yield ltx2.VideoRequest(IMAGE, "0")
        await api.until(lambda: api.created == ["p-0"])
        yield {"prompt": "x"}

    async with client() as c:
        with pytest.raises(ltx2.InvalidRequestError) as info:
            await c.gather(first_good_then_bad(), return_exceptions=True)
        assert info.value.field == "requests[1]"
        assert "dict" in str(info.value)
        # p-0 had been submitted: it was cancelled, not left running.
        assert api.cancelled == ["p-0"]

        with pytest.raises(ltx2.InvalidRequestError) as info:
            async for _ in c.as_completed(["not a request"]):  # type: ignore[list-item]
                pass
        assert info.value.field == "requests[0]"

        with pytest.raises(ltx2.InvalidRequestError, match="wrap it in a list") as info:
            c.as_completed(requests(0)[0])  # type: ignore[arg-type]
        assert info.value.field == "requests"

        for bad in (0, -1, 1.5, True):
            with pytest.raises(ltx2.InvalidRequestError) as info:
                await c.gather(requests(0), concurrency=bad)  # type: ignore[arg-type]
            assert info.value.field == "concurrency"


async def test_concurrency_bounds_the_jobs_in_flight(api: FakeEachlabs) -> None:
    async def end_them() -> None:
        while True:
            await api.until(lambda: bool(api.running))
            await asyncio.sleep(0.01)
            api.finish(api.running[0][2:])

    async with client() as c, anyio.create_task_group() as tg:
        tg.start_soon(end_them)
        videos = await c.gather(requests(*range(8)), concurrency=3)
        tg.cancel_scope.cancel()
    assert len(videos) == 8
    assert api.max_running == 3


# -- the progress hook ----------------------------------------------------------------------------


async def test_a_progress_hook_that_raises_is_logged_and_the_fan_out_goes_on(
    api: FakeEachlabs, caplog: pytest.LogCaptureFixture
) -> None:
    def hook(done: int, total: int | None, job: ltx2.Job) -> None:
        raise ValueError(f"hook broke at {done}")

    async def end_them() -> None:
        await api.until(lambda: len(api.created) == 3)
        api.finish(0, 1, 2)

    caplog.set_level(logging.ERROR, logger="ltx2")
    async with client() as c, anyio.create_task_group() as tg:
        tg.start_soon(end_them)
        jobs = [job async for job in c.as_completed(requests(0, 1, 2), on_progress=hook)]
    assert sorted(job.id for job in jobs) == ["p-0", "p-1", "p-2"]
    logged = [r for r in caplog.records if "on_progress" in r.getMessage()]
    assert len(logged) == 3
    assert all(r.exc_info is not None for r in logged)  # with the hook's traceback
    assert "hook broke at 1" in caplog.text


# -- limits shared by clients on one key -------------------------------------------------------


async def test_clients_sharing_a_key_share_its_concurrency_limit(api: FakeEachlabs) -> None:
    limits = ltx2.Limits(max_concurrent=1)
    async with (
        client(limits=limits) as a,
        client(limits=limits) as b,
        client("another-key", limits=limits) as other,
    ):
        await a.submit(image=IMAGE, prompt="0")
        # The key's one slot is taken by a's job: b waits, a client on another key does not.
        with anyio.move_on_after(0.2) as waited:
            await b.submit(image=IMAGE, prompt="1")
        assert waited.cancelled_caught
        assert api.created == ["p-0"]
        await other.submit(image=IMAGE, prompt="2")
        assert api.created == ["p-0", "p-2"]

        api.finish(0)  # a's job ends and frees the slot
        with anyio.fail_after(PATIENCE):
            job = await b.submit(image=IMAGE, prompt="1")
        assert job.id == "p-1"


async def test_a_429_with_retry_after_holds_back_every_create_on_the_key() -> None:
    no_retry = ltx2.RetryPolicy(enabled=False)
    with aioresponses() as m:
        m.post(
            CREATE,
            status=429,
            headers={"Retry-After": "30"},
            payload={"status": "error", "message": "Rate limit exceeded"},
        )
        m.post(CREATE, payload={"status": "success", "predictionID": "p-late"}, repeat=True)
        async with client(retry=no_retry) as a, client(retry=no_retry) as b:
            with pytest.raises(ltx2.RateLimitError) as info:
                await a.submit(image=IMAGE, prompt="0")
            assert info.value.retry_after == 30.0
            # Neither client sends another create before the 30 s are up: no blind retry.
            for c in (a, b):
                with anyio.move_on_after(0.2) as waited:
                    await c.submit(image=IMAGE, prompt="1")
                assert waited.cancelled_caught
            assert len(m.requests[("POST", URL(CREATE))]) == 1

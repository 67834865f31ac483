"""A client's lifecycle (created → running → closing → closed) as a user sees it, and the
store failing in ``submit``: against aioresponses, no sockets (issue 10, items 1-3)."""

from __future__ import annotations

import asyncio
import gc
import logging
from typing import Any

import anyio
import pytest
from aioresponses import CallbackResult, aioresponses
from tests.conftest import NO_BACKOFF
from yarl import URL

import ltx2

EACHLABS = "https://api.eachlabs.ai"
EACHLABS_CREATE = f"{EACHLABS}/v1/prediction/"
IMAGE = "https://cdn.example.com/cat.jpg"
KEY = "sk-lifecycle-secret-1"
#: Only reached when a test fails.
PATIENCE = 5.0
#: The poller stays away unless asked.
HANDS_OFF = ltx2.PollPolicy(first=3600, webhook_grace=1000, min_interval=0.01, max_interval=0.05)


def eachlabs(m: aioresponses, pid: str, status: str = "processing") -> None:
    m.post(EACHLABS_CREATE, payload={"status": "success", "predictionID": pid})
    m.get(f"{EACHLABS}/v1/prediction/{pid}", payload={"status": status}, repeat=True)


def client(**kw: Any) -> ltx2.Client:
    kw.setdefault("retry", NO_BACKOFF)
    kw.setdefault("poll", HANDS_OFF)
    return ltx2.Client("eachlabs", api_key=kw.pop("api_key", KEY), **kw)


def sent(m: aioresponses) -> int:
    return sum(len(calls) for calls in m.requests.values())


# -- item 2: aclose() releases awaiters, and a closed client sends nothing ---------------------


@pytest.mark.parametrize("how", ["await job", "job.result(timeout)", "generate"])
async def test_aclose_makes_every_pending_awaiter_raise_client_closed(how: str) -> None:
    store = ltx2.MemoryStore()
    with aioresponses() as m:
        eachlabs(m, "p-open")
        c = client(store=store)
        await c.__aenter__()
        if how == "generate":
            waiter = asyncio.create_task(c.generate(image=IMAGE, prompt="p"))
            while not await store.unfinished():
                await asyncio.sleep(0.005)
            await asyncio.sleep(0.02)  # the create reply is read; generate awaits the job
        else:
            job = await c.submit(image=IMAGE, prompt="p")
            waiter = asyncio.create_task(
                job.result() if how == "await job" else job.result(timeout=60)
            )
            await asyncio.sleep(0.01)
        assert not waiter.done()
        await c.aclose()
        with anyio.fail_after(1.0):
            with pytest.raises(ltx2.ClientClosedError) as info:
                await waiter
    assert isinstance(info.value, ltx2.LTX2Error)
    # The job keeps running at the provider and stays in the store for resume().
    (record,) = await store.unfinished("eachlabs")
    assert record.job_id == "p-open"
    assert record.status is ltx2.JobStatus.QUEUED


async def test_job_awaited_after_aclose_raises_client_closed_and_keeps_its_status() -> None:
    with aioresponses() as m:
        eachlabs(m, "p-1")
        async with client() as c:
            job = await c.submit(image=IMAGE, prompt="p")
        with pytest.raises(ltx2.ClientClosedError):
            await job
        assert job.status is ltx2.JobStatus.QUEUED
        assert not job.done
        updates = job.updates()
        assert (await anext(updates)).status is ltx2.JobStatus.QUEUED
        with pytest.raises(ltx2.ClientClosedError):
            await job.refresh()


async def test_updates_of_a_pending_job_end_with_client_closed_on_aclose() -> None:
    with aioresponses() as m:
        eachlabs(m, "p-1")
        c = client()
        job = await c.submit(image=IMAGE, prompt="p")
        seen: list[ltx2.JobStatus] = []

        async def follow() -> None:
            async for update in job.updates():
                seen.append(update.status)

        follower = asyncio.create_task(follow())
        await asyncio.sleep(0.01)
        await c.aclose()
        with anyio.fail_after(1.0), pytest.raises(ltx2.ClientClosedError):
            await follower
    assert seen == [ltx2.JobStatus.QUEUED]


@pytest.mark.parametrize("call", ["submit", "generate", "as_completed", "gather", "resume", "job"])
@pytest.mark.parametrize("used", [True, False], ids=["used", "never-used"])
async def test_closed_client_raises_client_closed_before_any_request(call: str, used: bool) -> None:
    request = ltx2.VideoRequest(IMAGE, "p")
    with aioresponses() as m:
        eachlabs(m, "p-1")
        c = client()
        if used:
            async with c:
                pass
        else:
            await c.aclose()
        before = sent(m)

        async def use() -> None:
            if call == "submit":
                await c.submit(request)
            elif call == "generate":
                await c.generate(request)
            elif call == "as_completed":
                async for _ in c.as_completed([request]):
                    pass
            elif call == "gather":
                await c.gather([request])
            elif call == "resume":
                await c.resume()
            else:
                await c.job("p-1").refresh()

        with pytest.raises(ltx2.ClientClosedError):
            await use()
        assert sent(m) == before  # nothing was sent after aclose()
    await c.aclose()  # closing twice is fine


async def test_a_closed_client_is_never_reopened_by_async_with() -> None:
    c = client()
    async with c:
        pass
    with pytest.raises(ltx2.ClientClosedError):
        async with c:
            pass


async def test_aclose_while_a_submit_waits_for_a_slot_sends_nothing() -> None:
    with aioresponses() as m:
        eachlabs(m, "p-1")
        c = client(limits=ltx2.Limits(max_concurrent=1))
        await c.submit(image=IMAGE, prompt="first")
        waiting = asyncio.create_task(c.submit(image=IMAGE, prompt="second"))
        await asyncio.sleep(0.02)
        assert not waiting.done()  # the one slot is the first job's
        await c.aclose()
        with anyio.fail_after(1.0), pytest.raises(ltx2.ClientClosedError):
            await waiting
        assert sent(m) == 1


async def test_concurrent_aclose_calls_both_return_once_closed() -> None:
    with aioresponses() as m:
        eachlabs(m, "p-1")
        c = client()
        job = await c.submit(image=IMAGE, prompt="p")
        await asyncio.gather(c.aclose(), c.aclose())
        with pytest.raises(ltx2.ClientClosedError):
            await job


async def test_a_client_used_from_a_second_event_loop_raises_an_ltx2_error() -> None:
    with aioresponses() as m:
        eachlabs(m, "p-1")
        c = client()
        await c.submit(image=IMAGE, prompt="p")

        def elsewhere() -> BaseException | None:
            async def use() -> None:
                await c.submit(image=IMAGE, prompt="p")

            try:
                asyncio.run(use())
            except BaseException as exc:
                return exc
            return None

        error = await asyncio.to_thread(elsewhere)
        await c.aclose()
    assert isinstance(error, ltx2.LTX2Error)
    assert "event loop" in str(error)


# -- item 1: the store failing in submit frees the job slot ------------------------------------


class AddFails(ltx2.MemoryStore):
    """``add`` raises ``ConnectionError`` ``failures`` times (Redis away), then works."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def add(self, record: Any) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("store unreachable")
        await super().add(record)


async def test_store_failing_in_submit_frees_the_slot_for_the_next_submit() -> None:
    """Eachlabs' 10-concurrent cap: ten store blips, then ten submits go through at once."""
    store = AddFails(failures=10)
    with aioresponses() as m:
        for i in range(10):
            eachlabs(m, f"p-{i}")
        async with client(store=store, limits=ltx2.Limits(max_concurrent=10)) as c:
            for _ in range(10):
                with pytest.raises(ConnectionError):
                    await c.submit(image=IMAGE, prompt="blip")
            assert sent(m) == 0  # nothing reached the provider
            with anyio.fail_after(PATIENCE):
                jobs = await asyncio.gather(
                    *(c.submit(image=IMAGE, prompt=f"ok {i}") for i in range(10))
                )
    assert sorted(job.id for job in jobs) == sorted(f"p-{i}" for i in range(10))


# -- item 3: any number of native cancels during the shielded settle ---------------------------


class Blocked:
    """A create whose reply waits until released."""

    def __init__(self, payload: dict[str, Any]) -> None:
        self.payload = payload
        self.arrived = asyncio.Event()
        self.released = asyncio.Event()

    async def reply(self, url: URL, **kw: Any) -> CallbackResult:
        self.arrived.set()
        await self.released.wait()
        return CallbackResult(payload=self.payload)


@pytest.mark.parametrize("cancels", [2, 5])
async def test_repeated_native_cancels_during_a_cancelled_create_still_settle_the_job(
    cancels: int, caplog: pytest.LogCaptureFixture
) -> None:
    """A timeout, then a task group, then a server shutting down: each cancels the submit
    again while it waits for its create reply. The reply still lands, the job is cancelled
    at the provider, the record has a status, and no task or unretrieved exception is left."""
    caplog.set_level(logging.WARNING)
    create = Blocked({"status": "success", "predictionID": "p-late"})
    store = ltx2.MemoryStore()
    with aioresponses() as m:
        m.post(EACHLABS_CREATE, callback=create.reply)
        m.post(f"{EACHLABS}/v1/prediction/p-late/cancel", payload={"status": "success"})
        m.get(f"{EACHLABS}/v1/prediction/p-late", payload={"status": "cancelled"}, repeat=True)
        async with client(store=store) as c:
            before = asyncio.all_tasks()
            task = asyncio.create_task(c.submit(image=IMAGE, prompt="p"))
            with anyio.fail_after(PATIENCE):
                await create.arrived.wait()
            for _ in range(cancels):
                task.cancel()
                await asyncio.sleep(0.01)
            assert not task.done()  # still waiting for the reply, whatever the cancels
            create.released.set()
            with anyio.fail_after(PATIENCE):
                await asyncio.wait([task])
            assert task.cancelled()
            left = [t for t in asyncio.all_tasks() - before if not t.done()]
            assert [t.get_name() for t in left if "_poller" not in t.get_name()] == []
        cancel_calls = m.requests.get(("POST", URL(f"{EACHLABS}/v1/prediction/p-late/cancel")))
        assert cancel_calls is not None
        assert len(cancel_calls) == 1
    record = await store.find("eachlabs", "p-late")
    assert record is not None
    assert record.status is ltx2.JobStatus.CANCELLED
    gc.collect()
    await asyncio.sleep(0)
    assert "never retrieved" not in caplog.text


async def test_asyncio_timeout_around_submit_gives_timeout_error_and_a_settled_record() -> None:
    create = Blocked({"status": "success", "predictionID": "p-slow"})
    store = ltx2.MemoryStore()
    with aioresponses() as m:
        m.post(EACHLABS_CREATE, callback=create.reply)
        m.post(f"{EACHLABS}/v1/prediction/p-slow/cancel", payload={"status": "success"})
        m.get(f"{EACHLABS}/v1/prediction/p-slow", payload={"status": "cancelled"}, repeat=True)
        async with client(store=store) as c:

            async def submit_with_timeout() -> None:
                async with asyncio.timeout(0.05):
                    await c.submit(image=IMAGE, prompt="p")

            task = asyncio.create_task(submit_with_timeout())
            await create.arrived.wait()
            await asyncio.sleep(0.1)  # the timeout fired
            task.cancel()  # and then the caller's own task group cancels it too
            await asyncio.sleep(0.01)
            create.released.set()
            with anyio.fail_after(PATIENCE):
                await asyncio.wait([task])
    assert task.cancelled() or isinstance(task.exception(), TimeoutError)
    record = await store.find("eachlabs", "p-slow")
    assert record is not None
    assert record.status is ltx2.JobStatus.CANCELLED

"""The store failing around a create (found by tests/integration/test_store_faults.py): a
job the provider created is never lost for a store error, and a failed create never leaves
a record without a status. Against aioresponses, no sockets."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import pytest
from aioresponses import aioresponses
from tests.conftest import NO_BACKOFF
from tests.unit.test_lifecycle import Blocked

import ltx2
from ltx2.stores import JobRecord

EACHLABS = "https://api.eachlabs.ai"
EACHLABS_CREATE = f"{EACHLABS}/v1/prediction/"
IMAGE = "https://cdn.example.com/cat.jpg"
KEY = "sk-store-failures-1"
#: Only reached when a test fails.
PATIENCE = 5.0
FAST = ltx2.PollPolicy(first=0.01, min_interval=0.01, max_interval=0.05)


class Failing(ltx2.MemoryStore):
    """``before[name]`` calls of ``name`` raise ``ConnectionError`` (Redis away) before the
    call reaches the store; ``after[name]`` calls raise it after the call did its work (the
    answer was lost: a Redis timeout)."""

    def __init__(
        self, *, before: dict[str, int] | None = None, after: dict[str, int] | None = None
    ) -> None:
        super().__init__()
        self.before = dict(before or {})
        self.after = dict(after or {})

    async def _maybe(self, name: str, call: Any) -> Any:
        for failures, done in ((self.before, False), (self.after, True)):
            if failures.get(name, 0) > 0:
                failures[name] -= 1
                if done:
                    await call
                else:
                    call.close()
                raise ConnectionError(f"store unreachable ({name})")
        return await call

    async def add(self, record: JobRecord) -> None:
        await self._maybe("add", super().add(record))

    async def set_created(self, *args: Any) -> Any:
        return await self._maybe("set_created", super().set_created(*args))

    async def delete(self, key: str) -> None:
        await self._maybe("delete", super().delete(key))

    async def update(self, key: str, update: ltx2.StatusUpdate) -> Any:
        return await self._maybe("update", super().update(key, update))


def client(store: ltx2.Store, **kw: Any) -> ltx2.Client:
    return ltx2.Client("eachlabs", api_key=KEY, store=store, retry=NO_BACKOFF, poll=FAST, **kw)


def eachlabs(m: aioresponses, pid: str) -> None:
    m.post(EACHLABS_CREATE, payload={"status": "success", "predictionID": pid})
    m.get(
        f"{EACHLABS}/v1/prediction/{pid}",
        payload={"status": "success", "output": f"https://cdn.example.com/{pid}.mp4"},
        repeat=True,
    )


@pytest.mark.parametrize("after", [False, True], ids=["before the write", "after the write"])
async def test_store_failing_to_record_a_create_still_gives_the_caller_its_job(
    after: bool,
) -> None:
    """The create was accepted (a paid job): the store failing on its reply (twice) must
    not raise to the caller. The caller gets the job, it resolves, its slot is freed, and
    the record gets the provider's id and final status once the store is back."""
    failures = {"set_created": 2}
    store = Failing(after=failures) if after else Failing(before=failures)
    with aioresponses() as m:
        eachlabs(m, "p-1")
        eachlabs(m, "p-2")
        async with client(store, limits=ltx2.Limits(max_concurrent=1)) as c:
            with anyio.fail_after(PATIENCE):
                job = await c.submit(image=IMAGE, prompt="one")
                assert job.id == "p-1"
                video = await job
                # The only slot is free again: the next submit goes through.
                second = await c.submit(image=IMAGE, prompt="two")
                await second
                while (record := await store.find("eachlabs", "p-1")) is None:
                    await anyio.sleep(0.01)
    assert video.url == "https://cdn.example.com/p-1.mp4"
    assert record.status is ltx2.JobStatus.SUCCEEDED
    assert await store.unfinished() == []


async def test_a_create_not_sent_for_a_store_error_leaves_no_record_even_if_delete_fails() -> None:
    """``add`` wrote the record but its answer was lost, then the first ``delete`` fails
    too: the submit raises the store's error (nothing was sent) and no record is left to
    come back from ``resume()`` as a create that may have been sent."""
    store = Failing(after={"add": 1}, before={"delete": 1})
    with aioresponses() as m:
        async with client(store) as c:
            with pytest.raises(ConnectionError):
                await c.submit(image=IMAGE, prompt="p")
            assert await c.resume() == []
        assert sum(len(calls) for calls in m.requests.values()) == 0
    assert store._records == {}


# -- aclose() while a submit's create is in flight ----------------------------------------------


async def test_aclose_while_a_create_is_in_flight_waits_for_its_reply() -> None:
    """The create left, then the client is closed, then its reply comes: aclose() waited
    for it, the submit gives its job (the provider made it) and awaiting it raises
    ClientClosedError at once, like any job pending at the close; the record keeps the
    provider's id for resume()."""
    create = Blocked({"status": "success", "predictionID": "p-late"})
    store = ltx2.MemoryStore()
    with aioresponses() as m:
        m.post(EACHLABS_CREATE, callback=create.reply)
        c = client(store)
        await c.__aenter__()
        submit = asyncio.create_task(c.submit(image=IMAGE, prompt="p"))
        with anyio.fail_after(PATIENCE):
            await create.arrived.wait()
        closing = asyncio.create_task(c.aclose())
        await asyncio.sleep(0.05)
        # The session stays open for the reply (closing it would drop the reply of a
        # job the provider made, leaving its record UNKNOWN).
        assert not closing.done()
        create.released.set()
        with anyio.fail_after(PATIENCE):
            await closing
            job = await submit
            with pytest.raises(ltx2.ClientClosedError):
                await job
    assert job.id == "p-late"
    (record,) = await store.unfinished("eachlabs")
    assert record.job_id == "p-late"


async def test_a_cancelled_submit_whose_create_reply_the_store_fails_to_record_still_settles() -> (
    None
):
    """submit() cancelled with its create in flight; the reply comes, and the store fails
    once to record it: the job is still cancelled at the provider and its record says so
    (not a record with no status, that resume() would report as a create never answered)."""
    create = Blocked({"status": "success", "predictionID": "p-c"})
    store = Failing(before={"set_created": 1})
    with aioresponses() as m:
        m.post(EACHLABS_CREATE, callback=create.reply)
        m.post(f"{EACHLABS}/v1/prediction/p-c/cancel", payload={"status": "success"})
        m.get(f"{EACHLABS}/v1/prediction/p-c", payload={"status": "cancelled"}, repeat=True)
        async with client(store) as c:
            task = asyncio.create_task(c.submit(image=IMAGE, prompt="p"))
            with anyio.fail_after(PATIENCE):
                await create.arrived.wait()
            task.cancel()
            await asyncio.sleep(0.01)
            create.released.set()
            with anyio.fail_after(PATIENCE):
                await asyncio.wait([task])
            assert task.cancelled()
    record = await store.find("eachlabs", "p-c")
    assert record is not None
    assert record.status is ltx2.JobStatus.CANCELLED

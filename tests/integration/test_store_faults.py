"""Issue 10's fault-injection acceptance: 200 jobs against the emulator through a store that
fails one call in ten at random (as a Redis store does once redis-py has given up on an
outage: ``redis.exceptions.ConnectionError``): Eachlabs polled, Eachlabs with webhooks (the
receiver's deliveries go through the failing store too) and fal on its status streams.

What a user must see: every job resolves or raises (nothing hangs); a store error reaches a
caller only from ``submit`` and only when no create was sent; no job slot is lost (with the
store healthy again, the next ten submits reach the provider at once, Eachlabs allowing ten
unfinished jobs); no task is left; no record is left without a status."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from typing import Any

import anyio
import pytest

import ltx2
from ltx2.stores import JobRecord, Store
from ltx2.stores._base import ChangeListener

pytest.importorskip("av")
redis_exceptions = pytest.importorskip("redis.exceptions")
from ltx2.emulator import Emulator  # noqa: E402

SCALE = 0.002
IMAGE = "https://images.example.com/cat.png"  # stub mode takes remote URLs as reachable
KEY = "test-key"
JOBS = 200
#: The whole run's bound: generous (a loaded 2-core machine), but a hang fails, never blocks.
PATIENCE = 120.0


class StoreDown(redis_exceptions.ConnectionError):  # type: ignore[misc,name-defined]
    """What a RedisStore raises when Redis is away for longer than its retries."""


class FaultyStore(Store):
    """A store whose every call fails at random (``rate``, seeded) while ``failing`` is set;
    half of the failures come after the call reached the store (the write happened, the
    answer was lost: a Redis timeout), half before. Listeners are the inner store's."""

    def __init__(self, inner: Store, *, rate: float, seed: int) -> None:
        super().__init__()
        self.inner = inner
        self.rate = rate
        self.random = random.Random(seed)
        self.failing = True
        self.calls = 0
        self.failures = 0

    def _roll(self) -> tuple[bool, bool]:
        self.calls += 1
        if not self.failing or self.random.random() >= self.rate:
            return False, False
        self.failures += 1
        after = self.random.random() < 0.5
        return not after, after

    async def _call(self, name: str, *args: Any, **kw: Any) -> Any:
        before, after = self._roll()
        if before:
            raise StoreDown(f"Error 111 connecting to 127.0.0.1:6379 ({name}). Connection refused.")
        result = await getattr(self.inner, name)(*args, **kw)
        if after:
            raise StoreDown(f"Timeout reading from 127.0.0.1:6379 ({name})")
        return result

    async def open(self) -> None:
        await self.inner.open()

    async def close(self) -> None:
        await self.inner.close()

    def subscribe(self, listener: ChangeListener) -> Callable[[], None]:
        return self.inner.subscribe(listener)

    async def add(self, record: JobRecord) -> None:
        await self._call("add", record)

    async def get(self, key: str) -> JobRecord | None:
        return await self._call("get", key)  # type: ignore[no-any-return]

    async def get_by_token(self, token: str) -> JobRecord | None:
        return await self._call("get_by_token", token)  # type: ignore[no-any-return]

    async def find(self, provider: str, job_id: str, *, scope: str | None = None) -> Any:
        return await self._call("find", provider, job_id, scope=scope)

    async def set_created(self, *args: Any) -> Any:
        return await self._call("set_created", *args)

    async def update(self, key: str, update: ltx2.StatusUpdate) -> Any:
        return await self._call("update", key, update)

    async def deliver(self, *args: Any) -> Any:
        return await self._call("deliver", *args)

    async def clear_delivery(self, key: str) -> None:
        await self._call("clear_delivery", key)

    async def unfinished(self, provider: str | None = None, *, scope: str | None = None) -> Any:
        return await self._call("unfinished", provider, scope=scope)

    async def delete(self, key: str) -> None:
        await self._call("delete", key)

    async def lease(self, key: str, owner: str, ttl: float) -> bool:
        return await self._call("lease", key, owner, ttl)  # type: ignore[no-any-return]


def requests(n: int, tag: str) -> list[ltx2.VideoRequest]:
    return [ltx2.VideoRequest(IMAGE, f"{tag} {i}") for i in range(n)]


def outcome(result: object) -> str:
    if isinstance(result, ltx2.Video):
        return "video"
    if isinstance(result, StoreDown):
        return "store error"
    if isinstance(result, ltx2.LTX2Error):
        return type(result).__name__
    raise AssertionError(f"a job ended in {result!r}, not a video or an ltx2 error")


@pytest.mark.parametrize(
    ("name", "webhooks"),
    [("eachlabs", False), ("eachlabs", True), ("fal", False)],
    ids=["eachlabs polled", "eachlabs webhooks", "fal status streams"],
)
async def test_two_hundred_jobs_through_a_store_failing_one_call_in_ten(
    name: str, webhooks: bool
) -> None:
    before = asyncio.all_tasks()
    inner = ltx2.MemoryStore()
    store = FaultyStore(inner, rate=0.1, seed=10)
    submit_errors: list[str] = []
    await_results: list[object] = []
    # Eachlabs' limits (seed 000: 10 unfinished jobs per key) for every provider here.
    limits = ltx2.Limits(creates_per_period=100, max_concurrent=10).scaled(SCALE)
    async with contextlib.AsyncExitStack() as stack:
        emu = await stack.enter_async_context(
            Emulator(time_scale=SCALE, seed=10, render="stub", limits=True)
        )
        receiver = None
        if webhooks:
            receiver = ltx2.WebhookReceiver(fal_jwks_urls=[emu.fal_jwks_url], store=store)
            await receiver.start("127.0.0.1", 0)
            stack.push_async_callback(receiver.stop)
        stats = emu.stats_for(name)
        c = await stack.enter_async_context(
            ltx2.Client(
                name,
                api_key=KEY,
                base_url=emu.provider_url(name),
                time_scale=SCALE,
                store=store,
                webhooks=receiver,
                limits=limits,
            )
        )

        async def one(request: ltx2.VideoRequest) -> None:
            try:
                job = await c.submit(request)
            except StoreDown:
                submit_errors.append("store error")
                return
            except ltx2.LTX2Error as exc:
                submit_errors.append(type(exc).__name__)
                return
            try:
                await_results.append(await job)
            except Exception as exc:
                await_results.append(exc)

        gathered: list[list[ltx2.Video | BaseException]] = []

        async def fan_out(tag: str) -> None:
            gathered.append(
                await c.gather(requests(25, tag), concurrency=10, return_exceptions=True)
            )

        with anyio.fail_after(PATIENCE):
            async with anyio.create_task_group() as tg:
                for tag in ("a", "b", "c", "d"):
                    tg.start_soon(fan_out, tag)
                for request in requests(JOBS - 100, "one"):
                    tg.start_soon(one, request)

        results = [r for batch in gathered for r in batch] + await_results
        outcomes = [outcome(r) for r in results] + submit_errors
        assert len(outcomes) == JOBS
        assert store.failures > 0.05 * store.calls
        # A store error reaches a caller only from a submit that sent nothing: every
        # create the emulator saw is a job some caller got (it resolved, or raised an
        # ltx2 error from its await).
        assert outcomes.count("store error") + stats["creates"] <= JOBS
        assert not any(isinstance(r, StoreDown) for r in await_results)
        assert outcomes.count("video") > JOBS // 2
        if receiver is not None:  # deliveries went through the failing store too
            assert receiver.stats["accepted"] > JOBS // 2

        # The store is healthy again: no slot was lost, so ten submits (Eachlabs allows
        # ten unfinished jobs per key) all reach the provider at once.
        store.failing = False
        creates = stats["creates"]
        with anyio.fail_after(10):
            jobs = await asyncio.gather(*(c.submit(request) for request in requests(10, "after")))
        assert stats["creates"] == creates + 10
        with anyio.fail_after(PATIENCE):
            videos = await asyncio.gather(*jobs)
        assert len(videos) == 10

        # Every record has a status (none is left "create sent, no reply read").
        records = list(inner._records.values())
        assert records
        assert [r.key for r in records if r.update is None] == []
        assert [r.key for r in records if r.job_id and not r.terminal] == []
    await anyio.sleep(0)
    left = [t for t in asyncio.all_tasks() - before if not t.done()]
    left = [t for t in left if t is not asyncio.current_task()]
    assert left == [], [t.get_name() for t in left]

"""RedisStore against a real redis-server: several replicas sharing jobs and deliveries,
leases, TTLs, and a Redis restart in the middle of a run."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import pytest
import redis.asyncio as aioredis
from tests._redis import RedisServer

from ltx2._types import JobStatus, StatusUpdate
from ltx2.stores import JobRecord, RedisStore, new_record

RUNNING = StatusUpdate(JobStatus.RUNNING, raw="processing")
SUCCEEDED = StatusUpdate(JobStatus.SUCCEEDED, raw="success", video_url="https://v/1.mp4")
HOOK_OK = StatusUpdate(JobStatus.SUCCEEDED, raw="succeeded", video_url="https://v/hook.mp4")

pytestmark = pytest.mark.redis


def record(provider: str = "eachlabs") -> JobRecord:
    return new_record(provider, {"prompt": "a cat"}, owner="replica-a", with_secret=True)


class Recorder:
    """A listener that keeps what it heard."""

    def __init__(self) -> None:
        self.heard: list[JobRecord] = []

    def __call__(self, rec: JobRecord) -> None:
        self.heard.append(rec)

    def of(self, key: str) -> list[JobRecord]:
        return [r for r in self.heard if r.key == key]


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


@pytest.fixture
def prefix() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def replicas(
    redis_server: RedisServer, prefix: str
) -> AsyncIterator[tuple[RedisStore, RedisStore]]:
    a = RedisStore(redis_server.url, prefix=prefix)
    b = RedisStore(redis_server.url, prefix=prefix)
    await a.open()
    await b.open()
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


@pytest.fixture
async def raw(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


# -- replicas -------------------------------------------------------------------------------


async def test_a_change_made_by_one_replica_reaches_every_replicas_listeners(
    replicas: tuple[RedisStore, RedisStore],
) -> None:
    a, b = replicas
    heard_a, heard_b = Recorder(), Recorder()
    a.subscribe(heard_a)
    b.subscribe(heard_b)
    rec = record()
    await a.add(rec)
    await a.set_created(rec.key, "p-1", {}, RUNNING)
    # The webhook lands on replica B; replica A awaits the job.
    _, accepted = await b.deliver(rec.token, HOOK_OK, "p-1")
    assert accepted
    await eventually(lambda: len(heard_a.heard) == 2 and len(heard_b.heard) == 2)
    await asyncio.sleep(0.2)  # an echo would have arrived by now
    for heard in (heard_a, heard_b):
        assert [(r.update, r.delivery) for r in heard.heard] == [
            (RUNNING, None),
            (RUNNING, HOOK_OK),
        ]


async def test_a_waiter_that_subscribes_then_reads_misses_nothing(
    redis_server: RedisServer, prefix: str
) -> None:
    receiving = RedisStore(redis_server.url, prefix=prefix)
    waiting = RedisStore(redis_server.url, prefix=prefix)
    async with receiving, waiting:
        rec = record()
        await receiving.add(rec)
        got: asyncio.Queue[JobRecord] = asyncio.Queue()
        waiting.subscribe(got.put_nowait)  # subscribe, then read
        assert (await waiting.get(rec.key)) == rec
        await receiving.deliver(rec.token, HOOK_OK, None)
        heard = await asyncio.wait_for(got.get(), 5)
        assert heard.delivery == HOOK_OK


async def test_three_replicas_hear_a_delivery_received_by_any(
    redis_server: RedisServer, prefix: str
) -> None:
    stores = [RedisStore(redis_server.url, prefix=prefix) for _ in range(3)]
    recorders = [Recorder() for _ in stores]
    for store, heard in zip(stores, recorders, strict=True):
        store.subscribe(heard)  # subscribing first starts the subscriber; open waits for it
        await store.open()
    try:
        recs = [record() for _ in range(9)]
        for rec in recs:
            await stores[0].add(rec)
        await asyncio.gather(
            *(stores[i % 3].deliver(rec.token, HOOK_OK, None) for i, rec in enumerate(recs))
        )
        want = {r.key for r in recs}
        await eventually(lambda: all({r.key for r in h.heard} == want for h in recorders))
        await asyncio.sleep(0.2)
        assert all(len(h.heard) == len(recs) for h in recorders)  # once each
    finally:
        for store in stores:
            await store.close()


async def test_a_poll_lease_is_held_by_one_replica_at_a_time(
    replicas: tuple[RedisStore, RedisStore],
) -> None:
    a, b = replicas
    assert await a.lease("job-1", "replica-a", 0.3)
    assert not await b.lease("job-1", "replica-b", 0.3)
    assert await a.lease("job-1", "replica-a", 0.3)
    assert await b.lease("job-2", "replica-b", 0.3)
    await asyncio.sleep(0.4)
    assert await b.lease("job-1", "replica-b", 0.3)
    assert not await a.lease("job-1", "replica-a", 0.3)


async def test_a_deleted_job_loses_its_lease(replicas: tuple[RedisStore, RedisStore]) -> None:
    a, b = replicas
    rec = record()
    await a.add(rec)
    assert await a.lease(rec.key, "replica-a", 30)
    await a.delete(rec.key)
    assert await b.lease(rec.key, "replica-b", 30)


# -- keys and TTLs ----------------------------------------------------------------------------


async def test_records_and_their_indexes_live_ttl_then_finished_ttl(
    redis_server: RedisServer, prefix: str, raw: aioredis.Redis
) -> None:
    async with RedisStore(redis_server.url, prefix=prefix, ttl=100, finished_ttl=10) as store:
        rec = record()
        await store.add(rec)
        await store.set_created(rec.key, "p-1", {}, RUNNING)
        keys = [
            f"{prefix}:job:{rec.key}",
            f"{prefix}:token:{rec.token}",
            f"{prefix}:jobid:eachlabs:p-1",
        ]
        for key in keys:
            assert 90_000 < await raw.pttl(key) <= 100_000
        assert await raw.zscore(f"{prefix}:unfinished", rec.key) == pytest.approx(rec.created_at)

        await store.update(rec.key, SUCCEEDED)
        for key in keys:
            assert 0 < await raw.pttl(key) <= 10_000
        assert await raw.zscore(f"{prefix}:unfinished", rec.key) is None
        assert await raw.zscore(f"{prefix}:finished", rec.key) is not None


async def test_an_expired_unfinished_record_leaves_the_unfinished_list(
    redis_server: RedisServer, prefix: str, raw: aioredis.Redis
) -> None:
    async with RedisStore(redis_server.url, prefix=prefix, ttl=0.2) as store:
        rec = record()
        await store.add(rec)
        assert [r.key for r in await store.unfinished()] == [rec.key]
        await asyncio.sleep(0.3)
        assert await store.unfinished() == []
        assert await store.get_by_token(rec.token) is None
        assert await raw.zcard(f"{prefix}:unfinished") == 0


async def test_delete_removes_every_key(
    redis_server: RedisServer, prefix: str, raw: aioredis.Redis
) -> None:
    async with RedisStore(redis_server.url, prefix=prefix) as store:
        rec = record()
        await store.add(rec)
        await store.set_created(rec.key, "p-1", {}, RUNNING)
        await store.lease(rec.key, "me", 30)
        await store.delete(rec.key)
        assert [k async for k in raw.scan_iter(f"{prefix}:*")] == []


# -- resync and restarts ----------------------------------------------------------------------


async def test_resync_tells_listeners_of_unfinished_and_recently_finished_jobs(
    replicas: tuple[RedisStore, RedisStore],
) -> None:
    a, b = replicas
    open_recs = [record() for _ in range(3)]
    done = record()
    for rec in [*open_recs, done]:
        await a.add(rec)
    await a.update(done.key, SUCCEEDED)
    heard = Recorder()
    b.subscribe(heard)

    await b.resync(since=time.time())
    assert {r.key for r in heard.heard} == {r.key for r in [*open_recs, done]}
    assert heard.of(done.key)[0].update == SUCCEEDED

    heard.heard.clear()
    await b.resync(since=time.time() + 3600)  # finished long before "since": not repeated
    assert {r.key for r in heard.heard} == {r.key for r in open_recs}


async def test_a_redis_restart_loses_no_job_and_the_subscriber_resyncs(
    own_redis: RedisServer, prefix: str
) -> None:
    a = RedisStore(own_redis.url, prefix=prefix)
    b = RedisStore(own_redis.url, prefix=prefix)
    async with a, b:
        recs = [record() for _ in range(10)]
        for i, rec in enumerate(recs):
            await a.add(rec)
            await a.set_created(rec.key, f"p-{i}", {"n": str(i)}, RUNNING)
        before = {rec.key: await a.get(rec.key) for rec in recs}
        heard = Recorder()
        b.subscribe(heard)

        await asyncio.to_thread(own_redis.restart)

        # Nothing changed, so only a resync after the reconnect tells B of these jobs.
        await eventually(lambda: {r.key for r in heard.heard} >= set(before))
        for key, rec in before.items():
            assert await b.get(key) == rec
            assert heard.of(key)[-1] == rec
        # And the subscription works again.
        await a.deliver(recs[0].token, HOOK_OK, "p-0")
        await eventually(lambda: any(r.delivery == HOOK_OK for r in heard.of(recs[0].key)))
        assert await b.find("eachlabs", "p-3") == before[recs[3].key]


async def test_a_restart_in_the_middle_of_changes_loses_none_of_them(
    own_redis: RedisServer, prefix: str
) -> None:
    a = RedisStore(own_redis.url, prefix=prefix)
    b = RedisStore(own_redis.url, prefix=prefix)
    async with a, b:
        heard = Recorder()
        b.subscribe(heard)
        recs = [record() for _ in range(40)]
        for rec in recs:
            await a.add(rec)
        restarted = asyncio.Event()

        async def run(i: int, rec: JobRecord) -> None:
            store = a if i % 2 else b
            assert await store.set_created(rec.key, f"p-{i}", {}, RUNNING) is not None
            if i == 20:
                await asyncio.sleep(0.05)
                await asyncio.to_thread(own_redis.restart)
                restarted.set()
            for n in range(5):  # keep changing while Redis goes away and comes back
                await store.update(rec.key, replace(RUNNING, queue_position=n))
                await asyncio.sleep(0.03)
            _, accepted = await store.deliver(rec.token, HOOK_OK, f"p-{i}")
            assert accepted
            done = await (b if i % 2 else a).update(rec.key, SUCCEEDED)
            assert done is not None

        await asyncio.gather(*(run(i, rec) for i, rec in enumerate(recs)))
        assert restarted.is_set()
        for i, rec in enumerate(recs):
            got = await a.get(rec.key)
            assert got is not None
            assert got.update == SUCCEEDED
            assert got.job_id == f"p-{i}"
        assert await a.unfinished() == []
        # Every job's end reached B, live or by the resync.
        await eventually(lambda: all(any(r.terminal for r in heard.of(rec.key)) for rec in recs))


async def test_the_subscriber_outlasts_an_outage_longer_than_the_retries(
    own_redis: RedisServer, prefix: str
) -> None:
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    # A client that gives up at once: the subscriber's own loop has to reconnect.
    impatient = aioredis.Redis.from_url(
        own_redis.url, decode_responses=True, retry=Retry(NoBackoff(), 1)
    )
    try:
        async with RedisStore(client=impatient, prefix=prefix) as store:
            rec = record()
            await store.add(rec)
            heard = Recorder()
            store.subscribe(heard)
            await asyncio.to_thread(own_redis.stop)
            await asyncio.sleep(0.5)
            await asyncio.to_thread(own_redis.start)
            # Told by the resync (once, or twice should a second reconnect resync again).
            await eventually(lambda: {r.key for r in heard.heard} == {rec.key})
            assert await store.get(rec.key) == rec
    finally:
        await impatient.aclose()


async def test_a_redis_that_stays_down_fails_each_command_within_2_s_and_is_logged_once(
    own_redis: RedisServer, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from redis.exceptions import ConnectionError

    async with RedisStore(own_redis.url, prefix=prefix) as store:
        rec = record()
        await store.add(rec)
        await asyncio.to_thread(own_redis.stop)
        caplog.set_level(logging.WARNING, logger="ltx2.stores")
        for _ in range(3):
            start = time.monotonic()
            with pytest.raises(ConnectionError):
                await store.get(rec.key)
            assert time.monotonic() - start <= 2.0
        # Once for the outage (commands and the subscriber alike), not per command.
        warned = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warned) == 1, [r.getMessage() for r in warned]
        assert "is unreachable" in warned[0].getMessage()
        await asyncio.to_thread(own_redis.start)
        assert await store.get(rec.key) == rec


async def test_a_crashed_redis_keeps_every_acknowledged_write(
    own_redis: RedisServer, prefix: str
) -> None:
    async with RedisStore(own_redis.url, prefix=prefix) as store:
        recs = [record() for _ in range(20)]
        for rec in recs:
            await store.add(rec)
            await store.deliver(rec.token, HOOK_OK, None)
        await asyncio.to_thread(own_redis.restart, kill=True)  # SIGKILL: no shutdown save
        for rec in recs:
            got = await store.get_by_token(rec.token)
            assert got is not None
            assert got.delivery == HOOK_OK
        assert len(await store.unfinished()) == 20


# -- robustness -------------------------------------------------------------------------------


async def test_bad_events_and_failing_listeners_do_not_stop_the_subscriber(
    replicas: tuple[RedisStore, RedisStore], prefix: str, raw: aioredis.Redis
) -> None:
    a, b = replicas
    heard = Recorder()

    def broken(rec: JobRecord) -> None:
        raise RuntimeError("listener bug")

    b.subscribe(broken)
    b.subscribe(heard)
    for junk in ("not json", "{}", '{"src": "x", "record": {"key": 1}}', "[1]"):
        await raw.publish(f"{prefix}:events", junk)
    rec = record()
    await a.add(rec)
    await a.update(rec.key, RUNNING)
    await eventually(lambda: len(heard.heard) == 1)
    await a.update(rec.key, SUCCEEDED)
    await eventually(lambda: len(heard.heard) == 2)


async def test_a_client_passed_in_is_used_and_left_open(
    redis_server: RedisServer, prefix: str, raw: aioredis.Redis
) -> None:
    store = RedisStore(client=raw, prefix=prefix)
    rec = record()
    await store.add(rec)  # opens the store on first use
    assert await store.get(rec.key) == rec
    await store.close()
    await store.close()
    assert await raw.ping()


async def test_the_repr_hides_the_password() -> None:
    store = RedisStore("redis://user:hunter2@example.com:6380/1")
    assert "hunter2" not in repr(store)
    assert "user" not in repr(store)
    assert "example.com:6380" in repr(store)
    assert "s3cret" not in repr(RedisStore("unix:///run/redis.sock?db=0&password=s3cret"))


async def test_a_missing_redis_py_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "redis" or m.startswith("redis.")]:
        monkeypatch.setitem(sys.modules, name, None)
    store = RedisStore()
    with pytest.raises(ImportError, match=r"pip install 'ltx2\[redis\]'"):
        await store.open()


def test_importing_ltx2_imports_neither_redis_nor_aiosqlite() -> None:
    code = (
        "import sys, ltx2, ltx2.stores\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('redis', 'aiosqlite')]\n"
        "assert not loaded, loaded\n"
        "assert ltx2.stores.RedisStore and ltx2.stores.SQLiteStore\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)  # noqa: S603


async def test_close_ends_a_subscriber_whose_cancel_was_lost(
    redis_server: RedisServer, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # redis-py's get_message(timeout=) can turn a cancel that meets its timeout into "no
    # message": close() awaited the subscriber for ever (seen as a hung suite, 1 run in ~10).
    from redis.asyncio.client import PubSub

    original = PubSub.get_message
    lost = 0

    async def lossy(self: PubSub, *args: Any, **kwargs: Any) -> Any:
        nonlocal lost
        try:
            return await original(self, *args, **kwargs)
        except asyncio.CancelledError:
            if lost:
                raise
            lost += 1
            task = asyncio.current_task()
            assert task is not None
            task.uncancel()
            return None

    monkeypatch.setattr(PubSub, "get_message", lossy)
    store = RedisStore(redis_server.url, prefix=prefix)
    await store.open()
    await asyncio.wait_for(store.close(), 10)
    assert lost == 1

"""Three client processes on one Eachlabs key, sharing the key's limits through Redis, against
the emulator enforcing Eachlabs' limits (seed 000: 100 creates/min, 10 concurrent per key) on
scaled time: 300 jobs with no 429 and never more than 10 running at the emulator, at >= 95 %
of the allowed creates per minute; one of them SIGKILLed mid-run: its slots come back within
one lease, the other two finish, and a fresh client's resume() finds the dead one's jobs; and
two apps, or one app with two keys, on one Redis never see or limit each other's jobs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import statistics
import sys
import time
import uuid
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from tests._redis import RedisServer
from tests.integration._processes import CHILD_CLIENT, Process, spawn

import ltx2
from ltx2._limits import key_fingerprint
from ltx2.emulator import Emulator

pytestmark = pytest.mark.redis

KEY = "shared-eachlabs-key"
LIMIT = 100  # creates per window (seed 000)
WINDOW = 60.0
CONCURRENT = 10
SCALE = 0.1  # a 60 s window is 6 s; a 30 s lease 3 s
PROCESSING = 1.0  # provider seconds: the cap binds within a window, the window over the run
LEASE = 30.0 * SCALE  # Limits.lease's default, scaled by the client's time_scale
IMAGE = "https://images.example.com/cat.jpg"


@pytest.fixture
def prefix() -> str:
    return f"shared-{uuid.uuid4().hex[:8]}"


def utilisation(created: list[float], window: float) -> float:
    """The bench's figure: for each create i, the limit allows create i+100 one window later
    at the earliest; the mean of window / (t[i+100] - t[i])."""
    created = sorted(created)
    gaps = [created[i + LIMIT] - created[i] for i in range(len(created) - LIMIT)]
    return statistics.fmean(window / g for g in gaps)


def child(emu: Emulator, redis_url: str, prefix: str, name: str, jobs: int, out: Path) -> list[str]:
    return [
        sys.executable, str(CHILD_CLIENT), "fanout", "--name", name, "--provider", "eachlabs",
        "--base-url", emu.provider_url("eachlabs"), "--api-key", KEY, "--redis", redis_url,
        "--prefix", prefix, "--jobs", str(jobs), "--time-scale", str(SCALE),
        "--out", str(out), "--concurrency", "50", "--timeout", "120",
    ]  # fmt: skip


async def start_children(
    stack: AsyncExitStack, emu: Emulator, redis_url: str, prefix: str, tmp_path: Path, jobs: int
) -> list[Process]:
    procs = []
    for name in ("a", "b", "c"):
        argv = child(emu, redis_url, prefix, name, jobs, tmp_path / f"{name}.json")
        procs.append(
            await stack.enter_async_context(spawn(argv, name=name, stderr=tmp_path / f"{name}.err"))
        )
    for proc in procs:
        await proc.wait_for_line(r"^ready$")
    return procs


async def test_three_replicas_on_one_key_stay_within_its_limits_and_use_them(
    redis_server: RedisServer, prefix: str, tmp_path: Path
) -> None:
    per_child = 100
    emu_args: dict[str, Any] = {"processing_time": {"eachlabs": PROCESSING}}
    async with Emulator(time_scale=SCALE, render="stub", seed=11, **emu_args) as emu:
        async with AsyncExitStack() as stack:
            procs = await start_children(stack, emu, redis_server.url, prefix, tmp_path, per_child)
            for proc in procs:
                assert await proc.wait(120) == 0, proc.stderr()
        stats = emu.stats_for("eachlabs")
        timeline = emu.job_timeline("eachlabs")

    reports = [json.loads((tmp_path / f"{n}.json").read_text()) for n in "abc"]
    assert sum(len(r["jobs"]) for r in reports) == 3 * per_child
    assert stats["creates"] == 3 * per_child
    assert stats["rate_limited"] == 0
    assert all(r["rate_limited"] == 0 for r in reports)
    assert max(stats["max_concurrent_seen"].values()) <= CONCURRENT
    used = utilisation([j["created_at"] for j in timeline], WINDOW * SCALE)
    print(f"utilisation {used:.4f}")
    assert used >= 0.95, used


async def live_slots(client: aioredis.Redis, key: str) -> list[str]:
    seconds, micros = await client.time()
    now_ms = seconds * 1000 + micros // 1000
    return [str(m) for m in await client.zrangebyscore(key, f"({now_ms}", "+inf")]


async def test_a_sigkilled_replica_frees_its_slots_within_a_lease_and_its_jobs_resume(
    redis_server: RedisServer, prefix: str, tmp_path: Path
) -> None:
    per_child = 60
    slots_key = f"{prefix}:limits:eachlabs:{key_fingerprint('eachlabs', KEY)}:slots"
    emu_args: dict[str, Any] = {"processing_time": {"eachlabs": PROCESSING}}
    redis = aioredis.from_url(redis_server.url, decode_responses=True)
    async with Emulator(time_scale=SCALE, render="stub", seed=12, **emu_args) as emu:
        async with AsyncExitStack() as stack:
            stack.push_async_callback(redis.aclose)
            a, b, c = await start_children(
                stack, emu, redis_server.url, prefix, tmp_path, per_child
            )
            await c.wait_for_line(r"^done 10 ", timeout=60)
            marker = f"/{c.pid}/"
            assert any(marker in m for m in await live_slots(redis, slots_key))
            c.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            await c.wait(10)
            while any(marker in m for m in await live_slots(redis, slots_key)):
                assert time.monotonic() - killed <= LEASE + 0.3, "the dead replica's slots"
                await asyncio.sleep(0.02)
            freed = time.monotonic() - killed
            for proc in (a, b):
                assert await proc.wait(120) == 0, proc.stderr()
        finished = {
            job_id
            for name in "ab"
            for job_id in json.loads((tmp_path / f"{name}.json").read_text())["jobs"]
        }
        assert len(finished) == 2 * per_child
        dead_jobs = {job_id for job_id in emu.jobs if job_id not in finished}
        assert dead_jobs  # it had created some

        # A fresh client on the same key and store takes the dead one's jobs over.
        store = ltx2.RedisStore(redis_server.url, prefix=prefix)
        client = ltx2.Client(
            "eachlabs", api_key=KEY, base_url=emu.provider_url("eachlabs"), store=store,
            time_scale=SCALE,
        )  # fmt: skip
        async with store, client:  # a store passed in is the caller's to close
            resumed = await client.resume()
            with_id = {job.id: job for job in resumed if job.id}
            unknown = [job for job in resumed if job.status is ltx2.JobStatus.UNKNOWN]
            assert with_id  # it died with jobs in flight
            assert set(with_id) <= dead_jobs
            videos = await asyncio.wait_for(asyncio.gather(*with_id.values()), 60)
            # Every job the dead one created has ended in the store (it saw some end, the
            # fresh client the rest), but those whose create reply it never read: they come
            # back UNKNOWN (at most one per slot it held), never resubmitted.
            records = {job_id: await store.find("eachlabs", job_id) for job_id in dead_jobs}
            unread = [job_id for job_id, rec in records.items() if rec is None]
            assert all(rec.terminal for rec in records.values() if rec is not None)
            assert len(unread) <= len(unknown) <= CONCURRENT
        stats = emu.stats_for("eachlabs")
    assert all(v.url for v in videos)
    assert freed <= LEASE + 0.3
    assert max(stats["max_concurrent_seen"].values()) <= CONCURRENT


async def test_two_apps_and_two_keys_on_one_redis_see_and_limit_nothing_of_each_other(
    redis_server: RedisServer,
) -> None:
    shared_prefix = f"ltx2-{uuid.uuid4().hex[:6]}"  # two apps left on one prefix
    limits = ltx2.Limits(creates_per_period=2, max_concurrent=2, period=60.0)
    poll = ltx2.PollPolicy(first=1000.0, min_interval=1000.0, max_interval=1000.0)
    async with Emulator(render="stub", seed=13, processing_time={"eachlabs": 1000.0}) as emu:
        url = emu.provider_url("eachlabs")

        stores: list[ltx2.RedisStore] = []  # passed in: the test closes them

        def client(key: str) -> ltx2.Client:
            store = ltx2.RedisStore(redis_server.url, prefix=shared_prefix)
            stores.append(store)
            return ltx2.Client(
                "eachlabs", api_key=key, base_url=url, store=store, limits=limits, poll=poll
            )

        app_one, app_two, app_two_other_key = client("key-one"), client("key-two"), client("k3")
        async with contextlib.AsyncExitStack() as stack:
            for store in stores:
                stack.push_async_callback(store.close)
            await stack.enter_async_context(app_one)
            await stack.enter_async_context(app_two)
            await stack.enter_async_context(app_two_other_key)
            # Each key takes its whole limit, two creates and two jobs in flight, whatever the
            # other keys took (one shared limit would hold the third key's creates back).
            jobs = {}
            for name, c in (("one", app_one), ("two", app_two), ("k3", app_two_other_key)):
                jobs[name] = [
                    await asyncio.wait_for(c.submit(image=IMAGE, prompt=f"{name} {i}"), 5)
                    for i in range(2)
                ]
            for name in ("one", "two", "k3"):
                # Fresh clients on the same keys resume their own key's jobs and nothing else.
                fresh_store = ltx2.RedisStore(redis_server.url, prefix=shared_prefix)
                fresh = ltx2.Client(
                    "eachlabs", api_key={"one": "key-one", "two": "key-two", "k3": "k3"}[name],
                    base_url=url, store=fresh_store, limits=limits, poll=poll,
                )  # fmt: skip
                async with fresh_store, fresh:
                    resumed = await fresh.resume()
                    assert {j.id for j in resumed} == {j.id for j in jobs[name]}
                    # ... and the key's limits are used up for it (2 in flight), not for others.
                    with pytest.raises(TimeoutError):
                        await asyncio.wait_for(fresh.submit(image=IMAGE, prompt="more"), 0.5)
    assert emu.stats_for("eachlabs")["rate_limited"] == 0


async def test_sqlite_replicas_share_limits_through_a_limits_backend_url(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    limits = ltx2.Limits(max_concurrent=1)
    prefix = f"sqlite-{uuid.uuid4().hex[:6]}"
    async with Emulator(render="stub", seed=14, processing_time={"eachlabs": 1000.0}) as emu:
        url = emu.provider_url("eachlabs")

        # A store of its own per replica; a store passed in is the caller's to close.
        stores = [ltx2.SQLiteStore(tmp_path / f"{name}.db") for name in ("one", "two")]

        def replica(store: ltx2.SQLiteStore) -> ltx2.Client:
            shared = ltx2.stores.RedisLimits(redis_server.url, prefix=prefix)
            return ltx2.Client(
                "eachlabs", api_key=KEY, base_url=url, limits=limits, store=store,
                limits_backend=shared,
            )  # fmt: skip

        one, two = replica(stores[0]), replica(stores[1])
        async with stores[0], stores[1], one, two:
            await asyncio.wait_for(one.submit(image=IMAGE, prompt="first"), 5)
            # The key's one slot is taken, by the other replica: this create waits.
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(two.submit(image=IMAGE, prompt="second"), 0.5)
        assert emu.stats_for("eachlabs")["creates"] == 1


async def test_a_create_waits_for_a_down_limits_backend_then_fails_and_sends_nothing(
    own_redis: RedisServer,
) -> None:
    backend = ltx2.stores.RedisLimits(own_redis.url, prefix="down", down_timeout=0.5)
    own_redis.stop()
    async with Emulator(render="stub", seed=15) as emu:
        client = ltx2.Client(
            "eachlabs", api_key=KEY, base_url=emu.provider_url("eachlabs"),
            limits_backend=backend,
        )  # fmt: skip
        async with client:
            with pytest.raises(ltx2.TransportError, match=r"limits backend.*is down"):
                await client.submit(image=IMAGE, prompt="a cat")
            assert await client.resume() == []  # nothing was left behind either
        assert emu.stats_for("eachlabs")["creates"] == 0

"""Replicas on one Redis: poll leases (N replicas attached to a job poll it about once per
interval between them, not N times), and two client processes with one ``ltx2 receiver``
process, each job resolving once, by webhook, in the process that submitted it."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
import uuid
from collections import Counter
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from tests._redis import RedisServer
from tests.integration._processes import CHILD_CLIENT, receiver_process, spawn

import ltx2
from ltx2.emulator import Emulator

pytestmark = pytest.mark.redis

IMAGE = "https://images.example.com/cat.jpg"


class CountingRedisStore(ltx2.RedisStore):
    """A RedisStore that counts the poll leases asked for and granted."""

    def __init__(self, url: str, *, prefix: str) -> None:
        super().__init__(url, prefix=prefix)
        self.asked = 0
        self.granted = 0
        self.ttls: list[float] = []

    async def lease(self, key: str, owner: str, ttl: float) -> bool:
        got = await super().lease(key, owner, ttl)
        self.ttls.append(ttl)
        self.asked += 1
        self.granted += got
        return got


@pytest.fixture
def prefix() -> str:
    return f"replicas-{uuid.uuid4().hex[:8]}"


async def test_two_replicas_attached_to_one_job_poll_it_about_once_per_interval_between_them(
    redis_server: RedisServer, prefix: str
) -> None:
    interval = 0.1
    poll = ltx2.PollPolicy(first=interval, min_interval=interval, max_interval=interval)
    stores = [CountingRedisStore(redis_server.url, prefix=prefix) for _ in range(2)]
    async with Emulator(render="stub", seed=1, processing_time={"runcomfy": 2.0}) as emu:
        url = emu.provider_url("runcomfy")
        first, second = (
            ltx2.Client("runcomfy", api_key="k", base_url=url, store=store, poll=poll)
            for store in stores
        )
        async with stores[0], stores[1], first, second:  # stores passed in: ours to close
            job = await first.submit(image=IMAGE, prompt="a cat")
            # The second replica attaches the same job (as one that starts up and resumes
            # whatever is unfinished would), so both poll it on the same schedule.
            [same] = await second.resume()
            assert same.id == job.id
            video, seen = await asyncio.wait_for(asyncio.gather(job, same), 30)
        reads = emu.stats_for("runcomfy")["status_requests_by_job"][job.id]

    assert video.url == seen.url  # both resolved, the non-polling one through Redis
    asked = sum(s.asked for s in stores)
    granted = sum(s.granted for s in stores)
    assert all(s.asked > 0 for s in stores)  # both pollers ran...
    # ...but only a lease holder reads the status (the first lease is the submit's, held
    # while its create was out, for one Limits.lease).
    assert stores[0].ttls[0] == ltx2.Limits().lease
    assert reads == granted - 1
    # About one read per interval between them (2 s / 0.1 s), not one per replica.
    assert granted <= asked * 0.6 + 2, (granted, asked)
    # Each poll lease lasts 1.5 poll intervals, so the holder renews it before it lapses.
    polls = stores[0].ttls[1:] + stores[1].ttls
    assert all(ttl == pytest.approx(interval * 1.5) for ttl in polls)


async def test_two_client_processes_and_a_receiver_process_each_job_resolves_once_by_webhook(
    redis_server: RedisServer, prefix: str, tmp_path: Path
) -> None:
    per_client = 8  # Eachlabs: at most 10 jobs in flight per key
    scale = 0.02  # jobs of 1.2-2 s
    names = ("a", "b")
    outs = {name: tmp_path / f"{name}.json" for name in names}
    async with Emulator(time_scale=scale, render="stub", seed=5) as emu:
        async with receiver_process(tmp_path, redis_server.url, "--prefix", prefix) as (rx, url):
            async with AsyncExitStack() as stack:
                clients = []
                for name in names:
                    argv = [
                        sys.executable, str(CHILD_CLIENT), "replica", "--name", name,
                        "--provider", "eachlabs", "--base-url", emu.provider_url("eachlabs"),
                        "--api-key", f"key-{name}", "--redis", redis_server.url,
                        "--prefix", prefix, "--webhook-url", url, "--jobs", str(per_client),
                        "--time-scale", str(scale), "--out", str(outs[name]),
                    ]  # fmt: skip
                    err = tmp_path / f"{name}.err"
                    clients.append(
                        await stack.enter_async_context(spawn(argv, name=name, stderr=err))
                    )
                for client in clients:
                    assert await client.wait(60) == 0, client.stderr()
            rx.send_signal(signal.SIGTERM)
            assert await rx.wait(10) == 0, rx.stderr()
            stopped = "\n".join(await rx.rest_of_stdout())
        stats = emu.stats_for("eachlabs")
        created = {job_id for job_id, job in emu.jobs.items() if job.provider == "eachlabs"}

    reports = {name: json.loads(outs[name].read_text()) for name in names}
    ids = {name: {job["id"] for job in reports[name]["jobs"]} for name in names}
    assert all(len(ids[name]) == per_client for name in names)
    assert not ids["a"] & ids["b"]
    assert ids["a"] | ids["b"] == created
    assert stats["creates"] == 2 * per_client
    for name in names:
        assert all(job["status"] == "succeeded" and job["video"] for job in reports[name]["jobs"])
        # Each delivery was confirmed with one GET, by the process that submitted the job
        # (the receiver process has no key and sends nothing to the provider).
        gets = Counter(
            path.rsplit("/", 1)[-1]
            for method, path in reports[name]["requests"]
            if method == "GET" and re.search(r"/v1/prediction/[^/]+$", path)
        )
        assert gets == dict.fromkeys(ids[name], 1)
    assert stats["status_requests_by_job"] == dict.fromkeys(created, 1)  # no poll anywhere
    # Every job's webhook went to the receiver process, which wrote it to Redis once.
    assert re.search(rf"accepted={2 * per_client}\b", stopped), stopped
    assert re.search(r"rejected=0 unknown=0", stopped), stopped


async def test_resume_on_one_replica_reports_nothing_unknown_that_another_is_creating(
    redis_server: RedisServer, prefix: str
) -> None:
    from ltx2.emulator import Faults

    # Every reply takes 1 s: replica A's create is out while replica B resumes.
    faults = Faults(slow=1.0, slow_seconds=1.0)
    async with Emulator(render="stub", seed=3, faults=faults, processing_time=0.5) as emu:
        url = emu.provider_url("runcomfy")
        poll = ltx2.PollPolicy(first=0.2, min_interval=0.2, max_interval=0.5)

        stores = [ltx2.RedisStore(redis_server.url, prefix=prefix) for _ in range(2)]

        def replica(store: ltx2.RedisStore) -> ltx2.Client:
            return ltx2.Client("runcomfy", api_key="k", base_url=url, poll=poll, store=store)

        a, b = replica(stores[0]), replica(stores[1])
        async with stores[0], stores[1], a, b:  # stores passed in: ours to close
            submitting = asyncio.create_task(a.submit(image=IMAGE, prompt="a cat"))
            probe = ltx2.RedisStore(redis_server.url, prefix=prefix)
            async with probe:
                while not await probe.unfinished():
                    await asyncio.sleep(0.01)
                resumed = await b.resume()
                [rec] = await probe.unfinished()
            assert resumed == []  # left to A, not reported UNKNOWN
            assert rec.status is None  # nor marked so in the store
            job = await asyncio.wait_for(submitting, 10)
            video = await asyncio.wait_for(job, 20)
            assert video.url
            # Once A has the id, B's resume() returns the job, as any other.
            assert [j.id for j in await b.resume()] in ([job.id], [])


async def test_a_delivery_is_confirmed_by_one_status_read_across_replicas(
    redis_server: RedisServer, prefix: str, receiver: ltx2.WebhookReceiver
) -> None:
    async with Emulator(render="stub", seed=4, processing_time={"eachlabs": 1.0}) as emu:
        store = ltx2.RedisStore(redis_server.url, prefix=prefix)
        url = emu.provider_url("eachlabs")
        a = ltx2.Client("eachlabs", api_key="k", base_url=url, store=store, webhooks=receiver)
        b_store = ltx2.RedisStore(redis_server.url, prefix=prefix)
        b = ltx2.Client("eachlabs", api_key="k", base_url=url, store=b_store)
        async with store, b_store, a, b:  # stores passed in: ours to close
            job = await a.submit(image=IMAGE, prompt="a cat")
            [same] = await b.resume()  # B attaches the job too, as a replica starting up does
            assert same.id == job.id
            video, seen = await asyncio.wait_for(asyncio.gather(job, same), 30)
        reads = emu.stats_for("eachlabs")["status_requests_by_job"][job.id]
    assert video.url == seen.url
    # One GET confirmed the delivery, from one replica; B's resume skipped its first poll
    # (A held the job's lease).
    assert reads == 1

"""``ltx2 receiver``: a standalone receiver process that writes deliveries to Redis, prints its
URL when it listens and stops cleanly on SIGINT / SIGTERM."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from tests._redis import RedisServer
from tests.integration._processes import receiver_process

import ltx2
from ltx2._types import JobStatus, StatusUpdate
from ltx2.cli import main
from ltx2.emulator import Emulator
from ltx2.stores import JobRecord, new_record

pytestmark = pytest.mark.redis

RUNNING = StatusUpdate(JobStatus.RUNNING, raw="processing")


@pytest.fixture
def prefix() -> str:
    return f"receiver-{uuid.uuid4().hex[:8]}"


async def post(url: str, body: dict[str, Any], headers: dict[str, str]) -> int:
    async with (
        aiohttp.ClientSession() as s,
        s.post(url, data=json.dumps(body), headers=headers) as r,
    ):
        return r.status


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
async def test_the_receiver_writes_deliveries_to_redis_and_stops_cleanly(
    redis_server: RedisServer, prefix: str, tmp_path: Path, sig: signal.Signals
) -> None:
    public = "https://hooks.example.com/ltx2"
    args = ("--prefix", prefix, "--public-url", public)
    async with (
        ltx2.RedisStore(redis_server.url, prefix=prefix) as store,
        receiver_process(tmp_path, redis_server.url, *args) as (rx, url),
    ):
        assert rx.lines[-1].endswith(f"(public URL {public})")
        rec = new_record("eachlabs", {"prompt": "a cat"}, owner="replica-1", with_secret=True)
        await store.add(rec)
        await store.set_created(rec.key, "p-1", {}, RUNNING)
        heard: asyncio.Queue[JobRecord] = asyncio.Queue()
        store.subscribe(heard.put_nowait)
        body = {"exec_id": "p-1", "status": "succeeded", "output": "https://cdn/p-1.mp4"}
        assert rec.webhook_secret is not None
        good = {"X-Webhook-Secret": rec.webhook_secret}

        assert await post(f"{url}/eachlabs/{rec.token}", body, {"X-Webhook-Secret": "no"}) == 401
        assert await post(f"{url}/eachlabs/{'x' * 22}", body, good) == 404
        assert await post(f"{url}/eachlabs/{rec.token}", body, good) == 200
        # The delivery is in Redis, and announced to every replica on the store.
        told = await asyncio.wait_for(heard.get(), 10)
        assert told.key == rec.key
        assert told.delivery is not None
        assert told.delivery.video_url == "https://cdn/p-1.mp4"
        stored = await store.get(rec.key)
        assert stored is not None
        assert stored.delivery == told.delivery
        assert not stored.terminal  # resolving is the awaiting client's job

        rx.send_signal(sig)
        assert await rx.wait(10) == 0, rx.stderr()
        rest = await rx.rest_of_stdout()
    assert rest == ["ltx2 receiver stopped: accepted=1 duplicate=0 rejected=1 unknown=1"]
    assert "Traceback" not in rx.stderr()


async def test_a_client_in_another_process_resolves_from_the_receivers_deliveries(
    redis_server: RedisServer, prefix: str, tmp_path: Path
) -> None:
    scale = 0.01
    async with (
        Emulator(time_scale=scale, render="stub", seed=2) as emu,
        receiver_process(tmp_path, redis_server.url, "--prefix", prefix) as (rx, url),
    ):
        # A receiver that is never started: it only tells the provider where to deliver.
        client = ltx2.Client(
            "eachlabs", api_key="k", base_url=emu.provider_url("eachlabs"), time_scale=scale,
            store=ltx2.RedisStore(redis_server.url, prefix=prefix),
            webhooks=ltx2.WebhookReceiver(url), poll=ltx2.PollPolicy(webhook_grace=1000),
        )  # fmt: skip
        async with client:
            job = await client.submit(image="https://images.example.com/cat.jpg", prompt="hi")
            video = await job.result(timeout=30)
        job_stats = emu.jobs[job.id]
        rx.send_signal(signal.SIGTERM)
        assert await rx.wait(10) == 0
        rest = await rx.rest_of_stdout()
    assert video.job_id == job.id
    assert [d["status"] for d in job_stats.webhook_deliveries] == [200]
    assert job_stats.status_requests == 1  # the client's confirmation, no poll
    assert re.match(r"ltx2 receiver stopped: accepted=1 ", rest[0])


async def test_the_receiver_needs_a_redis_url() -> None:
    assert await asyncio.to_thread(main, ["receiver", "--port", "0"]) == 2

"""Restarts: a client process SIGKILLed with jobs in flight leaves them to its successor
(``SQLiteStore`` + ``resume``), and a redis-server restarted mid-run loses no job
(``RedisStore``). The emulator survives the client: it runs in a process of its own."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from tests._redis import RedisServer
from tests.integration._processes import CHILD_CLIENT, emulator_process, emulator_stats, spawn

import ltx2
from ltx2.emulator import Emulator

JOBS = 20
#: Emulated provider seconds × this: RunComfy's jobs take 3-4 s here, long enough to be in
#: flight when the child is killed right after its 20 submits returned.
KILL_SCALE = 0.05
IMAGE = "https://images.example.com/cat.jpg"


async def test_a_sigkilled_client_leaves_its_jobs_to_a_successor_that_resumes_them(
    tmp_path: Path,
) -> None:
    db = tmp_path / "jobs.db"
    emulator_args = ["--time-scale", str(KILL_SCALE), "--render", "stub", "--seed", "7",
                     "--processing-time", "60:80"]  # fmt: skip
    async with emulator_process(tmp_path, *emulator_args) as (_, url):
        base_url = f"{url}/runcomfy"
        argv = [
            sys.executable, str(CHILD_CLIENT), "hang", "--provider", "runcomfy",
            "--base-url", base_url, "--sqlite", str(db), "--jobs", str(JOBS),
            "--time-scale", str(KILL_SCALE),
        ]  # fmt: skip
        async with spawn(argv, name="child client", stderr=tmp_path / "child.err") as child:
            await child.wait_for_line(rf"^submitted {JOBS}$")
            child.send_signal(signal.SIGKILL)
            assert await child.wait(10) == -signal.SIGKILL

        # The same key: records are scoped by the key's fingerprint (another key's resume()
        # would see none of them).
        # A store passed in is the caller's to close (the client leaves it open).
        own = ltx2.SQLiteStore(db)
        successor = ltx2.Client(
            "runcomfy", api_key="child-key", base_url=base_url,
            store=own, time_scale=KILL_SCALE,
        )  # fmt: skip
        async with own, successor:
            jobs = await successor.resume()
            # Nothing but the dead child wrote the file: all 20 were unfinished when it died.
            assert len(jobs) == JOBS
            assert all(job.id for job in jobs)
            videos = await asyncio.wait_for(asyncio.gather(*jobs), 30)
        async with ltx2.SQLiteStore(db) as store:
            assert await store.unfinished() == []
        stats = (await emulator_stats(url))["runcomfy"]

    assert all(video.url for video in videos)
    assert len({video.job_id for video in videos}) == JOBS
    assert {video.job_id for video in videos} == {job.id for job in jobs}
    assert stats["creates"] == JOBS  # resumed, never submitted again
    assert set(stats["status_requests_by_job"]) == {job.id for job in jobs}


@pytest.mark.redis
@pytest.mark.parametrize("kill", [False, True], ids=["sigterm", "sigkill"])
async def test_a_redis_restart_mid_run_loses_no_job(own_redis: RedisServer, kill: bool) -> None:
    scale = 0.02  # jobs of 1-2 s; Eachlabs' safety-net poll would come after 3 s
    prefix = f"restart-{uuid.uuid4().hex[:8]}"
    hooked_store = ltx2.RedisStore(own_redis.url, prefix=prefix)
    polled_store = ltx2.RedisStore(own_redis.url, prefix=prefix)
    async with (
        hooked_store,  # passed in: ours to close
        polled_store,
        Emulator(time_scale=scale, render="stub", seed=3) as emu,
        ltx2.WebhookReceiver(store=hooked_store) as rx,
        ltx2.Client(
            "eachlabs", api_key="k", base_url=emu.provider_url("eachlabs"), store=hooked_store,
            webhooks=rx, time_scale=scale,
        ) as hooked,
        ltx2.Client(
            "runcomfy", api_key="k", base_url=emu.provider_url("runcomfy"), store=polled_store,
            time_scale=scale,
        ) as polled,
    ):  # fmt: skip
        # Eachlabs allows 10 jobs in flight per key; RunComfy is polled.
        jobs = [await hooked.submit(image=IMAGE, prompt=f"hooked {i}") for i in range(8)]
        jobs += [await polled.submit(image=IMAGE, prompt=f"polled {i}") for i in range(12)]
        assert not any(job.done for job in jobs)

        await asyncio.to_thread(own_redis.stop, kill=kill)
        # Redis stays away until the first jobs finished at the provider, so that webhooks and
        # polls meet the outage; then it comes back on the same port with the same data.
        await eventually(lambda: any(job.done.is_set() for job in emu.jobs.values()))
        await asyncio.to_thread(own_redis.start)

        videos = await asyncio.wait_for(asyncio.gather(*jobs), 30)
        assert await polled_store.unfinished() == []
        each, comfy = emu.stats_for("eachlabs"), emu.stats_for("runcomfy")

    assert [video.job_id for video in videos] == [job.id for job in jobs]
    assert len({video.job_id for video in videos}) == len(jobs)
    assert each["creates"] == 8  # no job lost, none created twice
    assert comfy["creates"] == 12


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)

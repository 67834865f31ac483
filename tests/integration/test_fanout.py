"""``gather`` and ``as_completed`` end to end against the emulator (stub renders, scaled
time): the provider's limits hold with zero 429s, failures come back in place, and a
cancelled fan-out cancels its jobs at the provider and leaves no task behind."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import pytest

import ltx2

pytest.importorskip("av")
from ltx2.emulator import Emulator, Faults

SCALE = 0.002
IMAGE = "https://images.example.com/cat.png"  # stub mode takes remote URLs as reachable
KEY = "test-key"


def client(emu: Emulator, name: str = "eachlabs", **kw: Any) -> ltx2.Client:
    return ltx2.Client(name, api_key=KEY, base_url=emu.provider_url(name), time_scale=SCALE, **kw)


def requests(n: int) -> list[ltx2.VideoRequest]:
    return [ltx2.VideoRequest(IMAGE, f"request {i}") for i in range(n)]


def prompt_of(emu: Emulator, job_id: str) -> str:
    return emu.jobs[job_id].params.prompt


#: Background work that may outlive a fan-out: the client's own (its poller, named by anyio
#: after the function), and the emulator's server side (connections, its jobs).
OWN = ("ltx2._poller.", "ltx2._client.", "ltx2-emulator-", "RequestHandler.", "BaseSelector")


def stray_tasks(before: set[asyncio.Task[Any]]) -> list[str]:
    """Tasks started since ``before``, still running, that are not in :data:`OWN`."""
    names = []
    for task in asyncio.all_tasks() - before:
        name = task.get_name()
        if name.startswith("Task-"):  # unnamed: say what it runs
            name = getattr(task.get_coro(), "__qualname__", name)
        if task is not asyncio.current_task() and not task.done() and not name.startswith(OWN):
            names.append(name)
    return names


async def test_gather_of_40_jobs_keeps_eachlabs_limits_and_input_order() -> None:
    async with Emulator(time_scale=SCALE, seed=1, render="stub", limits=True) as emu:
        async with client(emu) as c:
            # 40 at once asked for; the client's limits for the key (10 unfinished jobs,
            # seed 000) decide how many the emulator sees.
            videos = await c.gather(requests(40), concurrency=40)
        stats = emu.stats_for("eachlabs")
    assert [prompt_of(emu, v.job_id) for v in videos] == [f"request {i}" for i in range(40)]
    assert stats["creates"] == 40
    assert stats["rate_limited"] == 0
    assert stats["max_concurrent_seen"][KEY] == 10


async def test_as_completed_yields_failed_jobs_in_place_and_the_rest_goes_on() -> None:
    faults = Faults(job_failure=0.4)
    async with Emulator(time_scale=SCALE, seed=3, render="stub", faults=faults) as emu:
        async with client(emu, "gmicloud") as c:
            ok: list[str] = []
            failed: list[str] = []
            async for job in c.as_completed(requests(12), concurrency=4):
                if job.status is ltx2.JobStatus.SUCCEEDED:
                    await job
                    ok.append(job.id)
                else:
                    with pytest.raises(ltx2.JobFailedError) as info:
                        await job
                    assert info.value.job is job
                    failed.append(job.id)
        injected = emu.stats_for("gmicloud")["faults"]["job_failure"]
    assert len(ok) + len(failed) == 12
    assert len(failed) == injected > 0
    assert all(emu.jobs[i].state == "failed" for i in failed)


@pytest.mark.parametrize("name", ["eachlabs", "runcomfy"])
async def test_cancelling_gather_cancels_every_submitted_job_at_the_provider(name: str) -> None:
    # 10,000 provider seconds: the jobs are still running when the caller gives up.
    emulator = Emulator(time_scale=SCALE, render="stub", processing_time=10_000.0)
    async with emulator as emu, client(emu, name) as c:
        before = set(asyncio.all_tasks())
        task = asyncio.create_task(c.gather(requests(6), concurrency=4))
        # Wait until the client knows every id (it has polled each job once): a create
        # whose reply is still on its way when the caller is cancelled has no id to
        # cancel yet.
        with anyio.fail_after(10):
            while len(emu.jobs) < 4 or any(j.status_requests < 1 for j in emu.jobs.values()):
                await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # Cancelled at the provider before the cancellation reached the caller.
        assert sorted(job.state for job in emu.jobs.values()) == ["cancelled"] * 4
        assert stray_tasks(before) == []


async def test_a_provider_that_cannot_cancel_still_leaves_no_task() -> None:
    emulator = Emulator(time_scale=SCALE, render="stub", processing_time=10_000.0)
    async with emulator as emu, client(emu, "aimlapi") as c:
        before = set(asyncio.all_tasks())
        with anyio.move_on_after(0.5):  # the caller gives up
            async for _ in c.as_completed(requests(3)):
                pytest.fail("no job finishes in this test")
        assert len(emu.jobs) == 3
        # AI/ML API has no cancel: the jobs run on at the provider, but nothing of the
        # fan-out does here.
        assert all(job.state != "cancelled" for job in emu.jobs.values())
        assert stray_tasks(before) == []

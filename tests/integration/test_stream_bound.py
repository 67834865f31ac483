"""fal without a receiver, more jobs in flight than status streams may be open: each job
past the bound is polled instead, creates never wait behind streams for a connection, and
every job resolves with its video (no phantom UNKNOWN record)."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

import ltx2
import ltx2._transport
from ltx2.emulator import Emulator
from ltx2.stores import MemoryStore

SCALE = 0.01
IMAGE = "https://images.example.com/cat.png"  # stub mode takes remote URLs as reachable
#: A pool of 16 connections: a quarter of it, 4, may hold status streams.
POOL = 16
JOBS = 40


@pytest.mark.parametrize("own_session", [True, False], ids=["own-session", "injected-session"])
async def test_fal_jobs_past_the_stream_bound_all_resolve(
    own_session: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = None
    if own_session:
        monkeypatch.setattr(ltx2._transport, "POOL_SIZE", POOL)
    else:
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=POOL))
    store = MemoryStore()
    # Jobs of 100 s (1 s scaled): every stream outlives the 0.2 s connect timeout, so a
    # create that waited inside aiohttp for a connection held by a stream would time out.
    async with Emulator(
        time_scale=SCALE, seed=3, render="stub", processing_time={"fal": (100.0, 100.0)}
    ) as emu:
        try:
            async with ltx2.Client(
                "fal",
                api_key="fal-key",
                base_url=emu.provider_url("fal"),
                time_scale=SCALE,
                store=store,
                session=session,
                timeouts=ltx2.Timeouts(connect=0.2),
            ) as client:
                stats = emu.stats_for("fal")

                async def wave(start: int) -> list[ltx2.Job]:
                    return await asyncio.gather(
                        *(
                            client.submit(ltx2.VideoRequest(IMAGE, f"shot {i}"))
                            for i in range(start, start + JOBS // 2)
                        )
                    )

                jobs = await wave(0)
                # The second wave's creates come while the first wave's streams are open.
                async with asyncio.timeout(30):
                    while stats["max_streams_open"] < POOL // 4:
                        await asyncio.sleep(0.005)
                await asyncio.sleep(0.1)  # the first wave's other streams open meanwhile
                jobs += await wave(JOBS // 2)
                videos = await asyncio.wait_for(asyncio.gather(*jobs), 60)
                left = await store.unfinished()
        finally:
            if session is not None:
                await session.close()
    assert [v.job_id for v in videos] == [job.id for job in jobs]
    assert all(v.url for v in videos)
    assert left == []
    assert stats["creates"] == stats["create_attempts"] == JOBS
    # A quarter of the pool, and some were indeed open together.
    assert 1 <= stats["max_streams_open"] <= POOL // 4

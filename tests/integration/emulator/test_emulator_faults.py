"""Request faults over HTTP: rates under a seed, reproducibility, and what each one does."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import aiohttp
import pytest

from ltx2.emulator import Emulator, Faults

H = {"Authorization": "Bearer k"}


async def status_codes(http: aiohttp.ClientSession, emu: Emulator, n: int) -> list[int | str]:
    """Create one RunComfy job, then read its status ``n`` times; the codes in order."""
    async with http.post(
        emu.provider_url("runcomfy") + "/v1/models/ltx/ltx-2/fast/image-to-video",
        json={"image_url": "https://example.com/a.jpg", "prompt": "x"},
        headers=H,
    ) as resp:
        body = await resp.json()
    target = body.get("status_url") or emu.provider_url("runcomfy") + "/v1/requests/x/status"
    codes: list[int | str] = []
    for _ in range(n):
        try:
            async with http.get(target, headers=H) as resp:
                await resp.read()
                codes.append(resp.status)
        except aiohttp.ClientError:
            codes.append("reset")
    return codes


@pytest.mark.parametrize(
    ("name", "mark"), [("server_error", 500), ("rate_limit", 429), ("reset", "reset")]
)
async def test_request_fault_rate_is_near_its_setting_and_reproducible(
    start_emulator: Callable[..., Awaitable[Emulator]], name: str, mark: int | str
) -> None:
    sequences = []
    for _ in range(2):
        emu = await start_emulator(faults=Faults(**{name: 0.25}), seed=7)
        # A fresh session each run; no keep-alive so a reset does not trigger client retries.
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as http:
            # The create may itself be hit; retry it until it gets through.
            codes = await status_codes(http, emu, 200)
        st = emu.stats_for("runcomfy")
        # Rates on what the server received: aiohttp retries a GET once after a reset, so
        # the client sees fewer resets than the server dropped.
        received = st["status_requests"] + (0 if name == "reset" else st["create_attempts"])
        assert 0.15 <= st["faults"][name] / received <= 0.35, (name, st["faults"][name], received)
        assert any(c == mark or (mark == 500 and c in (500, 502, 503)) for c in codes)
        sequences.append(codes)
    assert sequences[0] == sequences[1]


async def test_different_seeds_give_different_sequences(
    start_emulator: Callable[..., Awaitable[Emulator]], http: aiohttp.ClientSession
) -> None:
    a = await status_codes(http, await start_emulator(faults=Faults(server_error=0.3), seed=1), 60)
    b = await status_codes(http, await start_emulator(faults=Faults(server_error=0.3), seed=2), 60)
    assert a != b


async def test_create_server_error_is_503_and_creates_no_job(
    start_emulator: Callable[..., Awaitable[Emulator]], http: aiohttp.ClientSession, data_uri: str
) -> None:
    emu = await start_emulator(faults=Faults(server_error=1.0))
    async with http.post(
        emu.provider_url("fal") + "/fal-ai/ltx-2/image-to-video/fast",
        json={"image_url": data_uri, "prompt": "x"},
        headers={"Authorization": "Key k"},
    ) as resp:
        assert resp.status == 503
        assert "detail" in await resp.json()
    assert emu.jobs == {}
    st = emu.stats_for("fal")
    assert (st["create_attempts"], st["creates"], st["server_errors"]) == (1, 0, 1)


async def test_spurious_429_has_retry_after_and_creates_no_job(
    start_emulator: Callable[..., Awaitable[Emulator]], http: aiohttp.ClientSession
) -> None:
    emu = await start_emulator(faults=Faults(rate_limit=1.0))
    async with http.post(
        emu.provider_url("aimlapi") + "/v2/video/generations",
        json={"model": "ltxv/ltxv-2-fast", "prompt": "x"},
        headers=H,
    ) as resp:
        assert resp.status == 429
        body = await resp.json()
        retry_after = float(resp.headers["Retry-After"])
    assert body["statusCode"] == 429
    assert 0.01 <= retry_after <= 0.05  # 1-5 s scaled by 0.01
    assert emu.jobs == {}
    assert emu.stats_for("aimlapi")["rate_limited"] == 1


async def test_server_error_bursts_last_the_configured_length(
    start_emulator: Callable[..., Awaitable[Emulator]], http: aiohttp.ClientSession
) -> None:
    emu = await start_emulator(faults=Faults(server_error=0.05, server_error_burst=4), seed=3)
    codes = await status_codes(http, emu, 300)
    runs, current = [], 0
    for code in codes:
        if code in (500, 502, 503):
            current += 1
        elif current:
            runs.append(current)
            current = 0
    assert runs
    assert all(run % 4 == 0 for run in runs), runs  # back-to-back bursts join up


async def test_reset_only_hits_reads_never_creates(
    start_emulator: Callable[..., Awaitable[Emulator]], http: aiohttp.ClientSession
) -> None:
    emu = await start_emulator(faults=Faults(reset=1.0))
    codes = await status_codes(http, emu, 3)
    assert codes == ["reset"] * 3
    st = emu.stats_for("runcomfy")
    assert st["creates"] == 1
    assert st["resets"] >= 3


async def test_slow_replies_are_delayed_by_scaled_seconds(
    start_emulator: Callable[..., Awaitable[Emulator]], http: aiohttp.ClientSession
) -> None:
    emu = await start_emulator(faults=Faults(slow=1.0, slow_seconds=20))  # 0.2 s scaled
    start = time.monotonic()
    codes = await status_codes(http, emu, 2)
    assert codes == [200, 200]
    assert time.monotonic() - start >= 0.55  # create + two reads, 0.2 s each
    assert emu.stats_for("runcomfy")["faults"]["slow"] == 3


async def test_job_failure_fault_fails_jobs_at_its_rate(
    start_emulator: Callable[..., Awaitable[Emulator]], http: aiohttp.ClientSession, data_uri: str
) -> None:
    emu = await start_emulator(processing_time=0, faults=Faults(job_failure=0.25))
    for _ in range(200):
        async with http.post(
            emu.provider_url("aimlapi") + "/v2/video/generations",
            json={"model": "ltxv/ltxv-2-fast", "prompt": "x"},
            headers=H,
        ) as resp:
            assert resp.status == 201
    failed = [j for j in emu.jobs.values() if j.state == "failed"]
    assert 0.15 <= len(failed) / 200 <= 0.35
    assert len(failed) == emu.stats_for("aimlapi")["faults"]["job_failure"]


async def test_stats_endpoint_serves_the_counters(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    await status_codes(http, emu, 2)
    async with http.get(emu.url + "/_emulator/stats") as resp:
        stats = await resp.json()
    assert stats == emu.stats
    assert stats["runcomfy"]["status_requests"] == 2
    assert set(stats) == {"eachlabs", "fal", "gmicloud", "runcomfy", "aimlapi"}
    async with http.get(emu.url + "/_emulator/health") as resp:
        assert resp.status == 200

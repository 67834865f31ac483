"""The server as a whole: life cycle, media serving, robustness, the CLI and the plugin."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from ltx2.emulator import Emulator, Faults
from ltx2.emulator._cli import build_parser, parse_processing_time

StartEmulator = Callable[..., Awaitable[Emulator]]

CREATES: dict[str, tuple[str, dict[str, str]]] = {
    "eachlabs": ("/v1/prediction/", {"X-API-Key": "k"}),
    "fal": ("/fal-ai/ltx-2/image-to-video/fast", {"Authorization": "Key k"}),
    "gmicloud": ("/api/v1/ie/requestqueue/apikey/requests", {"Authorization": "Bearer k"}),
    "runcomfy": ("/v1/models/ltx/ltx-2/fast/image-to-video", {"Authorization": "Bearer k"}),
    "aimlapi": ("/v2/video/generations", {"Authorization": "Bearer k"}),
}
ERROR_FORMS = {
    "eachlabs": {"status", "message", "details"},
    "fal": {"detail"},
    "gmicloud": {"error"},
    "runcomfy": {"error"},
    "aimlapi": {"message", "statusCode", "error"},
}


async def test_urls_and_layout(emu: Emulator) -> None:
    assert emu.url.startswith("http://127.0.0.1:")
    assert emu.provider_url("gmicloud") == emu.url + "/gmicloud"
    assert emu.fal_storage_url == emu.url + "/fal-rest"
    assert emu.fal_jwks_url == emu.url + "/fal-rest/.well-known/jwks.json"
    with pytest.raises(ValueError, match="unknown provider"):
        emu.provider_url("replicate")


@pytest.mark.parametrize("provider", list(CREATES))
@pytest.mark.parametrize(
    "data",
    [b"{oops", b"null", b'"text"', b"[]", b'{"model": 5, "input": 7, "payload": []}', b"\xff\xfe"],
)
async def test_garbage_bodies_get_the_providers_4xx_error_body(
    emu: Emulator, http: aiohttp.ClientSession, provider: str, data: bytes
) -> None:
    path, headers = CREATES[provider]
    async with http.post(emu.provider_url(provider) + path, data=data, headers=headers) as resp:
        assert 400 <= resp.status < 500
        body = await resp.json()
    assert ERROR_FORMS[provider] <= set(body)
    async with http.get(emu.url + "/_emulator/health") as resp:
        assert resp.status == 200


@pytest.mark.parametrize("provider", list(CREATES))
async def test_unknown_paths_get_the_providers_404_body(
    emu: Emulator, http: aiohttp.ClientSession, provider: str
) -> None:
    _, headers = CREATES[provider]
    async with http.get(emu.provider_url(provider) + "/no/such/path", headers=headers) as resp:
        assert resp.status == 404
        assert set(await resp.json()) >= ERROR_FORMS[provider]


async def test_media_supports_ranges_and_head(
    start_emulator: StartEmulator, http: aiohttp.ClientSession
) -> None:
    emu = await start_emulator(processing_time=0)
    async with http.post(
        emu.provider_url("aimlapi") + "/v2/video/generations",
        json={"model": "ltxv/ltxv-2-fast", "prompt": "x"},
        headers={"Authorization": "Bearer k"},
    ) as resp:
        job_id = (await resp.json())["id"]
    media = f"{emu.url}/media/{job_id}.mp4"
    async with http.get(media) as resp:
        full = await resp.read()
        assert int(resp.headers["Content-Length"]) == len(full)
    async with http.get(media, headers={"Range": "bytes=0-99"}) as resp:
        assert resp.status == 206
        assert resp.headers["Content-Range"] == f"bytes 0-99/{len(full)}"
        assert await resp.read() == full[:100]
    async with http.get(media, headers={"Range": "bytes=100-"}) as resp:
        assert await resp.read() == full[100:]
    async with http.head(media) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "video/mp4"
    assert emu.stats_for("aimlapi")["downloads"] == 3
    async with http.get(f"{emu.url}/media/nope.mp4") as resp:
        assert resp.status == 404


async def test_stop_cancels_background_work_cleanly(
    http: aiohttp.ClientSession, data_uri: str
) -> None:
    emu = Emulator(time_scale=1.0, seed=0, render="full", processing_time=3600)
    await emu.start()
    for _ in range(3):
        async with http.post(
            emu.provider_url("fal") + "/fal-ai/ltx-2/image-to-video/fast",
            params={"fal_webhook": "http://127.0.0.1:9/hook"},
            json={"image_url": data_uri, "prompt": "x"},
            headers={"Authorization": "Key k"},
        ) as resp:
            assert resp.status == 200
    # A stream that would otherwise run for an hour.
    rid = next(iter(emu.jobs))
    stream = asyncio.ensure_future(
        http.get(
            emu.provider_url("fal") + f"/fal-ai/ltx-2/requests/{rid}/status/stream",
            headers={"Authorization": "Key k"},
        )
    )
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await emu.stop()
    assert time.monotonic() - started < 3
    assert not emu._tasks
    leftovers = [t for t in asyncio.all_tasks() if (t.get_name() or "").startswith("ltx2-emulator")]
    assert leftovers == []
    resp = await stream
    resp.close()
    await emu.stop()  # idempotent


async def test_a_client_leaving_a_status_stream_is_not_an_emulator_error(
    http: aiohttp.ClientSession, data_uri: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A client that closes mid-stream (a client's aclose(), a job it cancelled) is ordinary:
    # the emulator logged it as "failed" with a traceback.
    emu = Emulator(time_scale=0.01, seed=0, render="stub", processing_time=30)
    await emu.start()
    try:
        async with http.post(
            emu.provider_url("fal") + "/fal-ai/ltx-2/image-to-video/fast",
            json={"image_url": data_uri, "prompt": "x"},
            headers={"Authorization": "Key k"},
        ) as resp:
            rid = (await resp.json())["request_id"]
        url = emu.provider_url("fal") + f"/fal-ai/ltx-2/requests/{rid}/status/stream?logs=1"
        async with http.get(url, headers={"Authorization": "Key k"}) as resp:
            assert resp.status == 200
            await resp.content.readline()  # the first event, then leave
        await asyncio.sleep(0.3)  # the emulator's next write meets the closed connection
    finally:
        await emu.stop()
    assert [r for r in caplog.records if r.levelno >= 30] == []


async def test_processing_time_forms(start_emulator: StartEmulator) -> None:
    emu = await start_emulator(processing_time={"fal": (10, 20), "aimlapi": 5})
    assert emu._processing["fal"] == (10.0, 20.0)
    assert emu._processing["aimlapi"] == (5.0, 5.0)
    assert emu._processing["eachlabs"] == (60.0, 100.0)  # seed 000's 80 s +-25 %
    assert emu._processing["gmicloud"] == (30.0, 120.0)  # seed 002's 30-120 s
    with pytest.raises(ValueError, match="unknown providers"):
        Emulator(processing_time={"replicate": 1})
    with pytest.raises(ValueError, match="time_scale"):
        Emulator(time_scale=0)
    with pytest.raises(ValueError, match="render"):
        Emulator(render="fast")


async def test_same_seed_same_ids_and_timings(
    start_emulator: StartEmulator, http: aiohttp.ClientSession
) -> None:
    runs = []
    for _ in range(2):
        emu = await start_emulator(seed=42)
        ids = []
        for _ in range(3):
            async with http.post(
                emu.provider_url("aimlapi") + "/v2/video/generations",
                json={"model": "ltxv/ltxv-2-fast", "prompt": "x"},
                headers={"Authorization": "Bearer k"},
            ) as resp:
                ids.append((await resp.json())["id"])
        runs.append([(i, emu.jobs[i].nominal_time) for i in ids])
    assert runs[0] == runs[1]
    assert all(44 <= t <= 74 for _, t in runs[0])  # seed 004's 58.9 s +-25 %


@pytest.mark.ltx2_emulator(time_scale=0.5, render="stub", faults=Faults(reset=0.1))
async def test_plugin_fixture_honours_the_marker(ltx2_emulator: Emulator) -> None:
    assert ltx2_emulator.time_scale == 0.5
    assert ltx2_emulator.render == "stub"
    assert ltx2_emulator.faults.reset == 0.1
    assert ltx2_emulator.seed == 0


async def test_plugin_fixture_defaults(
    ltx2_emulator: Emulator, http: aiohttp.ClientSession
) -> None:
    assert (ltx2_emulator.time_scale, ltx2_emulator.seed) == (0.01, 0)
    async with http.get(ltx2_emulator.url + "/_emulator/health") as resp:
        assert resp.status == 200


def test_plugin_and_emulator_imports_stay_light() -> None:
    code = (
        "import sys, ltx2.testing, ltx2.emulator; "
        "heavy = {'av', 'numpy', 'PIL'} & set(sys.modules); "
        "print(sorted(heavy))"
    )
    out = subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_cli_options_parse() -> None:
    args = build_parser().parse_args(
        [
            "--port",
            "0",
            "--time-scale",
            "0.1",
            "--seed",
            "3",
            "--faults",
            "server_error=0.1",
            "--processing-time",
            "fal=5,eachlabs=10:20",
            "--render",
            "stub",
            "--api-key",
            "a",
        ]
    )
    assert args.faults == Faults(server_error=0.1)
    assert args.processing_time == {"fal": 5.0, "eachlabs": (10.0, 20.0)}
    assert parse_processing_time("30:120") == (30.0, 120.0)
    assert parse_processing_time("0") == 0.0


def test_cli_serves_until_interrupted() -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "ltx2.emulator", "--port", "0", "--render", "stub", "--seed", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as proc:
        try:
            assert proc.stdout is not None
            first = proc.stdout.readline()
            assert first.startswith("ltx2 emulator on http://127.0.0.1:")
            url = first.split()[3]
            with urllib.request.urlopen(url + "/_emulator/stats", timeout=5) as resp:  # noqa: S310
                assert set(json.load(resp)) >= {"eachlabs", "fal"}
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


async def test_full_mode_fetches_remote_images_and_fails_jobs_it_cannot_download(
    start_emulator: StartEmulator, http: aiohttp.ClientSession, receiver: Any, jpeg: bytes
) -> None:
    emu = await start_emulator(render="full", processing_time=0)
    upload_url, file_url = emu.new_upload("fal", "cat.jpg", "image/jpeg")
    async with http.put(upload_url, data=jpeg) as resp:
        assert resp.status == 200
    # Through HTTP, the way any remote image is fetched.
    assert await emu._fetch(file_url) == jpeg
    # The receiver only answers POST, so a GET of it is a failed download.
    async with http.post(
        emu.provider_url("runcomfy") + "/v1/models/ltx/ltx-2/fast/image-to-video",
        json={"image_url": receiver.url, "prompt": "x"},
        headers={"Authorization": "Bearer k"},
    ) as resp:
        rid = (await resp.json())["request_id"]
    job = emu.jobs[rid]
    await asyncio.wait_for(job.done.wait(), 10)
    assert job.state == "failed"
    assert job.failure is not None
    assert job.failure.kind == "image_download"
    assert "HTTP 405" in job.failure.message


async def test_stub_mode_takes_remote_urls_as_reachable(
    start_emulator: StartEmulator, http: aiohttp.ClientSession
) -> None:
    emu = await start_emulator(processing_time=0)
    async with http.post(
        emu.provider_url("runcomfy") + "/v1/models/ltx/ltx-2/fast/image-to-video",
        json={"image_url": "https://images.invalid/cat.jpg", "prompt": "x"},
        headers={"Authorization": "Bearer k"},
    ) as resp:
        rid = (await resp.json())["request_id"]
    assert emu.jobs[rid].state == "succeeded"

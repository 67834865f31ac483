"""Every provider end to end against the emulator: submit → resolve (webhook where the
provider has one, fal's status stream, polling otherwise) → download a real MP4."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import make_png

import ltx2

pytest.importorskip("av")
from ltx2.emulator import Emulator

SCALE = 0.002


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(time_scale=SCALE, seed=7, render="stub") as e:
        yield e


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "input.png"
    path.write_bytes(make_png(320, 180))
    return path


def options(emu: Emulator, name: str) -> dict[str, Any]:
    extra: dict[str, Any] = {"storage_url": emu.fal_storage_url} if name == "fal" else {}
    if name == "gmicloud":
        # GMI Cloud documents no upload: local images need the user's own uploader.
        async def uploader(data: bytes, mime: str) -> str:
            return emu.store_upload("gmicloud", "input", mime, data)

        extra["uploader"] = uploader
    return {"api_key": "test-key", "base_url": emu.provider_url(name), "time_scale": SCALE, **extra}


async def generate(client: ltx2.Client, image: Path, out: Path) -> tuple[ltx2.Job, ltx2.Video]:
    job = await client.submit(image=str(image), prompt="The camera pans left")
    video = await job.result(timeout=30)
    size = await video.save(out)
    assert size > 0
    assert out.read_bytes()[4:8] == b"ftyp"  # an MP4
    return job, video


@pytest.mark.parametrize("name", ["gmicloud", "runcomfy", "aimlapi", "eachlabs"])
async def test_poll_only(emu: Emulator, image: Path, tmp_path: Path, name: str) -> None:
    async with ltx2.Client(name, **options(emu, name)) as client:
        job, video = await generate(client, image, tmp_path / "out.mp4")
    assert job.status is ltx2.JobStatus.SUCCEEDED
    assert video.provider == name
    assert video.job_id == job.id


@pytest.mark.parametrize("name", ["eachlabs", "fal"])
async def test_webhook_resolves(emu: Emulator, image: Path, tmp_path: Path, name: str) -> None:
    rx = ltx2.WebhookReceiver(fal_jwks_urls=[emu.fal_jwks_url])
    await rx.start("127.0.0.1", 0)
    try:
        # The poller waits far past the job's time, so only the webhook can resolve it.
        poll = ltx2.PollPolicy(webhook_grace=1000.0)
        async with ltx2.Client(name, webhooks=rx, poll=poll, **options(emu, name)) as client:
            job, _ = await generate(client, image, tmp_path / "out.mp4")
    finally:
        await rx.stop()
    assert job.status is ltx2.JobStatus.SUCCEEDED
    assert rx.stats["accepted"] == 1
    assert rx.stats["rejected"] == 0


async def test_fal_without_webhook_uses_status_stream(
    emu: Emulator, image: Path, tmp_path: Path
) -> None:
    poll = ltx2.PollPolicy(webhook_grace=1000.0)
    async with ltx2.Client("fal", poll=poll, **options(emu, "fal")) as client:
        job, _ = await generate(client, image, tmp_path / "out.mp4")
    stats = emu.stats_for("fal")
    assert job.status is ltx2.JobStatus.SUCCEEDED
    assert stats["status_requests"] == 1  # the one stream request; no polls


async def test_aimlapi_prompt_only(emu: Emulator, tmp_path: Path) -> None:
    async with ltx2.Client("aimlapi", **options(emu, "aimlapi")) as client:
        video = await client.generate(prompt="A dragon over a mountain", duration=8)
    assert video.url.endswith(".mp4")


async def test_gmicloud_camera_motion(emu: Emulator, image: Path) -> None:
    async with ltx2.Client("gmicloud", **options(emu, "gmicloud")) as client:
        video = await client.generate(image=str(image), prompt="p", camera_motion="jib_up")
    assert "thumb" not in video.url


@pytest.mark.parametrize("name", ["gmicloud", "aimlapi"])
async def test_cancel_unsupported(emu: Emulator, image: Path, name: str) -> None:
    async with ltx2.Client(name, **options(emu, name)) as client:
        job = await client.submit(image=str(image), prompt="p")
        with pytest.raises(ltx2.UnsupportedError, match="cannot cancel"):
            await job.cancel()


async def test_eachlabs_cancel(image: Path) -> None:
    async with Emulator(time_scale=1.0, render="stub") as e:
        opts = {**options(e, "eachlabs"), "time_scale": 1.0}
        async with ltx2.Client("eachlabs", **opts) as c:
            job = await c.submit(image=str(image), prompt="p")
            await job.cancel()
            with pytest.raises(ltx2.JobCancelledError):
                await job.result(timeout=5)

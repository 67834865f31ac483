"""fal-client 1.0.3 against the emulator: its upload (v3 CDN token, and the legacy storage
route), submit → status with logs → result, and cancel.

Its URLs are module constants (``fal_client/client.py``: ``QUEUE_URL_FORMAT``, ``REST_URL``,
``CDN_URL``), so those — and only those — are pointed at the emulator's fal listener.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

import ltx2
from ltx2.emulator import Emulator
from tests.conformance.conftest import PROMPT, is_mp4

fal_client = pytest.importorskip("fal_client")
fal_module = pytest.importorskip("fal_client.client")

APP = "fal-ai/ltx-2/image-to-video/fast"  # seed 001


@pytest.fixture
async def fal(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    root = emu.root_url("fal")
    monkeypatch.setattr(fal_module, "QUEUE_URL_FORMAT", f"{root}/")
    monkeypatch.setattr(fal_module, "REST_URL", root)
    monkeypatch.setattr(fal_module, "CDN_URL", root)
    client = fal_client.AsyncClient(key="fal-test-key")
    try:
        yield client
    finally:
        http = await client._client
        await http.aclose()


async def download(url: str) -> bytes:
    async with httpx.AsyncClient() as http:
        response = await http.get(url)
        response.raise_for_status()
        return response.content


def log_lines(events: list[Any]) -> list[str]:
    lines: list[str] = []
    for event in events:
        for log in getattr(event, "logs", None) or ():
            if log["message"] not in lines:
                lines.append(log["message"])
    return lines


@pytest.mark.parametrize("repository", ["fal_v3", "fal"])
async def test_upload_submit_status_result(
    fal: Any, emu: Emulator, jpeg: bytes, repository: str
) -> None:
    image_url = await fal.upload(jpeg, "image/jpeg", file_name="cat.jpg", repository=repository)
    assert await download(image_url) == jpeg
    handle = await fal.submit(APP, arguments={"image_url": image_url, "prompt": PROMPT})
    events = [e async for e in handle.iter_events(with_logs=True, interval=0.01)]
    assert isinstance(events[-1], fal_client.Completed)
    assert events[-1].error is None
    assert len(log_lines(events)) == 4
    result = await handle.get()
    assert is_mp4(await download(result["video"]["url"]))
    assert await fal.result(APP, handle.request_id) == result


async def test_cancel_of_a_queued_request(fal: Any, emu: Emulator, jpeg: bytes) -> None:
    image_url = await fal.upload(jpeg, "image/jpeg")
    handle = await fal.submit(APP, arguments={"image_url": image_url, "prompt": PROMPT})
    await handle.cancel()  # 202 CANCELLATION_REQUESTED
    status = await handle.status()
    assert isinstance(status, fal_client.Completed)
    assert status.error == "Request was cancelled"


async def test_ltx2_surfaces_every_log_line_fal_client_shows(
    fal: Any, emu: Emulator, jpeg: bytes
) -> None:
    data_uri = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()
    handle = await fal.submit(APP, arguments={"image_url": data_uri, "prompt": PROMPT})
    events = [e async for e in handle.iter_events(with_logs=True, interval=0.01)]
    assert events[-1].error is None
    theirs = log_lines(events)
    ours: list[str] = []
    async with ltx2.Client(
        "fal", api_key="fal-test-key", base_url=emu.root_url("fal"), time_scale=0.01
    ) as client:
        job = await client.submit(image=jpeg, prompt=PROMPT)
        async for update in job.updates():
            ours += [line for line in update.logs if line not in ours]
        await job
    assert theirs
    assert ours == theirs


async def test_a_job_cancelled_through_ltx2_reads_cancelled(emu: Emulator, jpeg: bytes) -> None:
    async with ltx2.Client(
        "fal", api_key="fal-test-key", base_url=emu.root_url("fal"), time_scale=0.01
    ) as client:
        job = await client.submit(image=jpeg, prompt=PROMPT)
        await job.cancel()
        assert await job.refresh() is ltx2.JobStatus.CANCELLED
        with pytest.raises(ltx2.JobCancelledError):
            await job


async def test_cancelling_a_finished_fal_job_keeps_its_video(emu: Emulator, jpeg: bytes) -> None:
    # fal's queue docs: ALREADY_COMPLETED — the job is over and its result stands.
    async with ltx2.Client(
        "fal", api_key="fal-test-key", base_url=emu.root_url("fal"), time_scale=0.01
    ) as client:
        video = await (await client.submit(image=jpeg, prompt=PROMPT))
        handle = client.job(video.job_id)  # e.g. `ltx2 cancel ID` after it finished
        await handle.cancel()
        assert emu.stats_for("fal")["cancels"] == 1
        assert handle.status is ltx2.JobStatus.SUCCEEDED
        assert (await handle).url == video.url  # the result stands

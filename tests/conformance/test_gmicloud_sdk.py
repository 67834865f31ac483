"""gmicloud 0.1.10 against the emulator: its login, then its request queue's
create_request → get_request_detail → the video in ``outcome.media_urls``.

The SDK is synchronous (``requests``), so it runs in a worker thread while the emulator
serves on this event loop. Its base URL is the module constant ``IAM_SERVICE_BASE_URL``
(``gmicloud/_internal/_config.py``), imported by the IAM and video clients: those two are
pointed at the emulator's GMI Cloud listener. Its login remembers a refresh token in
``~/.gmicloud.config.json``, so HOME is a temporary directory.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx
import pytest

from ltx2.emulator import Emulator
from tests.conformance.conftest import PROMPT, SEED_IMAGE, is_mp4

gmicloud = pytest.importorskip("gmicloud")
iam_module = pytest.importorskip("gmicloud._internal._client._iam_client")
video_module = pytest.importorskip("gmicloud._internal._client._video_client")
models = pytest.importorskip("gmicloud._internal._models")
enums = pytest.importorskip("gmicloud._internal._enums")

MODEL = "ltx-2-fast-image-to-video"  # seed 002


def run_sdk_flow(image: str) -> tuple[Any, Any, list[str]]:
    """The SDK's own flow, as a user would write it (blocking)."""
    client = gmicloud.Client(email="dev@example.com", password="gmi-test-key")
    manager = client.video_manager
    info = manager.get_model_detail(MODEL)
    submitted = manager.create_request(
        models.SubmitRequestRequest(
            model=MODEL,
            payload={
                "image_uri": image,
                "prompt": PROMPT,
                "duration": 6,
                "resolution": "1920x1080",
                "camera_motion": "dolly_in",
            },
        )
    )
    seen: list[str] = []
    done = {enums.RequestStatus.SUCCESS, enums.RequestStatus.FAILED, enums.RequestStatus.CANCELLED}
    deadline = time.monotonic() + 30
    while True:
        detail = manager.get_request_detail(submitted.request_id)
        seen.append(detail.status.value)
        if detail.status in done or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert info.model == MODEL
    return submitted, detail, seen


async def test_login_create_poll_and_video(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    base = f"{emu.root_url('gmicloud')}/api/v1"
    monkeypatch.setattr(iam_module, "IAM_SERVICE_BASE_URL", base)
    monkeypatch.setattr(video_module, "IAM_SERVICE_BASE_URL", base)
    submitted, detail, seen = await anyio.to_thread.run_sync(run_sdk_flow, SEED_IMAGE)
    assert submitted.request_id in emu.jobs
    assert detail.status is enums.RequestStatus.SUCCESS
    assert set(seen) <= {s.value for s in enums.RequestStatus}
    (media,) = detail.outcome["media_urls"]
    async with httpx.AsyncClient() as http:
        video = (await http.get(media["url"])).content
    assert is_mp4(video)
    assert (tmp_path / ".gmicloud.config.json").exists()  # its login really ran

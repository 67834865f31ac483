"""aimlapi-sdk-python 2.24.0rc1 against the emulator: its own create → poll → download.

The SDK keeps only its base URL's host (``aimlapi/resources/videos.py`` ``_video_api_url``)
and stops polling on any status but ``queued`` and ``generating``: the emulator's host-root
listener and its status words are what let the flow complete.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ltx2.emulator import Emulator
from tests.conformance.conftest import PROMPT, SEED_IMAGE, is_mp4

aimlapi = pytest.importorskip("aimlapi")

MODEL = "ltxv/ltxv-2-fast"  # seed 004


async def test_generate_with_polling_returns_the_video(emu: Emulator) -> None:
    client = aimlapi.AsyncAIMLAPI(api_key="aiml-test-key", base_url=f"{emu.root_url('aimlapi')}/v1")
    seen: list[str] = []

    def on_status(payload: Any) -> None:
        seen.append(str(payload.get("status")))

    try:
        final = await client.videos.generate_with_polling(
            model=MODEL, prompt=PROMPT, duration=6, poll_interval=0.02, status_callback=on_status
        )
        video = await client.videos.generate_with_polling(
            model=MODEL,
            prompt=PROMPT,
            duration=6,
            poll_interval=0.02,
            return_bytes=True,
            extra_body={"image_url": SEED_IMAGE},
        )
    finally:
        await client.close()
    assert final["status"] == "completed"
    assert final["video"]["url"].startswith(emu.url + "/media/")
    assert set(seen) <= {"queued", "generating", "completed"}
    assert seen[-1] == "completed"
    assert isinstance(video, bytes)
    assert is_mp4(video)
    assert emu.stats_for("aimlapi")["creates"] == 2


async def test_the_sdks_key_variable_reaches_ltx2_too(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ltx2

    # aimlapi/_client.py _API_KEY_ENV_VARS: AIML_API_KEY first; base URL in the SDK's form.
    for name in ("AIMLAPI_API_KEY", "AIMLAPI_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AIML_API_KEY", "aiml-test-key")
    base = f"{emu.root_url('aimlapi')}/v1"
    async with ltx2.Client("aimlapi", base_url=base, time_scale=0.01) as client:
        video = await client.generate(prompt=PROMPT, duration=6)
        async with httpx.AsyncClient() as http:
            data = (await http.get(video.url)).content
    assert is_mp4(data)

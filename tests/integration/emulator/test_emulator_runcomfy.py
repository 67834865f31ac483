"""RunComfy's model API (seeds/003_ab4a9114b2d1a0d0.txt) as the emulator serves it."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from ltx2.emulator import Emulator

H = {"Authorization": "Bearer rc-key"}
CREATE = "/v1/models/ltx/ltx-2/fast/image-to-video"


async def submit(
    http: aiohttp.ClientSession, emu: Emulator, image: str, **inp: Any
) -> tuple[int, dict[str, Any]]:
    body = {"image_url": image, "prompt": "A woman stands still; the camera dollies in", **inp}
    async with http.post(emu.provider_url("runcomfy") + CREATE, json=body, headers=H) as resp:
        return resp.status, await resp.json()


async def get(http: aiohttp.ClientSession, target: str) -> tuple[int, dict[str, Any]]:
    async with http.get(target, headers=H) as resp:
        return resp.status, await resp.json()


async def test_auth_is_bearer(
    start_emulator: Callable[..., Awaitable[Emulator]], http: aiohttp.ClientSession, data_uri: str
) -> None:
    emu = await start_emulator(api_keys={"rc-key"})
    async with http.post(
        emu.provider_url("runcomfy") + CREATE, json={"image_url": data_uri, "prompt": "x"}
    ) as resp:
        assert resp.status == 401
        assert set(await resp.json()) == {"error"}


async def test_submit_status_sequence_and_result(
    start_emulator: Callable[..., Awaitable[Emulator]],
    http: aiohttp.ClientSession,
    data_uri: str,
    poll: Callable[..., Awaitable[list[str]]],
) -> None:
    emu = await start_emulator(processing_time=150)
    status, reply = await submit(http, emu, data_uri)
    assert status == 200
    assert set(reply) == {"request_id", "status_url", "result_url", "cancel_url"}
    base = f"{emu.url}/runcomfy/v1/requests/{reply['request_id']}"
    assert reply["status_url"] == base + "/status"
    # Before it is done, the result is the current state.
    code, early = await get(http, reply["result_url"])
    assert code == 200
    assert early["status"] == "in_queue"
    assert isinstance(early["queue_position"], int)

    async def fetch() -> str:
        code, body = await get(http, reply["status_url"])
        assert code == 200
        assert body["request_id"] == reply["request_id"]
        return str(body["status"])

    seen = await poll(fetch, {"completed", "failed", "cancelled"})
    assert seen == ["in_queue", "in_progress", "completed"]
    code, result = await get(http, reply["result_url"])
    assert code == 200
    assert result["status"] in ("completed", "succeeded")
    assert result["output"]["video"].endswith(".mp4")
    assert result["created_at"] <= result["finished_at"]


async def test_cancel_queued_is_200_and_in_progress_is_409(
    start_emulator: Callable[..., Awaitable[Emulator]], http: aiohttp.ClientSession, data_uri: str
) -> None:
    emu = await start_emulator()
    _, queued = await submit(http, emu, data_uri)
    async with http.post(queued["cancel_url"], headers=H) as resp:
        assert resp.status == 200
        assert await resp.json() == {"request_id": queued["request_id"], "status": "cancelled"}
    _, body = await get(http, queued["status_url"])
    assert body["status"] == "cancelled"

    # A finished request cannot be cancelled either.
    async with http.post(queued["cancel_url"], headers=H) as resp:
        assert resp.status == 200  # already cancelled: same answer


async def test_in_progress_cancel_is_409(
    emu: Emulator, http: aiohttp.ClientSession, data_uri: str
) -> None:
    _, reply = await submit(http, emu, data_uri)
    job = emu.jobs[reply["request_id"]]
    job.started -= job.processing_time * 0.5  # jump into in_progress
    _, body = await get(http, reply["status_url"])
    assert body["status"] == "in_progress"
    async with http.post(reply["cancel_url"], headers=H) as resp:
        assert resp.status == 409
        assert set(await resp.json()) == {"error"}


async def test_data_uri_over_6_mib_is_refused(emu: Emulator, http: aiohttp.ClientSession) -> None:
    async def post_image(size: int) -> tuple[int, dict[str, Any]]:
        uri = "data:image/jpeg;base64," + base64.b64encode(b"\xff" * size).decode()
        data = io.BytesIO(json.dumps({"image_url": uri, "prompt": "x"}).encode())
        headers = {**H, "Content-Type": "application/json"}
        async with http.post(
            emu.provider_url("runcomfy") + CREATE, data=data, headers=headers
        ) as resp:
            return resp.status, await resp.json()

    status, body = await post_image(6 * 1024 * 1024 + 1)
    assert status == 413
    assert "6 MiB" in body["error"]
    status, _ = await post_image(6 * 1024 * 1024)
    assert status == 200


async def test_failure_is_a_200_result_with_error_code(
    start_emulator: Callable[..., Awaitable[Emulator]], http: aiohttp.ClientSession
) -> None:
    emu = await start_emulator(processing_time=0)
    _, reply = await submit(http, emu, "data:image/png;base64,aGVsbG8=")
    code, status = await get(http, reply["status_url"])
    assert status["status"] == "failed"
    code, result = await get(http, reply["result_url"])
    assert code == 200
    assert result["status"] == "failed"
    assert result["error_code"]
    assert result["error_message"]


async def test_validation_and_unknown_ids(
    emu: Emulator, http: aiohttp.ClientSession, data_uri: str
) -> None:
    status, body = await submit(http, emu, data_uri, duration=16, resolution="2160p")
    assert status == 400
    assert "duration" in body["error"]
    code, body = await get(http, emu.provider_url("runcomfy") + "/v1/requests/nope/status")
    assert code == 404
    assert "error" in body

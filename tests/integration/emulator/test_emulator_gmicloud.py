"""GMI Cloud's request queue (seeds/002_b18eb1b2ec182b9a.txt) as the emulator serves it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from ltx2.emulator import Emulator

H = {"Authorization": "Bearer gmi-key"}
MODEL = "ltx-2-fast-image-to-video"
PREFIX = "/api/v1/ie/requestqueue/apikey"


def url(emu: Emulator, path: str) -> str:
    return emu.provider_url("gmicloud") + PREFIX + path


async def create(
    http: aiohttp.ClientSession, emu: Emulator, image: str, model: str = MODEL, **payload: Any
) -> tuple[int, dict[str, Any]]:
    body = {
        "model": model,
        "payload": {
            "image_uri": image,
            "prompt": "The scene gently comes to life",
            "duration": 6,
            "resolution": "1920x1080",
            "fps": 25,
            "generate_audio": True,
            **payload,
        },
    }
    async with http.post(url(emu, "/requests"), json=body, headers=H) as resp:
        return resp.status, await resp.json()


async def test_auth_is_bearer_with_error_body(
    start_emulator: Callable[..., Awaitable[Emulator]], http: aiohttp.ClientSession
) -> None:
    emu = await start_emulator(api_keys={"gmi-key"})
    for headers in ({}, {"Authorization": "Bearer nope"}, {"X-API-Key": "gmi-key"}):
        async with http.get(url(emu, "/requests/x"), headers=headers) as resp:
            assert resp.status == 401
            assert set(await resp.json()) == {"error"}


async def test_create_then_every_status_then_outcome_with_video_and_thumbnail(
    start_emulator: Callable[..., Awaitable[Emulator]],
    http: aiohttp.ClientSession,
    hosted_image: Callable[[Emulator], Awaitable[str]],
    poll: Callable[..., Awaitable[list[str]]],
) -> None:
    emu = await start_emulator(processing_time=150)
    image = await hosted_image(emu)
    status, reply = await create(http, emu, image, camera_motion="jib_up")
    assert status == 200
    assert set(reply) == {"request_id", "model", "status", "created_at", "updated_at"}
    assert reply["status"] == "queued"
    assert reply["model"] == MODEL
    last: dict[str, Any] = {}

    async def fetch() -> str:
        async with http.get(url(emu, f"/requests/{reply['request_id']}"), headers=H) as resp:
            assert resp.status == 200
            last.update(await resp.json())
            return str(last["status"])

    seen = await poll(fetch, {"success", "failed", "cancelled"})
    assert seen == ["queued", "dispatched", "processing", "success"]
    assert last["payload"]["camera_motion"] == "jib_up"
    assert isinstance(last["created_at"], int)
    assert last["queued_at"] == last["created_at"]
    media = last["outcome"]["media_urls"]
    assert media[0]["id"] == "0"
    assert media[0]["url"].endswith(".mp4")
    thumb = last["outcome"]["thumbnail_image_url"]
    assert thumb.endswith(".png")
    async with http.get(thumb) as resp:
        assert resp.headers["Content-Type"] == "image/png"
        assert (await resp.read())[:8] == b"\x89PNG\r\n\x1a\n"
    async with http.get(media[0]["url"]) as resp:
        assert resp.headers["Content-Type"] == "video/mp4"


async def test_zero_processing_time_create_reply_is_already_terminal(
    start_emulator: Callable[..., Awaitable[Emulator]],
    http: aiohttp.ClientSession,
    hosted_image: Callable[[Emulator], Awaitable[str]],
) -> None:
    emu = await start_emulator(processing_time=0)
    image = await hosted_image(emu)
    status, reply = await create(http, emu, image)
    assert status == 200
    assert reply["status"] == "success"
    assert reply["outcome"]["media_urls"][0]["url"].endswith(".mp4")


async def test_list_returns_this_keys_requests(
    emu: Emulator, http: aiohttp.ClientSession, hosted_image: Callable[[Emulator], Awaitable[str]]
) -> None:
    image = await hosted_image(emu)
    ids = {(await create(http, emu, image))[1]["request_id"] for _ in range(3)}
    async with http.get(url(emu, "/requests"), params={"model_id": MODEL}, headers=H) as resp:
        listing = await resp.json()
    assert listing["total"] == 3
    assert {r["request_id"] for r in listing["requests"]} == ids
    async with http.get(url(emu, "/requests"), headers={"Authorization": "Bearer other"}) as resp:
        assert (await resp.json())["total"] == 0


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"resolution": "1080p"}, "resolution"),
        ({"duration": 12, "resolution": "2560x1440"}, "duration"),
        ({"duration": 14, "fps": 50}, "duration"),
        ({"camera_motion": "orbit"}, "camera_motion"),
        ({"image_uri": "data:image/jpeg;base64,AAAA"}, "image_uri"),
        ({"prompt": None}, "prompt"),
    ],
)
async def test_invalid_payload_is_400_error(
    emu: Emulator, http: aiohttp.ClientSession, payload: dict[str, Any], fragment: str
) -> None:
    status, reply = await create(http, emu, "https://example.com/a.jpg", **payload)
    assert status == 400
    assert fragment in reply["error"]


async def test_unknown_model_and_request_are_404(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    status, reply = await create(http, emu, "https://example.com/a.jpg", model="ltx-2-pro")
    assert status == 404
    assert "error" in reply
    async with http.get(url(emu, "/requests/missing"), headers=H) as resp:
        assert resp.status == 404
        assert "error" in await resp.json()


async def test_there_is_no_cancel(
    emu: Emulator, http: aiohttp.ClientSession, hosted_image: Callable[[Emulator], Awaitable[str]]
) -> None:
    image = await hosted_image(emu)
    _, reply = await create(http, emu, image)
    rid = reply["request_id"]
    async with http.post(url(emu, f"/requests/{rid}/cancel"), headers=H) as resp:
        assert resp.status == 404
        assert "error" in await resp.json()
    async with http.delete(url(emu, f"/requests/{rid}"), headers=H) as resp:
        assert resp.status == 405
        assert "error" in await resp.json()


async def test_no_upload_endpoint_and_model_info(
    emu: Emulator, http: aiohttp.ClientSession, jpeg: bytes
) -> None:
    async with http.post(
        url(emu, "/upload-url"),
        json={"file_name": "cat.jpg", "content_type": "image/jpeg"},
        headers=H,
    ) as resp:
        assert resp.status in (404, 405)  # no source shows one
    hosted = emu.store_upload("gmicloud", "cat.jpg", "image/jpeg", jpeg)
    status, _ = await create(http, emu, hosted)
    assert status == 200
    async with http.get(url(emu, f"/models/{MODEL}"), headers=H) as resp:
        info = await resp.json()
    assert info["model"] == MODEL  # gmicloud 0.1.10 GetModelResponse.model
    assert "focus_shift" in info["camera_motion"]
    async with http.get(url(emu, "/models"), headers=H) as resp:
        listed = await resp.json()
    assert listed["model_ids"] == [MODEL]

"""AI/ML API (seeds/004_c8bf4e7a0b888e5c.txt) as the emulator serves it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from ltx2.emulator import Emulator

H = {"Authorization": "Bearer aiml-key"}
MODEL = "ltxv/ltxv-2-fast"
ERROR_KEYS = {"message", "statusCode", "error"}


def url(emu: Emulator) -> str:
    return emu.provider_url("aimlapi") + "/v2/video/generations"


async def create(
    http: aiohttp.ClientSession, emu: Emulator, **body: Any
) -> tuple[int, dict[str, Any]]:
    payload = {"model": MODEL, "prompt": "A dragon rushes toward the camera", **body}
    async with http.post(url(emu), json=payload, headers=H) as resp:
        return resp.status, await resp.json()


async def test_auth_is_bearer_with_nest_style_error(
    start_emulator: Callable[..., Awaitable[Emulator]], http: aiohttp.ClientSession
) -> None:
    emu = await start_emulator(api_keys={"aiml-key"})
    async with http.post(url(emu), json={"model": MODEL, "prompt": "x"}) as resp:
        assert resp.status == 401
        body = await resp.json()
    assert set(body) == ERROR_KEYS
    assert body["statusCode"] == 401


async def test_prompt_only_text_to_video_goes_through_every_status(
    start_emulator: Callable[..., Awaitable[Emulator]],
    http: aiohttp.ClientSession,
    poll: Callable[..., Awaitable[list[str]]],
) -> None:
    emu = await start_emulator(processing_time=150)
    status, reply = await create(http, emu, duration=8)
    assert 200 <= status < 300
    assert reply["status"] == "queued"
    assert reply["meta"]["usage"]["tokens_used"] == 120000  # seed 004's 8 s example
    last: dict[str, Any] = {}

    async def fetch() -> str:
        async with http.get(url(emu), params={"generation_id": reply["id"]}, headers=H) as resp:
            assert resp.status == 200
            last.update(await resp.json())
            return str(last["status"])

    seen = await poll(fetch, {"completed", "error"})
    # aimlapi-sdk-python's videos.py waits on exactly "queued" and "generating".
    assert seen == ["queued", "generating", "completed"]
    assert last["error"] is None
    assert last["video"]["duration"] == last["duration"] == 8
    async with http.get(last["video"]["url"]) as resp:
        assert resp.status == 200


async def test_pending_generation_has_null_video(
    emu: Emulator, http: aiohttp.ClientSession, data_uri: str
) -> None:
    _, reply = await create(http, emu, image_url=data_uri)
    async with http.get(url(emu), params={"generation_id": reply["id"]}, headers=H) as resp:
        body = await resp.json()
    assert body["video"] is None
    assert body["error"] is None
    assert body["status"] == "queued"


async def test_failed_generation_has_error_name_and_message(
    start_emulator: Callable[..., Awaitable[Emulator]], http: aiohttp.ClientSession
) -> None:
    emu = await start_emulator(processing_time=0)
    _, reply = await create(http, emu, image_url="data:image/png;base64,aGVsbG8=")
    async with http.get(url(emu), params={"generation_id": reply["id"]}, headers=H) as resp:
        body = await resp.json()
    assert body["status"] == "error"
    assert body["video"] is None
    assert set(body["error"]) == {"name", "message"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"duration": 12}, "duration"),
        ({"duration": 20}, "duration"),
        ({"resolution": "720p"}, "resolution"),
        ({"model": "ltxv/ltxv-2"}, "model"),
        ({"prompt": ""}, "prompt"),
    ],
)
async def test_only_6_8_10_seconds_and_valid_fields(
    emu: Emulator, http: aiohttp.ClientSession, body: dict[str, Any], field: str
) -> None:
    status, reply = await create(http, emu, **body)
    assert status == 400
    assert set(reply) == ERROR_KEYS
    assert field in reply["message"]


async def test_missing_or_unknown_generation_id(emu: Emulator, http: aiohttp.ClientSession) -> None:
    async with http.get(url(emu), headers=H) as resp:
        assert resp.status == 400
        assert set(await resp.json()) == ERROR_KEYS
    async with http.get(url(emu), params={"generation_id": "nope"}, headers=H) as resp:
        assert resp.status == 404
        assert (await resp.json())["statusCode"] == 404


async def test_there_is_no_cancel_endpoint(emu: Emulator, http: aiohttp.ClientSession) -> None:
    _, reply = await create(http, emu)
    async with http.post(url(emu) + f"/{reply['id']}/cancel", headers=H) as resp:
        assert resp.status == 404
        assert set(await resp.json()) == ERROR_KEYS
    async with http.delete(url(emu), params={"generation_id": reply["id"]}, headers=H) as resp:
        assert resp.status == 405

"""fal's queue API (seeds/001_9fad711611cc8afb.txt + DESIGN) as the emulator serves it."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from ltx2.emulator import Emulator

H = {"Authorization": "Key fal-key"}
ENDPOINT = "/fal-ai/ltx-2/image-to-video/fast"


async def submit(
    http: aiohttp.ClientSession, emu: Emulator, image: str, query: str = "", **inp: Any
) -> tuple[int, dict[str, Any]]:
    body = {"image_url": image, "prompt": "A slow dolly in", **inp}
    async with http.post(emu.provider_url("fal") + ENDPOINT + query, json=body, headers=H) as resp:
        return resp.status, await resp.json()


async def test_auth_requires_key_scheme(
    start_emulator: Callable[..., Awaitable[Emulator]], http: aiohttp.ClientSession, data_uri: str
) -> None:
    emu = await start_emulator(api_keys={"fal-key"})
    for headers in ({}, {"Authorization": "Bearer fal-key"}, {"Authorization": "Key other"}):
        async with http.post(
            emu.provider_url("fal") + ENDPOINT,
            json={"image_url": data_uri, "prompt": "x"},
            headers=headers,
        ) as resp:
            assert resp.status == 401
            assert isinstance((await resp.json())["detail"], str)


async def test_submit_with_data_uri_status_sequence_and_result(
    start_emulator: Callable[..., Awaitable[Emulator]],
    http: aiohttp.ClientSession,
    data_uri: str,
    poll: Callable[..., Awaitable[list[str]]],
) -> None:
    emu = await start_emulator(processing_time=150)
    status, body = await submit(http, emu, data_uri)
    assert status == 200
    rid = body["request_id"]
    base = f"{emu.url}/fal/fal-ai/ltx-2/requests/{rid}"
    assert body["response_url"] == base
    assert body["status_url"] == base + "/status"
    assert body["cancel_url"] == base + "/cancel"
    assert isinstance(body["queue_position"], int)
    assert body["gateway_request_id"]
    replies: list[tuple[int, dict[str, Any]]] = []

    async def fetch() -> str:
        async with http.get(body["status_url"], params={"logs": "1"}, headers=H) as resp:
            replies.append((resp.status, await resp.json()))
            return str(replies[-1][1]["status"])

    # The result is a 400 while the request runs.
    async with http.get(body["response_url"], headers=H) as resp:
        assert resp.status == 400
        assert (await resp.json()) == {"detail": "Request is still in progress"}
    seen = await poll(fetch, {"COMPLETED"})
    assert seen == ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]
    for code, reply in replies:
        assert "logs" in reply or reply["status"] == "IN_QUEUE"
        if reply["status"] == "IN_QUEUE":
            assert isinstance(reply["queue_position"], int)
            assert code == 202
        elif reply["status"] == "IN_PROGRESS":
            assert isinstance(reply["logs"], list)
            assert code == 202
    code, done = replies[-1]
    assert code == 200
    assert "error" not in done
    assert done["metrics"]["inference_time"] > 0
    assert next(line["message"] for line in done["logs"]) == "Downloading input image"
    async with http.get(body["response_url"], headers=H) as resp:
        assert resp.status == 200
        result = await resp.json()
    video = result["video"]
    assert video["content_type"] == "video/mp4"
    assert video["file_name"].endswith(".mp4")
    async with http.get(video["url"]) as resp:
        assert resp.status == 200
        assert len(await resp.read()) == video["file_size"]


async def test_status_without_logs_has_null_logs(
    emu: Emulator, http: aiohttp.ClientSession, data_uri: str
) -> None:
    _, body = await submit(http, emu, data_uri)
    async with http.get(body["status_url"], headers=H) as resp:
        reply = await resp.json()
    assert reply["logs"] is None


async def test_status_stream_sends_each_change_and_closes_after_completed(
    start_emulator: Callable[..., Awaitable[Emulator]], http: aiohttp.ClientSession, data_uri: str
) -> None:
    emu = await start_emulator(processing_time=60)
    _, body = await submit(http, emu, data_uri)
    events = []
    async with http.get(body["status_url"] + "/stream", headers=H) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        raw = await resp.read()
    for chunk in raw.decode().split("\n\n"):
        if chunk.startswith("data: "):
            events.append(json.loads(chunk[len("data: ") :]))
    statuses = [e["status"] for e in events]
    assert statuses[0] == "IN_QUEUE"
    assert statuses[-1] == "COMPLETED"
    assert "IN_PROGRESS" in statuses
    assert statuses.index("IN_PROGRESS") > max(i for i, s in enumerate(statuses) if s == "IN_QUEUE")
    # One stream counts as one status request.
    assert emu.stats_for("fal")["status_requests"] == 1


async def test_cancel_queued_then_already_completed(
    emu: Emulator, http: aiohttp.ClientSession, data_uri: str
) -> None:
    _, body = await submit(http, emu, data_uri)
    async with http.put(body["cancel_url"], headers=H) as resp:
        assert resp.status == 202
        assert await resp.json() == {"status": "CANCELLATION_REQUESTED"}
    async with http.get(body["status_url"], headers=H) as resp:
        reply = await resp.json()
    assert reply["status"] == "COMPLETED"
    assert reply["error_type"] == "request_cancelled"
    assert reply["error"] == "Request was cancelled"
    # fal's queue docs (queue/cancel): ALREADY_COMPLETED once it is over.
    async with http.put(body["cancel_url"], headers=H) as resp:
        assert resp.status == 409
        assert await resp.json() == {"status": "ALREADY_COMPLETED"}
    async with http.put(
        emu.provider_url("fal") + "/fal-ai/ltx-2/requests/nope/cancel", headers=H
    ) as resp:
        assert resp.status == 404
        assert (await resp.json())["status"] == "NOT_FOUND"


@pytest.mark.parametrize(
    ("inp", "field"),
    [
        ({"duration": 12, "resolution": "1440p"}, "duration"),
        ({"fps": 24}, "fps"),
        ({"resolution": "4k"}, "resolution"),
        ({"image_url": ""}, "image_url"),
        ({"image_url": "data:image/png;base64,@@@"}, "image_url"),
        ({"image_url": "ftp://x/y.jpg"}, "image_url"),
    ],
)
async def test_matrix_violations_are_422_with_detail_list(
    emu: Emulator, http: aiohttp.ClientSession, data_uri: str, inp: dict[str, Any], field: str
) -> None:
    status, body = await submit(http, emu, data_uri, **inp)
    assert status == 422
    (item,) = body["detail"]
    assert item["loc"] == ["body", field]
    assert item["msg"]
    assert item["type"]


async def test_duration_given_as_string_enum_is_accepted(
    emu: Emulator, http: aiohttp.ClientSession, data_uri: str
) -> None:
    # seed 001: DurationEnum, 'Default value: "6"'.
    status, _ = await submit(http, emu, data_uri, duration="8")
    assert status == 200


async def test_failed_download_is_completed_with_error_and_422_result(
    start_emulator: Callable[..., Awaitable[Emulator]], http: aiohttp.ClientSession
) -> None:
    emu = await start_emulator(processing_time=0)
    _, body = await submit(http, emu, f"{emu.url}/files/00ff/missing.jpg")
    async with http.get(body["status_url"], headers=H) as resp:
        reply = await resp.json()
    assert reply["status"] == "COMPLETED"
    assert reply["error_type"] == "file_download_error"
    assert reply["error"]
    async with http.get(body["response_url"], headers=H) as resp:
        assert resp.status == 422
        assert resp.headers["X-Fal-Error-Type"] == "file_download_error"
        detail = (await resp.json())["detail"]
    assert detail[0]["loc"] == ["body", "image_url"]


async def test_not_an_image_fails_with_image_load_error(
    start_emulator: Callable[..., Awaitable[Emulator]], http: aiohttp.ClientSession
) -> None:
    emu = await start_emulator(processing_time=0)
    _, body = await submit(http, emu, "data:image/png;base64,aGVsbG8gd29ybGQ=")
    async with http.get(body["response_url"], headers=H) as resp:
        assert resp.status == 422
        assert resp.headers["X-Fal-Error-Type"] == "image_load_error"


async def test_unknown_request_is_404_detail(emu: Emulator, http: aiohttp.ClientSession) -> None:
    for suffix in ("", "/status"):
        async with http.get(
            emu.provider_url("fal") + "/fal-ai/ltx-2/requests/nope" + suffix, headers=H
        ) as resp:
            assert resp.status == 404
            assert "detail" in await resp.json()
    async with http.post(
        emu.provider_url("fal") + "/fal-ai/other-model", json={}, headers=H
    ) as resp:
        assert resp.status in (404, 405)
        assert "detail" in await resp.json()


async def test_storage_upload_round_trip(
    emu: Emulator, http: aiohttp.ClientSession, jpeg: bytes
) -> None:
    async with http.post(
        emu.fal_storage_url + "/storage/upload/initiate",
        params={"storage_type": "fal-cdn-v3"},
        json={"content_type": "image/jpeg", "file_name": "cat.jpg"},
        headers=H,
    ) as resp:
        assert resp.status == 200
        urls = await resp.json()
    async with http.put(
        urls["upload_url"], data=jpeg, headers={"Content-Type": "image/jpeg"}
    ) as resp:
        assert resp.status == 200
    async with http.get(urls["file_url"]) as resp:
        assert await resp.read() == jpeg
    # The uploaded file works as an image_url.
    status, _ = await submit(http, emu, urls["file_url"])
    assert status == 200
    assert emu.stats_for("fal")["uploads"] == 1

"""Eachlabs endpoints (seeds/000_9b0f03b3c1d56c7f.txt) as the emulator serves them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from ltx2.emulator import Emulator

MODEL = "ltx-v-2-image-to-video-fast"
H = {"X-API-Key": "key-1"}
ERROR_KEYS = {"status", "message", "details"}


def url(emu: Emulator, path: str) -> str:
    return emu.provider_url("eachlabs") + path


async def create(
    http: aiohttp.ClientSession, emu: Emulator, image: str, **extra: Any
) -> tuple[int, dict[str, Any], aiohttp.typedefs.LooseHeaders]:
    headers = extra.pop("headers", H)
    inp = {"image_url": image, "prompt": "The camera dollies in", **extra.pop("input", {})}
    body = {"model": extra.pop("model", MODEL), "input": inp, **extra}
    async with http.post(url(emu, "/v1/prediction/"), json=body, headers=headers) as resp:
        return resp.status, await resp.json(), resp.headers


async def test_auth_missing_or_unknown_key_is_401_with_error_body(
    start_emulator: Callable[..., Awaitable[Emulator]], http: aiohttp.ClientSession
) -> None:
    emu = await start_emulator(api_keys={"good"})
    for headers in (
        {},
        {"X-API-Key": "bad"},
        {"Authorization": "Bearer bad"},
        {"Authorization": "Key good"},
    ):
        status, body, _ = await create(http, emu, "https://example.com/a.jpg", headers=headers)
        assert status == 401
        assert set(body) == ERROR_KEYS
        assert body["status"] == "error"
    assert emu.stats_for("eachlabs")["creates"] == 0


async def test_bearer_auth_is_accepted_too(
    emu: Emulator, http: aiohttp.ClientSession, hosted_image: Callable[[Emulator], Awaitable[str]]
) -> None:
    image = await hosted_image(emu)
    status, body, _ = await create(http, emu, image, headers={"Authorization": "Bearer k"})
    assert status == 200, body


async def test_submit_polls_through_every_status_to_success_and_serves_the_video(
    start_emulator: Callable[..., Awaitable[Emulator]],
    http: aiohttp.ClientSession,
    hosted_image: Callable[[Emulator], Awaitable[str]],
    poll: Callable[..., Awaitable[list[str]]],
) -> None:
    emu = await start_emulator(processing_time=150)
    image = await hosted_image(emu)
    status, body, _ = await create(http, emu, image)
    assert status == 200
    assert body["status"] == "success"
    assert body["message"] == "Prediction created successfully"
    pid = body["predictionID"]
    last: dict[str, Any] = {}

    async def fetch() -> str:
        async with http.get(url(emu, f"/v1/prediction/{pid}"), headers=H) as resp:
            assert resp.status == 200
            last.update(await resp.json())
            return str(last["status"])

    seen = await poll(fetch, {"success", "error"})
    assert seen == ["created", "starting", "processing", "success"]
    assert last["id"] == last["predictionID"] == pid
    assert last["input"]["image_url"] == image
    assert isinstance(last["metrics"]["predict_time"], float)
    async with http.get(last["output"]) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "video/mp4"
        assert (await resp.read())[4:8] == b"ftyp"
    assert emu.stats_for("eachlabs")["status_requests_by_job"][pid] == emu.jobs[pid].status_requests


async def test_unknown_model_and_unknown_prediction_are_404(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    status, body, _ = await create(http, emu, "https://example.com/a.jpg", model="ltx-2-pro")
    assert status == 404
    assert set(body) == ERROR_KEYS
    async with http.get(url(emu, "/v1/prediction/nope"), headers=H) as resp:
        assert resp.status == 404
        assert (await resp.json())["status"] == "error"
    async with http.post(url(emu, "/v1/prediction/nope/cancel"), headers=H) as resp:
        assert resp.status == 404


async def test_data_uri_and_localhost_urls_are_rejected(
    emu: Emulator, http: aiohttp.ClientSession, data_uri: str
) -> None:
    for image in (
        data_uri,
        "https://localhost/a.jpg",
        "http://example.com/a.jpg",
        "https://10.0.0.1/x.jpg",
    ):
        status, body, _ = await create(http, emu, image)
        assert status == 400, image
        assert body["message"] == "Invalid input: image_url"


@pytest.mark.parametrize(
    ("inp", "field"),
    [
        ({"duration": 12, "resolution": "1440p"}, "duration"),
        ({"duration": 12, "fps": 50}, "duration"),
        ({"duration": 7}, "duration"),
        ({"resolution": "720p"}, "resolution"),
        ({"fps": 30}, "fps"),
        ({"aspect_ratio": "9:16"}, "aspect_ratio"),
        ({"generate_audio": "yes"}, "generate_audio"),
        ({"prompt": ""}, "prompt"),
    ],
)
async def test_support_matrix_violations_are_400_naming_the_field(
    emu: Emulator, http: aiohttp.ClientSession, inp: dict[str, Any], field: str
) -> None:
    status, body, _ = await create(http, emu, "https://example.com/a.jpg", input=inp)
    assert status == 400
    assert body["status"] == "error"
    assert field in body["message"]


async def test_twenty_seconds_at_1080p25_is_accepted(
    emu: Emulator, http: aiohttp.ClientSession, hosted_image: Callable[[Emulator], Awaitable[str]]
) -> None:
    image = await hosted_image(emu)
    status, _, _ = await create(http, emu, image, input={"duration": 20, "fps": 25})
    assert status == 200


async def test_bad_json_is_400_with_error_body(emu: Emulator, http: aiohttp.ClientSession) -> None:
    for data in (b"{not json", b"[1, 2]", b""):
        async with http.post(url(emu, "/v1/prediction/"), data=data, headers=H) as resp:
            assert resp.status == 400
            assert (await resp.json())["status"] == "error"


async def test_101st_create_in_a_minute_is_429_with_retry_after(
    start_emulator: Callable[..., Awaitable[Emulator]],
    http: aiohttp.ClientSession,
    hosted_image: Callable[[Emulator], Awaitable[str]],
) -> None:
    # A 0.1 scale makes the minute 6 s, plenty for 101 loopback creates.
    emu = await start_emulator(time_scale=0.1, processing_time=0)
    image = await hosted_image(emu)
    for _ in range(100):
        status, body, _ = await create(http, emu, image)
        assert status == 200, body
    status, body, headers = await create(http, emu, image)
    assert status == 429
    assert set(body) == ERROR_KEYS
    assert "100 creates per minute" in body["details"]
    retry_after = float(headers["Retry-After"])
    assert 0 < retry_after <= 6.0
    # Another key has its own window.
    status, _, _ = await create(http, emu, image, headers={"X-API-Key": "other"})
    assert status == 200
    assert emu.stats_for("eachlabs")["creates"] == 101


async def test_window_slides_so_creates_resume_after_retry_after(
    start_emulator: Callable[..., Awaitable[Emulator]],
    http: aiohttp.ClientSession,
    hosted_image: Callable[[Emulator], Awaitable[str]],
) -> None:
    emu = await start_emulator(time_scale=0.01, processing_time=0)  # a 0.6 s minute
    image = await hosted_image(emu)
    accepted = 0
    for _ in range(100):
        status, _, headers = await create(http, emu, image)
        if status == 429:
            await asyncio.sleep(float(headers["Retry-After"]))
        else:
            accepted += 1
    status, _, headers = await create(http, emu, image)
    if status == 429:
        await asyncio.sleep(float(headers["Retry-After"]) + 0.01)
        status, _, _ = await create(http, emu, image)
    assert status == 200


async def test_eleventh_concurrent_prediction_is_429_until_one_finishes(
    emu: Emulator, http: aiohttp.ClientSession, hosted_image: Callable[[Emulator], Awaitable[str]]
) -> None:
    image = await hosted_image(emu)
    ids = []
    for _ in range(10):
        status, body, _ = await create(http, emu, image)
        assert status == 200
        ids.append(body["predictionID"])
    status, body, headers = await create(http, emu, image)
    assert status == 429
    assert "10 concurrent" in body["details"]
    assert float(headers["Retry-After"]) > 0
    assert emu.stats_for("eachlabs")["max_concurrent_seen"]["key-1"] == 10
    async with http.post(url(emu, f"/v1/prediction/{ids[0]}/cancel"), headers=H) as resp:
        assert resp.status == 200
        assert (await resp.json())["status"] == "success"
    status, _, _ = await create(http, emu, image)
    assert status == 200


async def test_limits_off_allows_more_than_ten_concurrent(
    start_emulator: Callable[..., Awaitable[Emulator]],
    http: aiohttp.ClientSession,
    hosted_image: Callable[[Emulator], Awaitable[str]],
) -> None:
    emu = await start_emulator(limits=False)
    image = await hosted_image(emu)
    for _ in range(12):
        status, _, _ = await create(http, emu, image)
        assert status == 200


async def test_limits_can_be_set_apart_from_the_seeds(
    start_emulator: Callable[..., Awaitable[Emulator]],
    http: aiohttp.ClientSession,
    hosted_image: Callable[[Emulator], Awaitable[str]],
) -> None:
    # A limit a client is not told about: 3 creates a minute, no concurrency cap.
    emu = await start_emulator(limits=(3, None))
    image = await hosted_image(emu)
    for _ in range(3):
        status, _, _ = await create(http, emu, image)
        assert status == 200
    status, body, headers = await create(http, emu, image)
    assert status == 429
    assert "3 creates per minute" in body["details"]
    assert float(headers["Retry-After"]) > 0
    assert emu.stats_for("eachlabs")["rate_limited"] == 1


async def test_cancel_running_prediction_then_status_is_cancelled(
    emu: Emulator, http: aiohttp.ClientSession, hosted_image: Callable[[Emulator], Awaitable[str]]
) -> None:
    image = await hosted_image(emu)
    _, body, _ = await create(http, emu, image)
    pid = body["predictionID"]
    async with http.post(url(emu, f"/v1/prediction/{pid}/cancel"), headers=H) as resp:
        assert resp.status == 200
    async with http.get(url(emu, f"/v1/prediction/{pid}"), headers=H) as resp:
        got = await resp.json()
    assert got["status"] == "cancelled"
    assert got["output"] is None
    # A second cancel is still a 200 (best effort) but says it is over.
    async with http.post(url(emu, f"/v1/prediction/{pid}/cancel"), headers=H) as resp:
        assert resp.status == 200
        assert "already" in (await resp.json())["message"]


async def test_unreachable_image_ends_in_error_with_message_and_details(
    start_emulator: Callable[..., Awaitable[Emulator]], http: aiohttp.ClientSession
) -> None:
    emu = await start_emulator(processing_time=0)
    missing = f"{emu.url}/files/0123abcd/missing.jpg"
    _, body, _ = await create(http, emu, missing)
    async with http.get(url(emu, f"/v1/prediction/{body['predictionID']}"), headers=H) as resp:
        got = await resp.json()
    # docs.eachlabs.ai api/predictions/get-prediction.mdx, "Failed Prediction".
    assert got["status"] == "error"
    assert set(got["output"]) == {"error_code", "error_message"}
    assert "download" in got["output"]["error_message"]


async def test_presigned_upload_round_trip_needs_the_required_headers(
    emu: Emulator, http: aiohttp.ClientSession, jpeg: bytes
) -> None:
    # docs.eachlabs.ai api/uploads/presign-upload.mdx: the request of its example, and the
    # reply's fields; the PUT must carry every required header.
    async with http.post(
        url(emu, "/v1/upload/presign"),
        json={"content_type": "image/jpeg", "file_type": "image"},
        headers=H,
    ) as resp:
        assert resp.status == 200
        urls = await resp.json()
    assert set(urls) == {"id", "presigned_url", "public_url", "expires_at", "required_headers"}
    assert urls["required_headers"]
    async with http.get(urls["public_url"]) as resp:
        assert resp.status == 404  # nothing uploaded yet
    async with http.put(
        urls["presigned_url"], data=jpeg, headers={"Content-Type": "image/jpeg"}
    ) as resp:
        assert resp.status == 403  # the signed headers are missing
    async with http.put(
        urls["presigned_url"],
        data=jpeg,
        headers={"Content-Type": "image/jpeg", **urls["required_headers"]},
    ) as resp:
        assert resp.status == 200
    async with http.get(urls["public_url"]) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "image/jpeg"
        assert await resp.read() == jpeg
    assert emu.stats_for("eachlabs")["uploads"] == 1
    async with http.post(url(emu, "/v1/upload/presign"), json={}, headers=H) as resp:
        assert resp.status == 400
        assert await resp.json() == {"error": "content_type is required"}

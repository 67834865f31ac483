"""Eachlabs through the public Client, against aioresponses: the exact HTTP shapes of seed
000_9b0f03b3c1d56c7f.txt and every error code in its table."""

from __future__ import annotations

import json
import logging
import re

import pytest
from aioresponses import CallbackResult, aioresponses
from tests.conftest import FAST_POLL, NO_BACKOFF
from tests.unit.providers._helpers import load_fixture
from yarl import URL

import ltx2

BASE = "https://api.eachlabs.ai"
CREATE = f"{BASE}/v1/prediction/"
IMAGE = "https://cdn.example.com/cat.jpg"
KEY = "sk-eachlabs-secret-123"


def client(**kw: object) -> ltx2.Client:
    kw.setdefault("poll", FAST_POLL)
    kw.setdefault("retry", NO_BACKOFF)
    return ltx2.Client("eachlabs", api_key=KEY, **kw)  # type: ignore[arg-type]


def calls(m: aioresponses, method: str, url: str) -> list[object]:
    return m.requests.get((method, URL(url)), [])


async def test_create_matches_seed_shape() -> None:
    with aioresponses() as m:
        m.post(CREATE, payload={"status": "success", "message": "ok", "predictionID": "p-1"})
        async with client() as c:
            job = await c.submit(image=IMAGE, prompt="The cat yawns", duration=8, fps=50)
        (call,) = calls(m, "POST", CREATE)
        assert call.kwargs["headers"] == {"X-API-Key": KEY}  # type: ignore[attr-defined]
        assert call.kwargs["json"] == {  # type: ignore[attr-defined]
            "model": "ltx-v-2-image-to-video-fast",
            "input": {
                "image_url": IMAGE,
                "prompt": "The cat yawns",
                "duration": 8,
                "resolution": "1080p",
                "aspect_ratio": "16:9",
                "fps": 50,
                "generate_audio": True,
            },
        }
    assert job.id == "p-1"
    assert job.provider == "eachlabs"
    assert job.status is ltx2.JobStatus.QUEUED


async def test_every_status_value_then_output() -> None:
    with aioresponses() as m:
        m.post(CREATE, payload={"status": "success", "predictionID": "p-2"})
        for raw in ("created", "starting", "processing"):
            m.get(f"{BASE}/v1/prediction/p-2", payload={"status": raw, "output": None})
        m.get(
            f"{BASE}/v1/prediction/p-2",
            payload={
                "status": "success",
                "predictionID": "p-2",
                "output": "https://cdn.example.com/out.mp4",
                "metrics": {"predict_time": 41.5},
            },
        )
        async with client() as c:
            job = await c.submit(image=IMAGE, prompt="p")
            seen = [u.raw async for u in job.updates()]
            video = await job
    assert seen == ["submitted", "created", "starting", "processing", "success"]
    assert video.url == "https://cdn.example.com/out.mp4"
    assert video.job_id == "p-2"
    assert video.metrics == {"predict_time": 41.5}


@pytest.mark.parametrize("raw", ["error", "failed"])
async def test_failed_job_raises_with_provider_message(raw: str) -> None:
    with aioresponses() as m:
        m.post(CREATE, payload={"status": "success", "predictionID": "p-3"})
        m.get(
            f"{BASE}/v1/prediction/p-3",
            payload={"status": raw, "message": "NSFW content detected", "details": "x"},
        )
        async with client() as c:
            job = await c.submit(image=IMAGE, prompt="p")
            with pytest.raises(ltx2.JobFailedError) as info:
                await job
    assert info.value.message == "NSFW content detected"
    assert info.value.job is job
    assert job.status is ltx2.JobStatus.FAILED


async def test_cancelled_status_raises_job_cancelled() -> None:
    with aioresponses() as m:
        m.post(CREATE, payload={"status": "success", "predictionID": "p-4"})
        m.get(f"{BASE}/v1/prediction/p-4", payload={"status": "cancelled"})
        async with client() as c:
            job = await c.submit(image=IMAGE, prompt="p")
            with pytest.raises(ltx2.JobCancelledError):
                await job


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, ltx2.BadRequestError),
        (401, ltx2.AuthenticationError),
        (404, ltx2.NotFoundError),
    ],
)
async def test_create_error_codes_map_to_classes(status: int, cls: type[ltx2.APIError]) -> None:
    body = {"status": "error", "message": "Invalid input", "details": "duration must be 6-20"}
    with aioresponses() as m:
        m.post(CREATE, status=status, payload=body)
        async with client() as c:
            with pytest.raises(cls) as info:
                await c.submit(image=IMAGE, prompt="p")
        assert len(calls(m, "POST", CREATE)) == 1  # a 4xx is never retried
    err = info.value
    assert err.status_code == status
    assert err.message == "Invalid input"
    assert err.details == "duration must be 6-20"
    assert err.provider == "eachlabs"
    assert KEY not in str(err)


async def test_newer_error_shape_is_read() -> None:
    with aioresponses() as m:
        m.post(CREATE, status=400, payload={"error": "image_url must be https"})
        async with client() as c:
            with pytest.raises(ltx2.BadRequestError, match="image_url must be https"):
                await c.submit(image=IMAGE, prompt="p")


async def test_429_honours_retry_after_then_succeeds() -> None:
    with aioresponses() as m:
        m.post(
            CREATE,
            status=429,
            headers={"Retry-After": "0.05"},
            payload={"status": "error", "message": "Rate limit"},
        )
        m.post(CREATE, payload={"status": "success", "predictionID": "p-5"})
        async with client() as c:
            job = await c.submit(image=IMAGE, prompt="p")
        assert job.id == "p-5"
        assert len(calls(m, "POST", CREATE)) == 2


async def test_429_exhausted_raises_rate_limit_error_with_retry_after() -> None:
    with aioresponses() as m:
        for _ in range(3):
            m.post(CREATE, status=429, headers={"Retry-After": "0"}, payload={"message": "slow"})
        async with client() as c:
            with pytest.raises(ltx2.RateLimitError) as info:
                await c.submit(image=IMAGE, prompt="p")
    assert info.value.retry_after == 0.0
    assert info.value.status_code == 429


async def test_503_on_create_is_retried_but_500_is_not() -> None:
    with aioresponses() as m:
        m.post(CREATE, status=503, payload={"status": "error", "message": "busy"})
        m.post(CREATE, payload={"status": "success", "predictionID": "p-6"})
        async with client() as c:
            assert (await c.submit(image=IMAGE, prompt="p")).id == "p-6"
    with aioresponses() as m:
        m.post(CREATE, status=500, payload={"status": "error", "message": "boom"})
        m.post(CREATE, payload={"status": "success", "predictionID": "never"})
        async with client() as c:
            with pytest.raises(ltx2.ServerError):
                await c.submit(image=IMAGE, prompt="p")
        # the create may have reached Eachlabs: it is never sent twice
        assert len(calls(m, "POST", CREATE)) == 1


async def test_status_5xx_is_retried() -> None:
    with aioresponses() as m:
        m.post(CREATE, payload={"status": "success", "predictionID": "p-7"})
        m.get(f"{BASE}/v1/prediction/p-7", status=502, body="bad gateway")
        m.get(f"{BASE}/v1/prediction/p-7", status=500, payload={"message": "x"})
        m.get(f"{BASE}/v1/prediction/p-7", payload={"status": "success", "output": "https://v/1"})
        async with client() as c:
            job = await c.submit(image=IMAGE, prompt="p")
            video = await job.result(timeout=5)
    assert video.url == "https://v/1"


async def test_refresh_is_one_status_request() -> None:
    with aioresponses() as m:
        m.post(CREATE, payload={"status": "success", "predictionID": "p-8"})
        m.get(f"{BASE}/v1/prediction/p-8", payload={"status": "processing"})
        async with client(poll=ltx2.PollPolicy(first=3600)) as c:
            job = await c.submit(image=IMAGE, prompt="p")
            assert await job.refresh() is ltx2.JobStatus.RUNNING
        assert len(calls(m, "GET", f"{BASE}/v1/prediction/p-8")) == 1


async def test_cancel_posts_to_cancel_endpoint() -> None:
    with aioresponses() as m:
        m.post(CREATE, payload={"status": "success", "predictionID": "p-9"})
        m.post(f"{BASE}/v1/prediction/p-9/cancel", payload={"status": "success"})
        m.get(f"{BASE}/v1/prediction/p-9", payload={"status": "cancelled"}, repeat=True)
        async with client(poll=ltx2.PollPolicy(first=3600)) as c:
            job = await c.submit(image=IMAGE, prompt="p")
            await job.cancel()
            with pytest.raises(ltx2.JobCancelledError):
                await job
        (call,) = calls(m, "POST", f"{BASE}/v1/prediction/p-9/cancel")
        assert call.kwargs["headers"] == {"X-API-Key": KEY}  # type: ignore[attr-defined]


async def test_result_timeout_leaves_job_running() -> None:
    with aioresponses() as m:
        m.post(CREATE, payload={"status": "success", "predictionID": "p-10"})
        async with client(poll=ltx2.PollPolicy(first=3600)) as c:
            job = await c.submit(image=IMAGE, prompt="p")
            with pytest.raises(ltx2.JobTimeoutError):
                await job.result(timeout=0.05)
            assert job.status is ltx2.JobStatus.QUEUED
            assert not job.done


async def test_local_bytes_are_uploaded_through_presign_with_required_headers(
    png: bytes,
) -> None:
    # docs.eachlabs.ai api/uploads/presign-upload.mdx: the request and reply of its example.
    presigned = load_fixture("eachlabs", "presign_reply.json")
    put_url = presigned["presigned_url"]
    with aioresponses() as m:
        m.post(f"{BASE}/v1/upload/presign", payload=presigned)
        m.put(put_url, status=200)
        m.post(CREATE, payload={"status": "success", "predictionID": "p-11"})
        async with client() as c:
            await c.submit(image=png, prompt="p")
        (presign,) = calls(m, "POST", f"{BASE}/v1/upload/presign")
        assert presign.kwargs["json"] == {  # type: ignore[attr-defined]
            "content_type": "image/png",
            "file_type": "image",
        }
        (put,) = calls(m, "PUT", put_url)
        assert put.kwargs["data"] == png  # type: ignore[attr-defined]
        headers = put.kwargs["headers"]  # type: ignore[attr-defined]
        assert headers["x-amz-meta-file-id"] == presigned["required_headers"]["x-amz-meta-file-id"]
        assert headers["Content-Type"] == "image/png"
        assert "X-API-Key" not in headers
        (create,) = calls(m, "POST", CREATE)
        image_url = create.kwargs["json"]["input"]["image_url"]  # type: ignore[attr-defined]
        assert image_url == presigned["public_url"]


async def test_polled_failure_carries_the_documented_code_and_message() -> None:
    # docs.eachlabs.ai api/predictions/get-prediction.mdx, "Failed Prediction".
    failed = load_fixture("eachlabs", "status_error.json")
    with aioresponses() as m:
        m.post(CREATE, payload=load_fixture("eachlabs", "create_reply.json"))
        m.get(re.compile(r".*/v1/prediction/abc123-def456-ghi789$"), payload=failed)
        async with client() as c:
            job = await c.submit(image=IMAGE, prompt="p")
            with pytest.raises(ltx2.JobFailedError) as info:
                await job
    assert info.value.message == failed["output"]["error_message"]
    assert info.value.code == "PROVIDER_RATE_LIMIT"
    assert "{" not in str(info.value)


@pytest.mark.parametrize(
    "image",
    ["data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGAAAAAEAAH2FzhVAAAAAElFTkSuQmCC",
     "http://localhost:8000/cat.png", "http://127.0.0.1/cat.png"],
)  # fmt: skip
async def test_data_uri_and_localhost_refused_before_any_request(image: str) -> None:
    with aioresponses() as m:
        async with client() as c:
            with pytest.raises(ltx2.InvalidRequestError) as info:
                await c.submit(image=image, prompt="p")
        assert not m.requests
    assert info.value.field == "image"
    assert "eachlabs" in str(info.value)


async def test_camera_motion_is_refused_naming_gmicloud() -> None:
    with aioresponses() as m:
        async with client() as c:
            with pytest.raises(ltx2.InvalidRequestError, match="gmicloud") as info:
                await c.submit(image=IMAGE, prompt="p", camera_motion="dolly_in")
        assert not m.requests
    assert info.value.field == "camera_motion"


def test_missing_api_key_is_authentication_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EACHLABS_API_KEY", raising=False)
    with pytest.raises(ltx2.AuthenticationError, match="EACHLABS_API_KEY"):
        ltx2.Client("eachlabs")


def test_key_from_environment_and_never_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EACHLABS_API_KEY", KEY)
    c = ltx2.Client("eachlabs")
    assert KEY not in repr(c)
    assert KEY not in repr(c._provider)
    assert KEY not in repr(c._provider.status("x", {}))


def test_unknown_provider_lists_the_known_ones() -> None:
    with pytest.raises(ltx2.InvalidRequestError, match="eachlabs") as info:
        ltx2.Client("replicate", api_key="k")
    assert info.value.field == "provider"


async def test_api_key_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="ltx2")
    with aioresponses() as m:
        m.post(CREATE, status=503, payload={"message": "busy"})
        m.post(CREATE, payload={"status": "success", "predictionID": "p-12"})
        m.get(re.compile(r".*/v1/prediction/p-12$"), payload={"status": "success", "output": "u"})
        async with client() as c:
            await (await c.submit(image=IMAGE, prompt="p")).result(timeout=5)
    assert caplog.records
    assert KEY not in caplog.text


async def test_unreadable_create_reply_is_transport_error() -> None:
    with aioresponses() as m:
        m.post(CREATE, body="<html>oops</html>", content_type="text/html")
        async with client() as c:
            with pytest.raises(ltx2.TransportError):
                await c.submit(image=IMAGE, prompt="p")


async def test_create_body_is_json_serialisable_snapshot() -> None:
    """The create call a user would see in a proxy log, pinned."""

    def cb(url: URL, **kw: object) -> CallbackResult:
        body = kw["json"]
        assert json.loads(json.dumps(body)) == body
        return CallbackResult(payload={"status": "success", "predictionID": "p-13"})

    with aioresponses() as m:
        m.post(CREATE, callback=cb)
        async with client() as c:
            assert (await c.submit(image=IMAGE, prompt="p")).id == "p-13"

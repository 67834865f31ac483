"""GMI Cloud adapter: pure translation (seed 002_b18eb1b2ec182b9a.txt).

Fixtures in tests/fixtures/gmicloud/: ``create_request.json``, ``create_reply.json`` and
``status_success.json`` are seed 002's examples verbatim; the others (queued and terminal
create replies, a thumbnail beside the video, a failure, a list, an upload, an error) follow
the seed's field names.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
from tests.unit.providers._helpers import load_fixture, reply

from ltx2._errors import InvalidRequestError, UnsupportedError
from ltx2._request import VideoRequest
from ltx2._types import JobStatus
from ltx2.providers import get
from ltx2.providers.gmicloud import GMICloud

fixture = partial(load_fixture, "gmicloud")

REQUESTS = "https://console.gmicloud.ai/api/v1/ie/requestqueue/apikey/requests"
AUTH = {"Authorization": "Bearer gmi-key"}


@pytest.fixture
def gmi() -> GMICloud:
    return GMICloud("gmi-key")


def test_registered_under_its_name() -> None:
    assert get("gmicloud") is GMICloud
    assert GMICloud.env_var == "GMI_API_KEY"
    caps = GMICloud.capabilities
    assert caps.camera_motion
    assert caps.list_jobs
    assert not caps.upload  # no source shows an upload endpoint
    assert not caps.data_uri
    assert caps.cancel is None
    assert caps.webhooks is None
    assert caps.expected_seconds == (30.0, 120.0)


def test_create_matches_the_seed_example(gmi: GMICloud) -> None:
    seed = fixture("create_request.json")
    payload = seed["payload"]
    request = VideoRequest(payload["image_uri"], payload["prompt"])
    call = gmi.create(
        request, payload["image_uri"], webhook_url="https://hooks/x", webhook_secret="s"
    )
    assert (call.method, call.url, call.kind) == ("POST", REQUESTS, "create")
    assert call.headers == AUTH
    assert call.json == seed
    assert call.params is None
    assert not call.idempotent


@pytest.mark.parametrize(
    ("resolution", "size"),
    [("1080p", "1920x1080"), ("1440p", "2560x1440"), ("2160p", "3840x2160")],
)
def test_create_maps_resolutions(gmi: GMICloud, resolution: str, size: str) -> None:
    request = VideoRequest("https://x/c.jpg", "p", resolution=resolution)
    call = gmi.create(request, "https://x/c.jpg", webhook_url=None, webhook_secret=None)
    assert call.json["payload"]["resolution"] == size


def test_create_sends_camera_motion_only_when_set(gmi: GMICloud) -> None:
    plain = gmi.create(
        VideoRequest("https://x/c.jpg", "p"),
        "https://x/c.jpg",
        webhook_url=None,
        webhook_secret=None,
    )
    assert "camera_motion" not in plain.json["payload"]
    request = VideoRequest(
        "https://x/c.jpg",
        "p",
        camera_motion="dolly_in",
        duration=8,
        fps=50,
        generate_audio=False,
    )
    call = gmi.create(request, "https://cdn/c.jpg", webhook_url=None, webhook_secret=None)
    assert call.json == {
        "model": "ltx-2-fast-image-to-video",
        "payload": {
            "image_uri": "https://cdn/c.jpg",
            "prompt": "p",
            "duration": 8,
            "resolution": "1920x1080",
            "fps": 50,
            "generate_audio": False,
            "camera_motion": "dolly_in",
        },
    }


def test_create_without_an_image_is_refused(gmi: GMICloud) -> None:
    with pytest.raises(InvalidRequestError):
        gmi.create(VideoRequest(None, "p"), None, webhook_url=None, webhook_secret=None)


def test_base_url_prefix_is_kept() -> None:
    gmi = GMICloud("k", "http://127.0.0.1:9000/gmicloud")
    call = gmi.status("abc", {})
    assert call.url == ("http://127.0.0.1:9000/gmicloud/api/v1/ie/requestqueue/apikey/requests/abc")


def test_seed_create_reply_success_without_outcome_needs_a_status_read(gmi: GMICloud) -> None:
    # seed 002's create reply says "success" but carries no outcome: not a failure.
    created = gmi.parse_create(reply(fixture("create_reply.json")))
    assert created.job_id == "abc123"
    assert created.update is None


def test_create_reply_queued_carries_its_status(gmi: GMICloud) -> None:
    created = gmi.parse_create(reply(fixture("create_reply_queued.json")))
    assert created.job_id == "req-7f3a"
    assert created.update is not None
    assert created.update.status is JobStatus.QUEUED


def test_create_reply_already_terminal(gmi: GMICloud) -> None:
    created = gmi.parse_create(reply(fixture("create_reply_terminal.json")))
    assert created.job_id == "req-7f3b"
    assert created.update is not None
    assert created.update.status is JobStatus.SUCCEEDED
    assert created.update.video_url == (
        "https://storage.googleapis.com/gmi-video/req-7f3b/video.mp4"
    )


def test_create_reply_already_failed(gmi: GMICloud) -> None:
    body = {"request_id": "r", "status": "failed", "error": "quota exceeded"}
    created = gmi.parse_create(reply(body))
    assert created.update is not None
    assert created.update.status is JobStatus.FAILED
    assert created.update.error == "quota exceeded"


@pytest.mark.parametrize("body", [{}, {"status": "queued"}, [], None, {"request_id": 12}])
def test_parse_create_malformed_raises_value_error(gmi: GMICloud, body: Any) -> None:
    with pytest.raises(ValueError):
        gmi.parse_create(reply(body))


def test_status_call(gmi: GMICloud) -> None:
    call = gmi.status("abc123", {})
    assert (call.method, call.url, call.kind) == ("GET", f"{REQUESTS}/abc123", "status")
    assert call.headers == AUTH
    assert call.idempotent


def test_seed_status_success_gives_the_video(gmi: GMICloud) -> None:
    update = gmi.parse_status(reply(fixture("status_success.json")))
    assert update.status is JobStatus.SUCCEEDED
    assert update.raw == "success"
    assert update.video_url == "https://storage.googleapis.com/.../video.mp4"


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("created", JobStatus.QUEUED),
        ("queued", JobStatus.QUEUED),
        ("dispatched", JobStatus.RUNNING),
        ("processing", JobStatus.RUNNING),
        ("cancelled", JobStatus.CANCELLED),
        ("some_new_state", JobStatus.RUNNING),
    ],
)
def test_status_words(gmi: GMICloud, raw: str, status: JobStatus) -> None:
    update = gmi.parse_status(reply({"request_id": "r", "status": raw}))
    assert update.status is status
    assert update.raw == raw


def test_failed_takes_the_outcome_error(gmi: GMICloud) -> None:
    update = gmi.parse_status(reply(fixture("status_failed.json")))
    assert update.status is JobStatus.FAILED
    assert update.error == "image_uri could not be fetched (HTTP 403)"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"status": "failed", "error": "bad input"}, "bad input"),
        ({"status": "failed", "message": "worker lost"}, "worker lost"),
        ({"status": "failed", "outcome": {"error": {"message": "oom"}}}, "oom"),
        ({"status": "failed"}, "failed"),
    ],
)
def test_failed_error_sources(gmi: GMICloud, body: dict[str, Any], error: str) -> None:
    assert gmi.parse_status(reply(body)).error == error


def test_thumbnail_is_never_the_video(gmi: GMICloud) -> None:
    update = gmi.parse_status(reply(fixture("status_success_thumbnail.json")))
    assert update.video_url == "https://storage.googleapis.com/gmi-video/req-7f3c/video.mp4"


def test_thumbnail_listed_first_without_its_key_is_skipped(gmi: GMICloud) -> None:
    body = {
        "status": "success",
        "outcome": {
            "media_urls": [
                {"id": "0", "url": "https://cdn/req/thumbnail.jpg"},
                {"id": "1", "url": "https://cdn/req/output?sig=1"},
            ]
        },
    }
    assert gmi.parse_status(reply(body)).video_url == "https://cdn/req/output?sig=1"


def test_only_a_thumbnail_is_a_failure(gmi: GMICloud) -> None:
    body = {
        "status": "success",
        "outcome": {
            "thumbnail_image_url": "https://cdn/req/t.jpg",
            "media_urls": [{"id": "0", "url": "https://cdn/req/t.jpg"}],
        },
    }
    update = gmi.parse_status(reply(body))
    assert update.status is JobStatus.FAILED
    assert update.video_url is None


def test_success_without_outcome_is_a_failure_on_status(gmi: GMICloud) -> None:
    update = gmi.parse_status(reply({"request_id": "r", "status": "success"}))
    assert update.status is JobStatus.FAILED
    assert update.error == "success without a video"


@pytest.mark.parametrize("body", [{}, {"status": 1}, [], None])
def test_malformed_status_raises_value_error(gmi: GMICloud, body: Any) -> None:
    with pytest.raises(ValueError):
        gmi.parse_status(reply(body))


def test_cancel_is_unsupported(gmi: GMICloud) -> None:
    with pytest.raises(UnsupportedError):
        gmi.cancel("abc", {})


def test_list_call(gmi: GMICloud) -> None:
    call = gmi.list_jobs()
    assert (call.method, call.url, call.kind) == ("GET", REQUESTS, "list")
    assert call.params == {"model_id": "ltx-2-fast-image-to-video"}
    assert call.headers == AUTH


def test_parse_list(gmi: GMICloud) -> None:
    jobs = gmi.parse_list(reply(fixture("list.json")))
    assert [j.job_id for j in jobs] == ["req-1", "req-2", "req-3"]  # other model skipped
    first, second, third = jobs
    assert first.update.status is JobStatus.RUNNING
    assert first.prompt == "A cat yawns"
    assert first.created_at == 1761763441.0
    assert second.update.status is JobStatus.SUCCEEDED
    assert second.update.video_url == "https://storage.googleapis.com/gmi-video/req-2/video.mp4"
    # listed as done without its outcome: not a failure, a status read will tell
    assert third.update.status is JobStatus.RUNNING
    assert third.update.raw == "success"


def test_parse_list_iso_created_at(gmi: GMICloud) -> None:
    body = {
        "requests": [
            {"request_id": "a", "status": "queued", "created_at": "2025-10-29T18:44:01Z"},
            {"request_id": "b", "status": "queued", "created_at": "last tuesday"},
        ]
    }
    a, b = gmi.parse_list(reply(body))
    assert a.created_at == 1761763441.0
    assert b.created_at is None


def test_parse_list_bare_list_and_odd_rows(gmi: GMICloud) -> None:
    body = [{"request_id": "a", "status": "queued"}, "junk", {"status": "queued"}, {}]
    jobs = gmi.parse_list(reply(body))
    assert [j.job_id for j in jobs] == ["a"]
    assert jobs[0].prompt is None
    assert jobs[0].created_at is None


@pytest.mark.parametrize("body", [None, {"requests": "x"}, "x", {}])
def test_parse_list_malformed_raises_value_error(gmi: GMICloud, body: Any) -> None:
    with pytest.raises(ValueError):
        gmi.parse_list(reply(body))


def test_no_upload_endpoint_is_called(gmi: GMICloud) -> None:
    # Neither seed 002, docs.gmicloud.ai nor gmicloud 0.1.10 shows an upload endpoint.
    with pytest.raises(UnsupportedError):
        gmi.upload("cat.png", "image/png")


def test_error_body(gmi: GMICloud) -> None:
    message, details, error_type = gmi.parse_error(reply(fixture("error.json"), 400))
    assert message == "invalid resolution: 1280x720"
    assert details == fixture("error.json")
    assert error_type is None


def test_error_not_json(gmi: GMICloud) -> None:
    message, _, _ = gmi.parse_error(reply(b"", 503))
    assert message == "HTTP 503"


def test_no_webhooks() -> None:
    with pytest.raises(UnsupportedError):
        GMICloud.parse_webhook({}, {})

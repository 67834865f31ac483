"""RunComfy adapter: pure translation (seed 003_ab4a9114b2d1a0d0.txt).

Fixtures in tests/fixtures/runcomfy/: ``create_request.json`` is seed 003's cURL body
verbatim (the other fields take the seed schema's defaults); the replies follow the seed's
endpoint descriptions and output schema, and the newer docs' ``error_code``/``error_message``.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
from tests.unit.providers._helpers import SEED_DEFAULTS, load_fixture, reply

from ltx2._errors import InvalidRequestError, UnsupportedError
from ltx2._request import VideoRequest
from ltx2._types import JobStatus
from ltx2.providers import get
from ltx2.providers.runcomfy import RunComfy

fixture = partial(load_fixture, "runcomfy")

JOB_ID = "8a2d6c1e-3f4b-4c5d-9e0f-1a2b3c4d5e6f"
REQ = f"https://model-api.runcomfy.net/v1/requests/{JOB_ID}"
AUTH = {"Authorization": "Bearer rc-token"}
# seed 003 "Input schema" defaults.
SCHEMA_DEFAULTS = SEED_DEFAULTS


@pytest.fixture
def rc() -> RunComfy:
    return RunComfy("rc-token")


@pytest.fixture
def meta(rc: RunComfy) -> dict[str, str]:
    return dict(rc.parse_create(reply(fixture("create_reply.json"))).meta)


def test_registered_under_its_name() -> None:
    assert get("runcomfy") is RunComfy
    assert RunComfy.env_var == "RUNCOMFY_API_TOKEN"
    caps = RunComfy.capabilities
    assert caps.cancel == "queued"
    assert caps.data_uri
    assert caps.max_data_uri_bytes == 6 * 1024 * 1024
    assert caps.webhooks is None
    assert not caps.upload


def test_create_matches_the_seed_example(rc: RunComfy) -> None:
    seed = fixture("create_request.json")
    request = VideoRequest(seed["image_url"], seed["prompt"])
    call = rc.create(request, seed["image_url"], webhook_url="https://h/x", webhook_secret="s")
    assert call.method == "POST"
    assert call.url == "https://model-api.runcomfy.net/v1/models/ltx/ltx-2/fast/image-to-video"
    assert call.kind == "create"
    assert call.headers == AUTH
    assert call.json == {**seed, **SCHEMA_DEFAULTS}
    assert call.params is None
    assert not call.idempotent


def test_create_sends_a_data_uri_as_is(rc: RunComfy) -> None:
    request = VideoRequest("https://x/c.jpg", "p", duration=10, resolution="1440p", fps=50)
    uri = "data:image/png;base64,iVBORw0KGgo="
    call = rc.create(request, uri, webhook_url=None, webhook_secret=None)
    assert call.json["image_url"] == uri
    assert (call.json["duration"], call.json["resolution"], call.json["fps"]) == (10, "1440p", 50)


def test_create_without_an_image_is_refused(rc: RunComfy) -> None:
    with pytest.raises(InvalidRequestError):
        rc.create(VideoRequest(None, "p"), None, webhook_url=None, webhook_secret=None)


def test_parse_create_keeps_the_urls(rc: RunComfy, meta: dict[str, str]) -> None:
    created = rc.parse_create(reply(fixture("create_reply.json")))
    assert created.job_id == JOB_ID
    assert meta == {
        "status_url": f"{REQ}/status",
        "result_url": f"{REQ}/result",
        "cancel_url": f"{REQ}/cancel",
    }


@pytest.mark.parametrize("body", [{}, {"request_id": ""}, None, [], "x"])
def test_parse_create_malformed_raises_value_error(rc: RunComfy, body: Any) -> None:
    with pytest.raises(ValueError):
        rc.parse_create(reply(body))


def test_status_call(rc: RunComfy, meta: dict[str, str]) -> None:
    call = rc.status(JOB_ID, meta)
    assert (call.method, call.url, call.kind) == ("GET", f"{REQ}/status", "status")
    assert call.headers == AUTH
    assert rc.status("abc", {}).url == "https://model-api.runcomfy.net/v1/requests/abc/status"


def test_in_queue(rc: RunComfy) -> None:
    update = rc.parse_status(reply(fixture("status_in_queue.json")))
    assert update.status is JobStatus.QUEUED
    assert update.queue_position == 4


def test_in_progress(rc: RunComfy) -> None:
    assert rc.parse_status(reply(fixture("status_in_progress.json"))).status is JobStatus.RUNNING


@pytest.mark.parametrize("raw", ["completed", "succeeded"])
def test_done_needs_the_result(rc: RunComfy, raw: str) -> None:
    update = rc.parse_status(reply({"request_id": "r", "status": raw}))
    assert update.status is JobStatus.SUCCEEDED
    assert update.needs_result
    assert update.video_url is None


def test_failed(rc: RunComfy) -> None:
    update = rc.parse_status(reply(fixture("status_failed.json")))
    assert update.status is JobStatus.FAILED
    assert update.error == "The model could not process the image"


def test_cancelled(rc: RunComfy) -> None:
    update = rc.parse_status(reply(fixture("status_cancelled.json")))
    assert update.status is JobStatus.CANCELLED


def test_unknown_word_is_running(rc: RunComfy) -> None:
    assert rc.parse_status(reply({"status": "preparing"})).status is JobStatus.RUNNING


@pytest.mark.parametrize("body", [{}, {"status": None}, [], None])
def test_malformed_status_raises_value_error(rc: RunComfy, body: Any) -> None:
    with pytest.raises(ValueError):
        rc.parse_status(reply(body))


def test_result_call(rc: RunComfy, meta: dict[str, str]) -> None:
    call = rc.result(JOB_ID, meta)
    assert (call.method, call.url, call.kind) == ("GET", f"{REQ}/result", "result")
    assert call.headers == AUTH
    assert rc.result("abc", {}).url == "https://model-api.runcomfy.net/v1/requests/abc/result"


def test_result_gives_output_video(rc: RunComfy) -> None:
    update = rc.parse_result(reply(fixture("result.json")))
    assert update.status is JobStatus.SUCCEEDED
    assert update.video_url == (
        "https://playgrounds-storage-public.runcomfy.net/tools/7233/outputs/output-1.mp4"
    )


def test_result_falls_back_to_output_videos(rc: RunComfy) -> None:
    update = rc.parse_result(reply(fixture("result_videos.json")))
    assert update.status is JobStatus.SUCCEEDED
    assert update.video_url == (
        "https://playgrounds-storage-public.runcomfy.net/tools/7233/outputs/output-2.mp4"
    )


def test_result_not_yet_complete_is_its_current_state(rc: RunComfy) -> None:
    update = rc.parse_result(reply(fixture("result_in_progress.json")))
    assert update.status is JobStatus.RUNNING
    update = rc.parse_result(reply({"status": "in_queue", "queue_position": 2}))
    assert update.status is JobStatus.QUEUED
    assert update.queue_position == 2


def test_result_failed_with_error_message(rc: RunComfy) -> None:
    update = rc.parse_result(reply(fixture("result_failed.json")))
    assert update.status is JobStatus.FAILED
    assert update.error == "The model could not process the image"


def test_result_completed_without_video_fails(rc: RunComfy) -> None:
    update = rc.parse_result(reply({"status": "completed", "output": {"images": ["x"]}}))
    assert update.status is JobStatus.FAILED
    assert not update.needs_result


@pytest.mark.parametrize("body", [{}, {"output": {}}, None, []])
def test_malformed_result_raises_value_error(rc: RunComfy, body: Any) -> None:
    with pytest.raises(ValueError):
        rc.parse_result(reply(body))


def test_cancel_posts_the_cancel_url(rc: RunComfy, meta: dict[str, str]) -> None:
    call = rc.cancel(JOB_ID, meta)
    assert (call.method, call.url, call.kind) == ("POST", f"{REQ}/cancel", "cancel")
    assert call.headers == AUTH
    assert rc.cancel("abc", {}).url == "https://model-api.runcomfy.net/v1/requests/abc/cancel"


def test_reply_error_on_a_200_with_error_code(rc: RunComfy) -> None:
    body = fixture("error_200.json")
    found = rc.reply_error(reply(body))
    assert found == ("duration must be one of 6, 8, 10, 12, 14, 16, 18, 20", body)


def test_reply_error_code_without_message(rc: RunComfy) -> None:
    found = rc.reply_error(reply({"error_code": "QUOTA"}))
    assert found is not None
    assert found[0] == "error code QUOTA"


@pytest.mark.parametrize(
    "name",
    [
        "create_reply.json",
        "status_in_queue.json",
        "status_failed.json",
        "result.json",
        "result_failed.json",
    ],
)
def test_reply_error_none_for_ordinary_replies(rc: RunComfy, name: str) -> None:
    # a job's own failed state is a job failure, not an API error
    assert rc.reply_error(reply(fixture(name))) is None


def test_reply_error_none_for_non_json(rc: RunComfy) -> None:
    assert rc.reply_error(reply(b"ok")) is None
    assert rc.reply_error(reply([1, 2])) is None


def test_error_body(rc: RunComfy) -> None:
    message, details, _ = rc.parse_error(reply(fixture("error.json"), 401))
    assert message == "Invalid token"
    assert details == {"error": "Invalid token"}


def test_error_body_with_error_message(rc: RunComfy) -> None:
    message, _, _ = rc.parse_error(reply(fixture("error_200.json"), 400))
    assert message == "duration must be one of 6, 8, 10, 12, 14, 16, 18, 20"


def test_no_webhooks_no_upload() -> None:
    with pytest.raises(UnsupportedError):
        RunComfy.parse_webhook({}, {})
    with pytest.raises(UnsupportedError):
        RunComfy("k").upload("a.png", "image/png")

"""AI/ML API adapter: pure translation (seed 004_c8bf4e7a0b888e5c.txt).

Fixtures in tests/fixtures/aimlapi/: ``create_request.json`` (the JS example's body),
``create_reply.json`` and ``status_completed.json`` are seed 004's examples verbatim; the
failure and error bodies follow the DESIGN table's ``error{name,message}`` and
``{message, statusCode}``.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
from tests.unit.providers._helpers import SEED_DEFAULTS, load_fixture, reply

from ltx2._errors import UnsupportedError
from ltx2._request import VideoRequest
from ltx2._types import JobStatus
from ltx2.providers import get
from ltx2.providers.aimlapi import AIMLAPI

fixture = partial(load_fixture, "aimlapi")

URL = "https://api.aimlapi.com/v2/video/generations"
AUTH = {"Authorization": "Bearer aiml-key"}
PARAMS = SEED_DEFAULTS


@pytest.fixture
def aiml() -> AIMLAPI:
    return AIMLAPI("aiml-key")


def test_registered_under_its_name() -> None:
    assert get("aimlapi") is AIMLAPI
    # aimlapi-sdk-python's _API_KEY_ENV_VARS (aimlapi/_client.py), then ours.
    assert AIMLAPI.key_variables() == ("AIML_API_KEY", "AIMLAPI_API_KEY", "AIMLAPI_KEY")
    caps = AIMLAPI.capabilities
    assert caps.durations == (6, 8, 10)
    assert caps.text_only
    assert caps.data_uri
    assert caps.cancel is None
    assert caps.webhooks is None
    assert caps.expected_seconds[0] <= 58.9 <= caps.expected_seconds[1]


def test_text_only_create_matches_the_seed_and_omits_image_url(aiml: AIMLAPI) -> None:
    seed = fixture("create_request.json")
    call = aiml.create(
        VideoRequest(None, seed["prompt"]), None, webhook_url="https://h/x", webhook_secret="s"
    )
    assert (call.method, call.url, call.kind) == ("POST", URL, "create")
    assert call.headers == AUTH
    assert call.json == {**seed, **PARAMS}
    assert "image_url" not in call.json
    assert not call.idempotent


def test_image_create(aiml: AIMLAPI) -> None:
    request = VideoRequest("https://x/cat.jpg", "Mona Lisa puts on glasses", duration=10, fps=50)
    call = aiml.create(request, "data:image/png;base64,AAAA", webhook_url=None, webhook_secret=None)
    assert call.json == {
        "model": "ltxv/ltxv-2-fast",
        "prompt": "Mona Lisa puts on glasses",
        "image_url": "data:image/png;base64,AAAA",
        "duration": 10,
        "resolution": "1080p",
        "aspect_ratio": "16:9",
        "fps": 50,
        "generate_audio": True,
    }


def test_parse_create_seed_reply(aiml: AIMLAPI) -> None:
    created = aiml.parse_create(reply(fixture("create_reply.json")))
    assert created.job_id == "text"
    assert created.update is not None
    assert created.update.status is JobStatus.QUEUED
    # the seed's queued reply carries a placeholder video: it must not be taken
    assert created.update.video_url is None
    assert created.update.metrics == {"tokens_used": 1}


def test_parse_create_without_status(aiml: AIMLAPI) -> None:
    created = aiml.parse_create(reply({"id": "g1"}))
    assert created.job_id == "g1"
    assert created.update is None


@pytest.mark.parametrize("body", [{}, {"id": ""}, {"id": 3}, None, []])
def test_parse_create_malformed_raises_value_error(aiml: AIMLAPI, body: Any) -> None:
    with pytest.raises(ValueError):
        aiml.parse_create(reply(body))


def test_status_call_uses_generation_id(aiml: AIMLAPI) -> None:
    call = aiml.status("60ac7c34", {})
    assert (call.method, call.url, call.kind) == ("GET", URL, "status")
    assert call.params == {"generation_id": "60ac7c34"}
    assert call.headers == AUTH
    assert call.idempotent


def test_base_url_prefix_is_kept() -> None:
    call = AIMLAPI("k", "http://127.0.0.1:9000/aimlapi/").status("g", {})
    assert call.url == "http://127.0.0.1:9000/aimlapi/v2/video/generations"


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("queued", JobStatus.QUEUED),
        ("waiting", JobStatus.QUEUED),
        ("active", JobStatus.RUNNING),
        ("generating", JobStatus.RUNNING),
        ("rendering", JobStatus.RUNNING),  # unknown word
    ],
)
def test_status_words(aiml: AIMLAPI, raw: str, status: JobStatus) -> None:
    update = aiml.parse_status(reply({"id": "g", "status": raw, "video": None}))
    assert update.status is status
    assert update.raw == raw


def test_completed_gives_video_and_usage(aiml: AIMLAPI) -> None:
    update = aiml.parse_status(reply(fixture("status_completed.json")))
    assert update.status is JobStatus.SUCCEEDED
    assert update.video_url == (
        "https://cdn.aimlapi.com/generations/hedgehog/"
        "1759866285599-0cdfb138-c03a-49d4-a601-4f6413e27b15.mp4"
    )
    assert update.metrics == {"tokens_used": 120000}


def test_completed_without_video_fails(aiml: AIMLAPI) -> None:
    update = aiml.parse_status(reply({"id": "g", "status": "completed", "video": None}))
    assert update.status is JobStatus.FAILED


def test_error_status_fails_with_message_and_credits(aiml: AIMLAPI) -> None:
    update = aiml.parse_status(reply(fixture("status_error.json")))
    assert update.status is JobStatus.FAILED
    assert update.error == "Content policy violation"
    assert update.metrics == {"credits_used": 0}


@pytest.mark.parametrize(
    ("error", "text"),
    [
        ({"name": "TimeoutError"}, "TimeoutError"),
        ({"name": "X", "message": ""}, "X"),
        ("plain", "plain"),
        (None, "failed"),
    ],
)
def test_failed_error_fallbacks(aiml: AIMLAPI, error: Any, text: str) -> None:
    update = aiml.parse_status(reply({"id": "g", "status": "failed", "error": error}))
    assert update.status is JobStatus.FAILED
    assert update.error == text


@pytest.mark.parametrize("body", [{}, {"status": 1}, None, [], "completed"])
def test_malformed_status_raises_value_error(aiml: AIMLAPI, body: Any) -> None:
    with pytest.raises(ValueError):
        aiml.parse_status(reply(body))


def test_cancel_is_unsupported(aiml: AIMLAPI) -> None:
    with pytest.raises(UnsupportedError):
        aiml.cancel("g", {})


def test_no_webhooks_no_upload() -> None:
    with pytest.raises(UnsupportedError):
        AIMLAPI.parse_webhook({}, {})
    with pytest.raises(UnsupportedError):
        AIMLAPI("k").upload("a.png", "image/png")


def test_error_body(aiml: AIMLAPI) -> None:
    body = fixture("error.json")
    message, details, error_type = aiml.parse_error(reply(body, 401))
    assert message == "Invalid API key"
    assert details == body
    assert error_type is None


def test_validation_error_with_a_message_list(aiml: AIMLAPI) -> None:
    message, _, _ = aiml.parse_error(reply(fixture("error_validation.json"), 400))
    assert message == "duration must be one of the following values: 6, 8, 10"


@pytest.mark.parametrize(
    ("environ", "key"),
    [
        ({"AIML_API_KEY": "a", "AIMLAPI_API_KEY": "b", "AIMLAPI_KEY": "c"}, "a"),
        ({"AIMLAPI_API_KEY": "b", "AIMLAPI_KEY": "c"}, "b"),
        ({"AIML_API_KEY": " ", "AIMLAPI_KEY": "c"}, "c"),
        ({}, None),
    ],
)
def test_key_from_any_of_the_sdks_variables(environ: dict[str, str], key: str | None) -> None:
    assert AIMLAPI.api_key_from_env(environ) == key


@pytest.mark.parametrize(
    "base", ["https://api.aimlapi.com/v1", "https://api.aimlapi.com/v2", "https://api.aimlapi.com/"]
)
def test_the_sdks_base_url_form_reaches_the_host_root_paths(base: str) -> None:
    # aimlapi-sdk-python's default base URL is https://api.aimlapi.com/v1, and its video
    # paths hang off the host root (resources/videos.py _video_api_url).
    aiml = AIMLAPI("k", base)
    assert aiml.status("g-1", {}).url == "https://api.aimlapi.com/v2/video/generations"

"""Every provider's parsers are total over JSON: for ANY JSON value, ``parse_status``,
``parse_result``, ``parse_create``, ``parse_webhook``, ``parse_stream_event`` and the error
parsers return a normalized value or raise ``ValueError`` — nothing else — so a hostile body
can never become a 500 or a crashed poller (STYLE.md 19)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ltx2
from ltx2._types import HTTPReply, JobStatus, StatusUpdate
from ltx2.providers import PROVIDERS, get
from ltx2.providers._base import Created, Delivery, Provider

# Keys and words the parsers look for, so that generated bodies reach deep branches, mixed
# with arbitrary text.
_KEYS = (
    "status", "output", "video", "videos", "url", "video_url", "error", "error_code",
    "error_message", "message", "detail", "details", "loc", "msg", "payload", "payload_error",
    "request_id", "predictionID", "id", "exec_id", "outcome", "media_urls", "meta", "usage",
    "tokens_used", "logs", "metrics", "queue_position", "error_type", "name", "type",
    "thumbnail_image_url", "response_url", "status_url", "cancel_url", "result_url",
    "upload_url", "file_url", "presigned_url", "public_url", "required_headers", "requests",
    "data", "items", "model", "created_at", "prompt", "statusCode", "generation_id",
)  # fmt: skip
_WORDS = (
    "success", "succeeded", "completed", "COMPLETED", "OK", "ERROR", "error", "failed",
    "cancelled", "IN_QUEUE", "IN_PROGRESS", "in_queue", "queued", "processing", "generating",
    "https://cdn.example.com/v.mp4", "https://cdn.example.com/t.png", "http://x", "",
    "Request was cancelled", "video", "image/png",
)  # fmt: skip

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(_WORDS)
    | st.text(max_size=20)
)
_keys = st.sampled_from(_KEYS) | st.text(max_size=10)
JSON = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=6),
    max_leaves=30,
)
STATUSES = st.sampled_from([200, 201, 202, 400, 401, 403, 404, 409, 422, 429, 500, 502, 503])
PROVIDER_NAMES = st.sampled_from(PROVIDERS)
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _provider(name: str) -> Provider:
    return get(name)("key-0123456789", None)


def _reply(value: Any, status: int = 200) -> HTTPReply:
    return HTTPReply(status, {"content-type": "application/json"}, json.dumps(value).encode())


def _normalized(update: Any) -> None:
    assert isinstance(update, StatusUpdate)
    assert isinstance(update.status, JobStatus)
    assert isinstance(update.raw, str)
    assert update.video_url is None or (isinstance(update.video_url, str) and update.video_url)
    assert update.error is None or isinstance(update.error, str)
    assert update.queue_position is None or type(update.queue_position) is int
    assert all(isinstance(line, str) for line in update.logs)
    json.dumps(update.to_json())  # what a store writes
    if update.status is JobStatus.SUCCEEDED and not update.needs_result:
        assert update.video_url  # a success the client can act on carries its video


def _total(call: Any, check: Any) -> None:
    try:
        value = call()
    except ltx2.UnsupportedError:
        return
    except ValueError:
        return
    check(value)


@FAST
@given(name=PROVIDER_NAMES, body=JSON)
def test_parse_status_and_result_are_total(name: str, body: Any) -> None:
    provider = _provider(name)
    _total(lambda: provider.parse_status(_reply(body)), _normalized)
    _total(lambda: provider.parse_result(_reply(body)), _normalized)
    if provider.capabilities.status_stream:
        _total(lambda: provider.parse_stream_event(json.dumps(body)), _normalized)


@FAST
@given(name=PROVIDER_NAMES, body=JSON)
def test_parse_create_is_total(name: str, body: Any) -> None:
    def check(created: Any) -> None:
        assert isinstance(created, Created)
        assert isinstance(created.job_id, str)
        assert created.job_id
        assert all(isinstance(v, str) for v in created.meta.values())
        if created.update is not None:
            _normalized(created.update)

    _total(lambda: _provider(name).parse_create(_reply(body)), check)


@FAST
@given(name=PROVIDER_NAMES, body=JSON, headers=st.dictionaries(st.text(max_size=30), st.text()))
def test_parse_webhook_is_total(name: str, body: Any, headers: dict[str, str]) -> None:
    def check(delivery: Any) -> None:
        assert isinstance(delivery, Delivery)
        assert delivery.job_id is None or isinstance(delivery.job_id, str)
        _normalized(delivery.update)

    _total(lambda: get(name).parse_webhook(body, headers), check)


@FAST
@given(name=PROVIDER_NAMES, body=JSON, status=STATUSES)
def test_error_parsers_are_total(name: str, body: Any, status: int) -> None:
    provider = _provider(name)
    message, _details, error_type = provider.parse_error(_reply(body, status))
    assert isinstance(message, str)
    assert message
    assert error_type is None or isinstance(error_type, str)
    carried = provider.reply_error(_reply(body, status))
    assert carried is None or isinstance(carried[0], str)


@FAST
@given(name=PROVIDER_NAMES, raw=st.binary(max_size=200), status=STATUSES)
def test_error_parsers_take_any_bytes(name: str, raw: bytes, status: int) -> None:
    provider = _provider(name)
    message, _, _ = provider.parse_error(HTTPReply(status, {}, raw))
    assert isinstance(message, str)
    assert message


@FAST
@given(name=PROVIDER_NAMES, body=JSON)
def test_upload_and_list_parsers_are_total(name: str, body: Any) -> None:
    provider = _provider(name)
    _total(lambda: provider.parse_upload(_reply(body)), lambda target: None)
    _total(lambda: provider.parse_list(_reply(body)), lambda jobs: None)


@pytest.mark.parametrize("name", PROVIDERS)
@pytest.mark.parametrize("depth", [50, 5000, 100_000])
def test_deep_nesting_is_a_value_error(name: str, depth: int) -> None:
    """Deeper than the interpreter's stack: ValueError, not RecursionError."""
    provider = _provider(name)
    for opener, closer in (("[", "]"), ('{"status":', "}"), ('{"output":', "}")):
        raw = (opener * depth + "1" + closer * depth).encode()
        reply = HTTPReply(200, {}, raw)
        for parse in (provider.parse_status, provider.parse_result):
            _total(lambda parse=parse, reply=reply: parse(reply), _normalized)  # type: ignore[misc]
        message, _, _ = provider.parse_error(HTTPReply(500, {}, raw))
        assert message


def test_fal_error_delivery_with_odd_detail_is_parsed() -> None:
    """The receiver's 500 of issue 11: ``payload.detail=[{"loc": 5}]`` in the error parser."""
    payload = {"detail": [{"loc": 5}]}
    body = {"request_id": "r-1", "status": "ERROR", "error": "bad", "payload": payload}
    delivery = get("fal").parse_webhook(body, {})
    assert delivery.update.status is JobStatus.FAILED
    assert delivery.update.error is not None
    assert delivery.update.error.startswith("bad")

"""The error classes: every one pickles with its fields; APIError names method and URL (with
tokens redacted); Retry-After is read as GMT whatever the local zone, on a 429 and a 503."""

from __future__ import annotations

import contextlib
import os
import pickle
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from aioresponses import aioresponses
from tests.conftest import NO_BACKOFF

import ltx2
from ltx2 import _errors
from ltx2._redact import redact_url, scrub, secrets_of
from ltx2._transport import Transport, parse_retry_after
from ltx2.providers import get


class _FakeJob:
    id = "req-1"
    provider = "fal"
    key = "k-1"
    status = ltx2.JobStatus.FAILED
    _future = object()  # a live Job holds a future and its client: neither pickles


def _every_error() -> list[ltx2.LTX2Error]:
    api: dict[str, Any] = {
        "provider": "fal", "details": {"detail": "x"}, "error_type": "bad_input",
        "method": "POST", "url": "https://queue.fal.run/fal-ai/ltx-2?fal_webhook=[redacted]",
    }  # fmt: skip
    job: Any = _FakeJob()
    errors: list[ltx2.LTX2Error] = [
        ltx2.LTX2Error("plain"),
        ltx2.InvalidRequestError("duration: 7", field="duration", value=7, allowed=[6, 8]),
        ltx2.InvalidRequestError("image: a file", field="image", value=open(os.devnull, "rb")),  # noqa: SIM115
        ltx2.APIError("teapot", status_code=418, **api),
        ltx2.BadRequestError("bad", status_code=422, **api),
        ltx2.AuthenticationError("no key", status_code=None, provider="fal"),
        ltx2.NotFoundError("gone", status_code=404, **api),
        ltx2.RateLimitError("slow down", status_code=429, retry_after=2.5, **api),
        ltx2.ServerError("down", status_code=503, retry_after=1.0, **api),
        ltx2.TransportError("reset", maybe_sent=False),
        ltx2.JobFailedError(job, "NSFW"),
        ltx2.JobCancelledError(job),
        ltx2.JobTimeoutError(job, "no result within 5 s"),
        ltx2.WebhookError("bad signature"),
        ltx2.UnsupportedError("no cancel"),
    ]
    # Any other LTX2Error (ClientClosedError, ...) is covered by the same base class.
    for name in _errors.__all__:
        cls = getattr(_errors, name)
        known = any(type(e) is cls for e in errors)
        if isinstance(cls, type) and issubclass(cls, ltx2.LTX2Error) and not known:
            with contextlib.suppress(TypeError):
                errors.append(cls("some message"))
    return errors


@pytest.mark.parametrize("error", _every_error(), ids=lambda e: type(e).__name__)
def test_every_error_pickles_with_its_fields(error: ltx2.LTX2Error) -> None:
    back = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert type(back) is type(error)
    assert str(back) == str(error)
    fields = dict(vars(error))
    for name, value in fields.items():
        got = getattr(back, name)
        if name == "job":
            assert (got.id, got.provider, got.key, got.status) == ("req-1", "fal", "k-1", "failed")
        elif name == "value" and hasattr(value, "read"):
            assert isinstance(got, str)  # an open file pickles as its repr
            value.close()
        else:
            assert got == value, name


def test_api_error_text_names_method_and_url() -> None:
    error = ltx2.NotFoundError(
        "Not found", status_code=404, provider="fal", method="GET",
        url="http://127.0.0.1:1/fal-ai/ltx-2/requests/r-1/status",
    )  # fmt: skip
    assert str(error) == (
        "fal: GET http://127.0.0.1:1/fal-ai/ltx-2/requests/r-1/status: HTTP 404: Not found"
    )
    assert error.method == "GET"
    assert str(ltx2.APIError("no key", status_code=None, provider="fal")) == "fal: no key"


async def test_transport_errors_carry_method_and_redacted_url() -> None:
    token = "a" * 22
    provider = get("fal")("fal-key-123456789")
    call = provider.create(
        ltx2.VideoRequest(image="https://cdn.example.com/a.png", prompt="x"),
        "https://cdn.example.com/a.png",
        webhook_url=f"https://hooks.example.com/hooks/fal/{token}",
        webhook_secret=None,
    )
    transport = Transport(provider, retry=NO_BACKOFF)
    with aioresponses() as m:
        m.post(
            "https://queue.fal.run/fal-ai/ltx-2/image-to-video/fast?fal_webhook="
            f"https://hooks.example.com/hooks/fal/{token}",
            status=422,
            payload={"detail": [{"loc": ["body", "prompt"], "msg": "too short"}]},
        )
        with pytest.raises(ltx2.BadRequestError) as info:
            await transport.send(call)
    await transport.aclose()
    error = info.value
    assert error.method == "POST"
    assert error.url == (
        "https://queue.fal.run/fal-ai/ltx-2/image-to-video/fast?fal_webhook=[redacted]"
    )
    assert str(error).startswith(f"fal: POST {error.url}: HTTP 422: prompt: too short")
    assert token not in str(error) + repr(error)


def test_redact_url_keeps_ids_and_hides_tokens() -> None:
    assert redact_url("https://u:p@api.aimlapi.com/v2/video/generations?generation_id=g-1") == (
        "https://api.aimlapi.com/v2/video/generations?generation_id=g-1"
    )
    assert redact_url("https://s3.example.com/v.mp4?X-Amz-Signature=abc&expires=1") == (
        "https://s3.example.com/v.mp4?X-Amz-Signature=[redacted]&expires=1"
    )
    assert redact_url("http://x/a", {"fal_webhook": "https://h/fal/tok"}) == (
        "http://x/a?fal_webhook=[redacted]"
    )
    assert redact_url("http://[::1]:8080/p#frag") == "http://[::1]:8080/p"


def test_scrub_replaces_every_secret_a_request_carries() -> None:
    secrets = secrets_of(
        {"Authorization": "Key abcdefgh12345678", "Accept": "x"},
        {"fal_webhook": "https://h.example.com/hooks/fal/TOKEN0123456789abcdef"},
        {"webhook_secret": "whsec-123456", "prompt": "a cat"},
    )
    text = "Key abcdefgh12345678 TOKEN0123456789abcdef whsec-123456 a cat"
    assert scrub(text, secrets) == "[redacted] [redacted] [redacted] a cat"


# -- Retry-After --------------------------------------------------------------------------


@pytest.fixture
def tokyo() -> Any:
    old = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Tokyo"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


@pytest.mark.parametrize("zone", ["GMT", "-0000", "+0000", "UTC"])
def test_retry_after_http_date_is_gmt_in_any_local_zone(tokyo: Any, zone: str) -> None:
    when = datetime.now(UTC) + timedelta(seconds=120)
    value = format_datetime(when.replace(microsecond=0), usegmt=True).replace("GMT", zone)
    seconds = parse_retry_after(value)
    assert seconds is not None
    assert 100 < seconds <= 120


@pytest.mark.parametrize(
    ("value", "expected"),
    [("3", 3.0), ("0.5", 0.5), ("-4", 0.0), ("nan", None), ("soon", None), ("", None)],
)
def test_retry_after_seconds(value: str, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_is_honoured_on_429_and_503(status: int) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    provider = get("runcomfy")("rc-key-123456")
    transport = Transport(provider, retry=ltx2.RetryPolicy(attempts=2), sleep=sleep)
    url = "https://model-api.runcomfy.net/v1/requests/r-1/status"
    with aioresponses() as m:
        m.get(url, status=status, headers={"Retry-After": "7"}, payload={"error": "busy"})
        m.get(url, status=status, headers={"rEtRy-AfTeR": "7"}, payload={"error": "busy"})
        with pytest.raises(ltx2.APIError) as info:
            await transport.send(provider.status("r-1", {}))
    await transport.aclose()
    assert slept == [7.0]
    assert getattr(info.value, "retry_after", None) == 7.0

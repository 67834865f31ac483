"""Eachlabs adapter: pure translation, checked against docs.eachlabs.ai's own examples.

Fixtures in tests/fixtures/eachlabs/ are the JSON examples of the docs' source repository
``eachlabs/mintlify-docs`` (its README names the page of each).
"""

from __future__ import annotations

import hashlib
import hmac
from functools import partial
from typing import Any

import pytest
from tests.unit.providers._helpers import load_fixture, reply

from ltx2._errors import WebhookError
from ltx2._types import JobStatus
from ltx2.providers.eachlabs import Eachlabs
from ltx2.webhooks import verify_eachlabs

fixture = partial(load_fixture, "eachlabs")
SECRET = "whsec_your_secret_key"


@pytest.fixture
def each() -> Eachlabs:
    return Eachlabs("each-key")


def test_presign_asks_with_content_type_and_file_type(each: Eachlabs) -> None:
    call = each.upload("cat.png", "image/png")
    assert (call.method, call.url) == ("POST", "https://api.eachlabs.ai/v1/upload/presign")
    assert call.json == {"content_type": "image/png", "file_type": "image"}
    assert each.upload("a.bin", "application/pdf").json == {
        "content_type": "application/pdf",
        "file_type": "other",
    }


def test_presign_reply_keeps_the_required_headers(each: Eachlabs) -> None:
    documented = fixture("presign_reply.json")
    target = each.parse_upload(reply(documented))
    assert target.put_url == documented["presigned_url"]
    assert target.file_url == documented["public_url"]
    assert dict(target.headers) == documented["required_headers"]


@pytest.mark.parametrize(
    "body",
    [{"presigned_url": "ftp://x", "public_url": "https://x"}, {"required_headers": {}}, [1]],
)
def test_presign_reply_without_urls_is_a_value_error(each: Eachlabs, body: Any) -> None:
    with pytest.raises(ValueError, match="presign"):
        each.parse_upload(reply(body))


def test_documented_success_reply(each: Eachlabs) -> None:
    documented = fixture("status_success.json")
    update = each.parse_status(reply(documented))
    assert update.status is JobStatus.SUCCEEDED
    assert update.video_url == documented["output"]
    assert update.metrics["predict_time"] == 12.5


def test_documented_failed_prediction_carries_message_and_code(each: Eachlabs) -> None:
    documented = fixture("status_error.json")
    update = each.parse_status(reply(documented))
    assert update.status is JobStatus.FAILED
    assert update.error == documented["output"]["error_message"]
    assert update.error_code == "PROVIDER_RATE_LIMIT"


def test_legacy_failure_shape_still_reads(each: Eachlabs) -> None:
    # seed 000's error shape: {status, message, details}
    body = {"status": "failed", "output": None, "message": "NSFW content detected"}
    update = each.parse_status(reply(body))
    assert (update.status, update.error, update.error_code) == (
        JobStatus.FAILED,
        "NSFW content detected",
        None,
    )


def test_documented_failed_webhook_carries_message_and_code() -> None:
    documented = fixture("webhook_failed.json")
    delivery = Eachlabs.parse_webhook(documented, {})
    assert delivery.job_id == "abc123-def456-ghi789"
    assert delivery.update.status is JobStatus.FAILED
    assert delivery.update.error == documented["output"][0]["error"]["error_message"]
    assert delivery.update.error_code == "EXECUTION_TIMEOUT"


def test_failed_webhook_with_a_string_error() -> None:
    # payload-reference.mdx: "Legacy or unclassified failures may provide a string instead".
    body = {**fixture("webhook_failed.json"), "output": [{"error": "GPU worker crashed"}]}
    update = Eachlabs.parse_webhook(body, {}).update
    assert (update.status, update.error, update.error_code) == (
        JobStatus.FAILED,
        "GPU worker crashed",
        None,
    )


@pytest.mark.parametrize(
    "output",
    [
        "https://cdn/v.mp4",
        {"url": "https://cdn/v.mp4"},
        ["https://cdn/v.mp4"],
        [{"id": "1", "output": "https://cdn/v.mp4"}],
    ],
)
def test_successful_webhook_output_in_every_documented_shape(output: Any) -> None:
    body = {**fixture("webhook_succeeded.json"), "output": output}
    update = Eachlabs.parse_webhook(body, {}).update
    assert (update.status, update.video_url) == (JobStatus.SUCCEEDED, "https://cdn/v.mp4")


def test_documented_succeeded_webhook() -> None:
    documented = fixture("webhook_succeeded.json")
    update = Eachlabs.parse_webhook(documented, {}).update
    assert update.video_url == documented["output"]["url"]


def _signed(body: bytes, stamp: str, secret: str = SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
    return {"X-Webhook-Signature": "sha256=" + digest.hexdigest(), "X-Webhook-Timestamp": stamp}


BODY = b'{"exec_id": "abc", "status": "succeeded", "output": "https://cdn/v.mp4", "error": ""}'


def test_signature_verifies_over_the_raw_bytes() -> None:
    verify_eachlabs(BODY, _signed(BODY, "1789994667"), SECRET, now=1789994667 + 299)


@pytest.mark.parametrize(
    ("headers", "now"),
    [
        (_signed(BODY, "1789994667"), 1789994667 + 301),  # outside the tolerance
        (_signed(BODY, "1789994667", "other"), 1789994667),  # another key
        (_signed(BODY + b" ", "1789994667"), 1789994667),  # another body
        ({**_signed(BODY, "1789994667"), "X-Webhook-Timestamp": "1789994668"}, 1789994667),
        ({**_signed(BODY, "1789994667"), "X-Webhook-Timestamp": ""}, 1789994667),
        ({"X-Webhook-Signature": "md5=00", "X-Webhook-Timestamp": "1789994667"}, 1789994667),
        ({"X-Webhook-Signature": "sha256=\u00e9", "X-Webhook-Timestamp": "1789994667"}, 0),
    ],
)
def test_bad_signatures_are_refused(headers: dict[str, str], now: float) -> None:
    with pytest.raises(WebhookError):
        verify_eachlabs(BODY, {**headers, "X-Webhook-Secret": SECRET}, SECRET, now=now)


def test_unsigned_delivery_falls_back_to_the_secret_header() -> None:
    verify_eachlabs(BODY, {"x-webhook-secret": SECRET}, SECRET, now=0)
    with pytest.raises(WebhookError):
        verify_eachlabs(BODY, {"X-Webhook-Secret": "guess"}, SECRET, now=0)
    with pytest.raises(WebhookError):
        verify_eachlabs(BODY, {}, SECRET, now=0)
    verify_eachlabs(BODY, {}, None, now=0)  # a job created without a secret

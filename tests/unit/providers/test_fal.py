"""fal adapter: pure translation (seed 001_9fad711611cc8afb.txt).

Fixtures in tests/fixtures/fal/: ``create_request.json`` and ``result.json`` are seed 001's
"Full Example" and "Example Response" verbatim; the queue replies, status objects, webhooks
and error bodies follow the shapes of fal's queue and webhook docs and ``fal_client``.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import pytest
from tests.unit.providers._helpers import FIXTURES, load_fixture, reply

from ltx2._errors import InvalidRequestError
from ltx2._request import VideoRequest
from ltx2._types import JobStatus
from ltx2.providers import get
from ltx2.providers.fal import DATA_URI_THRESHOLD, Fal

fixture = partial(load_fixture, "fal")

QUEUE = "https://queue.fal.run/fal-ai/ltx-2/requests/764cabcf-b745-4b3e-ae38-1200304cf45b"
JOB_ID = "764cabcf-b745-4b3e-ae38-1200304cf45b"


@pytest.fixture
def fal() -> Fal:
    return Fal("fal-key-123")


@pytest.fixture
def seed_request() -> VideoRequest:
    seed = fixture("create_request.json")
    return VideoRequest(seed["image_url"], seed["prompt"])


SEED_IMAGE = fixture("create_request.json")["image_url"]


def test_registered_under_its_name() -> None:
    assert get("fal") is Fal
    assert Fal.env_var == "FAL_KEY"
    assert Fal.capabilities.webhooks == "ed25519"
    assert Fal.capabilities.cancel == "queued"
    assert Fal.capabilities.data_uri
    assert Fal.capabilities.upload
    assert Fal.capabilities.status_stream
    assert Fal.capabilities.max_data_uri_bytes is None  # seed 001 states no limit


def test_create_posts_the_seed_body_to_the_queue(fal: Fal, seed_request: VideoRequest) -> None:
    call = fal.create(seed_request, SEED_IMAGE, webhook_url=None, webhook_secret="unused")
    assert call.method == "POST"
    assert call.url == "https://queue.fal.run/fal-ai/ltx-2/image-to-video/fast"
    assert call.kind == "create"
    assert call.headers == {"Authorization": "Key fal-key-123"}
    assert call.json == fixture("create_request.json")
    assert call.params is None
    assert call.idempotent is False


def test_create_sends_the_webhook_as_fal_webhook_param(
    fal: Fal, seed_request: VideoRequest
) -> None:
    hook = "https://hooks.example.com/ltx2/fal/tok123"
    call = fal.create(seed_request, "https://x/cat.jpg", webhook_url=hook, webhook_secret="s3cr3t")
    assert call.params == {"fal_webhook": hook}
    assert "s3cr3t" not in json.dumps(call.json)


def test_create_sends_the_request_fields() -> None:
    request = VideoRequest(
        "https://x/cat.jpg",
        "The cat yawns",
        duration=8,
        resolution="2160p",
        fps=50,
        generate_audio=False,
    )
    call = Fal("k").create(
        request, "data:image/png;base64,AAAA", webhook_url=None, webhook_secret=None
    )
    assert call.json == {
        "image_url": "data:image/png;base64,AAAA",
        "prompt": "The cat yawns",
        "duration": 8,
        "resolution": "2160p",
        "aspect_ratio": "16:9",
        "fps": 50,
        "generate_audio": False,
    }


def test_create_without_an_image_is_refused(fal: Fal) -> None:
    with pytest.raises(InvalidRequestError):
        fal.create(VideoRequest(None, "x"), None, webhook_url=None, webhook_secret=None)


def test_base_url_is_the_queue_host() -> None:
    request = VideoRequest("https://x/c.jpg", "p")
    call = Fal("k", "http://127.0.0.1:9000/fal/").create(
        request, "https://x/c.jpg", webhook_url=None, webhook_secret=None
    )
    assert call.url == "http://127.0.0.1:9000/fal/fal-ai/ltx-2/image-to-video/fast"


def test_parse_create_keeps_the_queue_urls(fal: Fal) -> None:
    created = fal.parse_create(reply(fixture("create_reply.json")))
    assert created.job_id == JOB_ID
    assert dict(created.meta) == {
        "response_url": QUEUE,
        "status_url": f"{QUEUE}/status",
        "cancel_url": f"{QUEUE}/cancel",
    }
    assert created.update is None


def test_parse_create_reads_a_queue_status_when_present(fal: Fal) -> None:
    body = {**fixture("create_reply.json"), "status": "IN_QUEUE", "queue_position": 0}
    created = fal.parse_create(reply(body))
    assert created.update is not None
    assert created.update.status is JobStatus.QUEUED
    assert created.update.queue_position == 0


def test_parse_create_drops_urls_that_are_not_http(fal: Fal) -> None:
    body = {"request_id": "r1", "status_url": "file:///etc/passwd", "cancel_url": 3}
    created = fal.parse_create(reply(body))
    assert dict(created.meta) == {}
    assert fal.status("r1", created.meta).url == (
        "https://queue.fal.run/fal-ai/ltx-2/requests/r1/status"
    )


def test_parse_create_drops_urls_off_the_base_urls_origin() -> None:
    # Behind a proxy base_url, the queue URLs fal returns would bypass the proxy; a reply
    # naming another host must never receive the API key.
    proxied = Fal("fal-key-123", "https://proxy.example/fal")
    created = proxied.parse_create(reply(fixture("create_reply.json")))
    assert dict(created.meta) == {}
    assert proxied.status(JOB_ID, created.meta).url == (
        f"https://proxy.example/fal/fal-ai/ltx-2/requests/{JOB_ID}/status"
    )
    same = {"request_id": "r1", "status_url": "https://proxy.example/fal/x/status"}
    assert dict(proxied.parse_create(reply(same)).meta) == {
        "status_url": "https://proxy.example/fal/x/status"
    }
    for other in ("http://proxy.example/s", "https://proxy.example:8443/s", "https://evil/s"):
        assert (
            dict(proxied.parse_create(reply({"request_id": "r", "status_url": other})).meta) == {}
        )


@pytest.mark.parametrize(
    "body", [{"status_url": "https://x"}, {"request_id": ""}, [], None, "text", {"request_id": 7}]
)
def test_parse_create_malformed_raises_value_error(fal: Fal, body: Any) -> None:
    with pytest.raises(ValueError):
        fal.parse_create(reply(body))


def test_parse_create_bad_json_raises_value_error(fal: Fal) -> None:
    with pytest.raises(ValueError):
        fal.parse_create(reply(b"<html>502</html>"))


def test_status_uses_the_status_url_with_logs(fal: Fal) -> None:
    meta = fal.parse_create(reply(fixture("create_reply.json"))).meta
    call = fal.status(JOB_ID, meta)
    assert (call.method, call.url, call.kind) == ("GET", f"{QUEUE}/status", "status")
    assert call.params == {"logs": "1"}
    assert call.headers == {"Authorization": "Key fal-key-123"}
    assert call.idempotent


def test_status_falls_back_to_the_app_path(fal: Fal) -> None:
    assert fal.status("abc", {}).url == "https://queue.fal.run/fal-ai/ltx-2/requests/abc/status"


def test_in_queue_is_queued_with_position(fal: Fal) -> None:
    update = fal.parse_status(reply(fixture("status_in_queue.json")))
    assert update.status is JobStatus.QUEUED
    assert update.raw == "IN_QUEUE"
    assert update.queue_position == 3


def test_in_progress_is_running_with_log_messages(fal: Fal) -> None:
    update = fal.parse_status(reply(fixture("status_in_progress.json")))
    assert update.status is JobStatus.RUNNING
    assert update.logs == ("Loading model", "Generating 150 frames")


def test_completed_succeeds_and_needs_the_result(fal: Fal) -> None:
    update = fal.parse_status(reply(fixture("status_completed.json")))
    assert update.status is JobStatus.SUCCEEDED
    assert update.needs_result
    assert update.video_url is None
    assert update.metrics == {"inference_time": 38.7}
    assert update.logs == ("Done",)


def test_completed_with_error_fails_with_error_type(fal: Fal) -> None:
    update = fal.parse_status(reply(fixture("status_completed_error.json")))
    assert update.status is JobStatus.FAILED
    assert update.error == "Image could not be downloaded"
    assert update.metrics["error_type"] == "file_download_error"
    assert not update.needs_result


def test_completed_with_a_structured_error_still_fails(fal: Fal) -> None:
    update = fal.parse_status(reply({"status": "COMPLETED", "error": ["oom"]}))
    assert update.status is JobStatus.FAILED
    assert update.error == "['oom']"


def test_unknown_status_word_is_running(fal: Fal) -> None:
    update = fal.parse_status(reply({"status": "WARMING_UP"}))
    assert update.status is JobStatus.RUNNING
    assert update.raw == "WARMING_UP"


@pytest.mark.parametrize("body", [{}, {"status": 3}, [], None, "IN_QUEUE"])
def test_malformed_status_raises_value_error(fal: Fal, body: Any) -> None:
    with pytest.raises(ValueError):
        fal.parse_status(reply(body))


def test_odd_fields_in_status_do_not_crash(fal: Fal) -> None:
    update = fal.parse_status(reply({"status": "IN_QUEUE", "queue_position": "3", "logs": 7}))
    assert update.queue_position is None
    update = fal.parse_status(reply({"status": "IN_PROGRESS", "logs": [{"level": "x"}, "raw"]}))
    assert update.logs == ("raw",)


def test_result_reads_the_response_url(fal: Fal) -> None:
    meta = fal.parse_create(reply(fixture("create_reply.json"))).meta
    call = fal.result(JOB_ID, meta)
    assert (call.method, call.url, call.kind) == ("GET", QUEUE, "result")
    assert call.headers == {"Authorization": "Key fal-key-123"}
    assert fal.result("abc", {}).url == "https://queue.fal.run/fal-ai/ltx-2/requests/abc"


def test_result_gives_the_video_url(fal: Fal) -> None:
    update = fal.parse_result(reply(fixture("result.json")))
    assert update.status is JobStatus.SUCCEEDED
    assert update.video_url == (
        "https://storage.googleapis.com/falserverless/example_outputs/ltxv-2-i2v-output.mp4"
    )


def test_result_without_video_fails(fal: Fal) -> None:
    update = fal.parse_result(reply({"images": []}))
    assert update.status is JobStatus.FAILED


@pytest.mark.parametrize("body", [None, [], "x"])
def test_malformed_result_raises_value_error(fal: Fal, body: Any) -> None:
    with pytest.raises(ValueError):
        fal.parse_result(reply(body))


def test_cancel_puts_the_cancel_url(fal: Fal) -> None:
    meta = fal.parse_create(reply(fixture("create_reply.json"))).meta
    call = fal.cancel(JOB_ID, meta)
    assert (call.method, call.url, call.kind) == ("PUT", f"{QUEUE}/cancel", "cancel")
    assert call.headers == {"Authorization": "Key fal-key-123"}
    assert fal.cancel("abc", {}).url == "https://queue.fal.run/fal-ai/ltx-2/requests/abc/cancel"


def test_stream_reads_status_stream_with_logs(fal: Fal) -> None:
    meta = fal.parse_create(reply(fixture("create_reply.json"))).meta
    call = fal.stream(JOB_ID, meta)
    assert (call.method, call.url) == ("GET", f"{QUEUE}/status/stream")
    assert call.params == {"logs": "1"}
    assert call.headers["Authorization"] == "Key fal-key-123"
    assert call.headers["Accept"] == "text/event-stream"


def test_stream_events_parse_like_status(fal: Fal) -> None:
    for name in ("status_in_queue.json", "status_in_progress.json", "status_completed.json"):
        text = (FIXTURES / "fal" / name).read_text()
        assert fal.parse_stream_event(text) == fal.parse_status(reply(fixture(name)))
    with pytest.raises(ValueError):
        fal.parse_stream_event("not json")


def test_upload_asks_for_a_cdn_token_as_fal_client_does(fal: Fal) -> None:
    # fal_client 1.0.3 client.py AsyncCDNTokenManager: POST {REST_URL}/storage/auth/token
    # ?storage_type=fal-cdn-v3 with an empty JSON object.
    call = fal.upload("cat.png", "image/png")
    assert call is not None
    assert (call.method, call.kind) == ("POST", "upload")
    assert call.url == "https://rest.fal.ai/storage/auth/token"
    assert call.params == {"storage_type": "fal-cdn-v3"}
    assert call.json == {}
    assert call.headers["Authorization"] == "Key fal-key-123"


def test_the_token_sends_the_bytes_to_the_v3_cdn(fal: Fal) -> None:
    # fal_client 1.0.3 _async_upload_v3: POST {CDN_URL}/files/upload with the token, whose
    # reply is {access_url}.
    target = fal.parse_upload(reply(fixture("cdn_token_reply.json")))
    assert (target.method, target.put_url) == ("POST", "https://v3.fal.media/files/upload")
    assert target.headers == {"Authorization": "Bearer cdn-token-abc"}
    assert target.file_url is None
    uploaded = fal.parse_uploaded(reply(fixture("cdn_upload_reply.json")))
    assert uploaded == "https://v3.fal.media/files/koala/8f2c_cat.png"
    with pytest.raises(ValueError):
        fal.parse_uploaded(reply({"url": "https://x"}))
    with pytest.raises(ValueError):
        fal.parse_upload(reply({"token": 5, "token_type": "Bearer"}))


def test_legacy_upload_is_the_fallback(fal: Fal) -> None:
    # fal_client 1.0.3 _async_upload_via_storage: initiate?storage_type=gcs, then a PUT.
    call = fal.upload("cat.png", "image/png", fallback=1)
    assert call is not None
    assert call.url == "https://rest.fal.ai/storage/upload/initiate"
    assert call.params == {"storage_type": "gcs"}
    assert call.json == {"content_type": "image/png", "file_name": "cat.png"}
    assert fal.upload("cat.png", "image/png", fallback=2) is None


def test_upload_storage_url_is_an_option() -> None:
    fal = Fal("k", storage_url="https://storage.proxy.example/", cdn_url="https://cdn.example/")
    call = fal.upload("a.png", "image/png")
    assert call is not None
    assert call.url == "https://storage.proxy.example/storage/auth/token"
    target = fal.parse_upload(reply(fixture("cdn_token_reply.json")))
    assert target.put_url == "https://cdn.example/files/upload"


def test_local_base_url_keeps_uploads_local() -> None:
    fal = Fal("k", "http://127.0.0.1:9000/fal")
    call = fal.upload("a.png", "image/png")
    assert call is not None
    assert call.url == "http://127.0.0.1:9000/fal/storage/auth/token"
    target = fal.parse_upload(reply(fixture("cdn_token_reply.json")))
    assert target.put_url == "http://127.0.0.1:9000/fal/files/upload"


def test_parse_legacy_upload(fal: Fal) -> None:
    target = fal.parse_upload(reply(fixture("upload_reply.json")))
    assert target.put_url == "https://storage.fal.media/upload/8f2c?signature=abc"
    assert target.file_url == "https://v3.fal.media/files/koala/8f2c_cat.png"
    assert target.method == "PUT"
    with pytest.raises(ValueError):
        fal.parse_upload(reply({"upload_url": "https://x"}))


def test_a_request_cancelled_reads_completed_and_is_cancelled(fal: Fal) -> None:
    # fal's queue docs: a cancelled request then shows COMPLETED with an error saying so.
    body = {**fixture("status_completed.json"), "error": "Request was cancelled"}
    update = fal.parse_status(reply(body))
    assert update.status is JobStatus.CANCELLED
    typed = {**fixture("status_completed.json"), "error": "x", "error_type": "request_cancelled"}
    assert fal.parse_status(reply(typed)).status is JobStatus.CANCELLED
    failed = {**fixture("status_completed.json"), "error": "CUDA out of memory"}
    assert fal.parse_status(reply(failed)).status is JobStatus.FAILED


@pytest.mark.parametrize(
    ("status", "body"),
    [(202, {"status": "CANCELLATION_REQUESTED"}), (409, {"status": "ALREADY_COMPLETED"})],
)
def test_cancel_replies_are_answers_not_errors(fal: Fal, status: int, body: Any) -> None:
    # fal's queue docs (queue/cancel): CANCELLATION_REQUESTED, ALREADY_COMPLETED, NOT_FOUND.
    call = fal.cancel(JOB_ID, {})
    assert status < 400 or status in call.accept
    assert 404 not in call.accept  # NOT_FOUND stays a NotFoundError
    assert fal.parse_cancel(reply(body, status)) is None  # the status read tells the rest
    with pytest.raises(ValueError):
        fal.parse_cancel(reply({"detail": "bad"}, 409))


def test_data_uri_threshold_option() -> None:
    assert Fal("k").data_uri_threshold == DATA_URI_THRESHOLD == 1024 * 1024
    assert Fal("k", data_uri_threshold=10).data_uri_threshold == 10
    with pytest.raises(InvalidRequestError):
        Fal("k", data_uri_threshold=-1)
    with pytest.raises(InvalidRequestError):
        Fal("k", storage_url="ftp://x")
    with pytest.raises(InvalidRequestError):
        Fal("k", cdn_url=3)


def test_repr_hides_the_key() -> None:
    assert "fal-key-123" not in repr(Fal("fal-key-123"))
    assert "fal-key-123" not in repr(Fal("fal-key-123").status("a", {}))


def test_error_detail_string(fal: Fal) -> None:
    message, _details, error_type = fal.parse_error(
        reply(fixture("error_detail_string.json"), 400, {"x-fal-error-type": "request_error"})
    )
    assert message == "Request is still in progress"
    assert error_type == "request_error"


def test_error_detail_list_is_readable(fal: Fal) -> None:
    body = fixture("error_detail_list.json")
    message, details, error_type = fal.parse_error(reply(body, 422))
    assert message == (
        "image_url: field required; fps: value is not a valid enumeration member; permitted: 25, 50"
    )
    assert details == body["detail"]
    assert error_type is None


def test_error_type_in_body_wins(fal: Fal) -> None:
    body = {"detail": "no", "error_type": "content_policy_violation"}
    _, _, error_type = fal.parse_error(reply(body, 422, {"x-fal-error-type": "other"}))
    assert error_type == "content_policy_violation"


def test_error_that_is_not_json(fal: Fal) -> None:
    message, details, _ = fal.parse_error(reply(b"Bad Gateway", 502))
    assert message == "Bad Gateway"
    assert details is None


def test_webhook_ok_gives_the_video() -> None:
    delivery = Fal.parse_webhook(fixture("webhook_ok.json"), {})
    assert delivery.job_id == JOB_ID
    assert delivery.update.status is JobStatus.SUCCEEDED
    assert delivery.update.video_url == "https://v3.fal.media/files/tiger/ltxv-2-i2v-output.mp4"


def test_webhook_ok_without_video_fails() -> None:
    delivery = Fal.parse_webhook({"request_id": "r", "status": "OK", "payload": {}}, {})
    assert delivery.update.status is JobStatus.FAILED
    assert delivery.update.error == "no video in payload"


def test_webhook_ok_with_payload_error_fails_with_it() -> None:
    delivery = Fal.parse_webhook(fixture("webhook_payload_error.json"), {})
    assert delivery.update.status is JobStatus.FAILED
    assert delivery.update.error == "Response payload is not JSON serializable"


def test_webhook_error_fails_with_error_and_detail() -> None:
    delivery = Fal.parse_webhook(fixture("webhook_error.json"), {})
    assert delivery.job_id == JOB_ID
    assert delivery.update.status is JobStatus.FAILED
    assert delivery.update.error == (
        "Invalid status code: 422: duration: value is not a valid enumeration member; "
        "permitted: 6, 8, 10, 12, 14, 16, 18, 20"
    )


def test_webhook_error_with_string_detail_and_no_payload() -> None:
    body: dict[str, Any] = {
        "request_id": "r",
        "status": "ERROR",
        "error": "boom",
        "payload": {"detail": "gpu"},
    }
    assert Fal.parse_webhook(body, {}).update.error == "boom: gpu"
    body = {"request_id": "r", "status": "ERROR", "payload": None}
    assert Fal.parse_webhook(body, {}).update.error == "failed"


def test_webhook_job_id_from_header_when_body_lacks_it() -> None:
    body = {"status": "OK", "payload": {"video": {"url": "https://v/x.mp4"}}}
    delivery = Fal.parse_webhook(body, {"X-Fal-Webhook-Request-Id": "from-header"})
    assert delivery.job_id == "from-header"


@pytest.mark.parametrize("body", [None, [], "OK", {"request_id": "r"}, {"status": None}])
def test_malformed_webhook_raises_value_error(body: Any) -> None:
    with pytest.raises(ValueError):
        Fal.parse_webhook(body, {})

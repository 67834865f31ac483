"""fal: ``fal-ai/ltx-2/image-to-video/fast`` on fal's queue (seed 001_9fad711611cc8afb.txt).

Create ``POST https://queue.fal.run/fal-ai/ltx-2/image-to-video/fast?fal_webhook=…`` with the
seed's input JSON → ``{request_id, response_url, status_url, cancel_url}``; status
``GET status_url?logs=1``: ``IN_QUEUE`` (queue_position), ``IN_PROGRESS`` (logs),
``COMPLETED`` (``error``/``error_type`` when it failed); the video is read from
``response_url`` as ``{video: {url, …}}`` (seed 001 "Output Schema"); an SSE stream of the
same status objects at ``status_url/stream``; cancel ``PUT cancel_url``. Webhooks
``{request_id, gateway_request_id, status: OK|ERROR, payload, error, payload_error}`` are
signed with Ed25519 (checked by :mod:`ltx2.webhooks._fal_verify`). Local images go as data
URIs (seed 001: "publicly accessible or base64 data URI") up to ``data_uri_threshold``, and
through fal storage above it.

The queue paths, the ``logs`` parameter, ``PUT`` for cancel and the ``X-Fal-Error-Type``
header follow fal's Python client (``fal_client``, which seed 001 tells users to install),
read in its 1.0.3 release (``fal_client/client.py``); so does the upload: a CDN token from
``POST rest.fal.ai/storage/auth/token?storage_type=fal-cdn-v3`` (``{token, token_type,
base_url, expires_at}``), then the bytes ``POST`` ed to ``v3.fal.media/files/upload`` with
``Authorization: <token_type> <token>`` → ``{access_url}``; when that fails, its legacy route
``POST rest.fal.ai/storage/upload/initiate?storage_type=gcs`` ``{file_name, content_type}``
→ ``{upload_url, file_url}`` and a ``PUT``. Cancel answers ``CANCELLATION_REQUESTED`` (202),
``ALREADY_COMPLETED`` or ``NOT_FOUND`` (fal's queue docs, fal.ai/docs/inference-api/queue/
cancel); a request so cancelled then reads ``COMPLETED`` with the error "Request was
cancelled", which is a cancellation, not a failure.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .._errors import InvalidRequestError
from .._request import VideoRequest
from .._types import HTTPCall, HTTPReply, JobStatus, StatusUpdate
from ._base import (
    Capabilities,
    Created,
    Delivery,
    Provider,
    UploadTarget,
    _describe_detail_list,
    generic_error,
    is_http,
    is_loopback_url,
    json_object,
    preview,
    register,
    require_image,
    same_origin,
    seed_input,
    status_from,
    upload_target,
)

__all__ = ["APP", "CDN_URL", "DATA_URI_THRESHOLD", "ENDPOINT", "STORAGE_URL", "Fal"]

#: seed 001 "Model ID".
ENDPOINT = "fal-ai/ltx-2/image-to-video/fast"
#: The queue addresses requests by owner/app, without the endpoint's sub-path
#: (``fal_client``: ``{queue}/{owner}/{alias}/requests/{id}``).
APP = "fal-ai/ltx-2"
#: fal's REST API: CDN tokens and the legacy storage upload (fal_client 1.0.3 ``REST_URL``).
STORAGE_URL = "https://rest.fal.ai"
#: fal's CDN, where one-step uploads go (fal_client 1.0.3 ``CDN_URL``).
CDN_URL = "https://v3.fal.media"
#: Images up to this size go inline as data URIs; larger ones through fal storage. Seed 001
#: accepts data URIs without stating a limit; 1 MiB keeps the create body small.
DATA_URI_THRESHOLD = 1024 * 1024

# fal_client's queue status words; COMPLETED covers failures too (it then carries ``error``).
_STATUS = {
    "in_queue": JobStatus.QUEUED,
    "in_progress": JobStatus.RUNNING,
    "completed": JobStatus.SUCCEEDED,
}
# How fal says a COMPLETED request was cancelled (fal's queue docs; the emulator alike).
_CANCELLED_ERRORS = ("request was cancelled", "request was canceled")
_CANCELLED_TYPES = ("request_cancelled", "request_canceled")
# Webhook ``status`` (fal webhook docs): OK or ERROR.
_WEBHOOK_STATUS = {"ok": JobStatus.SUCCEEDED, "error": JobStatus.FAILED}
_URL_KEYS = ("response_url", "status_url", "cancel_url")


@register
class Fal(Provider):
    """fal's queue API.

    Options (keyword arguments after ``base_url``): ``storage_url`` (fal's REST host for
    upload tokens and the legacy upload; default :data:`STORAGE_URL`), ``cdn_url`` (fal's
    CDN; default :data:`CDN_URL`) — both default to the base URL itself when that is on
    loopback, i.e. the emulator — and ``data_uri_threshold`` (bytes; images up to it are sent
    as data URIs, default :data:`DATA_URI_THRESHOLD`).
    """

    name = "fal"
    env_var = "FAL_KEY"  # seed 001 cURL: "Authorization: Key $FAL_KEY"
    default_base_url = "https://queue.fal.run"  # DESIGN table; fal_client's queue host
    capabilities = Capabilities(
        # fal's cancel docs: a queued request is removed; one in progress only gets a signal
        # the app may ignore, so only "queued" is promised.
        cancel="queued",
        webhooks="ed25519",
        # seed 001: image_url "Must be publicly accessible or base64 data URI", no size
        # stated; when to upload instead is the instance's ``data_uri_threshold``.
        data_uri=True,
        upload=True,
        status_stream=True,
        # seed 001 states no processing time: an assumption, near the other seeds' stated
        # times (GMI 30–120 s, AI/ML API 58.9 s, Eachlabs 80 s).
        expected_seconds=(30.0, 90.0),
    )
    # fal documents no fixed rate: it answers 429 when a key is over its concurrency.

    option_names = ("storage_url", "cdn_url", "data_uri_threshold")

    def __init__(self, api_key: str, base_url: str | None = None, **options: Any) -> None:
        super().__init__(api_key, base_url, **options)
        # The emulator serves storage and the CDN next to the queue; never send a local
        # test's uploads to the real fal.
        local = is_loopback_url(self.base_url)
        self.storage_url = _url_option(
            options, "storage_url", self.base_url if local else STORAGE_URL
        )
        self.cdn_url = _url_option(options, "cdn_url", self.base_url if local else CDN_URL)
        threshold = options.get("data_uri_threshold", DATA_URI_THRESHOLD)
        if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0:
            raise InvalidRequestError(
                f"data_uri_threshold: {threshold!r} is not a byte count",
                field="data_uri_threshold",
                value=threshold,
                allowed="an int >= 0",
            )
        #: Images up to this many bytes are sent inline as data URIs, larger ones uploaded.
        self.data_uri_threshold: int = threshold

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Key {self._api_key}"}  # seed 001 cURL

    def create(
        self,
        request: VideoRequest,
        image_url: str | None,
        *,
        webhook_url: str | None,
        webhook_secret: str | None,
    ) -> HTTPCall:
        image_url = require_image(image_url, "fal")
        # seed 001 "Full Example": exactly these fields. fal signs webhooks itself, so the
        # per-job secret is not sent.
        body = seed_input(request, image_url=image_url)
        return HTTPCall(
            "POST",
            f"{self.base_url}/{ENDPOINT}",
            "create",
            headers=self.auth_headers(),
            params={"fal_webhook": webhook_url} if webhook_url else None,
            json=body,
            idempotent=False,
        )

    def parse_create(self, reply: HTTPReply) -> Created:
        body = json_object(reply.json(), "fal create reply")
        job_id = body.get("request_id")
        if not isinstance(job_id, str) or not job_id:
            raise ValueError(f"fal create reply has no request_id: {preview(body)}")
        # Only http(s) URLs on base_url's origin are kept: they are called later with the
        # API key, and a proxy base_url must not be bypassed.
        meta = {
            key: body[key]
            for key in _URL_KEYS
            if is_http(body.get(key)) and same_origin(body[key], self.base_url)
        }
        # fal's submit reply usually also says {"status": "IN_QUEUE", "queue_position": n}.
        update = self._status_update(body) if isinstance(body.get("status"), str) else None
        return Created(job_id, meta, update)

    def _request_url(self, job_id: str) -> str:
        return f"{self.base_url}/{APP}/requests/{job_id}"

    def status(self, job_id: str, meta: Mapping[str, str]) -> HTTPCall:
        url = meta.get("status_url") or f"{self._request_url(job_id)}/status"
        return HTTPCall("GET", url, "status", self.auth_headers(), params={"logs": "1"})

    def parse_status(self, reply: HTTPReply) -> StatusUpdate:
        return self._status_update(reply.json())

    def parse_stream_event(self, data: str) -> StatusUpdate:
        """One ``data:`` payload of the status stream: the same object as a status reply."""
        return self._status_update(json.loads(data))

    def _status_update(self, body: Any) -> StatusUpdate:
        body = json_object(body, "fal status reply")
        raw = body.get("status")
        if not isinstance(raw, str):
            raise ValueError(f"fal status reply has no status: {preview(body)}")
        status = status_from(_STATUS, raw, self.name)
        logs = _logs(body.get("logs"))
        metrics = dict(body["metrics"]) if isinstance(body.get("metrics"), dict) else {}
        if status is JobStatus.QUEUED:
            position = body.get("queue_position")
            if isinstance(position, bool) or not isinstance(position, int):
                position = None
            return StatusUpdate(status, raw, queue_position=position)
        if status is JobStatus.SUCCEEDED:
            error = body.get("error")
            if error:  # fal_client's Completed(error=, error_type=): COMPLETED but failed
                error_type = body.get("error_type")
                code = error_type if isinstance(error_type, str) and error_type else None
                if code is not None:
                    metrics["error_type"] = code
                text = _text(error) or str(error)
                if _was_cancelled(text, code):
                    return StatusUpdate(JobStatus.CANCELLED, raw, error=text, logs=logs)
                return StatusUpdate(
                    JobStatus.FAILED, raw, error=text, logs=logs, metrics=metrics, error_code=code
                )
            return StatusUpdate(status, raw, logs=logs, metrics=metrics, needs_result=True)
        return StatusUpdate(status, raw, logs=logs, metrics=metrics)

    def result(self, job_id: str, meta: Mapping[str, str]) -> HTTPCall:
        url = meta.get("response_url") or self._request_url(job_id)
        return HTTPCall("GET", url, "result", self.auth_headers())

    def parse_result(self, reply: HTTPReply) -> StatusUpdate:
        # seed 001 "Example Response": {"video": {"file_name", "content_type", "url"}}
        body = json_object(reply.json(), "fal result")
        url = _video_url(body)
        if url is None:
            return StatusUpdate(JobStatus.FAILED, "COMPLETED", error="no video in the result")
        return StatusUpdate(JobStatus.SUCCEEDED, "COMPLETED", video_url=url)

    def cancel(self, job_id: str, meta: Mapping[str, str]) -> HTTPCall:
        url = meta.get("cancel_url") or f"{self._request_url(job_id)}/cancel"
        # ALREADY_COMPLETED is an answer, not an error: the job finished and its result
        # stands (409 in fal's queue docs; 400 in replies seen before, accepted too).
        return HTTPCall(
            "PUT",
            url,
            "cancel",
            self.auth_headers(),
            idempotent=True,
            accept=frozenset({400, 409}),
        )

    def parse_cancel(self, reply: HTTPReply) -> StatusUpdate | None:
        # fal's queue docs: {"status": "CANCELLATION_REQUESTED"} (202) — a queued request is
        # removed, a running one only signalled: its status says what came of it;
        # {"status": "ALREADY_COMPLETED"} — it finished, and its status has the result.
        try:
            body = reply.json()
        except ValueError:
            body = None
        word = body.get("status") if isinstance(body, dict) else None
        if reply.status >= 400 and word != "ALREADY_COMPLETED":
            raise ValueError(f"fal cancel answered {reply.status}: {preview(body)}")
        return None

    def stream(self, job_id: str, meta: Mapping[str, str]) -> HTTPCall:
        url = meta.get("status_url") or f"{self._request_url(job_id)}/status"
        return HTTPCall(
            "GET",
            f"{url}/stream",
            "stream",
            {**self.auth_headers(), "Accept": "text/event-stream"},
            params={"logs": "1"},
        )

    def upload(self, file_name: str, content_type: str, *, fallback: int = 0) -> HTTPCall | None:
        if fallback == 0:
            # fal_client 1.0.3 AsyncCDNTokenManager: a token for the v3 CDN.
            return HTTPCall(
                "POST",
                f"{self.storage_url}/storage/auth/token",
                "upload",
                {**self.auth_headers(), "Accept": "application/json"},
                params={"storage_type": "fal-cdn-v3"},
                json={},
            )
        if fallback == 1:
            # fal_client 1.0.3 _async_upload_via_storage: the legacy route.
            return HTTPCall(
                "POST",
                f"{self.storage_url}/storage/upload/initiate",
                "upload",
                self.auth_headers(),
                params={"storage_type": "gcs"},
                json={"content_type": content_type, "file_name": file_name},
            )
        return None

    def parse_upload(self, reply: HTTPReply) -> UploadTarget:
        body = json_object(reply.json(), "fal upload reply")
        if "token" not in body:
            return upload_target(body, "fal")  # the legacy initiate reply
        token, token_type = body.get("token"), body.get("token_type")
        if not isinstance(token, str) or not token or not isinstance(token_type, str):
            raise ValueError(f"fal CDN token reply lacks token/token_type: {preview(body)}")
        # fal_client 1.0.3 _async_upload_v3: the bytes go to CDN_URL/files/upload, the
        # token's base_url being for multipart uploads only.
        return UploadTarget(
            f"{self.cdn_url}/files/upload",
            None,
            {"Authorization": f"{token_type} {token}"},
            method="POST",
        )

    def parse_uploaded(self, reply: HTTPReply) -> str:
        body = json_object(reply.json(), "fal CDN upload reply")
        url = body.get("access_url")
        if not is_http(url):
            raise ValueError(f"fal CDN upload reply has no access_url: {preview(body)}")
        return url

    def parse_error(self, reply: HTTPReply) -> tuple[str, Any, str | None]:
        # fal: {"detail": "..."} or {"detail": [{loc, msg, type}, ...]} (FastAPI validation),
        # the error type in the body's "error_type" or the X-Fal-Error-Type header.
        try:
            body = reply.json()
        except ValueError:
            body = None
        message, details, error_type = generic_error(reply, body)
        if isinstance(body, dict) and isinstance(body.get("error_type"), str):
            error_type = body["error_type"]
        return message, details, error_type

    @classmethod
    def parse_webhook(cls, body: Any, headers: Mapping[str, str]) -> Delivery:
        # fal webhook docs: {request_id, gateway_request_id, status: OK|ERROR, payload,
        # error, payload_error}. request_id is the queue's id (gateway_request_id is the last
        # retry's and may differ).
        if not isinstance(body, dict):
            raise ValueError("the body is not a JSON object")
        raw = body.get("status")
        if not isinstance(raw, str):
            raise ValueError("the body has no status")
        job_id = body.get("request_id")
        if not isinstance(job_id, str) or not job_id:
            lowered = {k.lower(): v for k, v in headers.items()}
            job_id = lowered.get("x-fal-webhook-request-id") or None
        status = status_from(_WEBHOOK_STATUS, raw, cls.name)
        payload = body.get("payload")
        if status is JobStatus.SUCCEEDED:
            url = _video_url(payload) if isinstance(payload, dict) else None
            if url is not None:
                update = StatusUpdate(status, raw, video_url=url)
            else:
                # payload is null with payload_error when fal could not serialize it
                reason = _text(body.get("payload_error")) or "no video in payload"
                update = StatusUpdate(JobStatus.FAILED, raw, error=reason)
        elif status is JobStatus.FAILED:
            error = _text(body.get("error")) or "failed"
            detail = payload.get("detail") if isinstance(payload, dict) else None
            detail_text = _detail_text(detail)
            if detail_text:
                error = f"{error}: {detail_text}"
            update = StatusUpdate(status, raw, error=error)
        else:
            update = StatusUpdate(status, raw)
        return Delivery(job_id, update)


def _url_option(options: Mapping[str, Any], name: str, default: str) -> str:
    value = options.get(name, default)
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        raise InvalidRequestError(
            f"{name}: {value!r} is not an http(s) URL",
            field=name,
            value=value,
            allowed="an http(s) URL",
        )
    return value.rstrip("/")


def _was_cancelled(error: str, error_type: str | None) -> bool:
    return error.strip().lower().startswith(_CANCELLED_ERRORS) or (
        error_type is not None and error_type.lower() in _CANCELLED_TYPES
    )


def _video_url(body: dict[str, Any]) -> str | None:
    video = body.get("video")
    if isinstance(video, dict):
        video = video.get("url")
    return video if isinstance(video, str) and video else None


def _logs(value: Any) -> tuple[str, ...]:
    # fal_client: logs are [{message, level, source, timestamp}, ...] (seed 001's callback
    # prints log["message"]).
    if not isinstance(value, list):
        return ()
    out = []
    for item in value:
        message = item.get("message") if isinstance(item, dict) else item
        if isinstance(message, str):
            out.append(message)
    return tuple(out)


def _text(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("message") or value.get("detail") or value.get("error")
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _detail_text(detail: Any) -> str | None:
    if isinstance(detail, str):
        return detail.strip() or None
    if isinstance(detail, list) and detail:
        return _describe_detail_list(detail)
    return None

"""RunComfy: ``ltx/ltx-2/fast/image-to-video`` on the Model API (seed 003_ab4a9114b2d1a0d0.txt).

Create ``POST /v1/models/ltx/ltx-2/fast/image-to-video`` with the flat input →
``{request_id, status_url, result_url, cancel_url}``; status
``GET /v1/requests/{id}/status``: ``in_queue, in_progress`` → ``completed, cancelled``
(newer docs add ``succeeded`` and ``failed``); result ``GET /v1/requests/{id}/result`` →
``{output: {video}}``, or the current state while the job is not done; cancel
``POST /v1/requests/{id}/cancel``, queued jobs only. No webhooks for this API (poll). Local
images go as data URIs up to 6 MiB (newer docs; the seed only shows hosted URLs). Errors are
``{error}``, or a 200 reply with ``{error_code, error_message}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._request import VideoRequest
from .._types import HTTPCall, HTTPReply, JobStatus, StatusUpdate
from ._base import (
    Capabilities,
    Created,
    Provider,
    generic_error,
    is_http,
    json_object,
    preview,
    register,
    require_image,
    same_origin,
    seed_input,
    status_from,
)

__all__ = ["MAX_DATA_URI_BYTES", "MODEL_PATH", "RunComfy"]

MODEL_PATH = "/v1/models/ltx/ltx-2/fast/image-to-video"  # seed 003 "Submit a request"
#: RunComfy's newer docs (DESIGN.md provider table): base64 data URIs up to 6 MiB.
MAX_DATA_URI_BYTES = 6 * 1024 * 1024

# seed 003 "Monitor request status": in_queue, in_progress, completed, cancelled; newer docs
# add succeeded and failed.
_STATUS = {
    "in_queue": JobStatus.QUEUED,
    "queued": JobStatus.QUEUED,
    "in_progress": JobStatus.RUNNING,
    "completed": JobStatus.SUCCEEDED,
    "succeeded": JobStatus.SUCCEEDED,
    "failed": JobStatus.FAILED,
    "cancelled": JobStatus.CANCELLED,
    "canceled": JobStatus.CANCELLED,
}
_URL_KEYS = ("status_url", "result_url", "cancel_url")


@register
class RunComfy(Provider):
    """RunComfy's Model API."""

    name = "runcomfy"
    env_var = "RUNCOMFY_API_TOKEN"  # seed 003 calls it YOUR_API_TOKEN
    default_base_url = "https://model-api.runcomfy.net"  # seed 003 cURL
    capabilities = Capabilities(
        cancel="queued",  # seed 003: "in-progress jobs cannot be cancelled"
        data_uri=True,
        max_data_uri_bytes=MAX_DATA_URI_BYTES,
        # seed 003 states no processing time: an assumption, near the other seeds' stated
        # times (GMI 30–120 s, AI/ML API 58.9 s, Eachlabs 80 s).
        expected_seconds=(30.0, 90.0),
    )

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"}  # seed 003 "Authentication"

    def create(
        self,
        request: VideoRequest,
        image_url: str | None,
        *,
        webhook_url: str | None,
        webhook_secret: str | None,
    ) -> HTTPCall:
        image_url = require_image(image_url, "RunComfy")
        # seed 003 "Input schema"; no webhooks on this API, so webhook_url is not sent.
        body = seed_input(request, image_url=image_url)
        return HTTPCall(
            "POST",
            f"{self.base_url}{MODEL_PATH}",
            "create",
            headers=self.auth_headers(),
            json=body,
            idempotent=False,
        )

    def parse_create(self, reply: HTTPReply) -> Created:
        body = json_object(reply.json(), "runcomfy create reply")
        job_id = body.get("request_id")
        if not isinstance(job_id, str) or not job_id:
            raise ValueError(f"runcomfy create reply has no request_id: {preview(body)}")
        # Only http(s) URLs on base_url's origin are kept: they are called later with the
        # API key, and a proxy base_url must not be bypassed.
        meta = {
            key: body[key]
            for key in _URL_KEYS
            if is_http(body.get(key)) and same_origin(body[key], self.base_url)
        }
        return Created(job_id, meta)

    def _request_url(self, job_id: str) -> str:
        return f"{self.base_url}/v1/requests/{job_id}"

    def status(self, job_id: str, meta: Mapping[str, str]) -> HTTPCall:
        url = meta.get("status_url") or f"{self._request_url(job_id)}/status"
        return HTTPCall("GET", url, "status", self.auth_headers())

    def parse_status(self, reply: HTTPReply) -> StatusUpdate:
        body = json_object(reply.json(), "runcomfy status reply")
        raw = body.get("status")
        if not isinstance(raw, str):
            raise ValueError(f"runcomfy status reply has no status: {preview(body)}")
        status = status_from(_STATUS, raw, self.name)
        if status is JobStatus.QUEUED:
            position = body.get("queue_position")
            if isinstance(position, bool) or not isinstance(position, int):
                position = None
            return StatusUpdate(status, raw, queue_position=position)
        if status is JobStatus.SUCCEEDED:
            # seed 003: the status call only says it is done; the outputs are at result_url.
            return StatusUpdate(status, raw, needs_result=True)
        if status is JobStatus.FAILED:
            return StatusUpdate(status, raw, error=_error_text(body) or raw)
        return StatusUpdate(status, raw)

    def result(self, job_id: str, meta: Mapping[str, str]) -> HTTPCall:
        url = meta.get("result_url") or f"{self._request_url(job_id)}/result"
        return HTTPCall("GET", url, "result", self.auth_headers())

    def parse_result(self, reply: HTTPReply) -> StatusUpdate:
        # seed 003 "Output schema": {"output": {"video": uri, "videos": [uri], …}}; "if the job
        # is not complete, the response returns the current state".
        body = json_object(reply.json(), "runcomfy result")
        url = _video_url(body.get("output"))
        raw = body.get("status")
        if url is not None:
            raw = raw if isinstance(raw, str) else ""
            return StatusUpdate(JobStatus.SUCCEEDED, raw, video_url=url)
        if not isinstance(raw, str):
            raise ValueError(
                f"runcomfy result has neither output.video nor status: {preview(body)}"
            )
        status = status_from(_STATUS, raw, self.name)
        if status is JobStatus.SUCCEEDED:
            return StatusUpdate(JobStatus.FAILED, raw, error="completed without a video")
        if status is JobStatus.FAILED:
            return StatusUpdate(status, raw, error=_error_text(body) or raw)
        return self.parse_status(reply)

    def cancel(self, job_id: str, meta: Mapping[str, str]) -> HTTPCall:
        url = meta.get("cancel_url") or f"{self._request_url(job_id)}/cancel"
        return HTTPCall("POST", url, "cancel", self.auth_headers(), idempotent=True)

    def parse_error(self, reply: HTTPReply) -> tuple[str, Any, str | None]:
        # RunComfy error bodies: {"error": "..."}, or {"error_code", "error_message"}.
        try:
            body = reply.json()
        except ValueError:
            body = None
        return generic_error(reply, body)

    def reply_error(self, reply: HTTPReply) -> tuple[str, Any] | None:
        """A 2xx reply carrying ``{error_code, error_message}`` is an error (newer docs).

        A job's own state (a ``status`` such as ``failed`` with its ``error_message``) is
        not: that is the job failing, reported by :meth:`parse_status`/:meth:`parse_result`.
        """
        try:
            body = reply.json()
        except ValueError:
            return None
        if not isinstance(body, dict) or ("error_code" not in body and "error_message" not in body):
            return None
        raw = body.get("status")
        if isinstance(raw, str) and raw.lower() in _STATUS:
            return None
        message = _error_text(body) or f"error code {body.get('error_code')}"
        return message, body


def _video_url(output: Any) -> str | None:
    if not isinstance(output, dict):
        return None
    video = output.get("video")
    if isinstance(video, str) and video:
        return video
    videos = output.get("videos")
    if isinstance(videos, list) and videos and isinstance(videos[0], str) and videos[0]:
        return videos[0]
    return None


def _error_text(body: Mapping[str, Any]) -> str | None:
    for key in ("error_message", "error", "message", "detail"):
        value = body.get(key)
        if isinstance(value, dict):
            value = value.get("message") or value.get("error_message")
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None

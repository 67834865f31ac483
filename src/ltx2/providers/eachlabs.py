"""Eachlabs: ``ltx-v-2-image-to-video-fast`` (seed 000_9b0f03b3c1d56c7f.txt).

Create ``POST /v1/prediction/`` ``{model, input, webhook_url, webhook_secret}`` →
``{status: "success", message, predictionID}``; poll ``GET /v1/prediction/{id}``; cancel
``POST /v1/prediction/{id}/cancel`` (newer docs, best effort). Webhooks
``{exec_id, status: succeeded|failed, output, error}`` with the per-job ``webhook_secret``
echoed in ``X-Webhook-Secret``. Local images go through the presigned upload
``POST /v1/upload/presign`` then ``PUT`` (newer docs), because the seed says data URIs and
localhost URLs are rejected.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._config import Limits
from .._request import VideoRequest
from .._types import HTTPCall, HTTPReply, JobStatus, StatusUpdate
from ._base import (
    Capabilities,
    Created,
    Delivery,
    Provider,
    UploadTarget,
    generic_error,
    register,
    seed_input,
    status_from,
)

MODEL = "ltx-v-2-image-to-video-fast"  # seed 000: "Model Slug"

# seed 000 "Polling" table: processing, success, error; newer docs add created, starting,
# failed and cancelled. Webhook statuses (seed 000): succeeded, failed.
_STATUS = {
    "created": JobStatus.QUEUED,
    "queued": JobStatus.QUEUED,
    "starting": JobStatus.RUNNING,
    "processing": JobStatus.RUNNING,
    "in_progress": JobStatus.RUNNING,
    "success": JobStatus.SUCCEEDED,
    "succeeded": JobStatus.SUCCEEDED,
    "completed": JobStatus.SUCCEEDED,
    "error": JobStatus.FAILED,
    "failed": JobStatus.FAILED,
    "cancelled": JobStatus.CANCELLED,
    "canceled": JobStatus.CANCELLED,
}


def _output_url(output: Any) -> str | None:
    """``output`` is a URL string (seed 000); newer replies use ``{url}`` or a list of step
    results whose last item carries the URL."""
    if isinstance(output, str):
        return output or None
    if isinstance(output, dict):
        for key in ("url", "video", "video_url", "output"):
            value = output.get(key)
            found = _output_url(value)
            if found:
                return found
        return None
    if isinstance(output, list):
        for item in reversed(output):
            found = _output_url(item)
            if found:
                return found
    return None


def _output_error(output: Any) -> str | None:
    if isinstance(output, list):
        for item in output:
            if isinstance(item, dict) and item.get("error"):
                return str(item["error"])
    if isinstance(output, dict) and output.get("error"):
        return str(output["error"])
    return None


def _error_text(*values: Any) -> str | None:
    for value in values:
        if isinstance(value, dict):
            value = value.get("message") or value.get("error")
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


@register
class Eachlabs(Provider):
    """Eachlabs' prediction API."""

    name = "eachlabs"
    env_var = "EACHLABS_API_KEY"
    default_base_url = "https://api.eachlabs.ai"  # seed 000: "API Base URL"
    capabilities = Capabilities(
        cancel="best-effort",
        webhooks="secret",
        data_uri=False,  # seed 000: "Data-URIs and localhost URLs are rejected"
        upload=True,
        expected_seconds=(60.0, 100.0),  # seed 000: "Estimated Processing Time: 80 seconds"
    )
    # seed 000 errors table: "429 Rate limit — 100 creates / min, 10 concurrent per key"
    default_limits = Limits(creates_per_period=100, max_concurrent=10, period=60.0)

    def auth_headers(self) -> dict[str, str]:
        return {"X-API-Key": self._api_key}  # seed 000: "send X-API-Key"

    def create(
        self,
        request: VideoRequest,
        image_url: str | None,
        *,
        webhook_url: str | None,
        webhook_secret: str | None,
    ) -> HTTPCall:
        body: dict[str, Any] = {
            "model": MODEL,
            "input": seed_input(request, image_url=image_url),
        }
        if webhook_url:
            body["webhook_url"] = webhook_url
            if webhook_secret:
                body["webhook_secret"] = webhook_secret
        return HTTPCall(
            "POST",
            f"{self.base_url}/v1/prediction/",
            "create",
            headers=self.auth_headers(),
            json=body,
            idempotent=False,
        )

    def parse_create(self, reply: HTTPReply) -> Created:
        body = reply.json()
        job_id = body.get("predictionID") or body.get("prediction_id") or body.get("id")
        if not isinstance(job_id, str) or not job_id:
            raise ValueError(f"eachlabs create reply has no predictionID: {body!r:.200}")
        return Created(job_id)

    def status(self, job_id: str, meta: Mapping[str, str]) -> HTTPCall:
        return HTTPCall(
            "GET", f"{self.base_url}/v1/prediction/{job_id}", "status", self.auth_headers()
        )

    def parse_status(self, reply: HTTPReply) -> StatusUpdate:
        body = reply.json()
        if not isinstance(body, dict):
            raise ValueError(f"eachlabs status reply is not an object: {body!r:.200}")
        raw = str(body.get("status", ""))
        status = status_from(_STATUS, raw, self.name)
        output = body.get("output")
        metrics = body.get("metrics") if isinstance(body.get("metrics"), dict) else {}
        if status is JobStatus.SUCCEEDED:
            url = _output_url(output)
            if url is None:  # success without a video is a failure we can act on
                return StatusUpdate(JobStatus.FAILED, raw, error="succeeded without output")
            return StatusUpdate(status, raw, video_url=url, metrics=metrics or {})
        if status is JobStatus.FAILED:
            error = _error_text(body.get("error"), body.get("message"), body.get("details"))
            return StatusUpdate(status, raw, error=error or _output_error(output) or raw)
        return StatusUpdate(status, raw, metrics=metrics or {})

    def cancel(self, job_id: str, meta: Mapping[str, str]) -> HTTPCall:
        return HTTPCall(
            "POST",
            f"{self.base_url}/v1/prediction/{job_id}/cancel",
            "cancel",
            self.auth_headers(),
            idempotent=True,
        )

    def upload(self, file_name: str, content_type: str) -> HTTPCall:
        return HTTPCall(
            "POST",
            f"{self.base_url}/v1/upload/presign",
            "upload",
            self.auth_headers(),
            json={"file_name": file_name, "content_type": content_type},
        )

    def parse_upload(self, reply: HTTPReply) -> UploadTarget:
        body = reply.json()
        put_url = body.get("upload_url") or body.get("presigned_url") or body.get("url")
        file_url = body.get("file_url") or body.get("public_url")
        if not put_url or not file_url:
            raise ValueError(f"eachlabs presign reply lacks upload_url/file_url: {body!r:.200}")
        return UploadTarget(put_url, file_url, {"Content-Type": body.get("content_type", "")})

    def parse_error(self, reply: HTTPReply) -> tuple[str, Any, str | None]:
        # seed 000: {"status": "error", "message": "...", "details": "..."}; newer: {"error"}
        try:
            body = reply.json()
        except ValueError:
            body = None
        return generic_error(reply, body)

    @classmethod
    def parse_webhook(cls, body: Any, headers: Mapping[str, str]) -> Delivery:
        # seed 000 "Webhook": {exec_id, status: succeeded|failed, output, error}
        if not isinstance(body, dict):
            raise ValueError("the body is not a JSON object")
        job_id = body.get("exec_id") or body.get("predictionID") or body.get("id")
        raw = body.get("status")
        if not isinstance(raw, str):
            raise ValueError("the body has no status")
        status = status_from(_STATUS, raw, cls.name)
        output = body.get("output")
        if status is JobStatus.SUCCEEDED:
            url = _output_url(output)
            if url is None:
                update = StatusUpdate(JobStatus.FAILED, raw, error="succeeded without output")
            else:
                update = StatusUpdate(status, raw, video_url=url)
        elif status is JobStatus.FAILED:
            error = _error_text(body.get("error"), body.get("message")) or _output_error(output)
            update = StatusUpdate(status, raw, error=error or "failed")
        else:
            update = StatusUpdate(status, raw)
        return Delivery(str(job_id) if job_id else None, update)

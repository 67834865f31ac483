"""Eachlabs: ``ltx-v-2-image-to-video-fast`` (seed 000_9b0f03b3c1d56c7f.txt; docs.eachlabs.ai,
whose source is the ``eachlabs/mintlify-docs`` repository, cited below by its paths).

Create ``POST /v1/prediction/`` ``{model, input, webhook_url, webhook_secret}`` →
``{status: "success", message, predictionID}``; poll ``GET /v1/prediction/{id}``
(``created, starting, processing`` → ``success, error, cancelled``; a classified failure
has ``output: {error_code, error_message}``; replies carry ``urls.get``/``urls.cancel``);
cancel ``POST /v1/prediction/{id}/cancel`` (best effort). Webhooks
``{exec_id, flow_id, status: succeeded|failed, output, error}``: ``output`` is a string, an
object or an array, and a failure's ``output[0].error`` is ``{error_code, error_message}``
or a string (api/webhooks/payload-reference.mdx). With a ``webhook_secret`` they are signed
(``X-Webhook-Signature``, checked by :mod:`ltx2.webhooks._eachlabs_verify`) and still carry
the legacy ``X-Webhook-Secret``. Local images go through ``POST /v1/upload/presign``
``{content_type, file_type}`` → ``{presigned_url, public_url, required_headers}``, then a
``PUT`` carrying every required header (api/uploads/presign-upload.mdx), because the seed
says data URIs and localhost URLs are rejected.
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
    is_http,
    json_object,
    preview,
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
    """``output`` is a URL string (seed 000, api/predictions/get-prediction.mdx), an object
    with ``url`` or an array (api/webhooks/payload-reference.mdx: "string, array, or object"),
    whose last item carrying a URL wins."""
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


def _failure(output: Any, *fallbacks: Any) -> tuple[str | None, str | None]:
    """``(message, code)`` of a failure. Polled: ``output`` is ``{error_code, error_message}``
    (api/predictions/get-prediction.mdx "Failed Prediction"). Webhook: ``output`` is an array
    whose first item's ``error`` is that object or a string (api/webhooks/payload-reference.mdx
    "Prediction Failed"). Older replies put the reason in ``error``/``message``/``details``
    (seed 000 errors table), tried after ``output``."""
    candidates: list[Any] = [output]
    if isinstance(output, list):
        candidates = [item.get("error") for item in output if isinstance(item, dict)]
    elif isinstance(output, dict) and "error_code" not in output and "error_message" not in output:
        candidates = [output.get("error")]
    for value in (*candidates, *fallbacks):
        if isinstance(value, dict):
            message, code = value.get("error_message"), value.get("error_code")
            if not isinstance(message, str) or not message.strip():
                message = value.get("message") or value.get("error")
            text = message.strip() if isinstance(message, str) and message.strip() else None
            code_text = code.strip() if isinstance(code, str) and code.strip() else None
            if text or code_text:
                return text or code_text, code_text
        elif isinstance(value, str) and value.strip() and not _is_url(value):
            return value.strip(), None
    return None, None


def _is_url(value: str) -> bool:
    return value.startswith(("https://", "http://"))


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
        body = json_object(reply.json(), "eachlabs create reply")
        job_id = body.get("predictionID") or body.get("prediction_id") or body.get("id")
        if not isinstance(job_id, str) or not job_id:
            raise ValueError(f"eachlabs create reply has no predictionID: {preview(body)}")
        return Created(job_id)

    def status(self, job_id: str, meta: Mapping[str, str]) -> HTTPCall:
        return HTTPCall(
            "GET", f"{self.base_url}/v1/prediction/{job_id}", "status", self.auth_headers()
        )

    def parse_status(self, reply: HTTPReply) -> StatusUpdate:
        body = json_object(reply.json(), "eachlabs status reply")
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
            error, code = _failure(
                output, body.get("error"), body.get("message"), body.get("details")
            )
            return StatusUpdate(status, raw, error=error or raw, error_code=code)
        return StatusUpdate(status, raw, metrics=metrics or {})

    def cancel(self, job_id: str, meta: Mapping[str, str]) -> HTTPCall:
        return HTTPCall(
            "POST",
            f"{self.base_url}/v1/prediction/{job_id}/cancel",
            "cancel",
            self.auth_headers(),
            idempotent=True,
        )

    def upload(self, file_name: str, content_type: str, *, fallback: int = 0) -> HTTPCall | None:
        if fallback:
            return None
        # api/uploads/presign-upload.mdx, step 1: {content_type, file_type}; file_type is one
        # of image, video, audio, other. No file name is sent (the docs take none).
        kind = content_type.split("/", 1)[0]
        file_type = kind if kind in ("image", "video", "audio") else "other"
        return HTTPCall(
            "POST",
            f"{self.base_url}/v1/upload/presign",
            "upload",
            self.auth_headers(),
            json={"content_type": content_type, "file_type": file_type},
        )

    def parse_upload(self, reply: HTTPReply) -> UploadTarget:
        # api/uploads/presign-upload.mdx: {id, presigned_url, public_url, expires_at,
        # required_headers}; the PUT must carry every required header verbatim (or storage
        # answers 403). upload_url/file_url: the form this SDK's emulator used to answer.
        body = json_object(reply.json(), "eachlabs presign reply")
        put_url = body.get("presigned_url") or body.get("upload_url")
        file_url = body.get("public_url") or body.get("file_url")
        if not is_http(put_url) or not is_http(file_url):
            raise ValueError(
                f"eachlabs presign reply lacks presigned_url/public_url: {preview(body)}"
            )
        required = body.get("required_headers")
        if required is None:
            required = {}
        if not isinstance(required, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in required.items()
        ):
            raise ValueError(
                f"eachlabs presign reply: required_headers is not a string map: {preview(required)}"
            )
        return UploadTarget(put_url, file_url, dict(required))

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
            # The top-level "error" is always "" (payload-reference.mdx); older deliveries
            # (seed 000) put the reason there.
            error, code = _failure(output, body.get("error"), body.get("message"))
            update = StatusUpdate(status, raw, error=error or "failed", error_code=code)
        else:
            update = StatusUpdate(status, raw)
        return Delivery(str(job_id) if job_id else None, update)

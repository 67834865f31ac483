"""AI/ML API: ``ltxv/ltxv-2-fast`` video generations (seed 004_c8bf4e7a0b888e5c.txt).

Create ``POST /v2/video/generations`` ``{model, prompt, image_url?, duration, …}`` →
``{id, status, meta}``; status ``GET /v2/video/generations?generation_id=…``: ``queued,
generating`` → ``completed`` with ``video.url``, or ``error`` with ``error: {name,
message}`` (aimlapi-sdk-python 2.24.0rc1 ``aimlapi/resources/videos.py`` waits on exactly
``queued`` and ``generating``; seed 004's example loop also waits on ``waiting`` and
``active``, which are accepted as unfinished); ``meta.usage`` says what it cost. Durations 6,
8 and 10 s only; a prompt alone is text-to-video. No cancel, no webhooks (poll). Local images
go as data URIs (seed 004: "a Base64-encoded local image"). Errors are ``{message,
statusCode, …}``.

The paths are at the host root: the SDK builds them from its base URL's host alone
(``_video_api_url``), so a base URL in its form (``https://api.aimlapi.com/v1``) is accepted
and its trailing ``/v1`` or ``/v2`` dropped. The key is read from ``AIML_API_KEY`` or
``AIMLAPI_API_KEY`` (the SDK's ``_API_KEY_ENV_VARS``, ``aimlapi/_client.py``) or
``AIMLAPI_KEY``.
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
    json_object,
    preview,
    register,
    seed_input,
    status_from,
)

__all__ = ["AIMLAPI", "MODEL"]

MODEL = "ltxv/ltxv-2-fast"  # seed 004 examples
_PATH = "/v2/video/generations"  # seed 004

# aimlapi-sdk-python (videos.py _VIDEO_PENDING_STATUSES): "queued", "generating" are
# unfinished; "completed" and "error" end a job. seed 004's polling loop also waits on
# "waiting" and "active": accepted as unfinished. "failed"/"cancelled" are accepted in case.
_STATUS = {
    "queued": JobStatus.QUEUED,
    "waiting": JobStatus.QUEUED,
    "active": JobStatus.RUNNING,
    "generating": JobStatus.RUNNING,
    "completed": JobStatus.SUCCEEDED,
    "error": JobStatus.FAILED,
    "failed": JobStatus.FAILED,
    "cancelled": JobStatus.CANCELLED,
    "canceled": JobStatus.CANCELLED,
}
_USAGE_KEYS = ("tokens_used", "credits_used")


@register
class AIMLAPI(Provider):
    """AI/ML API's video generation API."""

    name = "aimlapi"
    env_var = "AIML_API_KEY"
    # aimlapi-sdk-python's _API_KEY_ENV_VARS, then the name this SDK used first.
    env_vars = ("AIML_API_KEY", "AIMLAPI_API_KEY", "AIMLAPI_KEY")
    default_base_url = "https://api.aimlapi.com"  # seed 004 examples

    def __init__(self, api_key: str, base_url: str | None = None, **options: Any) -> None:
        super().__init__(api_key, base_url, **options)
        # The SDK's own base URL form ends in /v1 and the paths hang off the host root
        # (aimlapi/resources/videos.py _video_api_url): drop a trailing version segment.
        for version in ("/v1", "/v2"):
            if self.base_url.endswith(version):
                self.base_url = self.base_url[: -len(version)]
                break

    capabilities = Capabilities(
        durations=(6, 8, 10),  # seed 004: "realistic 6-, 8-, and 10-second videos"
        text_only=True,  # seed 004: "In the basic setup, you only need a prompt"
        data_uri=True,  # seed 004: "or a Base64-encoded local image"
        expected_seconds=(40.0, 80.0),  # seed 004: "Processing time: 58.9 sec."
    )

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"}  # seed 004 examples

    def create(
        self,
        request: VideoRequest,
        image_url: str | None,
        *,
        webhook_url: str | None,
        webhook_secret: str | None,
    ) -> HTTPCall:
        # seed 004 "API Schemas": model, prompt, image_url (optional), duration, resolution,
        # aspect_ratio, fps, generate_audio. No webhooks, so webhook_url is not sent.
        image = {"image_url": image_url} if request.image is not None and image_url else {}
        body = {"model": MODEL, **seed_input(request, **image)}
        return HTTPCall(
            "POST",
            f"{self.base_url}{_PATH}",
            "create",
            headers=self.auth_headers(),
            json=body,
            idempotent=False,
        )

    def parse_create(self, reply: HTTPReply) -> Created:
        body = json_object(reply.json(), "aimlapi create reply")
        job_id = body.get("id") or body.get("generation_id")
        if not isinstance(job_id, str) or not job_id:
            raise ValueError(f"aimlapi create reply has no id: {preview(body)}")
        update = _update(body) if isinstance(body.get("status"), str) else None
        return Created(job_id, update=update)

    def status(self, job_id: str, meta: Mapping[str, str]) -> HTTPCall:
        return HTTPCall(
            "GET",
            f"{self.base_url}{_PATH}",
            "status",
            self.auth_headers(),
            params={"generation_id": job_id},  # seed 004 "Retrieve the generated video"
        )

    def parse_status(self, reply: HTTPReply) -> StatusUpdate:
        return _update(json_object(reply.json(), "aimlapi status reply"))


def _update(body: Mapping[str, Any]) -> StatusUpdate:
    raw = body.get("status")
    if not isinstance(raw, str):
        raise ValueError(f"aimlapi reply has no status: {preview(body)}")
    status = status_from(_STATUS, raw, "aimlapi")
    metrics = _usage(body.get("meta"))
    if status is JobStatus.SUCCEEDED:
        # seed 004: {"status": "completed", "video": {"url", "duration"}}. The create reply's
        # example carries a placeholder video while queued, so video is read only here.
        video = body.get("video")
        url = video.get("url") if isinstance(video, dict) else None
        if not isinstance(url, str) or not url:
            return StatusUpdate(
                JobStatus.FAILED, raw, error="completed without a video", metrics=metrics
            )
        return StatusUpdate(status, raw, video_url=url, metrics=metrics)
    if status is JobStatus.FAILED:
        return StatusUpdate(
            status, raw, error=_error_text(body.get("error")) or raw, metrics=metrics
        )
    return StatusUpdate(status, raw, metrics=metrics)


def _usage(meta: Any) -> dict[str, Any]:
    # seed 004: "meta": {"usage": {"tokens_used": 120000}}; newer replies say credits_used.
    usage = meta.get("usage") if isinstance(meta, dict) else None
    if not isinstance(usage, dict):
        return {}
    return {
        key: usage[key]
        for key in _USAGE_KEYS
        if isinstance(usage.get(key), int | float) and not isinstance(usage.get(key), bool)
    }


def _error_text(error: Any) -> str | None:
    # DESIGN table: error is {name, message}; fall back to name, or a bare string.
    if isinstance(error, dict):
        for key in ("message", "name"):
            value = error.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
        return None
    if isinstance(error, str) and error.strip():
        return error.strip()
    return None

"""GMI Cloud: ``ltx-2-fast-image-to-video`` on the request queue (seed 002_b18eb1b2ec182b9a.txt).

Create ``POST /api/v1/ie/requestqueue/apikey/requests`` ``{model, payload}`` →
``{request_id, status, …}``, which may already be terminal (seed 002 calls the model
"synchronous" and its example create reply says ``"status": "success"``); status
``GET …/requests/{id}``: ``created, queued, dispatched, processing`` → ``success, failed,
cancelled``, the video at ``outcome.media_urls[].url``; list
``GET …/requests?model_id=ltx-2-fast-image-to-video``. The status words are also the
official SDK's ``RequestStatus`` enum (gmicloud 0.1.10 ``_internal/_enums.py``). No cancel
and no webhooks are documented. No upload either (not in seed 002, docs.gmicloud.ai or the
SDK): ``image_uri`` is an image URL, and local images need the client's ``uploader=``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from .._request import VideoRequest
from .._types import HTTPCall, HTTPReply, JobStatus, StatusUpdate
from ._base import (
    Capabilities,
    Created,
    ListedJob,
    Provider,
    json_object,
    preview,
    register,
    require_image,
    seed_input,
    status_from,
)

__all__ = ["MODEL", "RESOLUTIONS", "GMICloud"]

MODEL = "ltx-2-fast-image-to-video"  # seed 002: "Model ID"
_QUEUE = "/api/v1/ie/requestqueue/apikey"  # seed 002 "Endpoint"s
#: seed 002 "Request Parameters": resolution is 1920x1080, 2560x1440 or 3840x2160.
RESOLUTIONS = {"1080p": "1920x1080", "1440p": "2560x1440", "2160p": "3840x2160"}

# seed 002 "Request Status Values": queued, processing, success, failed, cancelled; the newer
# docs add created and dispatched.
_STATUS = {
    "created": JobStatus.QUEUED,
    "queued": JobStatus.QUEUED,
    "dispatched": JobStatus.RUNNING,
    "processing": JobStatus.RUNNING,
    "success": JobStatus.SUCCEEDED,
    "failed": JobStatus.FAILED,
    "cancelled": JobStatus.CANCELLED,
    "canceled": JobStatus.CANCELLED,
}
_VIDEO_EXTENSIONS = (".mp4", ".mov", ".webm", ".m4v")
_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".avif", ".heic")


@register
class GMICloud(Provider):
    """GMI Cloud's inference-engine request queue."""

    name = "gmicloud"
    env_var = "GMI_API_KEY"
    default_base_url = "https://console.gmicloud.ai"  # seed 002 cURL
    capabilities = Capabilities(
        camera_motion=True,  # seed 002: camera_motion (dolly_in, …, focus_shift)
        data_uri=False,  # seed 002: image_uri is an "Image URL"
        upload=False,  # no source shows an upload endpoint
        list_jobs=True,  # seed 002 "List Your Requests"
        expected_seconds=(30.0, 120.0),  # seed 002: "typically 30-120 seconds"
    )
    # GMI documents a per-hour limit per organization without a number, so no client-side
    # limit is set; its 429s are retried by the transport.

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"}  # seed 002 "Authentication"

    def create(
        self,
        request: VideoRequest,
        image_url: str | None,
        *,
        webhook_url: str | None,
        webhook_secret: str | None,
    ) -> HTTPCall:
        image_url = require_image(image_url, "GMI Cloud")
        # seed 002 "Request Format"; GMI has no webhooks, so webhook_url is not sent.
        # Its resolution is a WxH string, and it takes no aspect_ratio.
        payload = seed_input(request, image_uri=image_url)
        payload["resolution"] = RESOLUTIONS[request.resolution]
        del payload["aspect_ratio"]
        if request.camera_motion is not None:
            payload["camera_motion"] = request.camera_motion
        return HTTPCall(
            "POST",
            f"{self.base_url}{_QUEUE}/requests",
            "create",
            headers=self.auth_headers(),
            json={"model": MODEL, "payload": payload},
            idempotent=False,
        )

    def parse_create(self, reply: HTTPReply) -> Created:
        body = json_object(reply.json(), "gmicloud create reply")
        job_id = _job_id(body)
        if job_id is None:
            raise ValueError(f"gmicloud create reply has no request_id: {preview(body)}")
        # seed 002's example create reply is {"status": "success"} without an outcome: then
        # the video has to be read with a status call, so no update is reported.
        return Created(job_id, update=_known_update(body))

    def status(self, job_id: str, meta: Mapping[str, str]) -> HTTPCall:
        return HTTPCall(
            "GET", f"{self.base_url}{_QUEUE}/requests/{job_id}", "status", self.auth_headers()
        )

    def parse_status(self, reply: HTTPReply) -> StatusUpdate:
        return _update(json_object(reply.json(), "gmicloud status reply"))

    def list_jobs(self) -> HTTPCall:
        return HTTPCall(
            "GET",
            f"{self.base_url}{_QUEUE}/requests",
            "list",
            self.auth_headers(),
            params={"model_id": MODEL},  # seed 002 "List Your Requests"
        )

    def parse_list(self, reply: HTTPReply) -> list[ListedJob]:
        body = reply.json()
        items: Any = body
        if isinstance(body, dict):
            items = next(
                (body[k] for k in ("requests", "data", "items") if isinstance(body.get(k), list)),
                None,
            )
        if not isinstance(items, list):
            raise ValueError(f"gmicloud list reply is not a list of requests: {preview(body)}")
        jobs = []
        for item in items:
            # A list may mix models (if model_id is ignored) or hold odd rows: skip those
            # rather than lose every other job.
            if not isinstance(item, dict) or item.get("model", MODEL) != MODEL:
                continue
            job_id = _job_id(item)
            if job_id is None:
                continue
            # A row listed as done without its outcome: a status read will say more.
            update = _known_update(item) or StatusUpdate(
                JobStatus.RUNNING, str(item.get("status", ""))
            )
            payload = item.get("payload")
            prompt = payload.get("prompt") if isinstance(payload, dict) else None
            jobs.append(
                ListedJob(
                    job_id,
                    update,
                    prompt if isinstance(prompt, str) else None,
                    _timestamp(item.get("created_at")),
                )
            )
        return jobs


def _job_id(body: Mapping[str, Any]) -> str | None:
    job_id = body.get("request_id") or body.get("id")
    return job_id if isinstance(job_id, str) and job_id else None


def _timestamp(value: Any) -> float | None:
    """Unix seconds from ``created_at``: a number (seed 002) or an ISO 8601 string."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()
    return None


def _update(body: Mapping[str, Any]) -> StatusUpdate:
    """The status a request object carries (seed 002 "Check Request Status")."""
    raw = body.get("status")
    if not isinstance(raw, str):
        raise ValueError(f"gmicloud reply has no status: {preview(body)}")
    status = status_from(_STATUS, raw, "gmicloud")
    outcome = body.get("outcome")
    outcome = outcome if isinstance(outcome, dict) else {}
    if status is JobStatus.SUCCEEDED:
        url = _video_url(body, outcome)
        if url is None:
            return StatusUpdate(JobStatus.FAILED, raw, error="success without a video")
        return StatusUpdate(status, raw, video_url=url)
    if status is JobStatus.FAILED:
        error = _text(outcome.get("error"), body.get("error"), body.get("message"))
        return StatusUpdate(status, raw, error=error or raw)
    return StatusUpdate(status, raw)


def _known_update(body: Mapping[str, Any]) -> StatusUpdate | None:
    """Like :func:`_update` for replies that may leave things out (create replies, list rows):
    None when there is no status, or a ``success`` without its outcome."""
    raw = body.get("status")
    if not isinstance(raw, str):
        return None
    update = _update(body)
    if status_from(_STATUS, raw, "gmicloud") is JobStatus.SUCCEEDED and not update.video_url:
        return None
    return update


def _video_url(body: Mapping[str, Any], outcome: Mapping[str, Any]) -> str | None:
    """The video among ``outcome.media_urls`` (seed 002); never the thumbnail, which newer
    replies list beside it (and name in ``thumbnail_image_url``)."""
    thumbnails = {
        u for u in (outcome.get("thumbnail_image_url"), body.get("thumbnail_image_url")) if u
    }
    candidates: list[tuple[str, str, str]] = []  # (url, label, media type)
    media = outcome.get("media_urls")
    for item in media if isinstance(media, list) else ():
        if isinstance(item, str):
            candidates.append((item, "", ""))
        elif isinstance(item, dict) and isinstance(item.get("url"), str):
            label = f"{item.get('id', '')} {item.get('name', '')}".lower()
            kind = " ".join(
                str(item.get(k, "")) for k in ("type", "content_type", "mime_type")
            ).lower()
            candidates.append((item["url"], label, kind))
    if isinstance(outcome.get("video_url"), str):
        candidates.append((outcome["video_url"], "", "video"))
    usable = [
        (url, kind)
        for url, label, kind in candidates
        if url
        and url not in thumbnails
        and "thumbnail" not in label
        and "thumbnail" not in kind
        and "image" not in kind
    ]
    for url, kind in usable:  # the one that says it is a video
        if "video" in kind or _path(url).endswith(_VIDEO_EXTENSIONS):
            return url
    for url, _ in usable:  # else anything that is not visibly an image
        if not _path(url).endswith(_IMAGE_EXTENSIONS):
            return url
    return None


def _path(url: str) -> str:
    return urlsplit(url).path.lower()


def _text(*values: Any) -> str | None:
    for value in values:
        if isinstance(value, dict):
            value = value.get("message") or value.get("error")
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None

"""RunComfy's model API (seeds/003_ab4a9114b2d1a0d0.txt) under ``/runcomfy``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from ._base import ProviderAPI
from ._jobs import InputError, Job, decode_data_uri, parse_params

__all__ = ["RunComfyAPI"]

# seed 003: "POST https://model-api.runcomfy.net/v1/models/ltx/ltx-2/fast/image-to-video".
CREATE_PATH = "/v1/models/ltx/ltx-2/fast/image-to-video"
# DESIGN provider table, RunComfy "local image": "data URI (6 MiB)".
MAX_DATA_URI_BYTES = 6 * 1024 * 1024

# Our stages -> seed 003's states ("in_queue", "in_progress", "completed", "cancelled"),
# plus "failed" from the newer docs (DESIGN).
_STATUS = {
    "created": "in_queue",
    "queued": "in_queue",
    "starting": "in_progress",
    "running": "in_progress",
    "succeeded": "completed",
    "failed": "failed",
    "cancelled": "cancelled",
}


class RunComfyAPI(ProviderAPI):
    """Submit, status, result and cancel (queued only); no webhooks for this API."""

    name = "runcomfy"

    def routes(self) -> list[web.RouteDef]:
        """seed 003, "API reference"."""
        return [
            self.route("POST", CREATE_PATH, "create", self.submit),
            self.route("GET", "/v1/requests/{id}/status", "status", self.status),
            self.route("GET", "/v1/requests/{id}/result", "result", self.result),
            self.route("POST", "/v1/requests/{id}/cancel", "cancel", self.cancel),
        ]

    def error(
        self,
        status: int,
        message: str,
        details: str | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        """RunComfy's error body: ``{"error": "..."}`` (DESIGN provider table)."""
        return self.json({"error": message}, status=status, headers=headers)

    def api_key(self, request: web.Request) -> str | None:
        """seed 003: "Authorization: Bearer $YOUR_API_TOKEN"."""
        return self.bearer(request)

    def input_error(self, exc: InputError) -> web.Response:
        """400 (or 413 for an oversized data URI) naming the field."""
        return self.error(exc.status, f"invalid {exc.field}: {exc.message}")

    def _urls(self, request: web.Request, job_id: str) -> dict[str, str]:
        base = f"{self.emu.base_for(request, self.name)}/v1/requests/{job_id}"
        return {
            "status_url": f"{base}/status",
            "result_url": f"{base}/result",
            "cancel_url": f"{base}/cancel",
        }

    async def submit(self, request: web.Request, key: str) -> web.StreamResponse:
        """Flat seed input schema -> ``{request_id, status_url, result_url, cancel_url}``."""
        body = await self.body(request)
        params = parse_params(body)
        image = params.image_url or ""
        image_bytes = None
        if image.startswith("data:"):
            try:
                image_bytes = decode_data_uri(image, limit=MAX_DATA_URI_BYTES)
            except OverflowError:
                raise InputError(
                    "image_url",
                    "data URI images are limited to 6 MiB; use a hosted URL",
                    status=413,
                ) from None
            except ValueError as exc:
                raise InputError("image_url", f"invalid data URI: {exc}") from None
        elif urlsplit(image).scheme not in ("http", "https"):
            raise InputError("image_url", "image_url must be an http(s) URL or a data URI")
        job = self.emu.create_job(self, key, body, params, image_bytes=image_bytes)
        return self.json({"request_id": job.id, **self._urls(request, job.id)})

    def _state(self, request: web.Request, job: Job) -> dict[str, Any]:
        now = self.emu.now()
        stage = job.stage(now)
        urls = self._urls(request, job.id)
        # Status replies carry status_url and result_url (RunComfy's model API docs).
        body: dict[str, Any] = {
            "request_id": job.id,
            "status": _STATUS[stage],
            "status_url": urls["status_url"],
            "result_url": urls["result_url"],
        }
        if stage in ("created", "queued"):
            body["queue_position"] = job.queue_position_at(now)
        return body

    async def status(self, request: web.Request, key: str) -> web.StreamResponse:
        """``GET /v1/requests/{id}/status``."""
        job = self.emu.find_job(self.name, request.match_info["id"])
        if job is None:
            return self.error(404, "request not found")
        self.emu.count_status(job)
        return self.json(self._state(request, job))

    async def result(self, request: web.Request, key: str) -> web.StreamResponse:
        """``GET /v1/requests/{id}/result``: outputs when done, else the current state
        (seed 003); a failure is a 200 carrying ``error_code`` / ``error_message``."""
        job = self.emu.find_job(self.name, request.match_info["id"])
        if job is None:
            return self.error(404, "request not found")
        if job.state == "succeeded":
            return self.json(
                {
                    "request_id": job.id,
                    # The newer docs' result form says "succeeded" where status says
                    # "completed"; serving both keeps clients honest.
                    "status": "succeeded",
                    "output": {"video": self.emu.media_url(job)},
                    "created_at": _iso(job.created_at),
                    "finished_at": _iso(job.finished_at or job.created_at),
                }
            )
        if job.state == "failed" and job.failure is not None:
            return self.json(
                {
                    "request_id": job.id,
                    "status": "failed",
                    "error_code": job.failure.kind.upper(),
                    "error_message": job.failure.message,
                    "created_at": _iso(job.created_at),
                    "finished_at": _iso(job.finished_at or job.created_at),
                }
            )
        return self.json(self._state(request, job))

    async def cancel(self, request: web.Request, key: str) -> web.StreamResponse:
        """seed 003: "Cancel a queued job by request_id, in-progress jobs cannot be cancelled"."""
        job = self.emu.find_job(self.name, request.match_info["id"])
        if job is None:
            return self.error(404, "request not found")
        stage = job.stage(self.emu.now())
        if stage in ("created", "queued") and self.emu.cancel_job(job):
            return self.json({"request_id": job.id, "status": "cancelled"})
        if job.state == "cancelled":
            return self.json({"request_id": job.id, "status": "cancelled"})
        return self.error(409, f"request {job.id} is {_STATUS[stage]} and cannot be cancelled")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")

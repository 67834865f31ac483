"""Eachlabs (seeds/000_9b0f03b3c1d56c7f.txt) under ``/eachlabs``."""

from __future__ import annotations

import ipaddress
import json
import random
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from ._base import ProviderAPI, format_seconds
from ._jobs import InputError, Job, parse_params

__all__ = ["EachlabsAPI"]

# seed 000: "Model Slug: ltx-v-2-image-to-video-fast".
MODEL = "ltx-v-2-image-to-video-fast"

# Our stages -> seed 000's status words (DESIGN: created, starting, processing -> success,
# error, cancelled).
_STATUS = {
    "created": "created",
    "queued": "starting",
    "starting": "starting",
    "running": "processing",
    "succeeded": "success",
    "failed": "error",
    "cancelled": "cancelled",
}


class EachlabsAPI(ProviderAPI):
    """``POST /v1/prediction/``, ``GET /v1/prediction/{id}``, cancel, presigned upload."""

    name = "eachlabs"
    # DESIGN provider table: "3 tries ~10 s apart".
    retry_delays = (10.0, 10.0)

    def routes(self) -> list[web.RouteDef]:
        """Seed 000's paths (plus the newer presign and cancel endpoints)."""
        return [
            self.route("POST", "/v1/prediction/", "create", self.create),
            self.route("POST", "/v1/prediction", "create", self.create),
            self.route("GET", "/v1/prediction/{id}", "status", self.get),
            self.route("POST", "/v1/prediction/{id}/cancel", "cancel", self.cancel),
            self.route("POST", "/v1/upload/presign", "upload", self.presign),
        ]

    def error(
        self,
        status: int,
        message: str,
        details: str | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        """seed 000, Errors: ``{"status": "error", "message": "...", "details": "..."}``."""
        body = {"status": "error", "message": message, "details": details or message}
        return self.json(body, status=status, headers=headers)

    def api_key(self, request: web.Request) -> str | None:
        """seed 000: ``X-API-Key``; DESIGN: ``Authorization: Bearer`` is accepted now too."""
        key = request.headers.get("X-API-Key", "").strip()
        return key or self.bearer(request)

    def unauthorized(self) -> web.Response:
        """seed 000: "401 Missing / invalid X-API-Key"."""
        return self.error(401, "Unauthorized", "Missing or invalid X-API-Key")

    def input_error(self, exc: InputError) -> web.Response:
        """seed 000: "400 Invalid input"; the details name the field."""
        return self.error(exc.status, f"Invalid input: {exc.field}", exc.message)

    async def create(self, request: web.Request, key: str) -> web.StreamResponse:
        """Create a prediction."""
        body = await self.body(request)
        model = body.get("model")
        if model != MODEL:
            # seed 000: "404 Unknown model or prediction id".
            return self.error(404, "Model not found", f"unknown model {model!r}; use {MODEL!r}")
        raw_input = body.get("input")
        if not isinstance(raw_input, dict):
            raise InputError("input", "input must be a JSON object")
        params = parse_params(raw_input)
        self._check_image_url(params.image_url or "")
        webhook_url = body.get("webhook_url")
        if webhook_url is not None and (
            not isinstance(webhook_url, str)
            or urlsplit(webhook_url).scheme not in ("http", "https")
        ):
            raise InputError("webhook_url", "webhook_url must be an http(s) URL")
        secret = body.get("webhook_secret")
        if secret is not None and not isinstance(secret, str):
            raise InputError("webhook_secret", "webhook_secret must be a string")
        limited = self.emu.check_limits(self, key)
        if limited is not None:
            reason, retry_after = limited
            self.stats["rate_limited"] += 1
            return self.error(
                429,
                "Rate limit exceeded",
                reason,
                headers={"Retry-After": format_seconds(retry_after)},
            )
        job = self.emu.create_job(
            self, key, body, params, webhook_url=webhook_url or None, webhook_secret=secret or None
        )
        await self.emu.early_webhook(job)
        return self.json(
            {
                "status": "success",
                "message": "Prediction created successfully",
                "predictionID": job.id,
            }
        )

    def _check_image_url(self, url: str) -> None:
        # seed 000, Usage Notes: file parameters "accept publicly-reachable HTTPS URLs only
        # ... Data-URIs and localhost URLs are rejected." The emulator's own URLs (presigned
        # uploads) are the exception, since everything here is loopback.
        if url.startswith("data:"):
            raise InputError(
                "image_url", "Data-URIs are not accepted; upload the file and pass its URL"
            )
        if self.emu.is_own_url(url):
            return
        try:
            parts = urlsplit(url)
            host = parts.hostname or ""
        except ValueError:
            raise InputError("image_url", "image_url must be an https URL") from None
        if parts.scheme != "https" or not host:
            raise InputError("image_url", "image_url must be a publicly reachable https URL")
        if host == "localhost" or host.endswith(".localhost") or _is_private(host):
            raise InputError("image_url", "localhost URLs are not accepted")

    async def get(self, request: web.Request, key: str) -> web.StreamResponse:
        """Poll a prediction (seed 000, Polling and Output Schema)."""
        job = self.emu.find_job(self.name, request.match_info["id"])
        if job is None:
            return self.error(
                404, "Prediction not found", f"no prediction {request.match_info['id']}"
            )
        self.emu.count_status(job)
        now = self.emu.now()
        status = _STATUS[job.stage(now)]
        body: dict[str, Any] = {
            "id": job.id,
            "predictionID": job.id,
            "status": status,
            "input": job.request.get("input", {}),
            "output": self.emu.media_url(job) if job.state == "succeeded" else None,
            "metrics": {"predict_time": job.elapsed_nominal(now)},
        }
        if job.state == "failed":
            assert job.failure is not None
            body["message"] = "Prediction failed"
            body["details"] = job.failure.message
        elif job.state == "cancelled":
            body["message"] = "Prediction cancelled"
        return self.json(body)

    async def cancel(self, request: web.Request, key: str) -> web.StreamResponse:
        """Cancel a prediction, best effort (DESIGN provider table)."""
        job = self.emu.find_job(self.name, request.match_info["id"])
        if job is None:
            return self.error(
                404, "Prediction not found", f"no prediction {request.match_info['id']}"
            )
        if self.emu.cancel_job(job):
            return self.json({"status": "success", "message": "Prediction cancelled"})
        return self.json(
            {"status": "success", "message": f"Prediction already finished ({_STATUS[job.state]})"}
        )

    async def presign(self, request: web.Request, key: str) -> web.StreamResponse:
        """Newer docs: ``POST /v1/upload/presign`` -> ``{upload_url, file_url}``, then PUT."""
        body = await self.body(request)
        file_name = body.get("file_name")
        content_type = body.get("content_type", "application/octet-stream")
        if not isinstance(file_name, str) or not file_name:
            raise InputError("file_name", "file_name is required")
        if not isinstance(content_type, str):
            raise InputError("content_type", "content_type must be a string")
        upload_url, file_url = self.emu.new_upload(self.name, file_name, content_type)
        return self.json({"upload_url": upload_url, "file_url": file_url})

    def webhook(self, job: Job, variant: str, rng: random.Random) -> tuple[bytes, dict[str, str]]:
        """seed 000, Webhook: ``{exec_id, status: succeeded|failed, output, error}``; the
        ``webhook_secret`` comes back in ``X-Webhook-Secret`` (DESIGN)."""
        ok = job.state == "succeeded"
        if variant == "conflicting":
            ok = not ok
        output = self.emu.media_url(job) if ok else ""
        error = "" if ok else _failure_message(job)
        headers = {"Content-Type": "application/json"}
        secret = job.webhook_secret
        if variant == "forged":
            # Claims success with someone else's file, without the right secret.
            ok, output, error = True, "https://attacker.invalid/forged.mp4", ""
            choice = rng.choice(("wrong", "missing")) if secret else "missing"
            if choice == "wrong":
                headers["X-Webhook-Secret"] = rng.randbytes(16).hex()
        elif secret:
            headers["X-Webhook-Secret"] = secret
        payload = {
            "exec_id": job.id,
            "status": "succeeded" if ok else "failed",
            "output": output,
            "error": error,
        }
        return json.dumps(payload).encode(), headers


def _failure_message(job: Job) -> str:
    if job.state == "cancelled":
        return "Prediction cancelled"
    if job.failure is not None:
        return job.failure.message
    return "Prediction failed"


def _is_private(host: str) -> bool:
    try:
        addr = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return addr.is_loopback or addr.is_private or addr.is_link_local or addr.is_unspecified

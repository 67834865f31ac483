"""Eachlabs (seeds/000_9b0f03b3c1d56c7f.txt and docs.eachlabs.ai, whose source is the
``eachlabs/mintlify-docs`` repository) under ``/eachlabs``, or at a host root."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import random
import time
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
    # api/webhooks/payload-reference.mdx: "up to 3 times in total ... roughly 10 seconds apart".
    retry_delays = (10.0, 10.0)
    # api/webhooks/payload-reference.mdx: "cancellations do not trigger one".
    webhook_on_cancel = False

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
        # api/predictions/get-prediction.mdx "Response": id, input, status, output, logs,
        # metrics, urls {cancel, get}.
        get_url = f"{self.emu.base_for(request, self.name)}/v1/prediction/{job.id}"
        body: dict[str, Any] = {
            "id": job.id,
            "predictionID": job.id,
            "status": status,
            "input": job.request.get("input", {}),
            "output": self.emu.media_url(job) if job.state == "succeeded" else None,
            "logs": None,
            "metrics": {"predict_time": job.elapsed_nominal(now)},
            "urls": {"cancel": f"{get_url}/cancel", "get": get_url},
        }
        if job.state == "failed":
            # "Failed Prediction": output is {error_code, error_message}.
            body["output"] = _error_object(job)
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
        """api/uploads/presign-upload.mdx: ``POST /v1/upload/presign`` ``{content_type,
        file_type?, ttl_days?}`` -> ``{id, presigned_url, public_url, expires_at,
        required_headers}``; the PUT is refused (403) without every required header."""
        body = await self.body(request)
        content_type = body.get("content_type")
        if not isinstance(content_type, str) or not content_type:
            # "400 {"error": "content_type is required"}"
            return self.json({"error": "content_type is required"}, status=400)
        file_type = body.get("file_type")
        if file_type is not None and file_type not in ("image", "video", "audio", "other"):
            return self.json(
                {"error": "file_type must be one of image, video, audio, other"}, status=400
            )
        file_id = self.emu.new_id()
        extension = content_type.rsplit("/", 1)[-1].split(";")[0].strip() or "bin"
        required = {"x-amz-meta-file-id": file_id}
        upload_url, file_url = self.emu.new_upload(
            self.name, f"{file_id}.{extension}", content_type, required
        )
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 15 * 60))
        return self.json(
            {
                "id": file_id,
                "presigned_url": upload_url,
                "public_url": file_url,
                "expires_at": expires,
                "required_headers": required,
            }
        )

    def webhook(self, job: Job, variant: str, rng: random.Random) -> tuple[bytes, dict[str, str]]:
        """api/webhooks/payload-reference.mdx: ``{exec_id, flow_id, status:
        succeeded|failed, output, error: ""}``; a success's ``output`` is ``{url}``, a
        failure's an array whose first item's ``error`` is ``{error_code, error_message}``.
        With a ``webhook_secret``: signed (api/webhooks/verifying-signatures.mdx), the same
        signature and timestamp on every try, plus the legacy ``X-Webhook-Secret``."""
        ok = job.state == "succeeded"
        if variant == "conflicting":
            ok = not ok
        headers = {"Content-Type": "application/json"}
        secret = job.webhook_secret
        if variant == "forged":
            # Claims success with someone else's file, without the right secret or signature.
            payload = _payload(job.id, True, {"url": "https://attacker.invalid/forged.mp4"})
            body = json.dumps(payload).encode()
            how = rng.choice(("wrong", "missing", "bad_signature")) if secret else "missing"
            if how == "wrong":
                headers["X-Webhook-Secret"] = rng.randbytes(16).hex()
            elif how == "bad_signature":
                stamp = str(int(time.time()))
                headers["X-Webhook-Timestamp"] = stamp
                headers["X-Webhook-Signature"] = "sha256=" + rng.randbytes(32).hex()
            return body, headers
        output: Any = {"url": self.emu.media_url(job)} if ok else [_failed_step(job)]
        body = json.dumps(_payload(job.id, ok, output)).encode()
        if secret:
            # Computed once per delivery (every retry carries the same ones).
            stamps = job.extra.setdefault("eachlabs_timestamps", {})
            stamp = stamps.setdefault(variant, str(int(time.time())))
            digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
            headers["X-Webhook-Signature"] = "sha256=" + digest.hexdigest()
            headers["X-Webhook-Timestamp"] = stamp
            headers["X-Webhook-Secret"] = secret
        return body, headers


def _payload(job_id: str, ok: bool, output: Any) -> dict[str, Any]:
    return {
        "exec_id": job_id,
        "flow_id": None,
        "status": "succeeded" if ok else "failed",
        "output": output,
        "error": "",
    }


def _failed_step(job: Job) -> dict[str, Any]:
    return {"id": "", "status": "", "output": "", "error": _error_object(job)}


#: Our failure kinds -> V1 error codes in the docs' style (api/predictions/get-prediction.mdx
#: names PROVIDER_RATE_LIMIT and INPUT_VALIDATION_ERROR; the others are the emulator's own).
_ERROR_CODES = {
    "image_download": "INPUT_VALIDATION_ERROR",
    "image_decode": "INPUT_VALIDATION_ERROR",
    "internal": "INTERNAL_ERROR",
}


def _error_object(job: Job) -> dict[str, str]:
    kind = job.failure.kind if job.failure is not None else "internal"
    return {
        "error_code": _ERROR_CODES.get(kind, "INTERNAL_ERROR"),
        "error_message": _failure_message(job),
    }


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

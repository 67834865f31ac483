"""fal (seeds/001_9fad711611cc8afb.txt, fal-client 1.0.3, fal's queue docs) under ``/fal``
(the queue host ``queue.fal.run``, with fal's REST storage and CDN upload beside it) and
``/fal-rest`` (``rest.fal.ai``: storage, JWKS), or all at one host root."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ._base import ProviderAPI
from ._jobs import InputError, Job, decode_data_uri, parse_params
from ._signing import fal_signed_message

__all__ = ["FalAPI"]

# seed 001: "Model ID: fal-ai/ltx-2/image-to-video/fast". Status, result and cancel URLs use
# only owner/app ("fal-ai/ltx-2"), as fal's queue docs and fal_client build them.
APP = "fal-ai/ltx-2"
ENDPOINT = "fal-ai/ltx-2/image-to-video/fast"
# seed 001, Output example: "file_name": "ltxv-2-i2v-output.mp4".
OUTPUT_FILE_NAME = "ltxv-2-i2v-output.mp4"
MAX_DATA_URI_BYTES = 50 * 1024 * 1024
#: How long a CDN upload token lives (fal-client refreshes it when it has expired).
CDN_TOKEN_SECONDS = 3600.0
# fal's documented error types for these failures (model errors page).
_ERROR_TYPES = {
    "image_download": "file_download_error",
    "image_decode": "image_load_error",
    "internal": "runner_server_error",
}


class FalAPI(ProviderAPI):
    """fal's queue API for LTX-2 Fast, its storage upload and its webhook JWKS."""

    name = "fal"
    # DESIGN: "10 tries over 2 h": doubling from 14 s, 9 waits add up to ~2 h.
    retry_delays = tuple(14.0 * 2**i for i in range(9))

    def __init__(self, emu: Any) -> None:
        super().__init__(emu)
        self._cdn_tokens: dict[str, float] = {}

    def routes(self) -> list[web.RouteDef]:
        """Queue endpoints under ``/fal``; storage (token, legacy initiate) under ``/fal-rest``
        and ``/fal``; the CDN's upload under ``/fal``; JWKS under ``/fal-rest``."""
        base = f"/{APP}/requests/{{id}}"
        storage = [
            route
            for prefix in ("/fal-rest", "/fal")
            for route in (
                web.post(f"{prefix}/storage/auth/token", self.wrap("upload", self.cdn_token)),
                web.post(f"{prefix}/storage/upload/initiate", self.wrap("upload", self.initiate)),
            )
        ]
        return [
            self.route("POST", f"/{ENDPOINT}", "create", self.submit),
            self.route("GET", f"{base}/status", "status", self.status),
            self.route("GET", f"{base}/status/stream", "stream", self.stream),
            self.route("GET", base, "result", self.result),
            self.route("PUT", f"{base}/cancel", "cancel", self.cancel),
            *storage,
            web.post("/fal/files/upload", self.cdn_upload),
            web.get("/fal-rest/.well-known/jwks.json", self.jwks),
        ]

    def root_routes(self) -> list[web.RouteDef]:
        """Queue, storage, CDN and JWKS at the root: one listener stands in for
        ``queue.fal.run``, ``rest.fal.ai`` and ``v3.fal.media`` alike."""
        return [*super().root_routes(), web.get("/.well-known/jwks.json", self.jwks)]

    def error(
        self,
        status: int,
        message: str,
        details: str | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        """fal's error body: ``{"detail": "..."}`` (DESIGN provider table)."""
        return self.json({"detail": message}, status=status, headers=headers)

    def api_key(self, request: web.Request) -> str | None:
        """``Authorization: Key <FAL_KEY>`` (seed 001, cURL example)."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "key" or not token.strip():
            return None
        return token.strip()

    def unauthorized(self) -> web.Response:
        """A 401 with fal's ``detail``."""
        return self.error(401, "Authentication is required: send 'Authorization: Key <FAL_KEY>'")

    def input_error(self, exc: InputError) -> web.Response:
        """Validation errors are 422 with a pydantic-style ``detail`` list (fal model errors)."""
        if exc.status == 413:
            return self.error(413, exc.message)
        loc = ["body"] if exc.field == "body" else ["body", exc.field]
        return self.json(
            {"detail": [{"loc": loc, "msg": exc.message, "type": exc.kind}]},
            status=422,
            headers={"X-Fal-Error-Type": exc.kind},
        )

    def _urls(self, request: web.Request, job_id: str) -> dict[str, str]:
        response_url = f"{self.emu.base_for(request, self.name)}/{APP}/requests/{job_id}"
        return {
            "response_url": response_url,
            "status_url": f"{response_url}/status",
            "cancel_url": f"{response_url}/cancel",
        }

    async def submit(self, request: web.Request, key: str) -> web.StreamResponse:
        """``POST queue.fal.run/fal-ai/ltx-2/image-to-video/fast[?fal_webhook=...]``."""
        body = await self.body(request)
        params = parse_params(body)
        image = params.image_url or ""
        image_bytes = None
        if image.startswith("data:"):
            # seed 001: image_url "Must be publicly accessible or base64 data URI".
            try:
                image_bytes = decode_data_uri(image, limit=MAX_DATA_URI_BYTES)
            except OverflowError:
                raise InputError("image_url", "data URI larger than 50 MB", status=413) from None
            except ValueError as exc:
                raise InputError("image_url", f"invalid data URI: {exc}") from None
        elif urlsplit(image).scheme not in ("http", "https"):
            raise InputError("image_url", "image_url must be an http(s) URL or a data URI")
        webhook = request.query.get("fal_webhook")
        if webhook is not None and urlsplit(webhook).scheme not in ("http", "https"):
            raise InputError("fal_webhook", "fal_webhook must be an http(s) URL")
        extra = {
            "gateway_request_id": self.emu.new_id(),
            "user_id": "user_" + hashlib.sha256(key.encode()).hexdigest()[:12],
        }
        job = self.emu.create_job(
            self,
            key,
            body,
            params,
            webhook_url=webhook or None,
            image_bytes=image_bytes,
            extra=extra,
        )
        await self.emu.early_webhook(job)
        reply = {
            "status": "IN_QUEUE",
            "request_id": job.id,
            "gateway_request_id": job.extra["gateway_request_id"],
            **self._urls(request, job.id),
            "queue_position": job.queue_position,
        }
        return self.json(reply, headers={"x-fal-request-id": job.id})

    def _job(self, request: web.Request) -> Job | None:
        return self.emu.find_job(self.name, request.match_info["id"])

    def _status_body(
        self, request: web.Request, job: Job, with_logs: bool
    ) -> tuple[dict[str, Any], int]:
        now = self.emu.now()
        stage = job.stage(now)
        body: dict[str, Any] = {"request_id": job.id, **self._urls(request, job.id)}
        logs = _logs(job, now) if with_logs else None
        # fal_client reads data["logs"] for IN_PROGRESS and COMPLETED: always send the key.
        # fal's queue docs: status answers 202 while queued or running, 200 once complete.
        if stage in ("created", "queued"):
            body.update(status="IN_QUEUE", queue_position=job.queue_position_at(now), logs=None)
            return body, 202
        if stage in ("starting", "running"):
            body.update(status="IN_PROGRESS", logs=logs)
            return body, 202
        body.update(
            status="COMPLETED", logs=logs, metrics={"inference_time": job.elapsed_nominal(now)}
        )
        if job.state != "succeeded":
            body["error"], body["error_type"] = _error_of(job)
        return body, 200

    async def status(self, request: web.Request, key: str) -> web.StreamResponse:
        """``GET .../requests/{id}/status[?logs=1]``."""
        job = self._job(request)
        if job is None:
            return self.error(404, "Request not found")
        self.emu.count_status(job)
        with_logs = request.query.get("logs", "0").lower() in ("1", "true", "yes")
        body, code = self._status_body(request, job, with_logs)
        return self.json(body, status=code)

    async def stream(self, request: web.Request, key: str) -> web.StreamResponse:
        """``GET .../requests/{id}/status/stream``: an SSE event per status change."""
        job = self._job(request)
        if job is None:
            return self.error(404, "Request not found")
        self.emu.count_status(job)
        with_logs = request.query.get("logs", "0").lower() in ("1", "true", "yes")
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        stats = self.emu.stats_for(self.name)
        stats["streams_open"] += 1
        stats["max_streams_open"] = max(stats["max_streams_open"], stats["streams_open"])
        try:
            await self._stream_events(request, response, job, with_logs)
            await response.write_eof()
        except ConnectionResetError:
            # The client went away (it closed, or it had what it wanted), also just before
            # the stream's end: nothing to answer.
            return response
        finally:
            stats["streams_open"] -= 1
        return response

    async def _stream_events(
        self, request: web.Request, response: web.StreamResponse, job: Job, with_logs: bool
    ) -> None:
        last = None
        closing = self.emu.closing
        while True:
            body, _ = self._status_body(request, job, with_logs)
            # A new event for every status, queue position or log line (fal's stream sends
            # logs as they come).
            key_fields = (body["status"], body.get("queue_position"), len(body.get("logs") or ()))
            if key_fields != last:
                last = key_fields
                await response.write(f"data: {json.dumps(body)}\n\n".encode())
            if body["status"] == "COMPLETED" or closing.is_set():
                break
            wait = job.next_change(self.emu.now())
            wait = 0.25 * max(job.processing_time, 0.04) if wait is None else wait
            wait = min(wait, max(0.02, job.processing_time * 0.05))
            done = asyncio.ensure_future(job.done.wait())
            stop = asyncio.ensure_future(closing.wait())
            try:
                await asyncio.wait({done, stop}, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            finally:
                done.cancel()
                stop.cancel()

    async def result(self, request: web.Request, key: str) -> web.StreamResponse:
        """``GET response_url``: the output once done, 400 while running, 422/500 on failure."""
        job = self._job(request)
        if job is None:
            return self.error(404, "Request not found")
        if not job.finished:
            return self.error(400, "Request is still in progress")
        if job.state == "succeeded":
            return self.json(
                {
                    "video": {
                        "url": self.emu.media_url(job),
                        "content_type": "video/mp4",
                        "file_name": OUTPUT_FILE_NAME,
                        "file_size": job.file_size,
                    }
                }
            )
        _, error_type = _error_of(job)
        code, detail = _failure_detail(job)
        return self.json({"detail": detail}, status=code, headers={"X-Fal-Error-Type": error_type})

    async def cancel(self, request: web.Request, key: str) -> web.StreamResponse:
        """``PUT .../requests/{id}/cancel``: 202 ``CANCELLATION_REQUESTED``, 409
        ``ALREADY_COMPLETED`` or 404 ``NOT_FOUND`` (fal's queue docs, queue/cancel)."""
        job = self._job(request)
        if job is None:
            return self.json({"status": "NOT_FOUND", "detail": "Request not found"}, status=404)
        if self.emu.cancel_job(job):
            return self.json({"status": "CANCELLATION_REQUESTED"}, status=202)
        return self.json({"status": "ALREADY_COMPLETED"}, status=409)

    async def cdn_token(self, request: web.Request, key: str) -> web.StreamResponse:
        """``POST rest.fal.ai/storage/auth/token?storage_type=fal-cdn-v3`` -> ``{token,
        token_type, base_url, expires_at}`` (fal-client 1.0.3 ``AsyncCDNTokenManager``)."""
        if request.query.get("storage_type", "fal-cdn-v3") != "fal-cdn-v3":
            raise InputError("storage_type", "storage_type must be fal-cdn-v3")
        token = secrets.token_urlsafe(24)
        self._cdn_tokens[token] = self.emu.now() + self.emu.scaled(CDN_TOKEN_SECONDS)
        expires = datetime.now(UTC) + timedelta(seconds=self.emu.scaled(CDN_TOKEN_SECONDS))
        return self.json(
            {
                "token": token,
                "token_type": "Bearer",
                "base_url": self.emu.base_for(request, self.name),
                "expires_at": expires.isoformat(),
            }
        )

    async def cdn_upload(self, request: web.Request) -> web.StreamResponse:
        """``POST v3.fal.media/files/upload`` (the raw bytes, ``Authorization: <token_type>
        <token>``, ``Content-Type``, ``X-Fal-File-Name``) -> ``{access_url}`` (fal-client
        1.0.3 ``_async_upload_v3``)."""
        self.stats["upload_requests"] += 1
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        expiry = self._cdn_tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if expiry is None or expiry < self.emu.now():
            return self.json({"detail": "Invalid or expired CDN token"}, status=401)
        data = await request.read()
        if not data:
            return self.json({"detail": "Empty upload"}, status=400)
        if len(data) > MAX_DATA_URI_BYTES:
            return self.json({"detail": "File larger than 50 MB"}, status=413)
        content_type = request.headers.get("Content-Type", "application/octet-stream")
        name = request.headers.get("X-Fal-File-Name", "upload.bin")
        url = self.emu.store_upload(self.name, name, content_type, data)
        return self.json({"access_url": url, "content_type": content_type})

    async def initiate(self, request: web.Request, key: str) -> web.StreamResponse:
        """``POST rest.fal.ai/storage/upload/initiate?storage_type=gcs`` ``{file_name,
        content_type}`` -> ``{upload_url, file_url}``, then a PUT (fal-client 1.0.3's legacy
        ``_async_upload_via_storage``; ``fal-cdn-v3`` accepted too, the form ltx2 sent
        before)."""
        if request.query.get("storage_type", "gcs") not in ("gcs", "fal-cdn-v3"):
            raise InputError("storage_type", "storage_type must be gcs")
        body = await self.body(request)
        content_type = body.get("content_type", "application/octet-stream")
        file_name = body.get("file_name", "upload.bin")
        if not isinstance(content_type, str) or not isinstance(file_name, str):
            raise InputError("body", "content_type and file_name must be strings")
        upload_url, file_url = self.emu.new_upload(self.name, file_name, content_type)
        return self.json({"upload_url": upload_url, "file_url": file_url})

    async def jwks(self, request: web.Request) -> web.StreamResponse:
        """The public key fal webhooks are signed with."""
        return self.json(self.emu.signer.jwks())

    def webhook(self, job: Job, variant: str, rng: random.Random) -> tuple[bytes, dict[str, str]]:
        """DESIGN: ``{request_id, gateway_request_id, status: OK|ERROR, payload, error}``,
        Ed25519-signed over ``request_id\\nuser_id\\ntimestamp\\nsha256hex(body)``."""
        ok = job.state == "succeeded"
        if variant == "conflicting":
            ok = not ok
        payload: dict[str, Any] = {
            "request_id": job.id,
            "gateway_request_id": job.extra.get("gateway_request_id", job.id),
            "status": "OK" if ok else "ERROR",
        }
        if ok:
            payload["payload"] = {
                "video": {
                    "url": self.emu.media_url(job),
                    "content_type": "video/mp4",
                    "file_name": OUTPUT_FILE_NAME,
                    "file_size": job.file_size,
                }
            }
        else:
            code, detail = _failure_detail(job)
            payload["payload"] = {"detail": detail}
            payload["error"] = f"Invalid status code: {code}"
        body = json.dumps(payload).encode()
        user_id = str(job.extra.get("user_id", "user"))
        timestamp = str(int(time.time()))
        if variant != "forged":
            return body, {
                "Content-Type": "application/json",
                **self.emu.signer.headers(job.id, user_id, timestamp, body),
            }
        # Every forgery claims success with someone else's file, so accepting one shows.
        forged = {
            "request_id": job.id,
            "gateway_request_id": payload["gateway_request_id"],
            "status": "OK",
            "payload": {
                "video": {"url": "https://attacker.invalid/x.mp4", "content_type": "video/mp4"}
            },
        }
        forged_body = json.dumps(forged).encode()
        how = rng.choice(("bad_signature", "altered_body", "stale_timestamp", "wrong_key"))
        headers = {"Content-Type": "application/json"}
        if how == "altered_body":
            # A genuine signature over the genuine body, sent with another body.
            headers.update(self.emu.signer.headers(job.id, user_id, timestamp, body))
        elif how == "bad_signature":
            headers.update(self.emu.signer.headers(job.id, user_id, timestamp, forged_body))
            headers["X-Fal-Webhook-Signature"] = rng.randbytes(64).hex()
        elif how == "stale_timestamp":
            # Correctly signed, but an hour old: outside the 300 s tolerance (a replay).
            old = str(int(time.time()) - 3600)
            headers.update(self.emu.signer.headers(job.id, user_id, old, forged_body))
        else:
            other = Ed25519PrivateKey.from_private_bytes(rng.randbytes(32))
            message = fal_signed_message(job.id, user_id, timestamp, forged_body)
            headers.update(
                {
                    "X-Fal-Webhook-Request-Id": job.id,
                    "X-Fal-Webhook-User-Id": user_id,
                    "X-Fal-Webhook-Timestamp": timestamp,
                    "X-Fal-Webhook-Signature": other.sign(message).hex(),
                }
            )
        return forged_body, headers


def _error_of(job: Job) -> tuple[str, str]:
    if job.state == "cancelled":
        return "Request was cancelled", "request_cancelled"
    failure = job.failure
    assert failure is not None
    return failure.message, _ERROR_TYPES.get(failure.kind, "runner_server_error")


def _failure_detail(job: Job) -> tuple[int, Any]:
    """Status code and ``detail`` of a failed request's result."""
    failure = job.failure
    if job.state == "cancelled" or failure is None:
        return 400, "Request was cancelled"
    if failure.kind in ("image_download", "image_decode"):
        error_type = _ERROR_TYPES[failure.kind]
        return 422, [
            {
                "loc": ["body", "image_url"],
                "msg": failure.message,
                "type": error_type,
                "url": f"https://docs.fal.ai/errors#{error_type}",
                "input": job.params.image_url
                if not (job.params.image_url or "").startswith("data:")
                else "data:...",
            }
        ]
    return 500, "Internal server error"


def _logs(job: Job, now: float) -> list[dict[str, Any]]:
    """Runner log lines for the stages reached so far."""
    steps = [
        (0.25, "Downloading input image"),
        (
            0.35,
            "Generating {} frames at {}x{}".format(
                job.params.fps * job.params.duration, *job.params.size
            ),
        ),
        (0.70, "Decoding latents"),
        (0.90, "Encoding video"),
    ]
    frac = (
        1.0
        if job.finished or job.processing_time <= 0
        else (now - job.started) / job.processing_time
    )
    lines = []
    for at, message in steps:
        if frac >= at:
            stamp = datetime.fromtimestamp(job.created_at + at * job.processing_time, UTC)
            lines.append(
                {
                    "message": message,
                    "level": "INFO",
                    "source": "user",
                    "timestamp": stamp.isoformat(),
                }
            )
    return lines

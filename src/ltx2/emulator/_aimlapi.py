"""AI/ML API (seeds/004_c8bf4e7a0b888e5c.txt, aimlapi-sdk-python 2.24.0rc1) under
``/aimlapi``, or at a host root (the official SDK keeps only its base URL's host)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from ._base import ProviderAPI
from ._jobs import InputError, Job, decode_data_uri, parse_params

__all__ = ["AIMLAPI"]

# seed 004: "model": "ltxv/ltxv-2-fast".
MODEL = "ltxv/ltxv-2-fast"
# seed 004: "The model generates realistic 6-, 8-, and 10-second videos".
DURATIONS = (6, 8, 10)
MAX_DATA_URI_BYTES = 50 * 1024 * 1024
# seed 004's example: 120000 tokens for an 8 s 1080p video.
TOKENS_PER_SECOND_1080P = 15_000

# Our stages -> the statuses aimlapi-sdk-python 2.24.0rc1 knows (aimlapi/resources/videos.py
# _VIDEO_PENDING_STATUSES: queued, generating; anything else ends its polling loop) and the
# API docs' completed/error. seed 004's loop also names "waiting" and "active", but serving
# them would stop the official SDK early with an unfinished job.
_STATUS = {
    "created": "queued",
    "queued": "queued",
    "starting": "generating",
    "running": "generating",
    "succeeded": "completed",
    "failed": "error",
    "cancelled": "error",
}


class AIMLAPI(ProviderAPI):
    """``POST /v2/video/generations`` and ``GET ...?generation_id=``; no cancel, no webhooks."""

    name = "aimlapi"

    def routes(self) -> list[web.RouteDef]:
        """seed 004's two endpoints."""
        return [
            self.route("POST", "/v2/video/generations", "create", self.create),
            self.route("GET", "/v2/video/generations", "status", self.get),
        ]

    def error(
        self,
        status: int,
        message: str,
        details: str | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        """``{"message", "statusCode", "error"}`` (DESIGN provider table; NestJS's form)."""
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        body = {"message": message, "statusCode": status, "error": phrase}
        return self.json(body, status=status, headers=headers)

    def api_key(self, request: web.Request) -> str | None:
        """seed 004: ``Authorization: Bearer <YOUR_API_KEY>``."""
        return self.bearer(request)

    def input_error(self, exc: InputError) -> web.Response:
        """A 400 naming the field."""
        return self.error(exc.status, f"{exc.field}: {exc.message}")

    def _tokens(self, job: Job) -> int:
        width, height = job.params.size
        return int(TOKENS_PER_SECOND_1080P * job.params.duration * width * height / (1920 * 1080))

    async def create(self, request: web.Request, key: str) -> web.StreamResponse:
        """Create a generation. ``image_url`` is optional: prompt-only is text-to-video."""
        body = await self.body(request)
        model = body.get("model")
        if model != MODEL:
            raise InputError("model", f"model must be {MODEL!r}; got {model!r}")
        params = parse_params(body, require_image=False, durations=DURATIONS)
        image = params.image_url
        image_bytes = None
        if image is not None:
            if image.startswith("data:"):
                # seed 004: "A direct link to an online image or a Base64-encoded local image".
                try:
                    image_bytes = decode_data_uri(image, limit=MAX_DATA_URI_BYTES)
                except OverflowError:
                    raise InputError(
                        "image_url", "image is larger than 50 MB", status=413
                    ) from None
                except ValueError as exc:
                    raise InputError("image_url", f"invalid data URI: {exc}") from None
            elif urlsplit(image).scheme not in ("http", "https"):
                raise InputError("image_url", "image_url must be an http(s) URL or a data URI")
        job = self.emu.create_job(self, key, body, params, image_bytes=image_bytes)
        # NestJS answers a POST with 201 Created; clients must accept any 2xx.
        return self.json(
            {
                "id": job.id,
                "status": "queued",
                "meta": {"usage": {"tokens_used": self._tokens(job)}},
            },
            status=201,
        )

    async def get(self, request: web.Request, key: str) -> web.StreamResponse:
        """``GET /v2/video/generations?generation_id=ID``."""
        generation_id = request.query.get("generation_id")
        if not generation_id:
            raise InputError("generation_id", "generation_id query parameter is required")
        job = self.emu.find_job(self.name, generation_id)
        if job is None:
            return self.error(404, f"Generation {generation_id} not found")
        self.emu.count_status(job)
        status = _STATUS[job.stage(self.emu.now())]
        body: dict[str, Any] = {
            "id": job.id,
            "status": status,
            "video": None,
            "duration": job.params.duration,
            "error": None,
            "meta": {"usage": {"tokens_used": self._tokens(job)}},
        }
        if job.state == "succeeded":
            body["video"] = {"url": self.emu.media_url(job), "duration": job.params.duration}
        elif job.state in ("failed", "cancelled"):
            message = job.failure.message if job.failure is not None else "Generation cancelled"
            body["error"] = {"name": "GenerationError", "message": message}
        return self.json(body)

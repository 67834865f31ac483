"""GMI Cloud's request queue (seeds/002_b18eb1b2ec182b9a.txt and the official ``gmicloud``
0.1.10 SDK) under ``/gmicloud``, or at a host root."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from ._base import ProviderAPI
from ._jobs import ALL_DURATIONS, InputError, Job, parse_params
from ._render import CAMERA_MOTIONS

__all__ = ["GMICloudAPI"]

# seed 002: "Model ID ltx-2-fast-image-to-video".
MODEL = "ltx-2-fast-image-to-video"
PREFIX = "/api/v1/ie/requestqueue/apikey"
# gmicloud 0.1.10 (_internal/_client/_video_client.py): the same queue without "apikey",
# called with a session token from its IAM login (_iam_client.py, under /api/v1/me).
SDK_PREFIX = "/api/v1/ie/requestqueue"
IAM = "/api/v1/me"
# gmicloud's IAMClient decodes the access token as a JWT (unverified) and reads userId.
_JWT_KEY = b"ltx2-emulator"
# seed 002: resolution "1920x1080, 2560x1440, 3840x2160".
RESOLUTIONS = {"1920x1080": "1080p", "2560x1440": "1440p", "3840x2160": "2160p"}

# Our stages -> GMI's status words. seed 002 lists queued, processing, success, failed,
# cancelled; DESIGN adds created and dispatched. The create reply already says "queued"
# (seed 002 / brief), so a job never goes back to "created": we serve queued -> dispatched
# -> processing -> success | failed | cancelled.
_STATUS = {
    "created": "queued",
    "queued": "queued",
    "starting": "dispatched",
    "running": "processing",
    "succeeded": "success",
    "failed": "failed",
    "cancelled": "cancelled",
}


class GMICloudAPI(ProviderAPI):
    """Submit, get, list and model info; no cancel, no webhooks, no upload (seed 002)."""

    name = "gmicloud"

    def routes(self) -> list[web.RouteDef]:
        """seed 002's paths, the same under the gmicloud SDK's prefix, and the SDK's login.
        No upload endpoint: neither seed 002, docs.gmicloud.ai nor the SDK shows one."""
        queue: list[web.RouteDef] = []
        for prefix in (PREFIX, SDK_PREFIX):
            queue += [
                self.route("POST", f"{prefix}/requests", "create", self.create),
                self.route("GET", f"{prefix}/requests", "list", self.list_requests),
                self.route("GET", f"{prefix}/requests/{{id}}", "status", self.get),
                self.route("GET", f"{prefix}/models", "model", self.models),
                self.route("GET", f"{prefix}/models/{{model}}", "model", self.model),
            ]
        login = [
            web.post(f"/{self.name}{IAM}/auth-tokens", self.auth_tokens),
            web.post(f"/{self.name}{IAM}/sessions", self.sessions),
            web.patch(f"/{self.name}{IAM}/sessions", self.sessions),
            self.route("GET", f"{IAM}/profile", "model", self.profile),
        ]
        return queue + login

    def error(
        self,
        status: int,
        message: str,
        details: str | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        """GMI's error body: ``{"error": "..."}`` (DESIGN provider table)."""
        return self.json({"error": message}, status=status, headers=headers)

    def api_key(self, request: web.Request) -> str | None:
        """seed 002: ``Authorization: Bearer YOUR_API_KEY``."""
        return self.bearer(request)

    def unauthorized(self) -> web.Response:
        """A 401 ``{"error": ...}``."""
        return self.error(401, "unauthorized: invalid or missing API key")

    def input_error(self, exc: InputError) -> web.Response:
        """A 400 naming the payload field."""
        field = exc.field if exc.field in ("body", "payload") else f"payload.{exc.field}"
        return self.error(exc.status, f"invalid {field}: {exc.message}")

    def _object(self, job: Job) -> dict[str, Any]:
        """seed 002, "Check Request Status" response, with the thumbnail beside the video."""
        status = _STATUS[job.stage(self.emu.now())]
        outcome: dict[str, Any] = {}
        if job.state == "succeeded":
            outcome = {
                "media_urls": [{"id": "0", "url": self.emu.media_url(job)}],
                "thumbnail_image_url": self.emu.thumbnail_url(job),
            }
        obj: dict[str, Any] = {
            "request_id": job.id,
            "model": MODEL,
            "status": status,
            "payload": job.request.get("payload", {}),
            "outcome": outcome,
            "created_at": int(job.created_at),
            "updated_at": int(job.finished_at or time.time()),
            "queued_at": int(job.created_at),
        }
        if job.state == "failed" and job.failure is not None:
            obj["error"] = job.failure.message
        return obj

    async def create(self, request: web.Request, key: str) -> web.StreamResponse:
        """``POST .../requests`` ``{model, payload}``."""
        body = await self.body(request)
        model = body.get("model")
        if model != MODEL:
            return self.error(404, f"model not found: {model!r}")
        payload = body.get("payload")
        if not isinstance(payload, dict):
            raise InputError("payload", "payload must be a JSON object")
        params = parse_params(
            payload,
            image_field="image_uri",
            durations=ALL_DURATIONS,
            resolutions=RESOLUTIONS,
            camera_motions=CAMERA_MOTIONS,
            aspect_field=False,
        )
        # seed 002: image_uri is an "Image URL" (GMI documents no upload).
        if urlsplit(params.image_url or "").scheme not in ("http", "https"):
            raise InputError("image_uri", "image_uri must be an http(s) URL")
        job = self.emu.create_job(self, key, body, params)
        if job.processing_time <= 0:
            # seed 002: "It operates synchronously and returns the video directly": with no
            # processing time the create reply is already terminal, outcome included.
            await job.done.wait()
            return self.json(self._object(job))
        obj = self._object(job)
        reply = {k: obj[k] for k in ("request_id", "model", "status", "created_at", "updated_at")}
        return self.json(reply)

    async def get(self, request: web.Request, key: str) -> web.StreamResponse:
        """``GET .../requests/{id}``."""
        job = self.emu.find_job(self.name, request.match_info["id"])
        if job is None:
            return self.error(404, f"request not found: {request.match_info['id']}")
        self.emu.count_status(job)
        return self.json(self._object(job))

    async def list_requests(self, request: web.Request, key: str) -> web.StreamResponse:
        """``GET .../requests?model_id=...``: this key's requests, newest first."""
        model_id = request.query.get("model_id")
        if model_id is not None and model_id != MODEL:
            return self.json({"requests": [], "total": 0})
        jobs = [j for j in self.emu.jobs.values() if j.provider == self.name and j.key == key]
        jobs.sort(key=lambda j: j.created_at, reverse=True)
        return self.json({"requests": [self._object(j) for j in jobs], "total": len(jobs)})

    def _model_info(self) -> dict[str, Any]:
        # gmicloud's GetModelResponse names the model id "model" (_internal/_models.py).
        return {
            "model": MODEL,
            "model_id": MODEL,
            "model_type": "image-to-video",
            "brief_description": "LTX-2 Fast Image-to-Video",
            "status": "active",
            # seed 002, "Model Support Matrix".
            "support_matrix": [
                {"resolution": "1920x1080", "fps": 25, "durations": list(ALL_DURATIONS)},
                {"resolution": "1920x1080", "fps": 50, "durations": [6, 8, 10]},
                {"resolution": "2560x1440", "fps": [25, 50], "durations": [6, 8, 10]},
                {"resolution": "3840x2160", "fps": [25, 50], "durations": [6, 8, 10]},
            ],
            "camera_motion": list(CAMERA_MOTIONS),
        }

    async def model(self, request: web.Request, key: str) -> web.StreamResponse:
        """``GET .../models/ltx-2-fast-image-to-video`` (seed 002, "Get Model Information")."""
        if request.match_info["model"] != MODEL:
            return self.error(404, f"model not found: {request.match_info['model']!r}")
        return self.json(self._model_info())

    async def models(self, request: web.Request, key: str) -> web.StreamResponse:
        """``GET .../models``: ``{model_ids}`` (the audit of issue 12; unverified) and
        ``models`` (what gmicloud's ``get_models`` reads)."""
        return self.json({"model_ids": [MODEL], "models": [self._model_info()]})

    # -- the gmicloud SDK's login (gmicloud 0.1.10 _internal/_client/_iam_client.py) -------

    async def auth_tokens(self, request: web.Request) -> web.StreamResponse:
        """``POST /api/v1/me/auth-tokens`` ``{email, password}`` -> ``{authToken,
        is2FARequired}``."""
        try:
            body = await self.body(request)
        except InputError as exc:
            return self.error(400, exc.message)
        email, password = body.get("email"), body.get("password")
        if not isinstance(email, str) or not email or not isinstance(password, str):
            return self.error(401, "invalid email or password")
        if self.emu.api_keys is not None and password not in self.emu.api_keys:
            return self.error(401, "invalid email or password")
        return self.json({"authToken": _token({"email": email}), "is2FARequired": False})

    async def sessions(self, request: web.Request) -> web.StreamResponse:
        """``POST /api/v1/me/sessions`` ``{type, authToken}`` (login) or ``PATCH``
        ``{refreshToken}`` (refresh) -> ``{accessToken, refreshToken}``."""
        try:
            body = await self.body(request)
        except InputError as exc:
            return self.error(400, exc.message)
        given = body.get("refreshToken" if request.method == "PATCH" else "authToken")
        claims = _claims(given) if isinstance(given, str) else None
        if claims is None:
            return self.error(401, "invalid or expired token")
        email = str(claims.get("email", "user@example.com"))
        user_id = "user-" + hashlib.sha256(email.encode()).hexdigest()[:12]
        now = int(time.time())
        access = _token({"userId": user_id, "email": email, "exp": now + 3600, "n": now})
        self.emu.add_session_token(access)
        refresh = _token({"userId": user_id, "email": email, "exp": now + 86400, "r": 1})
        return self.json({"accessToken": access, "refreshToken": refresh})

    async def profile(self, request: web.Request, key: str) -> web.StreamResponse:
        """``GET /api/v1/me/profile`` -> ``{user, organization}``."""
        claims = _claims(key) or {}
        user_id = str(claims.get("userId", "user"))
        return self.json(
            {
                "user": {"id": user_id, "email": claims.get("email", "")},
                "organization": {"id": "org-" + user_id.removeprefix("user-"), "role": "owner"},
            }
        )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _token(claims: dict[str, Any]) -> str:
    """A JWT (HS256 with the emulator's own key) carrying ``claims``."""
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims).encode())
    mac = hmac.new(_JWT_KEY, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(mac)}"


def _claims(token: str) -> dict[str, Any] | None:
    """The claims of a token :func:`_token` made, or ``None``."""
    try:
        head, body, mac = token.split(".")
        want = hmac.new(_JWT_KEY, f"{head}.{body}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(_b64(want), mac):
            return None
        claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, TypeError):
        return None
    return claims if isinstance(claims, dict) else None

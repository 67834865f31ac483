"""What every emulated provider shares: request wrapping, auth, error bodies, webhooks."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar

from aiohttp import web

from ._jobs import InputError, Job

if TYPE_CHECKING:
    from ._server import Emulator

__all__ = ["Handler", "ProviderAPI", "format_seconds"]

log = logging.getLogger("ltx2.emulator")

Handler = Callable[[web.Request, str], Awaitable[web.StreamResponse]]

# Which stats counter each kind of endpoint bumps on every request it receives.
_COUNTERS = {
    "create": "create_attempts",
    "status": "status_requests",
    "stream": "status_requests",
    "result": "result_requests",
    "cancel": "cancels",
    "list": "list_requests",
    "upload": "upload_requests",
    "model": "other_requests",
}
# Requests a ``reset`` fault may drop: reads only, so no create is ever half-done.
_READ_KINDS = frozenset({"status", "stream", "result", "list", "model"})


def format_seconds(seconds: float) -> str:
    """A ``Retry-After`` value: scaled seconds as a short float string, e.g. ``"0.35"``."""
    value = max(0.001, seconds)
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return text or "0.001"


class ProviderAPI:
    """One provider's HTTP surface under ``/{name}``. Subclasses add routes and bodies."""

    name: ClassVar[str]
    # Seconds between webhook tries, before scaling; empty for providers without webhooks.
    retry_delays: ClassVar[tuple[float, ...]] = ()
    # Whether a cancelled job gets a webhook.
    webhook_on_cancel: ClassVar[bool] = True

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu

    # -- to override -----------------------------------------------------------------------

    def error(
        self,
        status: int,
        message: str,
        details: str | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        """The provider's error body for ``status``."""
        raise NotImplementedError

    def api_key(self, request: web.Request) -> str | None:
        """The key in the provider's auth header form, or ``None`` when absent/malformed."""
        raise NotImplementedError

    def routes(self) -> list[web.RouteDef]:
        """The provider's routes (already wrapped)."""
        raise NotImplementedError

    def root_routes(self) -> list[web.RouteDef]:
        """The same endpoints at the provider's real paths, for its host-root listener: the
        routes under ``/{name}/`` without that prefix."""
        prefix = f"/{self.name}/"
        return [
            web.RouteDef(rd.method, rd.path[len(prefix) - 1 :], rd.handler, rd.kwargs)
            for rd in self.routes()
            if isinstance(rd, web.RouteDef) and rd.path.startswith(prefix)
        ]

    def input_error(self, exc: InputError) -> web.Response:
        """How the provider reports a rejected input (default: its error body, 400)."""
        return self.error(exc.status, exc.message, f"invalid field: {exc.field}")

    def unauthorized(self) -> web.Response:
        """The provider's 401."""
        return self.error(401, "Unauthorized", "missing or invalid API key")

    def webhook(self, job: Job, variant: str, rng: random.Random) -> tuple[bytes, dict[str, str]]:
        """Body and headers of one delivery for ``job``.

        ``variant`` is ``genuine``, ``forged`` (must fail the receiver's checks) or
        ``conflicting`` (authentic, but claims the opposite outcome).
        """
        raise NotImplementedError(f"{self.name} sends no webhooks")

    # -- shared ----------------------------------------------------------------------------

    @property
    def stats(self) -> dict[str, Any]:
        """This provider's counters in ``emu.stats``."""
        return self.emu.stats[self.name]

    @staticmethod
    def bearer(request: web.Request) -> str | None:
        """The token of an ``Authorization: Bearer <token>`` header."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return token.strip()

    def json(
        self, data: Any, status: int = 200, headers: dict[str, str] | None = None
    ) -> web.Response:
        """A JSON reply."""
        return web.json_response(data, status=status, headers=headers)

    async def body(self, request: web.Request, field: str = "body") -> dict[str, Any]:
        """The request's JSON object. Raises :class:`InputError` on anything else."""
        raw = await request.read()
        try:
            data = json.loads(raw or b"null")
        except (UnicodeDecodeError, ValueError):
            raise InputError(field, "request body is not valid JSON", kind="json_invalid") from None
        if not isinstance(data, dict):
            raise InputError(field, "request body must be a JSON object", kind="type_error")
        return data

    def route(self, method: str, path: str, kind: str, handler: Handler) -> web.RouteDef:
        """Register ``handler`` under ``/{name}{path}`` with counting, auth and faults."""
        return web.route(method, f"/{self.name}{path}", self.wrap(kind, handler))

    def wrap(
        self, kind: str, handler: Handler
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """Wrap an endpoint: count it, check auth, inject faults, map errors to the
        provider's bodies. Nothing a client sends can make it raise."""

        async def wrapped(request: web.Request) -> web.StreamResponse:
            counter = _COUNTERS.get(kind)
            if counter is not None:
                self.stats[counter] += 1
            key = self.api_key(request)
            if key is None or not self.emu.key_ok(key):
                return self.unauthorized()
            injected = await self.emu.inject_faults(
                self, request, kind in _READ_KINDS, kind == "create"
            )
            if injected is not None:
                return injected
            try:
                return await handler(request, key)
            except InputError as exc:
                return self.input_error(exc)
            except web.HTTPException:
                raise
            except Exception:
                log.exception("emulator: %s %s failed", request.method, request.path)
                return self.error(
                    500, "Internal server error", "the emulator hit an unexpected error"
                )

        return wrapped

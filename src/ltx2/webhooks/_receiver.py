"""``WebhookReceiver``: the aiohttp app that takes providers' webhook deliveries.

A delivery's URL is ``{public_url}/{provider}/{token}``; the token is the job's 128-bit secret,
looked up in the store and compared in constant time. Where the provider authenticates its
deliveries that is checked too (Eachlabs' HMAC signature or ``X-Webhook-Secret``, fal's
Ed25519 signature). The
receiver then hands the delivery to the store and answers 200 at once; the client that awaits
the job does the rest. Nothing a sender does crashes it: unknown token 404, bad JSON 400, a
body over the limit 413, failed verification 401.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import aiohttp
from aiohttp import web

from .._errors import WebhookError
from ..providers import PROVIDERS, Provider, get
from ..stores import MemoryStore, Store
from ._eachlabs_verify import verify_eachlabs, verify_secret
from ._fal_verify import FAL_JWKS_URLS, parse_jwks, verify_fal_signature

__all__ = ["WebhookReceiver", "verify_secret"]

log = logging.getLogger("ltx2.webhooks")

#: Bodies above this are refused with 413 (LTX-2 webhooks carry a URL, not the video).
DEFAULT_MAX_BODY = 1024 * 1024


class _JWKSCache:
    """fal's public keys, fetched from the JWKS URLs and cached; refetched when a signature
    does not verify with the cached keys (key rotation), at most once a minute."""

    def __init__(self, urls: Sequence[str], ttl: float, clock: Callable[[], float]) -> None:
        self.urls = tuple(urls)
        self.ttl = ttl
        self._clock = clock
        self._keys: list[bytes] = []
        self._fetched = -1e18
        self._session: aiohttp.ClientSession | None = None

    async def keys(self, *, refresh: bool = False) -> list[bytes]:
        age = self._clock() - self._fetched
        if not self._keys or age > self.ttl or (refresh and age > 60.0):
            await self._fetch()
        return self._keys

    async def _fetch(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        keys: list[bytes] = []
        for url in self.urls:
            try:
                async with self._session.get(url) as resp:
                    if resp.status == 200:
                        keys.extend(parse_jwks(await resp.json(content_type=None)))
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                log.warning("cannot fetch fal JWKS from %s: %r", url, exc)
        if keys:
            self._keys = keys
            self._fetched = self._clock()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class WebhookReceiver:
    """Receives webhook deliveries for every :class:`ltx2.Client` that uses it.

    Args:
        public_url: the URL providers reach this receiver at, including any mount prefix
            (e.g. ``https://api.example.com/hooks/ltx2``). ``None``: derived from
            ``start(host, port)`` (for local use and tests).
        store: where deliveries go; by default the store of the first client that uses the
            receiver (a standalone receiver process passes a :class:`ltx2.RedisStore`).
        max_body: bodies larger than this get 413.
        fal_jwks_urls: where fal publishes its webhook signing keys.
        timestamp_tolerance: how old (or new) a signed delivery's timestamp may be, seconds.

    Mount it with ``app.add_subapp("/hooks/ltx2", receiver.app)``, or run it alone with
    ``await receiver.start(host, port)`` / ``await receiver.stop()``.
    """

    def __init__(
        self,
        public_url: str | None = None,
        *,
        store: Store | None = None,
        max_body: int = DEFAULT_MAX_BODY,
        fal_jwks_urls: Sequence[str] = FAL_JWKS_URLS,
        jwks_ttl: float = 3600.0,
        timestamp_tolerance: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.public_url = public_url.rstrip("/") if public_url else None
        self.store = store
        self.max_body = max_body
        self.timestamp_tolerance = timestamp_tolerance
        self._clock = clock
        self._jwks = _JWKSCache(fal_jwks_urls, jwks_ttl, clock)
        self._runner: web.AppRunner | None = None
        self.stats = {"accepted": 0, "duplicate": 0, "rejected": 0, "unknown": 0}
        # Provider classes by name, looked up once: providers.get() imports on every call.
        self._classes: dict[str, type[Provider]] = {}
        self.app = web.Application(client_max_size=max_body)
        self.app[_RECEIVER] = self
        self.app.router.add_post("/{provider}/{token}", self._handle)
        self.app.router.add_get("/health", self._health)
        self.app.on_cleanup.append(self._cleanup)

    def __repr__(self) -> str:
        return f"<WebhookReceiver {self.public_url or '(not started)'}>"

    def url_for(self, provider: str, token: str) -> str:
        """The callback URL of one job."""
        if self.public_url is None:
            raise RuntimeError(
                "WebhookReceiver has no public_url: pass one, or await receiver.start() first"
            )
        return f"{self.public_url}/{provider}/{token}"

    def _attach(self, store: Store) -> Store:
        """A client starts using this receiver; returns the store deliveries go to."""
        if self.store is None:
            self.store = store
        return self.store

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve the receiver on ``host:port`` (port 0: any free port); returns its URL."""
        if self._runner is not None:
            raise RuntimeError("the receiver is already running")
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        bound = sockets[0].getsockname()[1] if sockets else port
        url = f"http://{host}:{bound}"
        if self.public_url is None:
            self.public_url = url
        log.info("webhook receiver listening on %s", url)
        return url

    async def stop(self) -> None:
        """Stop serving (after :meth:`start`)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self._jwks.close()

    async def __aenter__(self) -> WebhookReceiver:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _cleanup(self, app: web.Application) -> None:
        await self._jwks.close()

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    def _provider_class(self, name: str) -> type[Provider] | None:
        cls = self._classes.get(name)
        if cls is None and name in PROVIDERS:
            cls = self._classes[name] = get(name)
        return cls

    async def _handle(self, request: web.Request) -> web.Response:
        # The hot path (every delivery): keep it lean. See benchmarks/bench_receiver.py.
        provider = request.match_info["provider"]
        token = request.match_info["token"]
        cls = self._provider_class(provider)
        if cls is None or not 10 <= len(token) <= 64:
            self.stats["unknown"] += 1
            return _reply(404, "unknown webhook URL")
        length = request.content_length
        if length is not None and length > self.max_body:
            self.stats["rejected"] += 1
            return _reply(413, f"body over {self.max_body} bytes")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            self.stats["rejected"] += 1
            return _reply(413, f"body over {self.max_body} bytes")
        store = self.store
        if store is None:
            store = self.store = MemoryStore()
        record = await store.get_by_token(token)
        if record is None or record.provider != provider:
            self.stats["unknown"] += 1
            return _reply(404, "unknown webhook URL")
        # The store's lookup matched the token; compare again in constant time so the
        # answer's timing says nothing about how much of a guessed token was right.
        if not hmac.compare_digest(record.token.encode(), token.encode()):
            return _reply(404, "unknown webhook URL")
        try:
            scheme = cls.capabilities.webhooks
            if scheme == "secret":
                verify_eachlabs(
                    body,
                    request.headers,
                    record.webhook_secret,
                    now=self._clock(),
                    tolerance=self.timestamp_tolerance,
                )
            elif scheme is not None:
                await self._verify(provider, body, request.headers, record.webhook_secret)
        except WebhookError as exc:
            self.stats["rejected"] += 1
            log.warning("refused a %s delivery for job %s: %s", provider, record.key, exc)
            return _reply(401, "delivery failed verification")
        try:
            # JSON on the wire is UTF-8 (RFC 8259); decoding first skips json's sniffing.
            payload: Any = json.loads(body.decode())
            delivery = cls.parse_webhook(payload, request.headers)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            self.stats["rejected"] += 1
            return _reply(400, f"malformed delivery: {str(exc)[:100]}")
        _, accepted = await store.deliver(token, delivery.update, delivery.job_id)
        self.stats["accepted" if accepted else "duplicate"] += 1
        return _ok()

    async def _verify(
        self, provider: str, body: bytes, headers: Mapping[str, str], secret: str | None
    ) -> None:
        cls = self._provider_class(provider)
        scheme = cls.capabilities.webhooks if cls is not None else None
        if scheme == "secret":
            verify_eachlabs(
                body, headers, secret, now=self._clock(), tolerance=self.timestamp_tolerance
            )
        elif scheme == "ed25519":
            now = self._clock()
            keys = await self._jwks.keys()
            if not keys:
                raise WebhookError("no fal signing keys could be fetched")
            try:
                verify_fal_signature(
                    body, headers, keys, now=now, tolerance=self.timestamp_tolerance
                )
            except WebhookError:
                fresh = await self._jwks.keys(refresh=True)
                if fresh is keys:
                    raise
                verify_fal_signature(
                    body, headers, fresh, now=now, tolerance=self.timestamp_tolerance
                )


_RECEIVER = web.AppKey("ltx2_receiver", WebhookReceiver)


def _reply(status: int, message: str) -> web.Response:
    return web.json_response({"ok": status == 200, "message": message}, status=status)


#: The body of every 200, encoded once (``json_response`` would encode it per delivery).
_OK_BODY = json.dumps({"ok": True, "message": "ok"}).encode()


def _ok() -> web.Response:
    return web.Response(body=_OK_BODY, content_type="application/json", charset="utf-8")

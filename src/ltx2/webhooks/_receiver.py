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
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import aiohttp
from aiohttp import http_exceptions, web
from multidict import CIMultiDict

from .._errors import InvalidRequestError, WebhookError
from ..providers import PROVIDERS, Provider, get
from ..stores import MemoryStore, Store
from ._access_log import RedactingAccessLogger
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
        access_log: a logger for the standalone receiver's access log (``None``, the default:
            none). Tokens are redacted from it (:class:`RedactingAccessLogger`).

    It answers 200 (taken, or a duplicate), 400 (a body that is not JSON or not a delivery,
    or does not decode), 401 (failed verification), 404 (unknown provider or token), 405
    (not a POST) or 413 (over ``max_body``, raw or decoded, mounted or not); the token is
    looked up before the body is read. The one 5xx is a 503 when the store cannot be
    reached, so the provider retries. See docs/deployment.md, "Security".

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
        access_log: logging.Logger | None = None,
    ) -> None:
        if isinstance(max_body, bool) or not isinstance(max_body, int) or max_body < 1:
            raise InvalidRequestError(
                f"max_body: {max_body!r} is not a byte count",
                field="max_body", value=max_body, allowed="an int >= 1",
            )  # fmt: skip
        self.access_log = access_log
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
        # auto_decompress=False: a compressed body reaches the handler as sent, and is
        # decoded there within max_body (aiohttp would decode up to 32 MiB per chunk first).
        self._runner = web.AppRunner(
            self.app,
            access_log=self.access_log,
            access_log_class=RedactingAccessLogger,
            handle_signals=False,
            auto_decompress=False,
        )
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

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        # The hot path (every delivery): keep it lean. See benchmarks/bench_receiver.py.
        # Order matters: everything that needs no body (the URL, the declared length, the
        # token) is checked before a byte of the body is read, so an unauthenticated sender
        # costs a lookup and nothing more.
        provider = request.match_info["provider"]
        token = request.match_info["token"]
        cls = self._provider_class(provider)
        if cls is None or not 10 <= len(token) <= 64:
            self.stats["unknown"] += 1
            return _reply(404, "unknown webhook URL")
        length = request.content_length
        if length is not None and length > self.max_body:
            self.stats["rejected"] += 1
            return _too_large(self.max_body)
        store = self.store
        if store is None:
            store = self.store = MemoryStore()
        try:
            record = await store.get_by_token(token)
        except Exception as exc:
            return _store_down(provider, exc)
        if record is None or record.provider != provider:
            self.stats["unknown"] += 1
            return _reply(404, "unknown webhook URL")
        # The store's lookup matched the token; compare again in constant time so the
        # answer's timing says nothing about how much of a guessed token was right.
        if not hmac.compare_digest(record.token.encode(), token.encode("utf-8", "replace")):
            return _reply(404, "unknown webhook URL")
        body = await _read_body(request, self.max_body)
        if isinstance(body, web.StreamResponse):
            self.stats["rejected"] += 1
            return body
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
        except (ValueError, RecursionError) as exc:
            # JSONDecodeError and UnicodeDecodeError are ValueErrors; a body nested deeper
            # than the interpreter's stack is a RecursionError.
            self.stats["rejected"] += 1
            return _reply(400, f"malformed delivery: {_short(exc)}")
        except Exception as exc:
            # The parsers are total over JSON (tests/unit/test_parsers_total.py); should one
            # still fail, the sender gets a 400, never a 500, and the fault is logged.
            self.stats["rejected"] += 1
            log.warning("cannot parse a %s delivery: %s", provider, type(exc).__name__)
            return _reply(400, "malformed delivery")
        try:
            _, accepted = await store.deliver(token, delivery.update, delivery.job_id)
        except Exception as exc:
            return _store_down(provider, exc)
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

# aiohttp raises this (as the cause of a RequestPayloadError) when its own decoding of a
# compressed body passes its limit; absent from older aiohttp versions.
_DecompressSizeError: type[BaseException] = getattr(
    http_exceptions, "DecompressSizeError", type("_Never", (Exception,), {})
)
_DECODERS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


async def _read_body(request: web.Request, limit: int) -> bytes | web.StreamResponse:
    """The body, decoded, or the response that refuses it: 413 past ``limit`` bytes (raw or
    decoded, checked while decoding, so a request never holds more than about twice the
    limit), 400 for an encoding that does not decode.

    Standalone, aiohttp leaves the body encoded (``auto_decompress=False``) and it is
    decoded here in steps of at most ``limit`` bytes. Mounted in an app whose server decodes
    bodies itself, aiohttp has already done so, in steps up to its own limit (32 MiB).
    """
    content = request.content
    encoding = request.headers.get("Content-Encoding")
    decoder = None
    if encoding is not None:
        encoding = encoding.strip().lower()
        # With aiohttp ≥ 3.12 total_compressed_bytes tells whether aiohttp decoded it.
        if encoding != "identity" and getattr(content, "total_compressed_bytes", None) is None:
            wbits = _DECODERS.get(encoding)
            if wbits is None:
                return _reply(400, "unsupported Content-Encoding (gzip and deflate are accepted)")
            decoder = zlib.decompressobj(wbits)
    chunks: list[bytes] = []
    raw_size = size = 0
    try:
        while not content.at_eof():  # (checked first: no read call past the last chunk)
            chunk = await content.readany()
            if not chunk:
                break
            raw_size += len(chunk)
            if raw_size > limit:
                return _too_large(limit)
            if decoder is not None:
                chunk = decoder.decompress(chunk, limit + 1 - size)
            size += len(chunk)
            if size > limit:
                return _too_large(limit)
            chunks.append(chunk)
        if decoder is not None:
            tail = decoder.flush()
            size += len(tail)
            if size > limit:
                return _too_large(limit)
            chunks.append(tail)
            if not decoder.eof:
                return _reply(400, f"the {encoding} body is truncated")
    except zlib.error:
        return _reply(400, f"the body is not valid {encoding}")
    except ConnectionError as exc:
        # The sender went away mid-body: nobody is left to answer.
        log.debug("a delivery's sender disconnected mid-body: %s", type(exc).__name__)
        return _reply(400, "incomplete body")
    except web.HTTPRequestEntityTooLarge:
        return _too_large(limit)
    except Exception as exc:
        # aiohttp's own decoding failed: past its size limit, or not the encoding declared.
        if isinstance(exc.__cause__, _DecompressSizeError) or isinstance(exc, _DecompressSizeError):
            return _too_large(limit)
        log.debug("a delivery's body could not be read: %s", type(exc).__name__)
        return _reply(400, "the body could not be read or decoded")
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_large(limit: int) -> web.Response:
    response = _reply(413, f"body over {limit} bytes")
    # The rest of the body is not wanted: close the connection rather than read it.
    response.force_close()
    return response


def _store_down(provider: str, exc: Exception) -> web.Response:
    # The only 5xx: the store cannot be reached, nothing was recorded, and the provider's
    # own retries (Eachlabs 3, fal 10) are what brings the delivery back.
    log.warning("cannot record a %s delivery, the store failed: %s", provider, type(exc).__name__)
    return _reply(503, "store unavailable; retry later")


def _short(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc)[:100]


def _reply(status: int, message: str) -> web.Response:
    return web.json_response({"ok": status == 200, "message": message}, status=status)


#: The body and headers of every 200, built once (``json_response`` would encode the body per
#: delivery; a ``content_type`` argument is parsed per response; aiohttp copies ``headers``).
_OK_BODY = json.dumps({"ok": True, "message": "ok"}).encode()
_OK_HEADERS = CIMultiDict({"Content-Type": "application/json; charset=utf-8"})


def _ok() -> web.Response:
    return web.Response(body=_OK_BODY, headers=_OK_HEADERS)

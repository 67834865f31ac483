"""The transport: the one place that talks HTTP.

It owns one ``aiohttp.ClientSession`` (or uses the one it is given), applies its timeouts to
every request, retries with exponential backoff and full jitter honouring ``Retry-After``,
and translates every aiohttp failure and HTTP error into ltx2's errors, so nothing above it
sees aiohttp.

A create is retried only when the provider cannot have started it: the connection never
opened, a 429, or a 503 (the emulator and the providers answer these before processing).
Anything else after the request may have reached the provider — a reset, a read timeout, a
500 — is raised, never sent again: one create must never become two paid jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import ipaddress
import logging
import math
import os
import random
import socket
import tempfile
import time
import warnings
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, NoReturn

import aiohttp
import anyio
from yarl import URL

from ._config import DownloadPolicy, RetryPolicy, Timeouts
from ._errors import APIError, RateLimitError, TransportError, error_for_status
from ._redact import redact_url, scrub, secrets_of
from ._types import HTTPCall, HTTPReply
from .providers import Provider

__all__ = ["DEFAULT_MAX_DOWNLOAD_BYTES", "MAX_STREAMS", "POOL_SIZE", "Transport"]

log = logging.getLogger("ltx2")

#: Downloads larger than this are refused (a 20 s 4K clip is well under 1 GiB).
DEFAULT_MAX_DOWNLOAD_BYTES = 2 * 1024**3
_CHUNK = 256 * 1024
#: Same-origin redirects an API call follows (aiohttp's default is 10; providers use none).
_MAX_API_REDIRECTS = 5
#: aiohttp sends a body of more bytes than this with a ResourceWarning (writing it whole may
#: hold the event loop: ``aiohttp.payload.TOO_LARGE_BYTES_BODY``); such a body goes as a
#: stream, in chunks.
_LARGE_BODY = 2**20
#: Connections a transport's own session opens at once (API calls, downloads and status
#: streams together; an injected session's connector limit stands in for it).
POOL_SIZE = 256
#: Status streams (fal's, where no webhook comes) a transport keeps open at once, at most:
#: a quarter of its pool, and never more than this. A stream holds its connection for the
#: job's life, so the places are set apart from the pool's: the other three quarters (192 of
#: POOL_SIZE) stay for creates, polls and downloads, which a stream can never make wait. A
#: job past the bound is polled on the poller's schedule instead; 64 streams already follow
#: more jobs at once than the poller checks at once (its concurrency is 64 too).
MAX_STREAMS = 64
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ProgressCallback = Callable[[int, int | None], Any]


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: delay-seconds (possibly fractional) or an HTTP
    date (RFC 9110 10.2.3), which is always GMT, whatever zone the host is in."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) or seconds > 0 else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        # "-0000" (and, on some Pythons, "GMT") parse as naive: the zone is still UTC.
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - time.time())


_warned_unclosed = False


def _abandoned(session: aiohttp.ClientSession, provider: str) -> None:
    """A transport that made its session was collected, or the interpreter exits, without
    :meth:`Transport.aclose`: the client was never closed. Say so once, in ltx2's words and
    with the fix, and close the connections here, so that aiohttp's own "Unclosed client
    session" / "Unclosed connector" messages (which name neither) do not follow."""
    global _warned_unclosed
    if session.closed:
        return
    connector = session.connector
    if connector is not None:
        # Synchronous: no event loop may be left to await close() in. _close() marks the
        # connector closed and closes its connections (it is what close() does first).
        with contextlib.suppress(Exception):
            connector._close()
    if not _warned_unclosed:
        _warned_unclosed = True
        warnings.warn_explicit(
            f"an ltx2.Client for {provider} was not closed (ltx2 closed its connections). "
            "Use 'async with ltx2.Client(...) as client:', or 'await client.aclose()' when "
            "done with it.",
            RuntimeWarning,
            filename="ltx2",
            lineno=0,
        )


class Transport:
    """HTTP for one client: a session, retries and error mapping for one provider.

    ``on_rate_limited(seconds)`` is called when a 429 comes back anyway, so the client's
    limiter can hold creates back. ``download_policy`` says where video downloads may go.

    Redirects are followed by hand: an API call (it carries the key) follows only redirects
    on its own origin, and a redirect elsewhere is an :class:`APIError` naming the target
    host (aiohttp would drop only ``Authorization`` and send ``X-API-Key`` on). A download
    checks every hop against the scheme rules and the download policy.

    ``timeouts`` hold for every request, on its own session or an injected one (whatever
    that session's default timeout). ``trust_env`` goes to the session it makes (aiohttp's:
    proxy variables such as ``HTTPS_PROXY`` and ``NO_PROXY``, and ``~/.netrc``); an injected
    session keeps its own.
    """

    def __init__(
        self,
        provider: Provider,
        *,
        timeouts: Timeouts = Timeouts(),
        retry: RetryPolicy = RetryPolicy(),
        session: aiohttp.ClientSession | None = None,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        on_rate_limited: Callable[[float], None] | None = None,
        download_policy: DownloadPolicy = DownloadPolicy(),
        trust_env: bool = False,
    ) -> None:
        self.provider = provider
        self.timeouts = timeouts
        self.trust_env = trust_env
        # Passed on every request, so that an injected session's default does not hold.
        self._api_timeout = aiohttp.ClientTimeout(
            total=timeouts.total, connect=timeouts.connect, sock_read=timeouts.read
        )
        # Status streams and downloads last as long as they last: no total, only ``read``.
        self._long_timeout = aiohttp.ClientTimeout(
            total=None, connect=timeouts.connect, sock_read=timeouts.read
        )
        self.retry = retry
        self.download_policy = download_policy
        self._session = session
        self._own_session = session is None
        self._sleep = sleep
        self._on_rate_limited = on_rate_limited
        self._rng = random.Random()
        self._closed = False
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self.counts: dict[str, int] = {}
        # Every request waits for a connection here, before aiohttp's timeouts start:
        # aiohttp counts the wait for a pooled connection against ``connect`` and ``total``,
        # so a fan-out of thousands of creates would fail the later ones as "timed out"
        # though they were never sent. API calls and downloads share ``_pool``; status
        # streams, which hold a connection for a job's life, have places of their own, so
        # the two together never ask aiohttp for more connections than its pool holds.
        # Free, a semaphore costs nothing (an asyncio.Semaphore does not yield).
        self._pool_size = _pool_size(session)
        #: How many status streams may be open at once (see :data:`MAX_STREAMS`).
        self.max_streams = min(MAX_STREAMS, self._pool_size // 4)
        self._pool = asyncio.Semaphore(self._pool_size - self.max_streams)
        self._streams = asyncio.Semaphore(self.max_streams)

    @property
    def closed(self) -> bool:
        """True after :meth:`aclose`."""
        return self._closed

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            if self._session is not None and not self._own_session:
                raise TransportError("the aiohttp session given to ltx2 is closed")
            self._session = aiohttp.ClientSession(
                timeout=self._api_timeout,
                trust_env=self.trust_env,
                connector=aiohttp.TCPConnector(limit=self._pool_size, enable_cleanup_closed=True),
                raise_for_status=False,
            )
            self._own_session = True
            # Holds the session until this transport is gone or the interpreter exits, so
            # that _abandoned runs before aiohttp's own finalizers can.
            self._finalizer = weakref.finalize(self, _abandoned, self._session, self.provider.name)
        return self._session

    async def aclose(self) -> None:
        """Close the session if this transport made it."""
        self._closed = True
        if self._finalizer is not None:
            self._finalizer.detach()
        if self._own_session and self._session is not None and not self._session.closed:
            await self._session.close()

    # -- API calls ----------------------------------------------------------------------

    async def send(
        self, call: HTTPCall, *, on_retry: Callable[[], object] | None = None
    ) -> HTTPReply:
        """Send a call, with retries as the policy and the call's idempotency allow;
        ``on_retry()`` is called as each retry is sent."""
        attempt = 0
        while True:
            attempt += 1
            self.counts[call.kind] = self.counts.get(call.kind, 0) + 1
            try:
                async with self._pool:
                    reply = await self._send_pooled(call)
            except _NotSent as exc:
                error: Exception = exc.error
                retry_after = None
                retryable = True
            except TransportError as exc:
                error, retry_after, retryable = exc, None, call.idempotent
            else:
                if reply.status < 400 or reply.status in call.accept:
                    carried = self.provider.reply_error(reply)
                    if carried is None:
                        return reply
                    message, details = carried
                    message = scrub(message, _secrets(call), limit=2000)
                    raise APIError(
                        message, status_code=reply.status, provider=self.provider.name,
                        details=details, method=call.method, url=_redact(call),
                    )  # fmt: skip
                api_error = self._api_error(reply, call.method, _redact(call), call)
                error = api_error
                retry_after = getattr(api_error, "retry_after", None)
                if reply.status == 429 and self._on_rate_limited is not None:
                    self._on_rate_limited(retry_after or self.retry.base_delay)
                retryable = reply.status in (429, 503) or (
                    call.idempotent and reply.status in (500, 502, 504)
                )
            if not (retryable and self.retry.enabled and attempt < self.retry.attempts):
                raise error
            delay = self._delay(attempt, retry_after)
            log.info(
                "%s %s: %s; retry %d in %.2fs",
                call.kind, self.provider.name, _describe(error), attempt, delay,
            )  # fmt: skip
            await self._sleep(delay)
            if on_retry is not None:
                on_retry()

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.retry.max_retry_after)
        cap = min(self.retry.max_delay, self.retry.base_delay * 2 ** (attempt - 1))
        return self._rng.uniform(0, cap)

    async def _send_pooled(self, call: HTTPCall) -> HTTPReply:
        # Failures are raised outside the except blocks, so that no aiohttp exception (its
        # repr holds the request headers and full URL) rides along as __context__.
        failure: Exception
        try:
            # A coroutine, not ``_open``'s context manager: an API call's body is read at
            # once, and an async generator per call costs more than the call's own work.
            resp = await self._follow(
                call.method,
                call.url,
                headers=call.headers,
                params=call.params,
                json=call.json,
                data=call.data,
                hop=self._api_hop(call),
            )
            try:
                body = await resp.read()
            finally:
                resp.release()
            if log.isEnabledFor(logging.DEBUG):
                log.debug("%s %s -> %d", call.method, _redact(call), resp.status)
            return HTTPReply(resp.status, resp.headers, body)
        except aiohttp.ClientConnectorError as exc:
            # The TCP connection never opened: the provider saw nothing.
            failure = _NotSent(
                TransportError(
                    f"{call.kind}: cannot connect to {_origin_text(call.url)}: "
                    f"{_scrub_error(exc, call)}",
                    maybe_sent=False,
                )
            )
        except aiohttp.ConnectionTimeoutError:
            # ``connect`` ran out while waiting for a pooled connection or opening one: no
            # byte of the request left (a timeout after sending is a SocketTimeoutError or
            # the ``total`` one, below).
            failure = _NotSent(
                TransportError(
                    f"{call.kind}: connecting to {_origin_text(call.url)} timed out",
                    maybe_sent=False,
                )
            )
        except TimeoutError:
            failure = TransportError(f"{call.kind}: {call.method} {_redact(call)} timed out")
        except aiohttp.ClientError as exc:
            failure = TransportError(
                f"{call.kind}: {call.method} {_redact(call)} failed: {_scrub_error(exc, call)}"
            )
        raise failure

    def _api_hop(self, call: HTTPCall) -> _HopCheck:
        """An API call follows a redirect only on its own origin."""

        async def check(status: int, target: str) -> None:
            # Parsed only when a redirect comes, not up front for every call.
            if _origin(target) != _origin(call.url):
                raise APIError(
                    f"refused a redirect to another origin ({_origin_text(target)}): the "
                    "request carries the API key",
                    status_code=status, provider=self.provider.name,
                    method=call.method, url=_redact(call),
                )  # fmt: skip

        return check

    def _api_error(
        self, reply: HTTPReply, method: str, url: str, call: HTTPCall | None = None
    ) -> APIError:
        """The error for an error reply to ``call`` (or to a GET of ``url``, a download)."""
        message, details, error_type = self.provider.parse_error(reply)
        # A proxy or a provider may echo the request back (its key, the webhook URL).
        secrets = _secrets(call) if call is not None else secrets_of(None, url=url)
        message = scrub(str(message), secrets, limit=2000)
        url = redact_url(url) if call is None else url
        cls = error_for_status(reply.status)
        kw: dict[str, Any] = {
            "status_code": reply.status,
            "provider": self.provider.name,
            "details": details,
            "error_type": error_type,
            "method": method,
            "url": url,
        }
        if cls is RateLimitError or reply.status == 503:
            # Retry-After on a 429 (RFC 6585) and on a 503 (RFC 9110 15.6.4) alike.
            kw["retry_after"] = parse_retry_after(reply.headers.get("retry-after"))
        return cls(message, **kw)

    @contextlib.asynccontextmanager
    async def _open(
        self,
        method: str,
        url: str,
        *,
        hop: _HopCheck,
        max_redirects: int = _MAX_API_REDIRECTS,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """:meth:`_follow`'s final response, released when the block ends (streams and
        downloads read it in the block, with no ``total`` timeout: only ``read``)."""
        resp = await self._follow(
            method, url, headers=headers, params=params, timeout=self._long_timeout, hop=hop,
            max_redirects=max_redirects,
        )  # fmt: skip
        try:
            yield resp
        finally:
            resp.release()

    async def _follow(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        data: bytes | None = None,
        timeout: aiohttp.ClientTimeout | None = None,
        hop: _HopCheck,
        max_redirects: int = _MAX_API_REDIRECTS,
    ) -> aiohttp.ClientResponse:
        """The final response of a request, following redirects by hand: ``hop(status,
        target)`` is awaited before each one is followed and raises to refuse it. The caller
        releases the response. ``timeout`` defaults to the API call's, on every request: an
        injected session's default timeout never holds."""
        session = self._get_session()
        # aiohttp copies the headers into its own multidict: no copy here.
        kwargs: dict[str, Any] = {
            "headers": headers,
            "allow_redirects": False,
            "timeout": self._api_timeout if timeout is None else timeout,
        }
        query = dict(params) if params else None
        for _ in range(max_redirects + 1):
            kwargs.update(_body(session, kwargs["headers"], json, data))
            resp = await session.request(method, url, params=query, **kwargs)
            location = resp.headers.get("Location") if resp.status in _REDIRECTS else None
            if location is None:
                return resp
            try:
                target = str(resp.url.join(URL(location)))
            except ValueError:
                resp.release()
                raise TransportError(
                    f"{method} {redact_url(url, query)}: a redirect to a malformed URL"
                ) from None
            resp.release()
            await hop(resp.status, target)
            if resp.status == 303 or (resp.status in (301, 302) and method == "POST"):
                # RFC 9110 15.4: the redirected request is a GET without the body.
                method, json, data = "GET", None, None
                kwargs.pop("json", None)
                kwargs.pop("data", None)
            url, query = target, None
        raise TransportError(f"{method} {redact_url(url)}: more than {max_redirects} redirects")

    # -- streams and downloads ------------------------------------------------------------

    async def events(self, call: HTTPCall) -> AsyncIterator[str]:
        """The ``data:`` payloads of a server-sent-events stream (one request, no retries).

        At most :attr:`max_streams` are open at once; one more waits for a place (the
        caller keeps to the bound: past it, a job is polled instead)."""
        async with self._response(
            call.method,
            call.url,
            place=self._streams,
            what=f"status stream: {call.method} {_redact(call)}",
            hop=self._api_hop(call),
            call=call,
            headers={**call.headers, "Accept": "text/event-stream"},
        ) as resp:
            data: list[str] = []
            async for raw in resp.content:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if not line:
                    if data:
                        yield "\n".join(data)
                        data = []
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip())
            if data:
                yield "\n".join(data)

    async def put(self, url: str, data: bytes, headers: dict[str, str]) -> None:
        """PUT bytes to a presigned upload URL."""
        await self.send(HTTPCall("PUT", url, "upload", headers=headers, data=data))

    def _download_hop(self) -> _HopCheck:
        async def check(status: int, target: str) -> None:
            await self._check_download_url(target, redirect=True)

        return check

    async def _check_download_url(self, url: str, *, redirect: bool = False) -> None:
        """The scheme rules and the download policy, for the first URL and every hop."""
        what = "a redirect to" if redirect else "downloading from"
        try:
            parts = URL(url)
            scheme, host = parts.scheme.lower(), parts.host
            port = parts.port
        except ValueError:
            raise TransportError(f"refusing {what} a malformed URL", maybe_sent=False) from None
        if scheme not in ("http", "https") or not host:
            shown = f"{scheme}:" if scheme else repr(url[:40])
            raise TransportError(f"refusing {what} a non-http(s) URL ({shown})", maybe_sent=False)
        policy = self.download_policy
        if not policy.restricted:
            return
        shown = f"[{host}]" if ":" in host else host
        for address in await _addresses(host, port):
            refused = _refused(address, policy)
            if refused:
                raise TransportError(
                    f"refusing {what} {scheme}://{shown}: it is a {refused} address "
                    f"({address}) and the download policy forbids those",
                    maybe_sent=False,
                )

    @contextlib.asynccontextmanager
    async def _response(
        self,
        method: str,
        url: str,
        *,
        place: asyncio.Semaphore,
        what: str,
        hop: _HopCheck,
        call: HTTPCall | None = None,
        headers: Mapping[str, str] | None = None,
        max_redirects: int = _MAX_API_REDIRECTS,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """A response read by the block (a status stream, a file): a ``place`` taken for it,
        an error status raised as :class:`APIError`, and aiohttp's failures, on the way in
        or while the block reads, raised as :class:`TransportError` saying ``what`` failed.
        ``call`` is the API call it answers (None for a file: its URL is redacted here)."""
        failure: TransportError
        try:
            async with (
                place,
                self._open(
                    method,
                    url,
                    headers=headers,
                    params=call.params if call is not None else None,
                    hop=hop,
                    max_redirects=max_redirects,
                ) as resp,
            ):
                if resp.status >= 400:
                    body = await resp.content.read(4096)
                    reply = HTTPReply(resp.status, resp.headers, body)
                    shown = _redact(call) if call is not None else url
                    raise self._api_error(reply, method, shown, call)
                yield resp
            return
        except TimeoutError:
            failure = TransportError(f"{what} timed out")
        except aiohttp.ClientError as exc:
            failure = TransportError(f"{what} failed: {_scrub_error(exc, call)}")
        # Thrown in at the yield, the aiohttp error is still being handled by the block's
        # ``async with`` here: it must not ride along as the failure's __context__.
        _raise_alone(failure)

    @contextlib.asynccontextmanager
    async def _get_file(self, url: str) -> AsyncIterator[aiohttp.ClientResponse]:
        """A GET of a file (a video to stream or save): the URL and every redirect hop held
        to the scheme rules and the download policy, in a place of the pool."""
        await self._check_download_url(url)
        async with self._response(
            "GET",
            url,
            place=self._pool,
            what=f"download from {redact_url(url)}",
            hop=self._download_hop(),
            max_redirects=self.download_policy.max_redirects,
        ) as resp:
            yield resp

    async def stream(self, url: str, *, chunk_size: int = _CHUNK) -> AsyncIterator[bytes]:
        """A file's bytes, in chunks (http and https only, every redirect hop checked)."""
        async with self._get_file(url) as resp:
            async for chunk in resp.content.iter_chunked(chunk_size):
                yield chunk

    async def download(
        self,
        url: str,
        path: str | os.PathLike[str],
        *,
        max_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
        progress: ProgressCallback | None = None,
    ) -> int:
        """Stream ``url`` into ``path`` through a temporary file in the same folder, renamed
        into place only when complete. Refuses more than ``max_bytes``. Returns the size."""
        target = Path(path)
        folder = target.parent if str(target.parent) else Path(".")
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=folder)
        os.close(fd)
        done = 0
        try:
            async with self._get_file(url) as resp:
                total = resp.content_length
                if total is not None and total > max_bytes:
                    raise TransportError(
                        f"download refused: {total} bytes is over the {max_bytes}-byte limit"
                    )
                async with await anyio.open_file(tmp_name, "wb") as fh:
                    async for chunk in resp.content.iter_chunked(_CHUNK):
                        done += len(chunk)
                        if done > max_bytes:
                            raise TransportError(
                                f"download refused: more than the {max_bytes}-byte limit"
                            )
                        await fh.write(chunk)
                        if progress is not None:
                            progress(done, total)
            # mkstemp makes the file 0600; give it the mode an ordinary new file gets.
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp_name, 0o666 & ~umask)
            os.replace(tmp_name, target)
            return done
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)


_HopCheck = Callable[[int, str], Awaitable[None]]


def _pool_size(session: aiohttp.ClientSession | None) -> int:
    """The connections a transport may hold at once: :data:`POOL_SIZE` for its own session,
    an injected session's connector limit (its per-host one where that is lower: a
    provider's calls go to one host), or POOL_SIZE where the connector sets none."""
    connector = session.connector if session is not None else None
    if connector is None:
        return POOL_SIZE
    limits = [n for n in (connector.limit, connector.limit_per_host) if n > 0]
    return min(limits) if limits else POOL_SIZE


class _NotSent(Exception):
    """The request never left: safe to retry even a create."""

    def __init__(self, error: TransportError) -> None:
        super().__init__(str(error))
        self.error = error


def _raise_alone(error: BaseException) -> NoReturn:
    """Raise ``error`` with no ``__context__``, even where another exception is being
    handled (an aiohttp exception's repr holds the request headers and the full URL)."""
    try:
        raise error
    except BaseException:
        error.__context__ = None
        raise  # a bare raise chains nothing


def _redact(call: HTTPCall) -> str:
    return redact_url(call.url, call.params)


def _secrets(call: HTTPCall) -> list[str]:
    return secrets_of(call.headers, call.params, call.json, call.url)


def _origin(url: str) -> tuple[str, str, int | None]:
    try:
        parts = URL(url)
        return (parts.scheme.lower(), (parts.host or "").lower(), parts.port)
    except ValueError:
        return ("", "", None)


def _origin_text(url: str) -> str:
    scheme, host, port = _origin(url)
    return f"{scheme}://{host}:{port}" if port is not None else f"{scheme}://{host}"


def _scrub_error(exc: BaseException, call: HTTPCall | None = None) -> str:
    """What went wrong, from an aiohttp exception's own fields, never its repr: a
    ``ClientResponseError``'s repr holds the request headers and the full URL."""
    if isinstance(exc, aiohttp.ClientResponseError):
        text = f"{type(exc).__name__} {exc.status}: {exc.message}"
    elif isinstance(exc, aiohttp.ClientConnectorError):
        text = f"{type(exc).__name__}: {exc.os_error.strerror or type(exc.os_error).__name__}"
    elif isinstance(exc, OSError) and exc.strerror:
        text = f"{type(exc).__name__}: {exc.strerror}"
    elif isinstance(exc, aiohttp.InvalidURL):
        text = f"{type(exc).__name__}"
    else:
        text = (
            f"{type(exc).__name__}: {exc}"
            if str(exc) and "://" not in str(exc)
            else (type(exc).__name__)
        )
    secrets = _secrets(call) if call is not None else []
    return scrub(text, secrets)


async def _addresses(host: str, port: int | None) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port or 0, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise TransportError(
            f"cannot resolve {host}: {exc.strerror or type(exc).__name__}", maybe_sent=False
        ) from None
    found: list[IPAddress] = []
    for *_, sockaddr in infos:
        with contextlib.suppress(ValueError):
            found.append(ipaddress.ip_address(str(sockaddr[0]).split("%")[0]))
    return found


def _refused(address: IPAddress, policy: DownloadPolicy) -> str | None:
    """Which kind of address the policy refuses ``address`` as, or None."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return None if policy.allow_loopback else "loopback"
    if (
        address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    ):
        return None if policy.allow_private else "private"
    return None


def _describe(error: Exception) -> str:
    return str(error) or type(error).__name__


def _body(
    session: aiohttp.ClientSession, headers: dict[str, str], json: Any, data: bytes | None
) -> dict[str, Any]:
    """The body arguments of a request: ``json=`` or ``data=`` as given, or, over
    :data:`_LARGE_BODY` bytes, a fresh stream of them (one per send: a redirect resends it)
    with the content type they would have had. Its length is still sent."""
    if json is not None:
        text = session.json_serialize(json)
        if len(text) <= _LARGE_BODY // 4:  # at most 4 bytes per character: no need to encode
            return {"json": json}
        encoded = text.encode()
        if len(encoded) <= _LARGE_BODY:
            return {"json": json}
        if not any(name.lower() == "content-type" for name in headers):
            headers["Content-Type"] = "application/json"
        return {"data": io.BytesIO(encoded)}
    if data is not None and len(data) > _LARGE_BODY:
        return {"data": io.BytesIO(data)}
    return {} if data is None else {"data": data}

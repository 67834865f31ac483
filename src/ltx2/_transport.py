"""The transport: the one place that talks HTTP.

It owns one ``aiohttp.ClientSession``, applies timeouts, retries with exponential backoff and
full jitter honouring ``Retry-After``, and translates every aiohttp failure and HTTP error
into ltx2's errors, so nothing above it sees aiohttp.

A create is retried only when the provider cannot have started it: the connection never
opened, a 429, or a 503 (the emulator and the providers answer these before processing).
Anything else after the request may have reached the provider — a reset, a read timeout, a
500 — is raised, never sent again: one create must never become two paid jobs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import aiohttp
import anyio

from ._config import RetryPolicy, Timeouts
from ._errors import APIError, RateLimitError, TransportError, error_for_status
from ._types import HTTPCall, HTTPReply
from .providers import Provider

__all__ = ["DEFAULT_MAX_DOWNLOAD_BYTES", "Transport"]

log = logging.getLogger("ltx2")

#: Downloads larger than this are refused (a 20 s 4K clip is well under 1 GiB).
DEFAULT_MAX_DOWNLOAD_BYTES = 2 * 1024**3
_CHUNK = 256 * 1024

ProgressCallback = Callable[[int, int | None], Any]


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (seconds, possibly fractional, or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    import time

    return max(0.0, when.timestamp() - time.time())


class Transport:
    """HTTP for one client: a session, retries and error mapping for one provider.

    ``on_rate_limited(seconds)`` is called when a 429 comes back anyway, so the client's
    limiter can hold creates back.
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
    ) -> None:
        self.provider = provider
        self.timeouts = timeouts
        self.retry = retry
        self._session = session
        self._own_session = session is None
        self._sleep = sleep
        self._on_rate_limited = on_rate_limited
        self._rng = random.Random()
        self._closed = False
        self.counts: dict[str, int] = {}

    @property
    def closed(self) -> bool:
        """True after :meth:`aclose`."""
        return self._closed

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            if self._session is not None and not self._own_session:
                raise TransportError("the aiohttp session given to ltx2 is closed")
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(
                    total=self.timeouts.total,
                    connect=self.timeouts.connect,
                    sock_read=self.timeouts.read,
                ),
                connector=aiohttp.TCPConnector(limit=256, enable_cleanup_closed=True),
                raise_for_status=False,
            )
            self._own_session = True
        return self._session

    async def aclose(self) -> None:
        """Close the session if this transport made it."""
        self._closed = True
        if self._own_session and self._session is not None and not self._session.closed:
            await self._session.close()

    # -- API calls ----------------------------------------------------------------------

    async def send(self, call: HTTPCall) -> HTTPReply:
        """Send a call, with retries as the policy and the call's idempotency allow."""
        attempt = 0
        while True:
            attempt += 1
            self.counts[call.kind] = self.counts.get(call.kind, 0) + 1
            try:
                reply = await self._send_once(call)
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
                    raise APIError(
                        message, status_code=reply.status, provider=self.provider.name,
                        details=details,
                    )  # fmt: skip
                error = self._api_error(reply)
                retry_after = getattr(error, "retry_after", None)
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

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.retry.max_retry_after)
        cap = min(self.retry.max_delay, self.retry.base_delay * 2 ** (attempt - 1))
        return self._rng.uniform(0, cap)

    async def _send_once(self, call: HTTPCall) -> HTTPReply:
        session = self._get_session()
        kwargs: dict[str, Any] = {"headers": dict(call.headers)}
        if call.params:
            kwargs["params"] = dict(call.params)
        if call.json is not None:
            kwargs["json"] = call.json
        elif call.data is not None:
            kwargs["data"] = call.data
        try:
            async with session.request(call.method, call.url, **kwargs) as resp:
                body = await resp.read()
                headers = {k.lower(): v for k, v in resp.headers.items()}
                log.debug("%s %s -> %d", call.method, call.url, resp.status)
                return HTTPReply(resp.status, headers, body)
        except aiohttp.ClientConnectorError as exc:
            # The TCP connection never opened: the provider saw nothing.
            raise _NotSent(
                TransportError(
                    f"cannot connect to {_host(call.url)}: {exc.os_error}", maybe_sent=False
                )
            ) from None
        except TimeoutError:
            raise TransportError(f"{call.kind} to {_host(call.url)} timed out") from None
        except aiohttp.ClientError as exc:
            raise TransportError(f"{call.kind} to {_host(call.url)} failed: {exc!r}") from None

    def _api_error(self, reply: HTTPReply) -> APIError:
        message, details, error_type = self.provider.parse_error(reply)
        cls = error_for_status(reply.status)
        kw: dict[str, Any] = {
            "status_code": reply.status,
            "provider": self.provider.name,
            "details": details,
            "error_type": error_type,
        }
        if cls is RateLimitError:
            return RateLimitError(
                message, retry_after=parse_retry_after(reply.headers.get("retry-after")), **kw
            )
        return cls(message, **kw)

    # -- streams and downloads ------------------------------------------------------------

    async def events(self, call: HTTPCall) -> AsyncIterator[str]:
        """The ``data:`` payloads of a server-sent-events stream (one request, no retries)."""
        session = self._get_session()
        timeout = aiohttp.ClientTimeout(
            total=None, connect=self.timeouts.connect, sock_read=self.timeouts.read
        )
        try:
            async with session.request(
                call.method,
                call.url,
                headers={**call.headers, "Accept": "text/event-stream"},
                params=dict(call.params) if call.params else None,
                timeout=timeout,
            ) as resp:
                if resp.status >= 400:
                    raise self._api_error(HTTPReply(resp.status, dict(resp.headers), b""))
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
        except TimeoutError:
            raise TransportError(f"status stream from {_host(call.url)} timed out") from None
        except aiohttp.ClientError as exc:
            raise TransportError(f"status stream from {_host(call.url)}: {exc!r}") from None

    async def put(self, url: str, data: bytes, headers: dict[str, str]) -> None:
        """PUT bytes to a presigned upload URL."""
        await self.send(HTTPCall("PUT", url, "upload", headers=headers, data=data))

    async def stream(self, url: str, *, chunk_size: int = _CHUNK) -> AsyncIterator[bytes]:
        """A file's bytes, in chunks (http and https only)."""
        _check_scheme(url)
        session = self._get_session()
        timeout = aiohttp.ClientTimeout(
            total=None, connect=self.timeouts.connect, sock_read=self.timeouts.read
        )
        try:
            async with session.get(url, timeout=timeout) as resp:
                if resp.status >= 400:
                    body = await resp.content.read(4096)
                    raise self._api_error(HTTPReply(resp.status, dict(resp.headers), body))
                async for chunk in resp.content.iter_chunked(chunk_size):
                    yield chunk
        except TimeoutError:
            raise TransportError(f"download from {_host(url)} timed out") from None
        except aiohttp.ClientError as exc:
            raise TransportError(f"download from {_host(url)} failed: {exc!r}") from None

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
        _check_scheme(url)
        target = Path(path)
        folder = target.parent if str(target.parent) else Path(".")
        session = self._get_session()
        timeout = aiohttp.ClientTimeout(
            total=None, connect=self.timeouts.connect, sock_read=self.timeouts.read
        )
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=folder)
        os.close(fd)
        done = 0
        try:
            async with session.get(url, timeout=timeout) as resp:
                if resp.status >= 400:
                    body = await resp.content.read(4096)
                    raise self._api_error(HTTPReply(resp.status, dict(resp.headers), body))
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
        except TimeoutError:
            raise TransportError(f"download from {_host(url)} timed out") from None
        except aiohttp.ClientError as exc:
            raise TransportError(f"download from {_host(url)} failed: {exc!r}") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
        return done


class _NotSent(Exception):
    """The request never left: safe to retry even a create."""

    def __init__(self, error: TransportError) -> None:
        super().__init__(str(error))
        self.error = error


def _check_scheme(url: str) -> None:
    if not url.lower().startswith(("https://", "http://")):
        raise TransportError(f"refusing to download from a non-http(s) URL: {url[:40]!r}")


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _describe(error: Exception) -> str:
    return str(error) or type(error).__name__

"""``Job``: the awaitable handle of one generation, and ``Video``: what a finished job made."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from ._config import check_seconds
from ._errors import JobCancelledError, JobFailedError, JobTimeoutError, LTX2Error
from ._transport import DEFAULT_MAX_DOWNLOAD_BYTES, ProgressCallback, Transport
from ._types import JobStatus, StatusUpdate

if TYPE_CHECKING:
    from collections.abc import Generator

    from ._request import VideoRequest

__all__ = ["Job", "JobHost", "Video"]


class JobHost(Protocol):
    """What a :class:`Job` asks of the client it came from (the client's resolver answers):
    the one interface between them (STYLE.md rule 20)."""

    @property
    def transport(self) -> Transport:
        """The transport a finished job's :class:`Video` downloads through."""

    async def refresh(self, job: Job) -> None:
        """One status read of ``job`` now; applies what it finds to the job."""

    async def cancel(self, job: Job) -> bool:
        """Ask the provider to cancel ``job``; True once its status says CANCELLED."""

    async def collected(self, job: Job) -> None:
        """The caller got ``job``'s outcome (``await job`` returned or raised it): the store
        stops handing it back to ``resume()``. Never raises."""


@dataclass(frozen=True, slots=True)
class Video:
    """A finished job's video.

    ``url`` is where the provider serves it, ``job_id`` and ``provider`` say whose it is,
    ``metrics`` holds what the provider reported (processing time, usage, ...).
    """

    url: str
    job_id: str
    provider: str
    metrics: Mapping[str, Any] = field(default_factory=dict)
    _transport: Transport | None = field(default=None, repr=False, compare=False)

    async def save(
        self,
        path: str | os.PathLike[str],
        *,
        progress: ProgressCallback | None = None,
        max_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
    ) -> int:
        """Download the video to ``path`` and return its size in bytes.

        Missing parent folders are created. The bytes go to a temporary file beside ``path``
        that is renamed into place only when complete, so ``path`` never holds half a video.
        More than ``max_bytes`` is refused (:class:`ltx2.TransportError`). A path that cannot
        be written (a file where a folder should be, no permission, ...) raises
        :class:`ltx2.LTX2Error` naming it. ``progress(done, total)`` is called per chunk
        (``total`` is None when the server does not say).
        """
        target = Path(path)
        try:
            await anyio.Path(target.parent).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LTX2Error(
                f"cannot save the video to {str(target)!r}: cannot create the folder "
                f"{str(target.parent)!r} ({exc.strerror or exc})"
            ) from None
        async with self._transport_for_download() as transport:
            try:
                return await transport.download(
                    self.url, target, max_bytes=max_bytes, progress=progress
                )
            except OSError as exc:
                raise LTX2Error(
                    f"cannot save the video to {str(target)!r} ({exc.strerror or exc})"
                ) from None

    async def stream(self, *, chunk_size: int = 256 * 1024) -> AsyncIterator[bytes]:
        """The video's bytes, chunk by chunk."""
        async with self._transport_for_download() as transport:
            async for chunk in transport.stream(self.url, chunk_size=chunk_size):
                yield chunk

    def _transport_for_download(self) -> _DownloadTransport:
        return _DownloadTransport(self._transport)


class _DownloadTransport:
    """The client's transport while it is open; else a short-lived one of our own."""

    def __init__(self, transport: Transport | None) -> None:
        self._given = transport
        self._own: Transport | None = None

    async def __aenter__(self) -> Transport:
        if self._given is not None and not self._given.closed:
            return self._given
        from .providers import get

        provider = self._given.provider if self._given else get("eachlabs")("-")
        # A closed client's video keeps its client's download policy, timeouts and proxies.
        if self._given is not None:
            self._own = Transport(
                provider,
                download_policy=self._given.download_policy,
                timeouts=self._given.timeouts,
                trust_env=self._given.trust_env,
            )
        else:
            self._own = Transport(provider)
        return self._own

    async def __aexit__(self, *exc: object) -> None:
        if self._own is not None:
            await self._own.aclose()


class Job:
    """One generation at a provider. ``await job`` gives its :class:`Video`.

    ``id`` is the provider's id (Eachlabs predictionID, fal request_id, ...), ``provider`` its
    name and ``status`` the latest :class:`JobStatus` known. ``request`` is the
    :class:`VideoRequest` it was submitted with (``None`` for a job found by id or resumed).
    A job resolves once: later or duplicate deliveries change nothing.
    """

    __slots__ = ("__weakref__", "_collected", "_future", "_host", "_update", "_watchers", "id",
                 "key", "meta", "provider", "request")  # fmt: skip

    def __init__(
        self,
        host: JobHost,
        key: str,
        provider: str,
        job_id: str | None = None,
        update: StatusUpdate | None = None,
        meta: Mapping[str, str] | None = None,
    ) -> None:
        self._host = host
        self.key = key
        self.provider = provider
        self.id: str = job_id or ""
        self.meta: Mapping[str, str] = meta or {}
        self.request: VideoRequest | None = None
        self._update = update or StatusUpdate(JobStatus.QUEUED, "submitted")
        self._future: asyncio.Future[StatusUpdate] = asyncio.get_running_loop().create_future()
        self._watchers: list[asyncio.Queue[StatusUpdate | BaseException]] | None = None
        self._collected = False
        if self._update.status.terminal:
            self._future.set_result(self._update)

    def __repr__(self) -> str:
        return f"<Job {self.provider}:{self.id or '?'} {self._update.status.value}>"

    @property
    def status(self) -> JobStatus:
        """The latest status known (without asking the provider)."""
        return self._update.status

    @property
    def last_update(self) -> StatusUpdate:
        """The latest normalized reading, with queue position, logs and metrics."""
        return self._update

    @property
    def done(self) -> bool:
        """True once the job succeeded, failed or was cancelled."""
        return self._update.status.terminal

    def __await__(self) -> Generator[Any, None, Video]:
        return self.result().__await__()

    async def result(self, timeout: float | None = None) -> Video:
        """Wait for the job and return its :class:`Video`.

        Raises :class:`ltx2.JobFailedError` or :class:`ltx2.JobCancelledError` when it ended
        otherwise, and :class:`ltx2.JobTimeoutError` after ``timeout`` seconds — the job keeps
        running and can be awaited again. ``timeout`` is a number of seconds (0: only if it has
        already finished) or ``None`` (as long as it takes); anything else is an
        :class:`ltx2.InvalidRequestError`.
        """
        if timeout is not None:
            timeout = check_seconds("timeout", timeout, zero=True)
        if not self._future.done():
            if timeout is None:
                # The common case, without a cancel scope (it costs more than the wait).
                # Shielded: one caller cancelled must not cancel the job for the others. An
                # error it ended with is raised below, once it is marked collected.
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._future)
            else:
                try:
                    with anyio.fail_after(timeout):
                        with contextlib.suppress(Exception):
                            await asyncio.shield(self._future)
                except TimeoutError:
                    raise JobTimeoutError(
                        self,
                        f"{self.provider} job {self.id} did not finish within {timeout} s "
                        f"(status {self.status.value}); it keeps running",
                    ) from None
        if not self._collected and self._update.status.terminal:
            # Its outcome reaches the caller now: resume() no longer hands it back. (An
            # error that ends no job, such as ClientClosedError, collects nothing.)
            self._collected = True
            await self._host.collected(self)
        return self._outcome(self._future.result())

    def _outcome(self, update: StatusUpdate) -> Video:
        if update.status is JobStatus.SUCCEEDED and update.video_url:
            return Video(
                update.video_url, self.id, self.provider, dict(update.metrics),
                self._host.transport,
            )  # fmt: skip
        if update.status is JobStatus.CANCELLED:
            raise JobCancelledError(self)
        raise JobFailedError(self, update.error or update.raw or "failed", update.error_code)

    async def refresh(self) -> JobStatus:
        """Ask the provider for the status now (one request) and return it."""
        await self._host.refresh(self)
        return self.status

    async def cancel(self) -> bool:
        """Ask the provider to cancel the job; returns True once the provider's status says
        it is CANCELLED.

        A cancel is a request: a job that finishes anyway (Eachlabs' cancel is best effort;
        fal and RunComfy cancel only queued jobs) keeps its status and resolves with its
        video, and ``cancel()`` returns False (too late). False also when the provider has
        not confirmed yet: the job is still followed, and resolves with whatever comes.
        :class:`ltx2.UnsupportedError` where the provider cannot cancel; a job that already
        finished is left as it is."""
        return await self._host.cancel(self)

    async def updates(self) -> AsyncIterator[StatusUpdate]:
        """Every status change from now on, starting with the current one, ending with the
        terminal one. Each item is a :class:`StatusUpdate` (``.status``, ``.queue_position``,
        ``.logs``).

        A change is a change of something a user reads: the status, the provider's status
        word (``raw``), the queue position, new log lines, the error or the video. Readings
        that differ only in ``metrics`` (timings, usage: they change on every poll) are not
        yielded; :attr:`last_update` always holds the latest reading. (No provider reports a
        progress figure beyond these.)"""
        queue: asyncio.Queue[StatusUpdate | BaseException] = asyncio.Queue()
        if self._watchers is None:
            self._watchers = []
        self._watchers.append(queue)
        try:
            last = self._update
            yield last
            while not last.status.terminal:
                item = await queue.get()
                if isinstance(item, BaseException):
                    raise item
                last = item
                yield last
        finally:
            self._watchers.remove(queue)

    def _apply(self, update: StatusUpdate) -> None:
        """A new reading from the store. Resolves the job once."""
        if self._future.done() or update is self._update or update == self._update:
            return
        changed = _seen(update) != _seen(self._update)
        self._update = update
        if self._watchers and changed:
            for queue in self._watchers:
                queue.put_nowait(update)
        if update.status.terminal:
            self._future.set_result(update)

    def _release(self, error: BaseException, update: StatusUpdate | None = None) -> None:
        """Nobody will resolve this job here any more (its client closed, or the provider no
        longer knows it): every awaiter, now and later, gets ``error``; the status becomes
        ``update`` if given, else stays the last one known."""
        if self._future.done():
            return
        if update is not None:
            self._update = update
        self._future.set_exception(error)
        self._future.exception()  # retrieved: an unawaited job logs nothing
        if self._watchers:
            for queue in self._watchers:
                queue.put_nowait(error)


def _seen(update: StatusUpdate) -> tuple[Any, ...]:
    """What a user reads of a reading (see :meth:`Job.updates`): all of it but the metrics."""
    return (
        update.status, update.raw, update.queue_position, update.logs, update.error,
        update.video_url,
    )  # fmt: skip

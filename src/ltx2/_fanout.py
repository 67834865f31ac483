"""Fan-out: many jobs at once, within a concurrency bound and the provider's limits.

Built on anyio task groups: at most ``concurrency`` requests are between "submit" and
"finished" at any moment, requests are pulled from the (async) iterable only when a slot is
free, and when the caller is cancelled — or, in ``gather``, a job fails — every job already
submitted is cancelled at the provider where it can be, and no task outlives the call.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Sized
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskGroup

from ._errors import InvalidRequestError, LTX2Error, UnsupportedError
from ._job import Job, Video
from ._request import VideoRequest

if TYPE_CHECKING:
    from ._client import Client

__all__ = ["as_completed", "gather"]

log = logging.getLogger("ltx2")

ProgressHook = Callable[[int, int | None, Job], Any]
#: How long cancelling submitted jobs at the provider may take when a fan-out is cancelled.
CANCEL_GRACE = 10.0


async def _aiter(
    requests: Iterable[VideoRequest] | AsyncIterable[VideoRequest],
) -> AsyncIterator[VideoRequest]:
    if isinstance(requests, AsyncIterable):
        async for item in requests:
            yield item
    else:
        for item in requests:
            yield item


def _check_concurrency(concurrency: int) -> None:
    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
        raise InvalidRequestError(
            f"concurrency: {concurrency!r} must be a whole number of at least 1",
            field="concurrency",
            value=concurrency,
            allowed=">= 1",
        )


class _Run:
    """One fan-out: the jobs in flight and what to do when it is cut short."""

    def __init__(self, client: Client, total: int | None, on_progress: ProgressHook | None):
        self.client = client
        self.total = total
        self.done = 0
        self.on_progress = on_progress
        self.pending: set[Job] = set()

    async def run_one(self, request: VideoRequest) -> Job:
        if not isinstance(request, VideoRequest):
            raise InvalidRequestError(
                f"requests: expected VideoRequest items, got {type(request).__name__}",
                field="requests",
                value=request,
                allowed="VideoRequest",
            )
        job = await self.client.submit(request)
        self.pending.add(job)
        try:
            # The job is finished either way; its error is raised to whoever awaits it.
            with contextlib.suppress(LTX2Error):
                await job.result()
        finally:
            self.pending.discard(job)
        self.done += 1
        if self.on_progress is not None:
            result = self.on_progress(self.done, self.total, job)
            if inspect.isawaitable(result):
                await result
        return job

    async def cancel_pending(self) -> None:
        """Cancel every job still running at the provider (best effort, bounded)."""
        if not self.pending:
            return
        with anyio.CancelScope(shield=True), anyio.move_on_after(CANCEL_GRACE):
            async with anyio.create_task_group() as tg:
                for job in list(self.pending):
                    tg.start_soon(self._cancel_one, job)

    @staticmethod
    async def _cancel_one(job: Job) -> None:
        try:
            await job.cancel()
        except UnsupportedError:
            pass
        except LTX2Error as exc:
            log.info("could not cancel %s job %s: %s", job.provider, job.id, exc)


def _total(requests: object) -> int | None:
    return len(requests) if isinstance(requests, Sized) else None


async def as_completed(
    client: Client,
    requests: Iterable[VideoRequest] | AsyncIterable[VideoRequest],
    *,
    concurrency: int = 10,
    on_progress: ProgressHook | None = None,
) -> AsyncIterator[Job]:
    """See :meth:`ltx2.Client.as_completed`."""
    _check_concurrency(concurrency)
    run = _Run(client, _total(requests), on_progress)
    send, receive = anyio.create_memory_object_stream[Job](concurrency)
    limiter = anyio.Semaphore(concurrency)

    async def worker(request: VideoRequest) -> None:
        try:
            job = await run.run_one(request)
        finally:
            limiter.release()
        await send.send(job)

    async def feed(tg: TaskGroup) -> None:
        async with send, anyio.create_task_group() as inner:
            async for request in _aiter(requests):
                await limiter.acquire()
                inner.start_soon(worker, request)
            # every worker is done: closing ``send`` ends the consumer's loop

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(feed, tg)
            async with receive:
                async for job in receive:
                    yield job
    except BaseException:
        await run.cancel_pending()
        raise
    finally:
        if run.pending:
            await run.cancel_pending()


async def gather(
    client: Client,
    requests: Iterable[VideoRequest] | AsyncIterable[VideoRequest],
    *,
    concurrency: int = 10,
    return_exceptions: bool = False,
    on_progress: ProgressHook | None = None,
) -> list[Video | BaseException]:
    """See :meth:`ltx2.Client.gather`."""
    _check_concurrency(concurrency)
    run = _Run(client, _total(requests), on_progress)
    results: list[Video | BaseException | None] = []
    limiter = anyio.Semaphore(concurrency)
    first_error: list[BaseException] = []

    async def worker(index: int, request: VideoRequest, tg: TaskGroup) -> None:
        try:
            job = await run.run_one(request)
            results[index] = await job
        except LTX2Error as exc:
            if not return_exceptions:
                if not first_error:
                    first_error.append(exc)
                tg.cancel_scope.cancel()
                return
            results[index] = exc
        finally:
            limiter.release()

    try:
        async with anyio.create_task_group() as tg:
            async for request in _aiter(requests):
                await limiter.acquire()
                results.append(None)
                tg.start_soon(worker, len(results) - 1, request, tg)
    except BaseException:
        await run.cancel_pending()
        raise
    if first_error:
        await run.cancel_pending()
        raise first_error[0]
    return [r for r in results if r is not None]

"""Fan-out: many jobs at once, within a concurrency bound and the provider's limits.

Built on anyio task groups: ``concurrency`` workers each take a request, see its job through
and take the next, so at most ``concurrency`` requests are between "submit" and "handed over"
at any moment, and a request is pulled from the (async) iterable only when a worker is free:
a generator of 100,000 requests is never built up front. Each worker owns its
job: when it is cancelled — the caller was cancelled, ``gather`` met a failure, the consumer of
``as_completed`` stopped early — it cancels its job at the provider where that is possible
(shielded, at most :data:`CANCEL_GRACE` seconds) before it ends, and no task outlives the call.

``as_completed`` must not yield from inside a task group (a cancel scope cannot be suspended in
an async generator and resumed elsewhere), so its workers run under one producer task in the
client's own task group and hand finished jobs over a :class:`_Handoff`; the generator's
``finally`` stops the producer and waits for it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import logging
import uuid
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Sized,
)
from typing import Any, Protocol, TypeAlias

import anyio
from anyio.abc import TaskGroup, TaskStatus

from ._errors import ClientClosedError, InvalidRequestError, LTX2Error, UnsupportedError
from ._job import Job, JobHost, Video
from ._lifecycle import Work
from ._request import VideoRequest
from ._shield import outlive_cancel
from ._types import JobStatus, StatusUpdate

__all__ = [
    "CANCEL_GRACE", "FanoutHost", "ProgressHook", "Requests", "SubmitHook", "as_completed",
    "gather",
]  # fmt: skip

log = logging.getLogger("ltx2")

#: ``on_progress(done, total, job)``: called once per request when its job has finished
#: (``done`` counts finished jobs, ``total`` is ``len(requests)`` or ``None`` when the
#: requests have no length). A plain function or a coroutine function.
ProgressHook: TypeAlias = Callable[[int, int | None, Job], Awaitable[object] | None]
#: ``on_submit(job)``: called once per job as soon as the provider has accepted its create (the
#: job is in flight: follow it, store its id, or ``await job.cancel()``). Not called for a
#: request whose create failed. A plain function or a coroutine function.
SubmitHook: TypeAlias = Callable[[Job], Awaitable[object] | None]
#: What ``as_completed`` and ``gather`` take: any iterable or async iterable of requests.
Requests: TypeAlias = Iterable[VideoRequest] | AsyncIterable[VideoRequest]

#: How long cancelling one submitted job at the provider may take when a fan-out stops early.
CANCEL_GRACE = 10.0

_END = object()


class FanoutHost(Protocol):
    """What fan-out asks of the client it runs on: the one interface between them
    (STYLE.md rule 20)."""

    @property
    def provider(self) -> str:
        """The provider's name."""

    @property
    def jobs(self) -> JobHost:
        """What a job made here (e.g. one that was never submitted) asks of the client."""

    @property
    def closing(self) -> bool:
        """True once the client's ``aclose()`` has begun."""

    def check_open(self) -> None:
        """Raise :class:`ltx2.ClientClosedError` once the client is closing."""

    async def submit(self, request: VideoRequest) -> Job:
        """``Client.submit(request)``."""

    async def start_background(self, func: Work, *, name: str) -> None:
        """``await tg.start(func)`` in the client's own task group (started if need be)."""


class _NotSubmitted(Job):
    """A request whose create failed: a FAILED job with no ``id``; awaiting it raises the
    create's own error (:class:`ltx2.BadRequestError`, :class:`ltx2.RateLimitError`, ...)."""

    __slots__ = ("error",)

    def __init__(self, client: FanoutHost, error: Exception) -> None:
        update = StatusUpdate(JobStatus.FAILED, "not submitted", error=str(error) or repr(error))
        super().__init__(client.jobs, uuid.uuid4().hex, client.provider, None, update)
        self.error = error

    async def result(self, timeout: float | None = None) -> Video:
        raise self.error


class _Source:
    """Pulls requests one at a time from an iterable or an async iterable."""

    def __init__(self, requests: object) -> None:
        self._sync: Iterator[object] | None = None
        self._async: AsyncIterator[object] | None = None
        if isinstance(requests, VideoRequest) or not isinstance(requests, AsyncIterable | Iterable):
            what = "one VideoRequest" if isinstance(requests, VideoRequest) else type(requests)
            raise InvalidRequestError(
                f"requests: expected an iterable or async iterable of VideoRequest, got {what}"
                + (" (wrap it in a list)" if isinstance(requests, VideoRequest) else ""),
                field="requests", value=requests, allowed="iterable of VideoRequest",
            )  # fmt: skip
        self.is_async = isinstance(requests, AsyncIterable)
        if isinstance(requests, AsyncIterable):
            self._async = aiter(requests)
        else:
            assert isinstance(requests, Iterable)
            self._sync = iter(requests)

    async def next(self) -> object:
        if self._async is not None:
            try:
                return await anext(self._async)
            except StopAsyncIteration:
                return _END
        assert self._sync is not None
        return next(self._sync, _END)


def _check_concurrency(concurrency: int) -> None:
    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
        raise InvalidRequestError(
            f"concurrency: {concurrency!r} must be a whole number of at least 1",
            field="concurrency",
            value=concurrency,
            allowed=">= 1",
        )


class _Run:
    """One fan-out: its source, its slots, its progress and its first error."""

    def __init__(
        self,
        client: FanoutHost,
        requests: object,
        concurrency: int,
        on_progress: ProgressHook | None,
        on_submit: SubmitHook | None = None,
    ) -> None:
        _check_concurrency(concurrency)
        for name, hook in (("on_progress", on_progress), ("on_submit", on_submit)):
            if hook is not None and not callable(hook):
                raise InvalidRequestError(
                    f"{name}: {hook!r} is not callable",
                    field=name, value=hook, allowed="a function or coroutine function, or None",
                )  # fmt: skip
        self.on_submit = on_submit
        self.client = client
        self.source = _Source(requests)
        self.total = len(requests) if isinstance(requests, Sized) else None
        self.done = 0
        self.on_progress = on_progress
        self.concurrency = concurrency
        self.started = 0
        # Two workers must not step one async generator at once; a sync iterator's next()
        # has no await, so nothing can come between two pulls.
        self._pull_lock = anyio.Lock(fast_acquire=True) if self.source.is_async else None
        self.error: Exception | None = None
        self._tg: TaskGroup | None = None
        #: as_completed's demand: a worker pulls a request only with a credit, and the
        #: consumer gives one each time it asks for the next job (None: no such bound).
        self.demand: _Handoff | None = None

    def fail(self, exc: Exception) -> None:
        """Remember the first error and stop the whole fan-out (its workers cancel their jobs)."""
        if self.error is None:
            self.error = exc
        if self._tg is not None:
            self._tg.cancel_scope.cancel()

    def feed(
        self, tg: TaskGroup, worker: Callable[[int, VideoRequest], Coroutine[Any, Any, None]]
    ) -> None:
        """Start the fan-out's workers in ``tg``: at most ``concurrency`` (no more than there
        are requests), each pulling the next request when it is free and running
        ``worker(index, request)`` on it, until the requests end. ``started`` counts the
        requests pulled. An error of the source, or an item that is not a
        :class:`VideoRequest`, stops the fan-out.

        One task per worker, not per request: a fan-out of 10,000 jobs spawns ``concurrency``
        tasks and takes no semaphore per job."""
        self._tg = tg
        n = self.concurrency if self.total is None else min(self.concurrency, self.total)
        for _ in range(n):
            tg.start_soon(self._work, worker)

    async def _work(self, worker: Callable[[int, VideoRequest], Coroutine[Any, Any, None]]) -> None:
        while self.error is None:
            if self.demand is not None:
                await self.demand.credit()
            try:
                pulled = await self._pull()
            except Exception as exc:
                self.fail(exc)
                return
            if pulled is None:
                return
            await worker(*pulled)

    async def _pull(self) -> tuple[int, VideoRequest] | None:
        """The next request and its index; ``None`` once the requests have ended."""
        if self._pull_lock is None:
            item = await self.source.next()
        else:
            async with self._pull_lock:
                item = await self.source.next()
        if item is _END:
            return None
        index = self.started
        if not isinstance(item, VideoRequest):
            raise InvalidRequestError(
                f"requests[{index}]: expected a VideoRequest, got {type(item).__name__}",
                field=f"requests[{index}]", value=item, allowed="VideoRequest",
            )  # fmt: skip
        self.started += 1
        return index, item

    async def run_one(self, request: VideoRequest) -> tuple[Job, Video | Exception]:
        """Submit ``request``, wait until its job has finished, report progress; the job and
        what awaiting it gives (its video or its error: read once, here).

        A create that fails gives a :class:`_NotSubmitted` job. Cancelled while the job runs,
        it cancels the job at the provider first (where the provider can cancel).
        """
        submitted = False
        try:
            job: Job = await self.client.submit(request)
            submitted = True
        except Exception as exc:
            job = _NotSubmitted(self.client, exc)
        job.request = request
        try:
            if submitted and self.on_submit is not None:
                await self._hook("on_submit", self.on_submit, job)
            # It may finish badly (or, not submitted, have never started): whoever awaits
            # the job is told; here only its end matters.
            outcome: Video | Exception
            try:
                outcome = await job.result()
            except Exception as exc:
                outcome = exc
        except BaseException:
            # Work that must outlive the cancel (ltx2._shield): the job is paid for.
            with contextlib.suppress(Exception):
                await outlive_cancel(
                    self._cancel(job), grace=CANCEL_GRACE, name=f"ltx2 cancel ({job.provider})"
                )
            raise
        self.done += 1
        await self._notify(job)
        return job, outcome

    async def _cancel(self, job: Job) -> None:
        if job.done or self.client.closing:
            return
        try:
            await job.cancel()
        except UnsupportedError:
            pass  # AI/ML API, GMI Cloud: the job runs to its end
        except LTX2Error as exc:
            log.info("could not cancel %s job %s: %s", job.provider, job.id, exc)

    async def _notify(self, job: Job) -> None:
        if self.on_progress is not None:
            await self._hook("on_progress", self.on_progress, self.done, self.total, job)

    @staticmethod
    async def _hook(name: str, hook: Callable[..., object], *args: object) -> None:
        # A broken hook must not cost the jobs in flight (which are paid for): it is logged
        # with its traceback and the fan-out goes on.
        try:
            result = hook(*args)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("ltx2: %s%r raised; ignored", name, args)


def as_completed(
    client: FanoutHost,
    requests: Requests,
    *,
    concurrency: int = 10,
    on_progress: ProgressHook | None = None,
    on_submit: SubmitHook | None = None,
) -> AsyncGenerator[Job, None]:
    """See :meth:`ltx2.Client.as_completed`. Arguments are checked here, before iteration."""
    client.check_open()
    run = _Run(client, requests, concurrency, on_progress, on_submit)
    return _as_completed(run, concurrency)


class _Handoff:
    """``as_completed``'s workers → its consumer: finished jobs, and the consumer's demand.

    A worker takes a credit (:meth:`credit`) before it pulls a request; there are
    ``credits`` at first and one more each time the consumer asks for the next job
    (:meth:`release`), so at most ``credits`` finished jobs ever wait here for a slow
    consumer and :meth:`put` never has to wait. A consumer that stops asking starts nothing
    new. Plain asyncio futures, not an anyio stream and semaphore: per job those cost two
    checkpoints (loop iterations) and the backend lookups around them; cancellation needs no
    more (workers and consumer are cancelled as a whole, by the run's scope and the
    generator's ``finally``)."""

    def __init__(self, credits: int) -> None:
        self._credits = credits
        self._jobs: collections.deque[Job] = collections.deque()
        self._closed = False
        self._consumer: asyncio.Future[None] | None = None
        self._waiting: collections.deque[asyncio.Future[None]] = collections.deque()

    async def credit(self) -> None:
        """A worker: wait for a credit to pull one more request."""
        if self._credits > 0:
            self._credits -= 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        await waiter

    def release(self) -> None:
        """The consumer asks for one more job: a credit for a worker."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._credits += 1

    def put(self, job: Job) -> None:
        """A worker hands a finished job over."""
        self._jobs.append(job)
        self._wake()

    def close(self) -> None:
        """No more jobs will come (the producer ended, however it ended)."""
        self._closed = True
        self._wake()

    async def get(self) -> Job | None:
        """The consumer: the next finished job; ``None`` once closed and drained."""
        while not self._jobs:
            if self._closed:
                return None
            self._consumer = waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._consumer = None
        return self._jobs.popleft()

    def _wake(self) -> None:
        if self._consumer is not None and not self._consumer.done():
            self._consumer.set_result(None)


async def _as_completed(run: _Run, concurrency: int) -> AsyncGenerator[Job, None]:
    client = run.client
    # No create the consumer has not asked for: ``concurrency`` at first, then one more each
    # time it asks for the next job. A consumer that stops asking (``break`` without
    # ``aclosing``, the generator not yet collected) starts nothing new; up to
    # ``concurrency`` finished jobs wait for a slow consumer, so memory stays bounded.
    handoff = run.demand = _Handoff(concurrency)
    scope = anyio.CancelScope()
    stopped = anyio.Event()
    completed = False

    async def worker(index: int, request: VideoRequest) -> None:
        job, _ = await run.run_one(request)
        handoff.put(job)

    async def produce(*, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        nonlocal completed
        try:
            task_status.started()  # inside ``try``: ``stopped`` is set whatever happens next
            with scope:
                async with anyio.create_task_group() as workers:
                    run.feed(workers, worker)
                completed = True  # before the handoff closes and the consumer wakes
        finally:
            handoff.close()
            stopped.set()

    await client.start_background(produce, name=f"as_completed ({client.provider})")
    try:
        while True:
            job = await handoff.get()
            if job is None:
                break
            yield job
            handoff.release()  # the consumer asks for the next one
    finally:
        # Reached on exhaustion, on aclose() (a ``break`` out of ``async for`` closes the
        # generator when it is collected; ``contextlib.aclosing`` closes it at once), and
        # when the consumer is cancelled while waiting for the next job.
        scope.cancel()
        with anyio.CancelScope(shield=True):
            await stopped.wait()
    if run.error is not None:
        raise run.error
    if not completed:
        raise ClientClosedError("the ltx2.Client was closed while as_completed() was running")


async def gather(
    client: FanoutHost,
    requests: Requests,
    *,
    concurrency: int = 10,
    return_exceptions: bool = False,
    on_progress: ProgressHook | None = None,
    on_submit: SubmitHook | None = None,
) -> list[Video | BaseException]:
    """See :meth:`ltx2.Client.gather`."""
    client.check_open()
    run = _Run(client, requests, concurrency, on_progress, on_submit)
    results: dict[int, Video | BaseException] = {}

    async def worker(index: int, request: VideoRequest) -> None:
        _, outcome = await run.run_one(request)
        results[index] = outcome
        if isinstance(outcome, Exception) and not return_exceptions:
            run.fail(outcome)

    async with anyio.create_task_group() as workers:
        run.feed(workers, worker)
    if run.error is not None:
        raise run.error
    return [results[i] for i in range(run.started)]

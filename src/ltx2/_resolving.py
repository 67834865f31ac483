"""Resolving: from the store's changes, deliveries, status streams and polls to a job's end.

The :class:`Resolver` holds the jobs a client awaits. Every store change (local, or from
another replica) reaches :meth:`Resolver.on_change`; a webhook delivery is confirmed by one
status read where that is the setting; fal's status stream is watched where no receiver is
used; the poller is the safety net for all of them. It also answers what a :class:`Job`
asks of its client (:class:`ltx2._job.JobHost`): a status read now, a cancel, the transport
a video downloads through.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, cast

import anyio

from ._errors import (
    APIError,
    AuthenticationError,
    ClientClosedError,
    LTX2Error,
    NotFoundError,
    UnsupportedError,
    error_for_status,
)
from ._job import Job
from ._poller import Poller
from ._types import JobStatus, StatusUpdate

if TYPE_CHECKING:
    from ._config import PollPolicy
    from ._context import Context
    from ._transport import Transport
    from ._types import HTTPReply
    from .stores import JobRecord

__all__ = ["LEASE_INTERVALS", "Resolver"]

log = logging.getLogger("ltx2")

#: A poll lease (see :meth:`ltx2.stores.Store.lease`) lasts this many of the holder's poll
#: intervals. The holder polls again within one interval (the next one grows with the job's
#: age by ``ratio`` of the time passed, less jitter), so it renews the lease before it lapses
#: and the other replicas keep skipping; when the holder stops, another replica takes the job
#: over within about two intervals. Stores without leases (memory, SQLite) always grant them.
LEASE_INTERVALS = 1.5

#: A job whose status reads are refused this many times in a row — 404 (the provider does not
#: know the id) or 401/403 (the key does not reach it) — ends for this client: its awaiters
#: get that error and its slot is freed. The poller spaces the reads by its schedule, so one
#: blip (a replica of the provider that lags, a key being rotated) does not end a job.
MAX_REFUSED = 3

#: After a cancel request, the job's status is read once at once, then up to this many more
#: times (see :meth:`Resolver.cancel`).
CANCEL_CONFIRM_READS = 3

#: How many status reads confirm a webhook delivery before it is dropped as false (see
#: :meth:`Resolver._confirm_delivery`).
CONFIRM_READS = 4


class Resolver:
    """The jobs one client awaits, and everything that resolves them."""

    def __init__(self, ctx: Context, *, poll: PollPolicy, confirm: bool) -> None:
        self._ctx = ctx
        self._provider = ctx.provider
        self._store = ctx.store
        self._transport = ctx.transport
        self._poll_policy = poll
        self._confirm = confirm
        self.jobs: dict[str, Job] = {}
        self._confirming: set[str] = set()
        self._refused: dict[str, int] = {}
        #: Jobs followed here that took no job slot (``client.job(id)`` handles).
        self._slotless: set[str] = set()
        #: Jobs whose status stream is open (or opening): at most the transport's
        #: ``max_streams``; the job after them is polled instead.
        self._streaming: set[str] = set()
        self.poller = Poller(self._check_key, poll, ctx.capabilities.expected_seconds)

    # -- the job table --------------------------------------------------------------------

    def add(self, job: Job) -> None:
        """Await ``job`` here (its slot is counted in by whoever created it)."""
        self.jobs[job.key] = job

    def forget(self, key: str) -> None:
        """Stop awaiting a job (it ended, or nobody here awaits it any more); frees its slot."""
        if self.jobs.pop(key, None) is not None:
            self.poller.remove(key)
            self._confirming.discard(key)
            self._refused.pop(key, None)
            if key in self._slotless:
                self._slotless.discard(key)
            else:
                self._ctx.release_slot()

    def follow(self, job: Job, *, slot: bool) -> None:
        """Await an existing job here and poll it (a ``client.job(id)`` handle: ``slot``
        False, it takes no job slot)."""
        if job.key in self.jobs or job.done or not job.id:
            return
        self.add(job)
        if not slot:
            self._slotless.add(job.key)
        self.poller.add(job.key, webhook=False)
        self.poller.poll_now(job.key)

    def follow_created(self, job: Job, update: StatusUpdate) -> None:
        """Follow a job whose create the store failed to record (no change was published):
        its first status is applied here, and it is polled like any other."""
        job._apply(update)
        if job.done:
            self.forget(job.key)
        elif job.key in self.jobs:
            self.watch(job.key)

    def watch(self, key: str) -> None:
        """Start following a created job: fal's status stream where no webhook comes, and the
        poller (a safety net when something else is expected to tell). With the transport's
        ``max_streams`` streams open, the job is polled on the poller's schedule instead."""
        webhook = self._ctx.webhooks
        streams = self._ctx.capabilities.status_stream and not webhook
        if streams and len(self._streaming) < self._transport.max_streams:
            self._streaming.add(key)
            started = self._ctx.lifecycle.start_soon(self._watch_stream, key, name=f"stream {key}")
            if not started:
                self._streaming.discard(key)
            # Polls are only a net for a stalled stream (its end or failure polls at once,
            # and then on the ordinary schedule).
            self.poller.add(key, webhook=False, watched=started)
        else:
            self.poller.add(key, webhook=webhook)

    def release_all(self) -> None:
        """The client is closing: every awaiter of a pending job gets
        :class:`ltx2.ClientClosedError` now. The jobs keep running at the provider and stay
        in the store."""
        jobs = list(self.jobs.values())
        for job in jobs:
            self.forget(job.key)
        for job in jobs:
            job._release(
                ClientClosedError(
                    f"the client was closed while {job.provider} job {job.id or '?'} ran; it "
                    "keeps running at the provider and stays in the store for resume()"
                )
            )

    # -- what a Job asks (JobHost) --------------------------------------------------------

    @property
    def transport(self) -> Transport:
        """The transport a :class:`ltx2.Video` downloads through while the client is open."""
        return self._transport

    async def refresh(self, job: Job) -> None:
        """One status read now (and the result read where needed); the store decides."""
        self._ctx.lifecycle.check_open()
        await self._check(job)

    async def cancel(self, job: Job) -> bool:
        """Ask the provider to cancel ``job``; True once its status says CANCELLED.

        A cancel request is not a cancellation (Eachlabs' is best effort, fal's and
        RunComfy's only hold for queued jobs): what the job became is read from the
        provider, right after and then up to ``CANCEL_CONFIRM_READS`` times more, spaced by
        the poll policy's shortest interval. A job that finished anyway resolves with its
        video (False: too late); one still running is followed as before and resolves with
        whatever comes (False: not confirmed yet)."""
        self._ctx.lifecycle.check_open()
        if job.done:
            return job.status is JobStatus.CANCELLED
        reply = await self._transport.send(self._provider.cancel(job.id, job.meta))
        update = self.parse_cancel(reply)
        if update is not None:
            await self._store.update(job.key, update)
            job._apply(update)
        p = self._poll_policy
        for read in range(CANCEL_CONFIRM_READS + 1):
            if job.done:
                break
            if read:
                await anyio.sleep(p.min_interval * p.time_scale)
            await self._check(job)
        if job.status is JobStatus.CANCELLED:
            return True
        if job.done:
            log.info("%s job %s finished (%s) before the cancel took", self._ctx.name, job.id,
                     job.status.value)  # fmt: skip
        elif job.key in self.jobs:
            self.poller.poll_now(job.key)
        return False

    async def collected(self, job: Job) -> None:
        """The caller got ``job``'s outcome: mark its record collected, so that ``resume()``
        stops handing it back. A closing client writes nothing (its store may be closed; the
        job then comes back once more); a store that fails is only logged."""
        if self._ctx.lifecycle.closing or not job.id:
            return
        try:
            await self._store.set_collected(job.key)
        except Exception as exc:
            log.warning(
                "marking %s job %s collected failed: %r", self._ctx.name, job.id, exc
            )  # fmt: skip

    async def cancel_quietly(self, job: Job) -> None:
        """:meth:`cancel`, where a provider that cannot cancel or fails to is only logged
        (for cancels made on the caller's behalf: a cancelled ``generate``, a fan-out)."""
        try:
            await self.cancel(job)
        except UnsupportedError:
            log.info("%s cannot cancel job %s; it runs to its end", self._ctx.name, job.id)
        except LTX2Error as exc:
            log.info("could not cancel %s job %s: %s", self._ctx.name, job.id, exc)

    def parse_cancel(self, reply: HTTPReply) -> StatusUpdate | None:
        """The status a cancel reply settles, or None; an answer that refuses the cancel
        (a status the call accepts but the provider's module rejects) is an APIError."""
        try:
            return self._provider.parse_cancel(reply)
        except ValueError as exc:
            raise error_for_status(reply.status)(
                str(exc), status_code=reply.status, provider=self._ctx.name
            ) from None

    # -- resolution -----------------------------------------------------------------------

    async def on_change(self, record: JobRecord) -> None:
        """Every store change (local, or from another replica through the store)."""
        job = self.jobs.get(record.key)
        if job is None:
            return
        if record.job_id and not job.id:
            job.id = record.job_id
            job.meta = dict(record.meta)
        if record.update is not None:
            job._apply(record.update)
        if record.terminal:
            self.forget(record.key)
        elif record.delivery is not None and record.job_id is not None:
            await self.handle_delivery(record)

    async def handle_delivery(self, record: JobRecord) -> None:
        """A webhook delivery is on the record: act on it (confirm it first where set)."""
        delivery = record.delivery
        if delivery is None or record.key in self._confirming:
            return
        if self._confirm or delivery.needs_result:
            # One status read decides; the delivery only says when to look.
            self._confirming.add(record.key)
            if not self._ctx.lifecycle.start_soon(
                self._confirm_delivery, record.key, name=f"confirm {record.key}"
            ):
                self._confirming.discard(record.key)
        else:
            try:
                await self._store.update(record.key, delivery)
            except Exception as exc:
                # The store failed (e.g. Redis away for longer than its retries). This runs
                # in whoever published the change (a poll, a confirmation, the receiver):
                # none of them may fail for it. The delivery stays on the record; a poll
                # reads the status now.
                log.warning(
                    "recording a %s delivery for job %s failed: %r; polling",
                    self._ctx.name, record.key, exc,
                )  # fmt: skip
                self.poller.poll_now(record.key)

    async def _confirm_delivery(self, key: str) -> None:
        """One status read decides about a delivery. A status that still says "processing"
        (the provider's API lags its own webhook) is read again soon — after the poll
        policy's shortest interval, then twice that, ``CONFIRM_READS`` reads in all — instead
        of waiting for the next poll (with a webhook expected, minutes away); only then is
        the delivery dropped as false."""
        p = self._poll_policy
        delay = p.min_interval * p.time_scale
        update: StatusUpdate | None = None
        try:
            for read in range(CONFIRM_READS):
                job = self.jobs.get(key)
                if job is None or not job.id:
                    return
                # One replica confirms (the job's lease holder, as for polls); its reading
                # reaches the others through the store.
                if not await self._store.lease(key, self._ctx.owner, self.lease_ttl(key)):
                    return
                if read:
                    await anyio.sleep(delay)
                    delay *= 2
                    if self.jobs.get(key) is not job:
                        return
                update = await self._check(job)
                if update.status.terminal:
                    return
            log.warning(
                "a %s delivery for job %s was not confirmed by its status (%s); ignored",
                self._ctx.name, key, update.raw if update else None,
            )  # fmt: skip
            await self._store.clear_delivery(key)
        except Exception as exc:
            # An ltx2 error, or the store failing: this task lives in the client's task
            # group and must not take every job's background work down with it. Hand the
            # job to the poller, which keeps looking on its own schedule.
            log.warning("confirming a %s delivery for job %s failed: %r", self._ctx.name, key, exc)
            self.poller.poll_now(key)
        finally:
            self._confirming.discard(key)

    async def _check_key(self, key: str) -> None:
        """The poller's check: one status read, unless another replica holds the job's poll
        lease (it polls, and its update reaches this replica through the store)."""
        job = self.jobs.get(key)
        if job is None or not job.id:
            return
        try:
            if not await self._store.lease(key, self._ctx.owner, self.lease_ttl(key)):
                return
            await self._check(job)
        except (NotFoundError, AuthenticationError) as exc:
            await self._on_refused(job, exc)
        except LTX2Error:
            raise  # the poller's to handle (a 429 pauses every poll)
        except Exception as exc:
            # The store failed (e.g. Redis away for longer than its retries), or a reply made
            # no sense. The poller must outlive both: the next poll comes on schedule.
            log.warning("poll of %s job %s failed: %r", self._ctx.name, key, exc)

    async def _on_refused(self, job: Job, exc: APIError) -> None:
        """A status read of ``job`` was refused (404, 401, 403). The ``MAX_REFUSED``-th time
        in a row, the job ends here with that error; before, the poller tries again."""
        count = self._refused.get(job.key, 0) + 1
        self._refused[job.key] = count
        if count < MAX_REFUSED:
            raise exc
        log.warning(
            "%s job %s: %d status reads refused (%s); giving up on it",
            self._ctx.name, job.id, count, exc,
        )  # fmt: skip
        self.forget(job.key)
        update = None
        if isinstance(exc, NotFoundError):
            # The provider does not know the job: it is over, also for resume(). (A 401/403
            # leaves the record pending: with a working key, resume() can still collect it.)
            update = StatusUpdate(JobStatus.FAILED, "not-found", error=str(exc))
            try:
                await self._store.update(job.key, update)
            except Exception as error:
                log.warning(
                    "recording %s job %s as not found failed: %r", self._ctx.name, job.id, error
                )
        job._release(exc, update)

    def lease_ttl(self, key: str, *, age: float | None = None, webhook: bool = False) -> float:
        """How long a poll lease lasts: ``LEASE_INTERVALS`` of the poller's interval for this
        job, as the poller computes it (``ratio`` × the job's age within the policy's bounds,
        scaled; with a webhook expected, at least ``max_interval``). ``age`` and ``webhook``
        stand in for a job the poller does not hold yet."""
        interval = self.poller.job_interval(key)
        if interval is None:
            if age is None:
                p = self._poll_policy
                return p.max_interval * p.time_scale * LEASE_INTERVALS
            interval = self.poller.interval(max(0.0, age), webhook=webhook)
        return interval * LEASE_INTERVALS

    async def _check(self, job: Job) -> StatusUpdate:
        if not job.id:
            return job.last_update
        reply = await self._transport.send(self._provider.status(job.id, job.meta))
        self._refused.pop(job.key, None)
        update = await self._complete(job, self._provider.parse_status(reply))
        await self._store.update(job.key, update)
        job._apply(update)
        return update

    async def check(self, job: Job) -> None:
        """One status read of ``job`` (the resumer's first poll)."""
        await self._check(job)

    async def _complete(self, job: Job, update: StatusUpdate) -> StatusUpdate:
        if update.status is JobStatus.SUCCEEDED and (update.needs_result or not update.video_url):
            reply = await self._transport.send(self._provider.result(job.id, job.meta))
            result = self._provider.parse_result(reply)
            if not update.metrics and not result.needs_result:
                return result  # nothing to merge (the common case): no copy
            metrics = {**update.metrics, **result.metrics}
            return dataclasses.replace(result, metrics=metrics, needs_result=False)
        return update

    async def _watch_stream(self, key: str) -> None:
        try:
            await self._follow_stream(key)
        finally:
            self._streaming.discard(key)  # its place frees (nobody waits for it)

    async def _follow_stream(self, key: str) -> None:
        job = self.jobs.get(key)
        if job is None:
            return
        events = self._transport.events(self._provider.stream(job.id, job.meta))
        try:
            # Closed at once when the loop ends early (not by the garbage collector).
            async with contextlib.aclosing(cast("AsyncGenerator[str, None]", events)):
                async for data in events:
                    try:
                        update = self._provider.parse_stream_event(data)
                    except ValueError:
                        continue
                    update = await self._complete(job, update)
                    await self._store.update(key, update)
                    if update.status.terminal:
                        return
        except LTX2Error as exc:
            log.info("status stream of %s job %s ended (%s); polling", self._ctx.name, job.id, exc)
        except Exception as exc:
            # The store failed, or a result made no sense: like _check_key, this task must
            # outlive it (it shares the client's task group with every job's work).
            log.warning("status stream of %s job %s failed: %r; polling", self._ctx.name, key, exc)
        if key in self.jobs:
            self.poller.unwatch(key)  # polled now, then as if no stream had ever been

    def rate_limited(self, seconds: float) -> None:
        """The provider answered 429 with ``Retry-After: seconds``: hold creates back."""
        if self._ctx.limiter is not None:
            self._ctx.limiter.penalize(seconds)

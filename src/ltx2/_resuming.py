"""Resuming: re-attach the unfinished jobs a store holds (after a crash, a deploy, or on
another replica) and hand them to the resolver; hand back, finished, the jobs that ended while
nobody collected them."""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import TYPE_CHECKING

import anyio

from ._errors import LTX2Error
from ._job import Job
from ._submitting import SUBMITTED, UNANSWERED
from .stores._base import DELIVERED_JOB_ID

if TYPE_CHECKING:
    from ._context import Context
    from ._limits import Limiter
    from ._resolving import Resolver
    from .providers import ListedJob
    from .stores import JobRecord

__all__ = ["FINISHED_WINDOW", "Resumer"]

log = logging.getLogger("ltx2")

#: A job that finished (in the store) at most this long ago and whose outcome never reached
#: its caller (``await job`` did not return or raise it: the process crashed first) comes back
#: from ``resume()``, finished (seconds). Older ones are left to the store's own retention.
FINISHED_WINDOW = 24 * 3600.0


class Resumer:
    """Finds a client's unfinished (and finished but uncollected) jobs in the store again."""

    def __init__(self, ctx: Context, resolver: Resolver) -> None:
        self._ctx = ctx
        self._resolver = resolver
        self._store = ctx.store
        # The provider's job list, read once per resume() (for creates with no reply).
        self._listed: list[ListedJob] | None = None
        self._listing_lock = anyio.Lock()

    async def resume(self) -> list[Job]:
        """See :meth:`ltx2.Client.resume` (the client is running)."""
        ctx = self._ctx
        limiter = ctx.open_limiter()
        now = time.time()
        self._listed = None
        # Only this key's records (its fingerprint): another app's or key's are not ours.
        records = await self._store.unfinished(ctx.name, scope=ctx.scope)
        finished = await self._store.uncollected(
            ctx.name, scope=ctx.scope, since=now - FINISHED_WINDOW
        )
        found: list[Job | None] = [None] * len(records)
        error: Exception | None = None
        todo = iter(enumerate(records))

        async def worker() -> None:
            nonlocal error
            for i, rec in todo:
                try:
                    found[i] = await self._resume_one(rec, limiter, now)
                except Exception as exc:
                    # The store failed: the caller gets that error (never an ExceptionGroup);
                    # the jobs attached so far stay attached.
                    error = error or exc
                    tg.cancel_scope.cancel()
                    return

        # Each job's first status read runs concurrently with the others', in at most as many
        # workers as the poller's own bound (a job is handed to the poller after its read).
        async with anyio.create_task_group() as tg:
            for _ in range(min(len(records), self._resolver.poller.concurrency)):
                tg.start_soon(worker)
        if error is not None:
            raise error
        jobs = [job for job in found if job is not None]
        for rec in finished:
            existing = self._resolver.jobs.get(rec.key)
            jobs.append(
                existing
                if existing is not None
                else Job(self._resolver, rec.key, ctx.name, rec.job_id, rec.update, rec.meta)
            )
        return jobs

    async def _resume_one(self, rec: JobRecord, limiter: Limiter, now: float) -> Job | None:
        """Re-attach one unfinished record; None when another replica has its create out."""
        ctx = self._ctx
        resolver = self._resolver
        existing = resolver.jobs.get(rec.key)
        if existing is not None:
            return existing
        if rec.job_id is None and not await self._store.lease(rec.key, ctx.owner, ctx.limits.lease):
            return None  # another replica is between its create and the reply: its job
        await self._store.set_owner(rec.key, ctx.owner)
        if rec.job_id is None:
            rec = await self._find_unanswered(rec)
        job = Job(resolver, rec.key, ctx.name, rec.job_id, rec.update, rec.meta)
        if rec.job_id is None:
            return job  # UNKNOWN: reported, never resubmitted
        resolver.add(job)
        await limiter.count_in()
        webhook = ctx.webhooks
        age = max(0.0, now - rec.created_at)
        try:
            # Another replica that still polls this job holds its lease: its next reading
            # reaches this one through the store, so no poll of our own is needed now.
            ttl = resolver.lease_ttl(rec.key, age=age, webhook=webhook)
            if await self._store.lease(rec.key, ctx.owner, ttl):
                await resolver.check(job)
        except LTX2Error as exc:
            log.warning("resume: first poll of %s job %s failed: %s", ctx.name, job.id, exc)
        if rec.key in resolver.jobs:
            resolver.poller.add(rec.key, webhook=webhook, age=age)
        return job

    async def _find_unanswered(self, rec: JobRecord) -> JobRecord:
        """A record whose create reply was never stored: its job is the one an authenticated
        webhook delivery named (it beat the reply), or one the provider's job list shows;
        else it stays UNKNOWN."""
        ctx = self._ctx
        delivered = rec.meta.get(DELIVERED_JOB_ID)
        if delivered:
            # The receiver kept the delivery only once it was authenticated (the job's token,
            # and its secret or signature where the provider sends one): the id is the job's.
            # Marked UNKNOWN for want of an id (or not marked at all), it is pending now.
            found = await self._store.set_created(rec.key, delivered, {}, SUBMITTED)
            if found is not None:
                return found
        for item in await self._listing():
            close = item.created_at is None or abs(item.created_at - rec.created_at) < 600
            if (
                item.prompt == rec.request.get("prompt")
                and close
                and await self._store.find(ctx.name, item.job_id, scope=ctx.scope) is None
            ):
                found = await self._store.set_created(rec.key, item.job_id, {}, item.update)
                if found is not None:
                    return found
        await self._store.update(rec.key, UNANSWERED)
        return dataclasses.replace(rec, update=UNANSWERED)

    async def _listing(self) -> list[ListedJob]:
        """The provider's recent jobs (where it lists them), read once per resume()."""
        async with self._listing_lock:
            if self._listed is None:
                ctx = self._ctx
                listed = []
                if ctx.capabilities.list_jobs:
                    try:
                        reply = await ctx.transport.send(ctx.provider.list_jobs())
                        listed = ctx.provider.parse_list(reply)
                    except (LTX2Error, ValueError) as exc:
                        log.warning("resume: cannot list %s jobs: %s", ctx.name, exc)
                self._listed = listed
            return self._listed

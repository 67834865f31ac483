"""Resuming: re-attach the unfinished jobs a store holds (after a crash, a deploy, or on
another replica) and hand them to the resolver."""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import TYPE_CHECKING

from ._errors import LTX2Error
from ._job import Job
from ._submitting import UNANSWERED

if TYPE_CHECKING:
    from ._context import Context
    from ._resolving import Resolver
    from .stores import JobRecord

__all__ = ["Resumer"]

log = logging.getLogger("ltx2")


class Resumer:
    """Finds a client's unfinished jobs in the store again."""

    def __init__(self, ctx: Context, resolver: Resolver) -> None:
        self._ctx = ctx
        self._resolver = resolver
        self._store = ctx.store

    async def resume(self) -> list[Job]:
        """See :meth:`ltx2.Client.resume` (the client is running)."""
        ctx = self._ctx
        limiter = ctx.open_limiter()
        resolver = self._resolver
        jobs: list[Job] = []
        now = time.time()
        # Only this key's records (its fingerprint): another app's or key's are not ours.
        for rec in await self._store.unfinished(ctx.name, scope=ctx.scope):
            existing = resolver.jobs.get(rec.key)
            if existing is not None:
                jobs.append(existing)
                continue
            if rec.job_id is None and not await self._store.lease(
                rec.key, ctx.owner, ctx.limits.lease
            ):
                continue  # another replica is between its create and the reply: its job
            await self._store.set_owner(rec.key, ctx.owner)
            if rec.job_id is None:
                rec = await self._find_unanswered(rec)
            job = Job(resolver, rec.key, ctx.name, rec.job_id, rec.update, rec.meta)
            jobs.append(job)
            if rec.job_id is None:
                continue  # UNKNOWN: reported, never resubmitted
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
        return jobs

    async def _find_unanswered(self, rec: JobRecord) -> JobRecord:
        ctx = self._ctx
        provider = ctx.provider
        if ctx.capabilities.list_jobs:
            try:
                reply = await ctx.transport.send(provider.list_jobs())
                listed = provider.parse_list(reply)
            except (LTX2Error, ValueError) as exc:
                log.warning("resume: cannot list %s jobs: %s", ctx.name, exc)
                listed = []
            prompt = rec.request.get("prompt")
            for item in listed:
                close = item.created_at is None or abs(item.created_at - rec.created_at) < 600
                if (
                    item.prompt == prompt
                    and close
                    and await self._store.find(ctx.name, item.job_id, scope=ctx.scope) is None
                ):
                    found = await self._store.set_created(rec.key, item.job_id, {}, item.update)
                    if found is not None:
                        return found
        await self._store.update(rec.key, UNANSWERED)
        return dataclasses.replace(rec, update=UNANSWERED)

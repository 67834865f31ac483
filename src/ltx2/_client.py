"""``Client``: submit image-to-video jobs to one provider and get awaitable jobs back."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterable, Iterable, Sequence
from typing import Any, Literal, cast, overload

import aiohttp
import anyio
from anyio.abc import TaskGroup

from ._config import Limits, PollPolicy, RetryPolicy, Timeouts
from ._errors import (
    APIError,
    AuthenticationError,
    InvalidRequestError,
    LTX2Error,
    ServerError,
    TransportError,
    UnsupportedError,
)
from ._fanout import ProgressHook
from ._job import Job, Video
from ._limits import KeyLimiter, shared_limiter
from ._poller import Poller
from ._request import ImageSource, VideoRequest
from ._transport import Transport
from ._types import HTTPCall, JobStatus, StatusUpdate
from .providers import PROVIDERS, Created, Provider, get
from .providers._base import is_loopback_url, registry
from .stores import JobRecord, MemoryStore, Store, new_record
from .webhooks import WebhookReceiver

__all__ = ["Client"]

log = logging.getLogger("ltx2")

#: Local images up to this size go inline as data URIs where a provider takes both data URIs
#: and uploads; larger ones are uploaded.
DATA_URI_THRESHOLD = 1024 * 1024

#: A poll lease (see :meth:`ltx2.stores.Store.lease`) lasts this many of the holder's poll
#: intervals. The holder polls again within one interval (the next one grows with the job's
#: age by ``ratio`` of the time passed, less jitter), so it renews the lease before it lapses
#: and the other replicas keep skipping; when the holder stops, another replica takes the job
#: over within about two intervals. Stores without leases (memory, SQLite) always grant them.
LEASE_INTERVALS = 1.5

#: How long a :meth:`Client.submit` cancelled while its create is in flight keeps waiting
#: (shielded) for the create reply, and then for the cancel request it sends, so that a job
#: the provider started is not left running unseen. Past it, the record is kept as UNKNOWN.
CREATE_CANCEL_GRACE = 10.0

_SUBMITTED = StatusUpdate(JobStatus.QUEUED, "submitted")
_UNANSWERED = StatusUpdate(JobStatus.UNKNOWN, "create-unanswered")


class Client:
    """A client for one provider.

    Args:
        provider: ``"eachlabs"``, ``"fal"``, ``"gmicloud"``, ``"runcomfy"`` or ``"aimlapi"``.
        api_key: the provider's key; defaults to its usual environment variable
            (``EACHLABS_API_KEY``, ``FAL_KEY``, ``GMI_API_KEY``, ``RUNCOMFY_API_TOKEN``,
            ``AIMLAPI_KEY``). Never logged or shown.
        base_url: the provider's API at another address (a proxy, or the emulator's
            ``provider_url(name)``).
        webhooks: a :class:`ltx2.WebhookReceiver`; jobs then resolve from webhooks where the
            provider sends them, with the poller as a safety net.
        store: where job records live (default :class:`ltx2.MemoryStore`).
        poll: the fallback poller's :class:`ltx2.PollPolicy`.
        retry: the :class:`ltx2.RetryPolicy` of every HTTP call.
        timeouts: :class:`ltx2.Timeouts`.
        limits: client-side :class:`ltx2.Limits` for this key (default: the provider's
            documented limits; Eachlabs: 100 creates/min, 10 concurrent).
        confirm_webhooks: confirm each delivery with one status request before it resolves a
            job. Default: on where deliveries are not signed (Eachlabs), off for fal.
        time_scale: multiply the poll schedule and limit windows (for the emulator's
            ``time_scale``).
        session: an ``aiohttp.ClientSession`` to use (not closed by the client).
        **provider_options: options of the provider module (e.g. fal's ``storage_url``).

    Use it as ``async with ltx2.Client("fal") as client:``, or call :meth:`aclose` when done.
    """

    def __init__(
        self,
        provider: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        webhooks: WebhookReceiver | None = None,
        store: Store | None = None,
        poll: PollPolicy | None = None,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        limits: Limits | None = None,
        confirm_webhooks: bool | None = None,
        time_scale: float = 1.0,
        session: aiohttp.ClientSession | None = None,
        **provider_options: Any,
    ) -> None:
        cls = get(provider)
        key = api_key if api_key is not None else os.environ.get(cls.env_var)
        if not key:
            raise AuthenticationError(
                f"no API key for {provider}: pass api_key= or set {cls.env_var}",
                status_code=401,
                provider=provider,
            )
        if time_scale <= 0:
            raise InvalidRequestError(
                f"time_scale: {time_scale!r} must be positive",
                field="time_scale", value=time_scale, allowed="> 0",
            )  # fmt: skip
        self.provider: str = provider
        self._provider: Provider = cls(key, base_url, **provider_options)
        self.capabilities = cls.capabilities
        self._store = store if store is not None else MemoryStore()
        self._receiver = webhooks
        self._poll_policy = (
            dataclasses.replace(poll, time_scale=poll.time_scale * time_scale)
            if poll is not None
            else PollPolicy(time_scale=time_scale)
        )
        self._limits = limits if limits is not None else cls.default_limits.scaled(time_scale)
        # Unsigned deliveries are confirmed with one status read by default (DESIGN.md).
        signed = cls.capabilities.webhooks == "ed25519"
        self._confirm = confirm_webhooks if confirm_webhooks is not None else not signed
        self._transport = Transport(
            self._provider,
            timeouts=timeouts or Timeouts(),
            retry=retry or RetryPolicy(),
            session=session,
            on_rate_limited=self._rate_limited,
        )
        self._owner = uuid.uuid4().hex[:12]
        self._jobs: dict[str, Job] = {}
        self._confirming: set[str] = set()
        self._poller = Poller(self._check_key, self._poll_policy, cls.capabilities.expected_seconds)
        self._limiter: KeyLimiter | None = None
        self._tg: TaskGroup | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._start_lock = asyncio.Lock()
        self._started = False
        self._closed = False
        self._unsubscribe: Any = None

    def __repr__(self) -> str:
        return f"<ltx2.Client {self.provider} {self._provider.base_url} jobs={len(self._jobs)}>"

    # -- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> Client:
        await self._ensure_started()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _ensure_started(self) -> None:
        if self._started:
            return
        if self._closed:
            raise RuntimeError("this ltx2.Client is closed")
        async with self._start_lock:
            if self._started:
                return
            await self._store.open()
            if self._receiver is not None:
                used = self._receiver._attach(self._store)
                if used is not self._store:
                    raise InvalidRequestError(
                        "webhooks: this WebhookReceiver already delivers to another store; "
                        "give the client the same store (store=receiver.store)",
                        field="webhooks", value=self._receiver, allowed="a receiver on this store",
                    )  # fmt: skip
            self._limiter = shared_limiter(self.provider, self._provider._api_key, self._limits)
            self._unsubscribe = self._store.subscribe(self._on_change)
            ready = anyio.Event()
            self._supervisor = asyncio.get_running_loop().create_task(self._supervise(ready))
            await ready.wait()
            self._started = True

    async def _supervise(self, ready: anyio.Event) -> None:
        # All background work (the poller, its checks, status streams, confirmations) lives in
        # this one task group, owned by the client and cancelled by aclose().
        async with anyio.create_task_group() as tg:
            self._tg = tg
            tg.start_soon(self._poller.run, tg)
            ready.set()
            await self._stop.wait()
            tg.cancel_scope.cancel()

    async def aclose(self) -> None:
        """Stop background work and close connections. Pending jobs stay in the store (a
        persistent store lets :meth:`resume` pick them up later)."""
        if self._closed:
            return
        self._closed = True
        if self._supervisor is not None:
            self._stop.set()
            await self._supervisor
        if self._unsubscribe is not None:
            self._unsubscribe()
        for key in list(self._jobs):
            self._forget(key)
        await self._transport.aclose()
        if self._started:
            await self._store.close()

    # -- submitting -----------------------------------------------------------------------

    def _coerce(self, request: VideoRequest | None, fields: dict[str, Any]) -> VideoRequest:
        if request is None:
            return VideoRequest(**fields)
        if not isinstance(request, VideoRequest):
            raise InvalidRequestError(
                f"request: expected a VideoRequest, got {type(request).__name__}",
                field="request", value=request, allowed="VideoRequest",
            )  # fmt: skip
        if fields:
            return request.model_copy(
                update=VideoRequest(**{**request.model_dump(), **fields}).model_dump()
            )
        return request

    def _check_request(self, req: VideoRequest) -> None:
        """The provider's capabilities, checked before any request is sent."""
        caps = self.capabilities
        if req.duration not in caps.durations:
            able = _providers_where(lambda c: req.duration in c.durations)
            raise InvalidRequestError(
                f"duration: {req.duration} s is not offered by {self.provider} (allowed: "
                f"{', '.join(map(str, caps.durations))}); providers that offer it: {able}",
                field="duration", value=req.duration, allowed=caps.durations,
            )  # fmt: skip
        if req.camera_motion is not None and not caps.camera_motion:
            able = _providers_where(lambda c: c.camera_motion)
            raise InvalidRequestError(
                f"camera_motion: {self.provider} has no camera motion setting; providers that "
                f"have it: {able} (or describe the move in the prompt, e.g. 'dolly in')",
                field="camera_motion", value=req.camera_motion, allowed=None,
            )  # fmt: skip
        if req.image is None and not caps.text_only:
            able = _providers_where(lambda c: c.text_only)
            raise InvalidRequestError(
                f"image: {self.provider} needs an image; prompt-only (text-to-video) works "
                f"with: {able}",
                field="image", value=None, allowed="https URL, data URI, local path or bytes",
            )  # fmt: skip
        src = req.image_source()
        if src is None:
            return
        if src.kind == "data" and not caps.data_uri:
            raise InvalidRequestError(
                f"image: {self.provider} refuses data URIs (its documentation says so); pass "
                "the image's bytes or a local path and ltx2 uploads it, or an https URL",
                field="image", value=src.url, allowed="https URL, local path or bytes",
            )  # fmt: skip
        local_url = src.kind == "url" and src.url is not None and is_loopback_url(src.url)
        if local_url and not caps.data_uri and not self._provider.local:
            raise InvalidRequestError(
                f"image: {self.provider} cannot fetch a localhost URL; pass a local path "
                "or bytes and ltx2 uploads it, or a public https URL",
                field="image", value=src.url, allowed="a public https URL, path or bytes",
            )  # fmt: skip
        if src.kind in ("path", "bytes") and not caps.upload:
            limit = caps.max_data_uri_bytes
            if not caps.data_uri or (limit is not None and (src.size or 0) > limit):
                raise InvalidRequestError(
                    f"image: {src.size} bytes is over {self.provider}'s {limit}-byte limit for "
                    "inline images; host it and pass an https URL",
                    field="image", value=f"<{src.size} bytes>", allowed=f"<= {limit} bytes",
                )  # fmt: skip

    async def _image_url(self, src: ImageSource | None) -> str | None:
        if src is None:
            return None
        if src.kind in ("url", "data"):
            return src.url
        caps = self.capabilities
        size = src.size or 0
        limit = caps.max_data_uri_bytes
        fits = caps.data_uri and (limit is None or size <= limit)
        threshold = getattr(self._provider, "data_uri_threshold", DATA_URI_THRESHOLD)
        if fits and (not caps.upload or size <= threshold):
            return await src.as_data_uri()
        return await self._upload(src)

    async def _upload(self, src: ImageSource) -> str:
        mime = src.mime or "application/octet-stream"
        name = src.path.name if src.path is not None else f"image.{mime.split('/')[-1]}"
        data = await src.read()
        error: Exception | None = None
        for fallback in range(4):
            call = self._provider.upload(name, mime, fallback=fallback)
            if call is None:
                break
            try:
                return await self._upload_via(call, mime, data)
            except (APIError, TransportError, ValueError) as exc:
                # The provider's older upload route may still work (fal, as fal-client does).
                log.info("%s upload route %d failed (%s)", self.provider, fallback, exc)
                error = exc
        assert error is not None
        raise error

    async def _upload_via(self, call: HTTPCall, mime: str, data: bytes) -> str:
        target = self._provider.parse_upload(await self._transport.send(call))
        # The transfer carries the content type asked for, plus every header the provider
        # said it must (Eachlabs' required_headers: its presigned URL is signed for them).
        headers = {"Content-Type": mime, **{k: v for k, v in target.headers.items() if v}}
        reply = await self._transport.send(
            HTTPCall(target.method, target.put_url, "upload", headers=headers, data=data)
        )
        return target.file_url or self._provider.parse_uploaded(reply)

    async def submit(self, request: VideoRequest | None = None, /, **fields: Any) -> Job:
        """Submit one job and return its :class:`Job` as soon as the provider accepted it.

        Takes a :class:`VideoRequest` or its fields as keyword arguments. Bad input raises
        :class:`ltx2.InvalidRequestError` before any request. Waits for the client-side rate
        limits (creates per minute, jobs in flight) so that the provider never answers 429.

        Cancelled after the create was sent, it still waits (at most
        ``CREATE_CANCEL_GRACE`` seconds) for the reply and cancels the job at the provider
        where it can, then lets the cancellation through.
        """
        req = self._coerce(request, fields)
        self._check_request(req)
        await self._ensure_started()
        image_url = await self._image_url(req.image_source())
        webhook = self._receiver is not None and self.capabilities.webhooks is not None
        record = new_record(
            self.provider,
            {**req.params(), "prompt": req.prompt, "image": image_url},
            owner=self._owner,
            with_secret=webhook and self.capabilities.webhooks == "secret",
        )
        assert self._limiter is not None
        await self._limiter.acquire_create()
        job = Job(self, record.key, self.provider)
        job.request = req
        sent = False
        try:
            # The record (and its webhook token) exists before the create leaves, so a
            # delivery that beats the create reply finds it.
            await self._store.add(record)
            self._jobs[record.key] = job
            call = self._provider.create(
                req,
                image_url,
                webhook_url=self._receiver.url_for(self.provider, record.token)
                if webhook and self._receiver is not None
                else None,
                webhook_secret=record.webhook_secret,
            )
            # Sent in a task of its own, awaited through a shield: a cancelled submit can
            # still read the reply (see _settle_cancelled_create). The task ends before
            # submit does, on every path.
            sending = asyncio.get_running_loop().create_task(
                self._send_create(call), name=f"ltx2 create ({self.provider})"
            )
            sent = True
            created = await asyncio.shield(sending)
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                if sent and isinstance(exc, anyio.get_cancelled_exc_class()):
                    await self._settle_cancelled_create(record, sending)
                else:
                    await self._abandon(record, exc, sent)
            if isinstance(exc, ValueError) and not isinstance(exc, LTX2Error):
                raise TransportError(
                    f"{self.provider} sent an unreadable create reply: {exc}"
                ) from None
            raise
        job.id = created.job_id
        job.meta = dict(created.meta)
        rec = await self._store.set_created(
            record.key, created.job_id, dict(created.meta), created.update or _SUBMITTED
        )
        if rec is not None and not rec.terminal and record.key in self._jobs:
            self._start_watching(record.key, webhook)
            if rec.delivery is not None:
                await self._handle_delivery(rec)
        log.info("submitted %s job %s (key %s)", self.provider, job.id, record.key)
        return job

    async def _send_create(self, call: HTTPCall) -> Created:
        return self._provider.parse_create(await self._transport.send(call))

    async def _settle_cancelled_create(
        self, record: JobRecord, sending: asyncio.Task[Created]
    ) -> None:
        """submit() was cancelled after its create left. Wait (at most CREATE_CANCEL_GRACE
        seconds) for the reply; with an id, record it and cancel the job at the provider.

        Outcomes: cancelled at the provider → the record is CANCELLED; the provider cannot
        cancel (AI/ML API, GMI Cloud) or the cancel failed → the record keeps its id and its
        pending status, so :meth:`resume` re-attaches it; no usable reply in time → the
        rules of :meth:`_abandon` (UNKNOWN, or deleted when the reply says nothing started).
        Runs shielded, in submit's except clause, which then re-raises the cancellation."""
        self._forget(record.key)  # nobody awaits this job here any more
        deadline = anyio.current_time() + CREATE_CANCEL_GRACE
        with anyio.CancelScope(deadline=deadline):
            await asyncio.wait([sending])
        if not sending.done():
            sending.cancel()
            await asyncio.wait([sending])  # its own cleanup; no task outlives submit
        error = asyncio.CancelledError() if sending.cancelled() else sending.exception()
        try:
            if error is not None:
                await self._abandon(record, error, True)
                return
            created = sending.result()
            rec = await self._store.set_created(
                record.key, created.job_id, dict(created.meta), created.update or _SUBMITTED
            )
            if rec is None or rec.terminal:
                return
            try:
                call = self._provider.cancel(created.job_id, created.meta)
                with anyio.CancelScope(deadline=deadline) as scope:
                    await self._transport.send(call)
                if scope.cancelled_caught:
                    raise TransportError(f"no cancel reply within {CREATE_CANCEL_GRACE} s")
            except UnsupportedError:
                log.info(
                    "submit cancelled: %s cannot cancel job %s; it runs on (resume() has it)",
                    self.provider, created.job_id,
                )  # fmt: skip
                return
            except LTX2Error as exc:
                log.warning(
                    "submit cancelled: cancelling %s job %s failed (%s); resume() has it",
                    self.provider, created.job_id, exc,
                )  # fmt: skip
                return
            await self._store.update(record.key, StatusUpdate(JobStatus.CANCELLED, "cancelled"))
            log.info("submit cancelled: %s job %s cancelled", self.provider, created.job_id)
        except Exception as exc:
            # The cancellation is what the caller must see; a store that fails here leaves
            # the record as it was (resume() reports it).
            log.warning(
                "submit cancelled: recording %s job (key %s) failed: %r",
                self.provider, record.key, exc,
            )  # fmt: skip

    async def _abandon(self, record: JobRecord, exc: BaseException, sent: bool) -> None:
        """A create failed. If the provider cannot have started it, forget the record; else
        keep it as UNKNOWN so that resume() can look for it (never submit it again)."""
        self._forget(record.key)
        maybe_created = sent and (
            isinstance(exc, asyncio.CancelledError | ValueError)
            or (isinstance(exc, TransportError) and getattr(exc, "maybe_sent", True))
            or (isinstance(exc, ServerError) and exc.status_code != 503)
        )
        if isinstance(exc, ValueError) and isinstance(exc, LTX2Error):
            maybe_created = False
        if maybe_created:
            await self._store.update(record.key, _UNANSWERED)
        else:
            await self._store.delete(record.key)

    def _start_watching(self, key: str, webhook: bool) -> None:
        if self.capabilities.status_stream and not webhook and self._tg is not None:
            self._tg.start_soon(self._watch_stream, key)
            self._poller.add(key, webhook=True)  # the stream is watched; polls are a safety net
        else:
            self._poller.add(key, webhook=webhook)

    async def generate(self, request: VideoRequest | None = None, /, **fields: Any) -> Video:
        """Submit a job and wait for its video (``await (await submit(...))``)."""
        job = await self.submit(request, **fields)
        return await job

    # -- resolution -----------------------------------------------------------------------

    async def _on_change(self, record: JobRecord) -> None:
        """Every store change (local, or from another replica through the store)."""
        job = self._jobs.get(record.key)
        if job is None:
            return
        if record.job_id and not job.id:
            job.id = record.job_id
            job.meta = dict(record.meta)
        if record.update is not None:
            job._apply(record.update)
        if record.terminal:
            self._forget(record.key)
        elif record.delivery is not None and record.job_id is not None:
            await self._handle_delivery(record)

    async def _handle_delivery(self, record: JobRecord) -> None:
        delivery = record.delivery
        if delivery is None or record.key in self._confirming:
            return
        if self._confirm or delivery.needs_result:
            # One status read decides; the delivery only says when to look.
            self._confirming.add(record.key)
            if self._tg is not None:
                self._tg.start_soon(self._confirm_delivery, record.key)
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
                    self.provider, record.key, exc,
                )  # fmt: skip
                self._poller.poll_now(record.key)

    async def _confirm_delivery(self, key: str) -> None:
        job = self._jobs.get(key)
        try:
            if job is not None and job.id:
                await self._check(job)
        except Exception as exc:
            # An ltx2 error, or the store failing: this task lives in the client's task
            # group and must not take every job's background work down with it. Hand the
            # job to the poller, which keeps looking on its own schedule.
            log.warning("confirming a %s delivery for job %s failed: %r", self.provider, key, exc)
            self._poller.poll_now(key)
        finally:
            self._confirming.discard(key)

    def _forget(self, key: str) -> None:
        if self._jobs.pop(key, None) is not None:
            self._poller.remove(key)
            self._confirming.discard(key)
            if self._limiter is not None:
                self._limiter.release_slot()

    async def _check_key(self, key: str) -> None:
        """The poller's check: one status read, unless another replica holds the job's poll
        lease (it polls, and its update reaches this replica through the store)."""
        job = self._jobs.get(key)
        if job is None or not job.id:
            return
        try:
            if not await self._store.lease(key, self._owner, self._lease_ttl(key)):
                return
            await self._check(job)
        except LTX2Error:
            raise  # the poller's to handle (a 429 pauses every poll)
        except Exception as exc:
            # The store failed (e.g. Redis away for longer than its retries), or a reply made
            # no sense. The poller must outlive both: the next poll comes on schedule.
            log.warning("poll of %s job %s failed: %r", self.provider, key, exc)

    def _lease_ttl(self, key: str, *, age: float | None = None, webhook: bool = False) -> float:
        """How long a poll lease lasts: ``LEASE_INTERVALS`` of the poller's interval for this
        job, as the poller computes it (``ratio`` × the job's age within the policy's bounds,
        scaled; with a webhook expected, at least ``max_interval``). ``age`` and ``webhook``
        stand in for a job the poller does not hold yet."""
        interval = self._poller.job_interval(key)
        if interval is None:
            if age is None:
                p = self._poll_policy
                return p.max_interval * p.time_scale * LEASE_INTERVALS
            interval = self._poller.interval(max(0.0, age), webhook=webhook)
        return interval * LEASE_INTERVALS

    async def _check(self, job: Job) -> None:
        """One status read (and the result read where needed); the store decides."""
        if not job.id:
            return
        reply = await self._transport.send(self._provider.status(job.id, job.meta))
        update = await self._complete(job, self._provider.parse_status(reply))
        await self._store.update(job.key, update)
        job._apply(update)
        if job.key in self._confirming:
            self._confirming.discard(job.key)
            if not update.status.terminal:
                log.warning(
                    "a %s delivery for job %s was not confirmed by its status (%s); ignored",
                    self.provider, job.id, update.raw,
                )  # fmt: skip
                await self._store.clear_delivery(job.key)

    async def _complete(self, job: Job, update: StatusUpdate) -> StatusUpdate:
        if update.status is JobStatus.SUCCEEDED and (update.needs_result or not update.video_url):
            reply = await self._transport.send(self._provider.result(job.id, job.meta))
            result = self._provider.parse_result(reply)
            metrics = {**update.metrics, **result.metrics}
            return dataclasses.replace(result, metrics=metrics, needs_result=False)
        return update

    async def _watch_stream(self, key: str) -> None:
        job = self._jobs.get(key)
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
            log.info("status stream of %s job %s ended (%s); polling", self.provider, job.id, exc)
        except Exception as exc:
            # The store failed, or a result made no sense: like _check_key, this task must
            # outlive it (it shares the client's task group with every job's work).
            log.warning("status stream of %s job %s failed: %r; polling", self.provider, key, exc)
        if key in self._jobs:
            self._poller.poll_now(key)

    def _rate_limited(self, seconds: float) -> None:
        if self._limiter is not None:
            self._limiter.penalize(seconds)

    async def _cancel(self, job: Job) -> None:
        if job.done:
            return
        call = self._provider.cancel(job.id, job.meta)
        await self._transport.send(call)
        cancelled = StatusUpdate(JobStatus.CANCELLED, "cancelled")
        await self._store.update(job.key, cancelled)
        job._apply(cancelled)

    # -- looking up and resuming ----------------------------------------------------------

    def job(self, job_id: str, *, meta: dict[str, str] | None = None) -> Job:
        """A handle on an existing job by the provider's id (e.g. for ``ltx2 status``).
        Call :meth:`Job.refresh` to read its status."""
        return Job(self, uuid.uuid4().hex, self.provider, job_id, None, meta)

    async def resume(self) -> list[Job]:
        """Re-attach every unfinished job of this provider in the store (after a crash or a
        deploy), re-poll each once, and return their :class:`Job` s.

        With a shared store (:class:`ltx2.RedisStore`) every replica may call it, e.g. at
        startup: jobs that another replica still awaits are attached here too, but each is
        polled by one replica at a time (a poll lease), and the first poll is skipped while
        another replica holds the lease.

        A job whose create was sent but whose reply was never read is looked up in the
        provider's job list where it has one; otherwise it comes back with status
        ``UNKNOWN`` and is not submitted again.
        """
        await self._ensure_started()
        assert self._limiter is not None
        jobs: list[Job] = []
        now = time.time()
        for rec in await self._store.unfinished(self.provider):
            existing = self._jobs.get(rec.key)
            if existing is not None:
                jobs.append(existing)
                continue
            await self._store.set_owner(rec.key, self._owner)
            if rec.job_id is None:
                rec = await self._find_unanswered(rec)
            job = Job(self, rec.key, self.provider, rec.job_id, rec.update, rec.meta)
            jobs.append(job)
            if rec.job_id is None:
                continue  # UNKNOWN: reported, never resubmitted
            self._jobs[rec.key] = job
            self._limiter.in_flight += 1
            webhook = self._receiver is not None and self.capabilities.webhooks is not None
            age = max(0.0, now - rec.created_at)
            try:
                # Another replica that still polls this job holds its lease: its next reading
                # reaches this one through the store, so no poll of our own is needed now.
                ttl = self._lease_ttl(rec.key, age=age, webhook=webhook)
                if await self._store.lease(rec.key, self._owner, ttl):
                    await self._check(job)
            except LTX2Error as exc:
                log.warning(
                    "resume: first poll of %s job %s failed: %s", self.provider, job.id, exc
                )
            if rec.key in self._jobs:
                self._poller.add(rec.key, webhook=webhook, age=age)
        return jobs

    async def _find_unanswered(self, rec: JobRecord) -> JobRecord:
        if self.capabilities.list_jobs:
            try:
                reply = await self._transport.send(self._provider.list_jobs())
                listed = self._provider.parse_list(reply)
            except (LTX2Error, ValueError) as exc:
                log.warning("resume: cannot list %s jobs: %s", self.provider, exc)
                listed = []
            prompt = rec.request.get("prompt")
            for item in listed:
                close = item.created_at is None or abs(item.created_at - rec.created_at) < 600
                if (
                    item.prompt == prompt
                    and close
                    and await self._store.find(self.provider, item.job_id) is None
                ):
                    found = await self._store.set_created(rec.key, item.job_id, {}, item.update)
                    if found is not None:
                        return found
        await self._store.update(rec.key, _UNANSWERED)
        return dataclasses.replace(rec, update=_UNANSWERED)

    # -- many at once ---------------------------------------------------------------------

    def as_completed(
        self,
        requests: Iterable[VideoRequest] | AsyncIterable[VideoRequest],
        *,
        concurrency: int = 10,
        on_progress: ProgressHook | None = None,
    ) -> AsyncGenerator[Job, None]:
        """Run many requests and yield each :class:`Job` as it finishes, in finishing order.

        Args:
            requests: any iterable or async iterable of :class:`VideoRequest`. It is read
                lazily, one request per free slot, so a generator of 100,000 is fine.
            concurrency: at most this many jobs between submit and finished at once (the
                client's :class:`ltx2.Limits` for the key also apply).
            on_progress: ``on_progress(done, total, job)``, a function or a coroutine
                function, called as each job finishes (``total`` is ``None`` when
                ``requests`` has no ``len``). An exception it raises is logged and the
                fan-out goes on.

        A failed or cancelled job is yielded too (awaiting it raises); so is a request whose
        create failed, as a ``FAILED`` job with an empty ``id`` that raises the create's
        error (e.g. :class:`ltx2.BadRequestError`). An item that is not a
        :class:`VideoRequest` raises :class:`ltx2.InvalidRequestError`.

        Stopping early — ``break``, an exception or cancellation in the loop — cancels the
        jobs still running at the provider where it can cancel. A ``break`` takes effect when
        the generator is closed; wrap it in ``contextlib.aclosing(...)`` to have it happen at
        once::

            async with contextlib.aclosing(client.as_completed(requests)) as jobs:
                async for job in jobs:
                    ...
        """
        from ._fanout import as_completed

        return as_completed(self, requests, concurrency=concurrency, on_progress=on_progress)

    @overload
    async def gather(
        self,
        requests: Iterable[VideoRequest] | AsyncIterable[VideoRequest],
        *,
        concurrency: int = ...,
        return_exceptions: Literal[False] = ...,
        on_progress: ProgressHook | None = ...,
    ) -> list[Video]: ...

    @overload
    async def gather(
        self,
        requests: Iterable[VideoRequest] | AsyncIterable[VideoRequest],
        *,
        concurrency: int = ...,
        return_exceptions: Literal[True],
        on_progress: ProgressHook | None = ...,
    ) -> list[Video | BaseException]: ...

    async def gather(
        self,
        requests: Iterable[VideoRequest] | AsyncIterable[VideoRequest],
        *,
        concurrency: int = 10,
        return_exceptions: bool = False,
        on_progress: ProgressHook | None = None,
    ) -> Sequence[Video | BaseException]:
        """Run many requests and return their videos in input order.

        Takes the same ``requests``, ``concurrency`` and ``on_progress`` as
        :meth:`as_completed`. By default the first failure (a job that failed or was
        cancelled, or a create that failed) cancels every other job at the provider where it
        can, and is raised once they are stopped. With ``return_exceptions=True`` each
        failure is returned in its request's place and the rest go on. Cancelling the caller
        cancels the submitted jobs the same way; no task is left running.
        """
        from ._fanout import gather

        return await gather(
            self, requests, concurrency=concurrency, return_exceptions=return_exceptions,
            on_progress=on_progress,
        )  # fmt: skip


def _providers_where(test: Any) -> str:
    for name in PROVIDERS:
        get(name)
    names = [n for n, cls in registry().items() if test(cls.capabilities)]
    return ", ".join(sorted(names)) or "none"

"""Submitting: from a :class:`VideoRequest` to a created job the resolver follows.

The order matters: the provider's capabilities are checked before anything is sent; a job
slot is taken (the key's limits); the record, with its webhook token, is in the store before
the create leaves, so a delivery that beats the create reply finds it; the create is sent in
a task of its own, so a submit cancelled while it is in flight can still read the reply and
cancel the job at the provider (:mod:`ltx2._shield`). On every path the slot is either the
job's (freed when it ends) or freed at once, and the record has a status or is gone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from ._errors import (
    APIError,
    InvalidRequestError,
    LTX2Error,
    ServerError,
    TransportError,
    UnsupportedError,
)
from ._job import Job
from ._limits import CreatePermit
from ._request import ImageSource, VideoRequest, data_uri, image_reference
from ._shield import outlive_cancel
from ._types import HTTPCall, JobStatus, StatusUpdate
from .providers import PROVIDERS, Created, get
from .providers._base import is_loopback_url, registry
from .stores import JobRecord, new_record

if TYPE_CHECKING:
    from ._context import Context
    from ._resolving import Resolver

__all__ = ["CREATE_CANCEL_GRACE", "DATA_URI_THRESHOLD", "SUBMITTED", "UNANSWERED", "Submitter"]

log = logging.getLogger("ltx2")

T = TypeVar("T")

#: Local images up to this size go inline as data URIs where a provider takes both data URIs
#: and uploads; larger ones are uploaded.
DATA_URI_THRESHOLD = 1024 * 1024

#: How long a :meth:`Client.submit` cancelled while its create is in flight keeps waiting
#: (shielded) for the create reply, and then for the cancel request it sends, so that a job
#: the provider started is not left running unseen. Past it, the record is kept as UNKNOWN.
CREATE_CANCEL_GRACE = 10.0
#: What the shielded settling of a cancelled create may take beyond that (its store writes).
_SETTLE_SLACK = 5.0

#: A create reply the store failed to record is retried after this long, doubling up to
#: :data:`_RECORD_RETRY_MAX` seconds (a store retries on its own first: Redis for 1.5 s).
_RECORD_RETRY_FIRST = 0.05
_RECORD_RETRY_MAX = 5.0
#: How many times a failed create's record is settled (deleted, or kept as UNKNOWN) before
#: the store's error is logged and the record left as it is.
_ABANDON_TRIES = 4

SUBMITTED = StatusUpdate(JobStatus.QUEUED, "submitted")
UNANSWERED = StatusUpdate(JobStatus.UNKNOWN, "create-unanswered")


class Submitter:
    """Checks requests and creates jobs for one client."""

    def __init__(self, ctx: Context, resolver: Resolver) -> None:
        self._ctx = ctx
        self._resolver = resolver
        self._provider = ctx.provider
        self._store = ctx.store
        self._transport = ctx.transport
        #: The creates in flight (see :meth:`drain`).
        self._sending: set[asyncio.Task[Created]] = set()

    async def drain(self, grace: float) -> None:
        """The client is closing: wait (at most ``grace`` seconds, through any cancel) for
        the creates in flight to read their replies before the session closes under them,
        so that a job the provider made is recorded with its id, not left UNKNOWN."""
        pending = [task for task in self._sending if not task.done()]
        if pending:
            with anyio.CancelScope(shield=True):
                await asyncio.wait(pending, timeout=grace)

    # -- before anything is sent ----------------------------------------------------------

    def coerce(self, request: VideoRequest | None, fields: dict[str, Any]) -> VideoRequest:
        """A :class:`VideoRequest` from ``submit``'s arguments."""
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

    def check(self, req: VideoRequest) -> ImageSource | None:
        """The provider's capabilities, checked before any request is sent; the request's
        image source, resolved once here for :meth:`submit` (``None``: no image)."""
        name = self._ctx.name
        caps = self._ctx.capabilities
        if req.duration not in caps.durations:
            able = _providers_where(lambda c: req.duration in c.durations)
            raise InvalidRequestError(
                f"duration: {req.duration} s is not offered by {name} (allowed: "
                f"{', '.join(map(str, caps.durations))}); providers that offer it: {able}",
                field="duration", value=req.duration, allowed=caps.durations,
            )  # fmt: skip
        if req.camera_motion is not None and not caps.camera_motion:
            able = _providers_where(lambda c: c.camera_motion)
            raise InvalidRequestError(
                f"camera_motion: {name} has no camera motion setting; providers that "
                f"have it: {able} (or describe the move in the prompt, e.g. 'dolly in')",
                field="camera_motion", value=req.camera_motion, allowed=None,
            )  # fmt: skip
        if req.image is None and not caps.text_only:
            able = _providers_where(lambda c: c.text_only)
            raise InvalidRequestError(
                f"image: {name} needs an image; prompt-only (text-to-video) works "
                f"with: {able}",
                field="image", value=None, allowed="https URL, data URI, local path or bytes",
            )  # fmt: skip
        src = req.image_source()
        if src is None:
            return None
        if src.kind == "data" and not caps.data_uri:
            raise InvalidRequestError(
                f"image: {name} refuses data URIs (its documentation says so); pass "
                "the image's bytes or a local path and ltx2 uploads it, or an https URL",
                field="image", value=src.url, allowed="https URL, local path or bytes",
            )  # fmt: skip
        fetches = not caps.data_uri and not self._provider.local
        if fetches and src.kind == "url" and src.url is not None and is_loopback_url(src.url):
            raise InvalidRequestError(
                f"image: {name} cannot fetch a localhost URL; pass a local path "
                "or bytes and ltx2 uploads it, or a public https URL",
                field="image", value=src.url, allowed="a public https URL, path or bytes",
            )  # fmt: skip
        uploader = self._ctx.uploader
        if src.kind in ("path", "bytes") and uploader is None and not caps.upload:
            if not caps.data_uri:
                raise UnsupportedError(
                    f"image: {self._ctx.name} documents no upload for local images; pass an "
                    "https URL of the image, or Client(..., uploader=...) with an async "
                    "(data, mime) -> https URL function that stores it (your own bucket); "
                    f"providers that take a local image themselves: {_local_image_providers()}"
                )
            limit = caps.max_data_uri_bytes
            if not caps.data_uri or (limit is not None and (src.size or 0) > limit):
                raise InvalidRequestError(
                    f"image: {src.size} bytes is over {name}'s {limit}-byte limit for "
                    "inline images; host it and pass an https URL",
                    field="image", value=f"<{src.size} bytes>", allowed=f"<= {limit} bytes",
                )  # fmt: skip
        return src

    async def _image(self, src: ImageSource | None) -> tuple[str | None, Any]:
        """The image as the provider gets it (a URL or a data URI) and as the job's record
        keeps it: that URL, or for an image sent inline its digest and size
        (:func:`ltx2._request.image_reference`), never its bytes."""
        if src is None:
            return None, None
        if src.kind == "url":
            return src.url, src.url
        if src.kind == "data":
            assert src.data is not None
            return src.url, image_reference(src.data, src.mime)
        if self._ctx.uploader is not None:
            url = await self._upload_by_user(src)
            return url, url
        caps = self._ctx.capabilities
        size = src.size or 0
        limit = caps.max_data_uri_bytes
        fits = caps.data_uri and (limit is None or size <= limit)
        threshold = getattr(self._provider, "data_uri_threshold", DATA_URI_THRESHOLD)
        if fits and (not caps.upload or size <= threshold):
            raw = await src.read()
            return data_uri(raw, src.mime), image_reference(raw, src.mime)
        url = await self._upload(src)
        return url, url

    async def _upload_by_user(self, src: ImageSource) -> str:
        assert self._ctx.uploader is not None
        mime = src.mime or "application/octet-stream"
        url = await self._ctx.uploader(await src.read(), mime)
        # An https URL (an http one only when the provider is local too: the emulator).
        schemes = ("https://", "http://") if self._provider.local else ("https://",)
        if not isinstance(url, str) or not url.startswith(schemes):
            raise InvalidRequestError(
                f"uploader: returned {url!r:.100}, not an https URL the provider can fetch",
                field="uploader", value=repr(url)[:100], allowed="an https URL",
            )  # fmt: skip
        return url

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
                log.info("%s upload route %d failed (%s)", self._ctx.name, fallback, exc)
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

    # -- the create -----------------------------------------------------------------------

    async def submit(self, req: VideoRequest, src: ImageSource | None) -> Job:
        """Create one job (``req`` already checked, ``src`` what :meth:`check` returned; the
        client running) and return it once the provider has accepted it. See
        :meth:`ltx2.Client.submit`."""
        ctx = self._ctx
        image_url, image = await self._image(src)
        webhook = ctx.webhooks
        record = new_record(
            ctx.name,
            {**req.params(), "prompt": req.prompt, "image": image},
            owner=ctx.owner,
            with_secret=webhook and ctx.capabilities.webhooks == "secret",
            scope=ctx.scope,
        )
        limiter = ctx.open_limiter()
        permit = await limiter.acquire_create()
        # From here the slot is the job's: the resolver frees it when it forgets the job.
        job = Job(self._resolver, record.key, ctx.name)
        job.request = req
        self._resolver.add(job)
        sent = False
        try:
            ctx.lifecycle.check_open()  # closed while waiting for the slot: nothing is sent
            # The job's lease, taken before its record exists and held while the create is
            # out (this client's polls take it over): another replica's resume() leaves a
            # record it cannot tell from a crashed create alone.
            await self._store.lease(record.key, ctx.owner, ctx.limits.lease)
            # The record (and its webhook token) exists before the create leaves, so a
            # delivery that beats the create reply finds it.
            await self._store.add(record)
            call = self._provider.create(
                req,
                image_url,
                webhook_url=ctx.receiver.url_for(ctx.name, record.token)
                if webhook and ctx.receiver is not None
                else None,
                webhook_secret=record.webhook_secret,
            )
            # Sent in a task of its own, awaited through a shield: a cancelled submit can
            # still read the reply (see _settle_cancelled_create). The task ends before
            # submit does, on every path.
            sending = asyncio.get_running_loop().create_task(
                self._send_create(call, permit), name=f"ltx2 create ({ctx.name})"
            )
            self._sending.add(sending)
            sending.add_done_callback(self._sending.discard)
            sent = True
            created = await asyncio.shield(sending)
        except BaseException as exc:
            self._resolver.forget(record.key)  # nobody awaits this job here any more
            if sent and isinstance(exc, asyncio.CancelledError):
                work = self._settle_cancelled_create(record, sending)
                grace = CREATE_CANCEL_GRACE + _SETTLE_SLACK
            else:
                work = self._abandon(record, exc, sent)
                grace = _SETTLE_SLACK
            try:
                await outlive_cancel(work, grace=grace, name=f"ltx2 settle ({ctx.name})")
            except Exception as error:
                log.warning(
                    "settling a failed %s create (key %s) failed: %r",
                    ctx.name, record.key, error,
                )  # fmt: skip
            raise
        job.id = created.job_id
        job.meta = dict(created.meta)
        first = created.update or SUBMITTED
        try:
            rec = await self._store.set_created(
                record.key, created.job_id, dict(created.meta), first
            )
        except Exception as exc:
            # The job exists at the provider (and is paid for): the caller gets it, this
            # client follows it, and the record is completed in the background.
            log.warning(
                "recording the create of %s job %s (key %s) failed: %r; retrying in the "
                "background", ctx.name, created.job_id, record.key, exc,
            )  # fmt: skip
            self._resolver.follow_created(job, first)
            if not ctx.lifecycle.start_soon(
                self._record_created, job, created, name=f"record {record.key}"
            ):
                log.warning(
                    "the client is closing: the record of %s job %s (key %s) keeps no id",
                    ctx.name, created.job_id, record.key,
                )  # fmt: skip
            return job
        if rec is not None and not rec.terminal and record.key in self._resolver.jobs:
            self._resolver.watch(record.key)
            if rec.delivery is not None:
                await self._resolver.handle_delivery(rec)
        log.info("submitted %s job %s (key %s)", ctx.name, job.id, record.key)
        return job

    async def _record_created(self, job: Job, created: Created) -> None:
        """Retry ``set_created`` until the store takes it (the client's task group runs
        this; closing the client stops it). Meanwhile the job is polled like any other:
        what it became is what the record gets (a later status is never turned back)."""
        delay = _RECORD_RETRY_FIRST
        while True:
            await anyio.sleep(delay)
            try:
                rec = await self._store.set_created(
                    job.key, created.job_id, dict(created.meta), job.last_update
                )
            except Exception as exc:
                log.debug("recording %s job %s failed again: %r", job.provider, job.id, exc)
                delay = min(delay * 2, _RECORD_RETRY_MAX)
                continue
            break
        log.info("recorded the create of %s job %s (key %s)", job.provider, job.id, job.key)
        if rec is not None and rec.delivery is not None and job.key in self._resolver.jobs:
            await self._resolver.handle_delivery(rec)

    async def _send_create(self, call: HTTPCall, permit: CreatePermit) -> Created:
        # The permit is answered as the reply is read, with no await in between: a shared
        # window dates the create by its reply, and an accepted create lifts the hold-off of
        # any 429 that came before it was (last) sent (the provider takes creates again).
        try:
            reply = await self._transport.send(call, on_retry=permit.resent)
        except BaseException:
            permit.answered()
            raise
        try:
            created = self._provider.parse_create(reply)
        except LTX2Error:
            permit.answered()
            raise
        except Exception as exc:
            permit.answered()
            # Parsers are total (a result or ValueError), but whatever one raises, the create
            # was sent and may have started a job: it is an unreadable reply (see _abandon:
            # the record stays UNKNOWN for resume()), never a raw error for the caller.
            raise TransportError(
                f"{self._ctx.name} sent an unreadable create reply: {exc}"
            ) from None
        permit.answered(accepted=True)
        return created

    async def _settle_cancelled_create(
        self, record: JobRecord, sending: asyncio.Task[Created]
    ) -> None:
        """submit() was cancelled after its create left. Wait (at most CREATE_CANCEL_GRACE
        seconds) for the reply; with an id, record it and cancel the job at the provider.

        Outcomes: cancelled at the provider → the record is CANCELLED; the provider cannot
        cancel (AI/ML API, GMI Cloud) or the cancel failed → the record keeps its id and its
        pending status, so :meth:`resume` re-attaches it; no usable reply in time → the
        rules of :meth:`_abandon` (UNKNOWN, or deleted when the reply says nothing started).
        Runs in a task of its own (:func:`ltx2._shield.outlive_cancel`)."""
        name = self._ctx.name
        deadline = anyio.current_time() + CREATE_CANCEL_GRACE
        try:
            with anyio.CancelScope(deadline=deadline):
                await asyncio.wait([sending])
        finally:
            if not sending.done():
                sending.cancel()
                await asyncio.wait([sending])  # its own cleanup; no task outlives submit
        error = asyncio.CancelledError() if sending.cancelled() else sending.exception()
        try:
            if error is not None:
                await self._abandon(record, error, True)
                return
            created = sending.result()
            rec = await _retrying(
                self._store.set_created,
                record.key, created.job_id, dict(created.meta), created.update or SUBMITTED,
            )  # fmt: skip
            if rec is None or rec.terminal:
                return
            try:
                call = self._provider.cancel(created.job_id, created.meta)
                update: StatusUpdate | None = None
                with anyio.CancelScope(deadline=deadline) as scope:
                    update = self._resolver.parse_cancel(await self._transport.send(call))
                    if update is None:
                        # A cancel request is not a cancellation: the status says what came.
                        status = self._provider.status(created.job_id, created.meta)
                        update = self._provider.parse_status(await self._transport.send(status))
                if scope.cancelled_caught or update is None:
                    raise TransportError(f"no cancel reply within {CREATE_CANCEL_GRACE} s")
            except UnsupportedError:
                log.info(
                    "submit cancelled: %s cannot cancel job %s; it runs on (resume() has it)",
                    name, created.job_id,
                )  # fmt: skip
                return
            except LTX2Error as exc:
                log.warning(
                    "submit cancelled: cancelling %s job %s failed (%s); resume() has it",
                    name, created.job_id, exc,
                )  # fmt: skip
                return
            unread = update.needs_result or not update.video_url
            if update.status is JobStatus.SUCCEEDED and unread:
                # Finished anyway; its result is one more read, which resume() makes.
                log.info("submit cancelled: %s job %s had finished; resume() has it", name,
                         created.job_id)  # fmt: skip
                return
            await self._store.update(record.key, update)
            log.info("submit cancelled: %s job %s is %s", name, created.job_id, update.status.value)
        except Exception as exc:
            # The cancellation is what the caller must see; a store that fails here leaves
            # the record as it was (resume() reports it).
            log.warning(
                "submit cancelled: recording %s job (key %s) failed: %r", name, record.key, exc
            )

    async def _abandon(self, record: JobRecord, exc: BaseException, sent: bool) -> None:
        """A create failed. If the provider cannot have started it, forget the record; else
        keep it as UNKNOWN so that resume() can look for it (never submit it again)."""
        maybe_created = sent and (
            isinstance(exc, asyncio.CancelledError | ValueError)
            or (isinstance(exc, TransportError) and getattr(exc, "maybe_sent", True))
            or (isinstance(exc, ServerError) and exc.status_code != 503)
        )
        if isinstance(exc, ValueError) and isinstance(exc, LTX2Error):
            maybe_created = False
        # Tried again on a store error (within the settle's grace): a record left behind
        # with no status would come back from resume() as a create that may have been sent.
        if maybe_created:
            await _retrying(self._store.update, record.key, UNANSWERED)
        else:
            await _retrying(self._store.delete, record.key)


async def _retrying(call: Callable[..., Awaitable[T]], *args: Any) -> T:
    """``await call(*args)``, tried :data:`_ABANDON_TRIES` times on an error (a store that
    failed), spaced from :data:`_RECORD_RETRY_FIRST` seconds, doubling; then its error."""
    delay = _RECORD_RETRY_FIRST
    for _ in range(_ABANDON_TRIES - 1):
        try:
            return await call(*args)
        except Exception:
            await anyio.sleep(delay)
            delay *= 2
    return await call(*args)


def _providers_where(test: Any) -> str:
    for name in PROVIDERS:
        get(name)
    names = [n for n, cls in registry().items() if test(cls.capabilities)]
    return ", ".join(sorted(names)) or "none"


def _local_image_providers() -> str:
    for name in PROVIDERS:
        get(name)
    names = [n for n, c in registry().items() if c.capabilities.upload or c.capabilities.data_uri]
    return ", ".join(sorted(names)) or "none"

"""``Client``: submit image-to-video jobs to one provider and get awaitable jobs back.

The client is a front over its roles (see :mod:`ltx2._context`): it checks its lifecycle
(:mod:`ltx2._lifecycle`) at every entry point and hands the work to the submitter
(:mod:`ltx2._submitting`), the resolver (:mod:`ltx2._resolving`, which also serves its
jobs) and the resumer (:mod:`ltx2._resuming`); fan-out (:mod:`ltx2._fanout`) talks to it
through :class:`ltx2._fanout.FanoutHost`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import difflib
import inspect
import logging
import os
import uuid
from collections.abc import AsyncGenerator, AsyncIterable, Callable, Iterable, Sequence
from typing import Any, Literal, Unpack, overload

import aiohttp
from anyio.abc import TaskGroup

from ._config import DownloadPolicy, Limits, PollPolicy, RetryPolicy, Timeouts, where_to_connect
from ._context import Context, Uploader
from ._errors import InvalidRequestError
from ._fanout import ProgressHook, SubmitHook
from ._job import Job, JobHost, Video
from ._lifecycle import ClientState, Lifecycle, Work
from ._limits import LimitsBackend, key_fingerprint, limits_backend_for
from ._request import VideoRequest, VideoRequestFields, VideoRequestOverrides
from ._resolving import LEASE_INTERVALS, Resolver
from ._resuming import Resumer
from ._shield import outlive_cancel
from ._submitting import CREATE_CANCEL_GRACE, DATA_URI_THRESHOLD, Submitter
from ._transport import Transport
from .providers import ProviderName, get, normalize
from .stores import MemoryStore, Store
from .webhooks import WebhookReceiver

__all__ = ["CREATE_CANCEL_GRACE", "DATA_URI_THRESHOLD", "LEASE_INTERVALS", "Client"]

log = logging.getLogger("ltx2")


class Client:
    """A client for one provider.

    Args:
        provider: ``"eachlabs"``, ``"fal"``, ``"gmicloud"``, ``"runcomfy"`` or ``"aimlapi"``.
        api_key: the provider's key; defaults to its usual environment variable
            (``EACHLABS_API_KEY``, ``FAL_KEY``, ``GMI_API_KEY``, ``RUNCOMFY_API_TOKEN``;
            AI/ML API: ``AIML_API_KEY``, ``AIMLAPI_API_KEY`` or ``AIMLAPI_KEY``). None, or a
            blank one, raises :class:`ltx2.AuthenticationError` (``status_code=None``: no
            request was sent). Never logged or shown.
        base_url: the provider's API at another address (a proxy, or the emulator's
            ``provider_url(name)``).
        webhooks: a :class:`ltx2.WebhookReceiver`; jobs then resolve from webhooks where the
            provider sends them, with the poller as a safety net.
        store: where job records live (default :class:`ltx2.MemoryStore`).
        poll: the fallback poller's :class:`ltx2.PollPolicy`.
        retry: the :class:`ltx2.RetryPolicy` of every HTTP call.
        timeouts: :class:`ltx2.Timeouts`, for every request the client makes (API calls,
            fal's status streams and video downloads), on its own session or on ``session=``.
        limits: client-side :class:`ltx2.Limits` for this key (default: the provider's
            documented limits; Eachlabs: 100 creates/min, 10 concurrent).
        confirm_webhooks: confirm each delivery with one status request before it resolves a
            job. Default: on where deliveries are not signed (Eachlabs), off for fal.
        time_scale: multiply the poll schedule and limit windows (for the emulator's
            ``time_scale``).
        session: an ``aiohttp.ClientSession`` to use (not closed by the client). Its
            default timeout gives way to ``timeouts``; its connector's limit bounds the
            client's connections (a quarter of them, at most 64, may hold fal's status
            streams); its ``trust_env`` is its own.
        uploader: an async callable ``(data: bytes, mime: str) -> str`` that stores a local
            image (a path or bytes) somewhere the provider can fetch it and returns its https
            URL (your own bucket). When given, every local image goes through it, with any
            provider; it is required where a provider documents no upload (GMI Cloud).
        download_policy: where ``Video.save``/``Video.stream`` may download from, checked at
            every redirect hop (:class:`ltx2.DownloadPolicy`; default: any http(s) host;
            ``DownloadPolicy.public_only()`` for a server that fetches what a provider names).
        trust_env: honour the proxy environment variables (``HTTPS_PROXY``, ``HTTP_PROXY``,
            ``NO_PROXY``; and ``~/.netrc``) in the session the client makes, as aiohttp's
            ``trust_env`` does. Default False: they are ignored. With ``session=``, the
            session's own setting holds.
        limits_backend: where this key's limits live: by default the store's own (a
            :class:`ltx2.RedisStore` shares them with every replica through Redis), else
            this process. A Redis URL or a :class:`ltx2.stores.RedisLimits` shares them
            through that Redis whatever the store; ``"local"`` keeps them in the process.
        **provider_options: options of the provider module (fal's ``storage_url``,
            ``cdn_url`` and ``data_uri_threshold``; the others take none). Any other name is
            an :class:`ltx2.InvalidRequestError` naming it, never silently ignored.

    Use it as ``async with ltx2.Client("fal") as client:``, or call :meth:`aclose` when done.
    """

    def __init__(
        self,
        provider: ProviderName,
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
        time_scale: float | None = None,
        session: aiohttp.ClientSession | None = None,
        uploader: Uploader | None = None,
        download_policy: DownloadPolicy | None = None,
        limits_backend: LimitsBackend | str | None = None,
        trust_env: bool = False,
        **provider_options: Any,
    ) -> None:
        provider = normalize(provider)  # any case: "FAL" is fal
        cls = get(provider)
        _check_options(provider, cls.option_names, provider_options)
        base_url, time_scale = where_to_connect(provider, base_url, time_scale)
        key = cls.resolve_api_key(api_key, os.environ)
        if uploader is not None and not callable(uploader):
            raise InvalidRequestError(
                f"uploader: {type(uploader).__name__} is not callable",
                field="uploader", value=type(uploader).__name__,
                allowed="an async callable (data: bytes, mime: str) -> str",
            )  # fmt: skip
        if not isinstance(trust_env, bool):
            raise InvalidRequestError(
                f"trust_env: {trust_env!r} is not a bool",
                field="trust_env", value=trust_env, allowed="True or False",
            )  # fmt: skip
        self.provider: str = provider
        self._provider = cls(key, base_url, **provider_options)
        self.capabilities = cls.capabilities
        # Own what you close, close what you own (STYLE.md rule 16).
        self._owns_store = store is None
        store = store if store is not None else MemoryStore()
        poll_policy = (
            dataclasses.replace(poll, time_scale=poll.time_scale * time_scale)
            if poll is not None
            else PollPolicy(time_scale=time_scale)
        )
        # Unsigned deliveries are confirmed with one status read by default (DESIGN.md).
        signed = cls.capabilities.webhooks == "ed25519"
        confirm = confirm_webhooks if confirm_webhooks is not None else not signed
        self._retry = retry or RetryPolicy()
        self._lifecycle = Lifecycle(f"ltx2.Client({provider})")
        transport = Transport(
            self._provider,
            timeouts=timeouts or Timeouts(),
            retry=self._retry,
            session=session,
            on_rate_limited=self._rate_limited,
            download_policy=download_policy or DownloadPolicy(),
            trust_env=trust_env,
        )
        self._ctx = Context(
            name=provider,
            provider=self._provider,
            capabilities=cls.capabilities,
            transport=transport,
            store=store,
            receiver=webhooks,
            lifecycle=self._lifecycle,
            owner=uuid.uuid4().hex[:12],
            limits=limits if limits is not None else cls.default_limits.scaled(time_scale),
            api_key=key,
            uploader=uploader,
            limits_backend=limits_backend_for(limits_backend, store),
            scope=key_fingerprint(provider, key),
        )
        self._resolver = Resolver(self._ctx, poll=poll_policy, confirm=confirm)
        self._submitter = Submitter(self._ctx, self._resolver)
        self._resumer = Resumer(self._ctx, self._resolver)
        self._fanout = _FanoutHost(self)
        self._unsubscribe: Callable[[], None] | None = None

    def __repr__(self) -> str:
        return (
            f"<ltx2.Client {self.provider} {self._provider.base_url} "
            f"{self._lifecycle.state.value} jobs={len(self._resolver.jobs)}>"
        )

    # -- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> Client:
        await self._ensure_started()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _ensure_started(self) -> None:
        """Every entry point that sends or awaits goes through here: created → running on
        first use; :class:`ltx2.ClientClosedError` once closing."""
        if self._lifecycle.state is ClientState.RUNNING:
            self._lifecycle.check_open()
            return
        await self._lifecycle.start(self._open, self._background)

    async def _open(self) -> None:
        ctx = self._ctx
        await ctx.store.open()
        receiver = ctx.receiver
        if receiver is not None:
            if receiver.store is None:
                receiver.store = ctx.store  # the receiver delivers to its first client's store
            if receiver.store is not ctx.store:
                raise InvalidRequestError(
                    "webhooks: this WebhookReceiver already delivers to another store; "
                    "give the client the same store (store=receiver.store)",
                    field="webhooks", value=receiver, allowed="a receiver on this store",
                )  # fmt: skip
        ctx.open_limiter()
        self._unsubscribe = ctx.store.subscribe(self._resolver.on_change)

    def _background(self, tg: TaskGroup) -> None:
        tg.start_soon(self._resolver.poller.run, tg, name="ltx2._poller.Poller.run")

    async def aclose(self) -> None:
        """Close the client: stop background work and close what the client opened (its
        session, and its store when it made it; a store or session passed in stays open).

        Every task still awaiting one of its jobs gets :class:`ltx2.ClientClosedError`; the
        jobs keep running at the provider and stay in the store (a persistent store lets a
        new client's :meth:`resume` pick them up). Afterwards every call that would send a
        request raises :class:`ltx2.ClientClosedError` before sending anything."""
        await self._lifecycle.close(self._close)

    async def _close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._resolver.release_all()
        await self._submitter.drain(CREATE_CANCEL_GRACE)
        await self._ctx.close_limiter()
        await self._ctx.transport.aclose()
        if self._owns_store:
            await self._ctx.store.close()

    # -- submitting -----------------------------------------------------------------------

    @overload
    async def submit(
        self, request: VideoRequest, /, **fields: Unpack[VideoRequestOverrides]
    ) -> Job: ...

    @overload
    async def submit(self, /, **fields: Unpack[VideoRequestFields]) -> Job: ...

    async def submit(self, request: VideoRequest | None = None, /, **fields: Any) -> Job:
        """Submit one job and return its :class:`Job` as soon as the provider accepted it.

        Takes a :class:`VideoRequest` or its fields as keyword arguments. Bad input raises
        :class:`ltx2.InvalidRequestError` before any request. Waits for the client-side rate
        limits (creates per minute, jobs in flight) so that the provider never answers 429.

        Cancelled after the create was sent, it still waits (at most
        ``CREATE_CANCEL_GRACE`` seconds) for the reply and cancels the job at the provider
        where it can, then lets the cancellation through.
        """
        req = self._submitter.coerce(request, fields)
        src = self._submitter.check(req)
        await self._ensure_started()
        return await self._submitter.submit(req, src)

    @overload
    async def generate(
        self, request: VideoRequest, /, **fields: Unpack[VideoRequestOverrides]
    ) -> Video: ...

    @overload
    async def generate(self, /, **fields: Unpack[VideoRequestFields]) -> Video: ...

    async def generate(self, request: VideoRequest | None = None, /, **fields: Any) -> Video:
        """Submit a job and wait for its video (``await (await submit(...))``).

        Cancelled while it waits, it cancels the job at the provider where it can (the
        caller never saw the job, so nobody else could), as :meth:`submit` does for a create
        in flight; then the cancellation goes on."""
        job = await (
            self.submit(request, **fields) if request is not None else self.submit(**fields)
        )
        try:
            return await job
        except asyncio.CancelledError:
            if not job.done and not self._lifecycle.closing:
                with contextlib.suppress(Exception):
                    await outlive_cancel(
                        self._resolver.cancel_quietly(job), grace=CREATE_CANCEL_GRACE,
                        name=f"ltx2 cancel ({self.provider})",
                    )  # fmt: skip
            raise

    def _rate_limited(self, seconds: float) -> None:
        # Capped like the transport's own wait: one ``Retry-After: 3600`` must not freeze
        # every create on the key for an hour.
        self._resolver.rate_limited(min(seconds, self._retry.max_retry_after))

    # -- looking up and resuming ----------------------------------------------------------

    def job(self, job_id: str, *, meta: dict[str, str] | None = None) -> Job:
        """A handle on an existing job by the provider's id (e.g. for ``ltx2 status``).
        :meth:`Job.refresh` reads its status now; awaiting it waits for its end (the
        client's poller follows it once the client runs). It takes no job slot."""
        self._lifecycle.check_open()
        job = Job(self._resolver, uuid.uuid4().hex, self.provider, job_id, None, meta)
        self._resolver.follow(job, slot=False)  # awaiting it resolves: the poller reads it
        return job

    async def resume(self) -> list[Job]:
        """Re-attach every unfinished job of this provider in the store (after a crash or a
        deploy), re-poll each once, and return their :class:`Job` s.

        With a shared store (:class:`ltx2.RedisStore`) every replica may call it, e.g. at
        startup: jobs that another replica still awaits are attached here too, but each is
        polled by one replica at a time (a poll lease), and the first poll is skipped while
        another replica holds the lease.

        The first status reads run concurrently, at most as many at once as the poller's
        bound (64).

        A job whose create was sent but whose reply was never read is resumed by the id an
        authenticated webhook delivery named (one that beat the reply), else looked up in the
        provider's job list where it has one; otherwise it comes back with status
        ``UNKNOWN`` and is not submitted again.

        A job that finished while nobody collected it (the process died after its end reached
        the store, before ``await job`` handed the outcome over) comes back too, finished:
        ``await job`` gives its video or raises its error. A job is collected once ``await
        job`` (``result()``, ``generate()``, ``gather()``, a fan-out) returned or raised its
        outcome; collected jobs, and jobs that finished more than 24 hours ago
        (``ltx2._resuming.FINISHED_WINDOW``), are left out.

        A job whose create another live replica still has out (it holds the job's lease from
        before the create for one ``Limits.lease``, and its polls keep it) is left to that
        replica: a later ``resume()`` returns it, with its id. Only this key's jobs are
        resumed: records are scoped by a fingerprint of the key.
        """
        await self._ensure_started()
        return await self._resumer.resume()

    # -- many at once ---------------------------------------------------------------------

    def as_completed(
        self,
        requests: Iterable[VideoRequest] | AsyncIterable[VideoRequest],
        *,
        concurrency: int = 10,
        on_progress: ProgressHook | None = None,
        on_submit: SubmitHook | None = None,
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
            on_submit: ``on_submit(job)``, a function or a coroutine function, called as
                soon as each job's create was accepted (not for a create that failed), so
                the caller can follow it or ``await job.cancel()`` while it runs. An
                exception it raises is logged and the fan-out goes on.

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

        return as_completed(
            self._fanout, requests, concurrency=concurrency, on_progress=on_progress,
            on_submit=on_submit,
        )  # fmt: skip

    @overload
    async def gather(
        self,
        requests: Iterable[VideoRequest] | AsyncIterable[VideoRequest],
        *,
        concurrency: int = ...,
        return_exceptions: Literal[False] = ...,
        on_progress: ProgressHook | None = ...,
        on_submit: SubmitHook | None = ...,
    ) -> list[Video]: ...

    @overload
    async def gather(
        self,
        requests: Iterable[VideoRequest] | AsyncIterable[VideoRequest],
        *,
        concurrency: int = ...,
        return_exceptions: Literal[True],
        on_progress: ProgressHook | None = ...,
        on_submit: SubmitHook | None = ...,
    ) -> list[Video | BaseException]: ...

    async def gather(
        self,
        requests: Iterable[VideoRequest] | AsyncIterable[VideoRequest],
        *,
        concurrency: int = 10,
        return_exceptions: bool = False,
        on_progress: ProgressHook | None = None,
        on_submit: SubmitHook | None = None,
    ) -> Sequence[Video | BaseException]:
        """Run many requests and return their videos in input order.

        Takes the same ``requests``, ``concurrency``, ``on_progress`` and ``on_submit`` as
        :meth:`as_completed`. By default the first failure (a job that failed or was
        cancelled, or a create that failed) cancels every other job at the provider where it
        can, and is raised once they are stopped. With ``return_exceptions=True`` each
        failure is returned in its request's place and the rest go on. Cancelling the caller
        cancels the submitted jobs the same way; no task is left running.
        """
        from ._fanout import gather

        return await gather(
            self._fanout, requests, concurrency=concurrency, return_exceptions=return_exceptions,
            on_progress=on_progress, on_submit=on_submit,
        )  # fmt: skip


class _FanoutHost:
    """What fan-out asks of a client (:class:`ltx2._fanout.FanoutHost`)."""

    __slots__ = ("_client",)

    def __init__(self, client: Client) -> None:
        self._client = client

    @property
    def provider(self) -> str:
        return self._client.provider

    @property
    def jobs(self) -> JobHost:
        return self._client._resolver

    @property
    def closing(self) -> bool:
        return self._client._lifecycle.closing

    def check_open(self) -> None:
        self._client._lifecycle.check_open()

    async def submit(self, request: VideoRequest) -> Job:
        return await self._client.submit(request)

    async def start_background(self, func: Work, *, name: str) -> None:
        await self._client._ensure_started()
        await self._client._lifecycle.start_task(func, name=name)


def _check_options(provider: str, names: tuple[str, ...], options: dict[str, Any]) -> None:
    """Refuse a keyword that neither ``Client`` nor the provider takes (a misspelt
    ``trust_env``, or fal's ``storage_url`` given to Eachlabs), naming it and what is
    allowed. Its value is never shown: it may be a key given under a wrong name."""
    from .providers import PROVIDERS

    for name in options:
        if name in names:
            continue
        own = inspect.signature(Client.__init__).parameters
        known = [p for p in own if p not in ("self", "provider", "provider_options")]
        known += names
        takers = [p for p in PROVIDERS if name in get(p).option_names]
        if takers:
            hint = f" ({' and '.join(takers)} {'takes' if len(takers) == 1 else 'take'} it)"
        else:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
        raise InvalidRequestError(
            f"Client: {name!r} is not an option of Client or of {provider}{hint}",
            field=name, value=f"<{type(options[name]).__name__}>", allowed=", ".join(known),
        )  # fmt: skip

"""The :class:`Emulator`: one aiohttp server hosting all five providers under prefixes, and
one listener per provider serving its real paths from the host root (for official SDKs that
keep only a base URL's host)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import shutil
import ssl as _ssl
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Collection, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeAlias, TypeVar
from urllib.parse import quote, urlsplit

import aiohttp
import anyio.to_thread
from aiohttp import web

from ._base import ProviderAPI, format_seconds
from ._faults import FAULT_NAMES, FaultDice, Faults, derived_rng
from ._jobs import Job, JobFailure, JobParams
from ._render import RenderError, RenderSpec, motion_from_prompt
from ._signing import FalSigner
from ._webhooks import WebhookDispatcher

__all__ = ["PROVIDERS", "Emulator"]

log = logging.getLogger("ltx2.emulator")
T = TypeVar("T")

PROVIDERS = ("eachlabs", "fal", "gmicloud", "runcomfy", "aimlapi")

# Default processing times in provider seconds (before time scaling), drawn uniformly.
DEFAULT_PROCESSING: dict[str, tuple[float, float]] = {
    # seed 000: "Estimated Processing Time: 80 seconds"; +-25 %.
    "eachlabs": (60.0, 100.0),
    # seed 001 gives no figure; we assume ~60 s like its peers; +-25 %.
    "fal": (45.0, 75.0),
    # seed 002: "typically 30-120 seconds".
    "gmicloud": (30.0, 120.0),
    # seed 003 gives no figure; we assume ~60 s; +-25 %.
    "runcomfy": (45.0, 75.0),
    # seed 004: "Processing time: 58.9 sec."; +-25 %.
    "aimlapi": (58.9 * 0.75, 58.9 * 1.25),
}

# seed 000, Errors: "429 Rate limit — 100 creates / min, 10 concurrent per key".
EACHLABS_CREATES_PER_MINUTE = 100
EACHLABS_CONCURRENT = 10
RATE_WINDOW_SECONDS = 60.0

# seed 003: hosted images "<= 50 MB"; we use it as the cap for any fetched or uploaded file.
MAX_FILE_BYTES = 50 * 1024 * 1024
# Leaves room for a > 6 MiB data URI (RunComfy's cap) to arrive and be refused politely.
CLIENT_MAX_SIZE = 64 * 1024 * 1024
# Webhook receivers must "Return 2xx within 30 seconds" (seed 000). Scaled, but never below
# 2 s: on a loaded loopback a scaled 0.3 s would turn slow acks into spurious failures.
WEBHOOK_TIMEOUT_SECONDS = 30.0
MIN_WEBHOOK_TIMEOUT = 2.0

ProcessingTime: TypeAlias = float | tuple[float, float]
Outcome: TypeAlias = JobFailure | tuple[Path, Path, int]

_STUB_CACHE: dict[str, bytes] = {}
_STUB_LOCK = threading.Lock()


@dataclass
class _Upload:
    provider: str
    file_name: str
    content_type: str
    data: bytes | None = None
    required_headers: dict[str, str] | None = None


class _FetchError(Exception):
    pass


#: On a provider's host-root app: which provider it serves.
_ROOT_OF = web.AppKey("ltx2_emulator_root_of", str)


class Emulator:
    """A local, faithful stand-in for the five providers' HTTP APIs and webhooks.

    Use it as an async context manager (or call :meth:`start` / :meth:`stop`)::

        async with Emulator(time_scale=0.01, seed=0) as emu:
            client = ltx2.Client("fal", base_url=emu.provider_url("fal"), api_key="k")

    Args:
        time_scale: multiplies every duration the emulator waits (processing time, webhook
            retry delays, reported ``Retry-After`` values, the rate-limit window).
        seed: makes ids, timings, faults and the fal signing key reproducible.
        host: interface to bind (keep ``127.0.0.1`` in tests).
        port: TCP port; 0 picks a free one.
        processing_time: ``None`` for each provider's documented time, seconds, a
            ``(low, high)`` range drawn uniformly, or a dict from provider name to either.
            0 finishes a job right after its create.
        faults: a :class:`Faults` with the fault rates to inject.
        render: ``"full"`` renders a real H.264/AAC MP4 per distinct request; ``"stub"``
            serves one tiny cached clip for every job (for benchmarks). Stub mode still
            checks data URIs and uploaded files are images, but takes remote URLs as
            reachable without fetching them.
        api_keys: accepted keys; ``None`` accepts any non-empty key in the provider's form.
        ssl: an :class:`ssl.SSLContext` to serve https.
        limits: enforce Eachlabs' 100 creates/min and 10 concurrent predictions per key
            (``True``), none (``False``), or other per-key limits ``(creates_per_minute,
            concurrent)`` with ``None`` for no limit of that kind: a benchmark or test can
            hold a client to a limit it was not told about.
    """

    def __init__(
        self,
        time_scale: float = 1.0,
        seed: int | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        processing_time: ProcessingTime | Mapping[str, ProcessingTime] | None = None,
        faults: Faults | None = None,
        render: str = "full",
        api_keys: Collection[str] | None = None,
        ssl: _ssl.SSLContext | None = None,
        limits: bool | tuple[int | None, int | None] = True,
    ) -> None:
        if not time_scale > 0:
            raise ValueError("time_scale must be > 0")
        if render not in ("full", "stub"):
            raise ValueError("render must be 'full' or 'stub'")
        self.time_scale = float(time_scale)
        self.seed = seed
        self.host = host
        self.port = port
        self.faults = faults if faults is not None else Faults()
        self.render = render
        self.api_keys = frozenset(api_keys) if api_keys is not None else None
        self.ssl = ssl
        if isinstance(limits, tuple):
            self.limits = True
            self.creates_per_minute, self.concurrent = limits
        else:
            self.limits = bool(limits)
            self.creates_per_minute, self.concurrent = (
                EACHLABS_CREATES_PER_MINUTE,
                EACHLABS_CONCURRENT,
            )
        self._processing = _processing_table(processing_time)
        self.stats: dict[str, dict[str, Any]] = {p: _new_stats() for p in PROVIDERS}
        """Counters per provider (a JSON-able dict of dicts); also at ``/_emulator/stats``."""
        self.jobs: dict[str, Job] = {}
        """Every job created, by id."""
        self.dice = FaultDice(self.faults, seed)
        self.signer = FalSigner(seed)
        self._ids = derived_rng(seed, "ids")
        self._timing = derived_rng(seed, "timing")
        self._apis: dict[str, ProviderAPI] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._job_tasks: dict[str, asyncio.Task[Any]] = {}
        self._burst_left: dict[str, int] = dict.fromkeys(PROVIDERS, 0)
        self._create_times: dict[str, deque[float]] = {}
        self._active: dict[str, dict[str, set[Job]]] = {p: {} for p in PROVIDERS}
        self._pending_count: dict[str, int] = dict.fromkeys(PROVIDERS, 0)
        self._uploads: dict[str, _Upload] = {}
        self._runner: web.AppRunner | None = None
        self._root_runners: list[web.AppRunner] = []
        self._roots: dict[str, str] = {}
        self._session_tokens: set[str] = set()
        self._session: aiohttp.ClientSession | None = None
        self._dir: Path | None = None
        self._closing = asyncio.Event()
        self._stop_render = threading.Event()
        self._render_cache: dict[tuple[Any, ...], asyncio.Task[tuple[Path, int]]] = {}
        self._render_sem: asyncio.Semaphore | None = None
        self._stub: tuple[Path, Path, int] | None = None
        self.webhooks = WebhookDispatcher(self)
        self._url = ""

    # -- life cycle ------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Bind the server and get ready (renders the stub clip in ``render="stub"`` mode)."""
        if self._runner is not None:
            return
        from ._aimlapi import AIMLAPI
        from ._eachlabs import EachlabsAPI
        from ._fal import FalAPI
        from ._gmicloud import GMICloudAPI
        from ._runcomfy import RunComfyAPI

        self._closing = asyncio.Event()
        self._stop_render.clear()
        self._render_sem = asyncio.Semaphore(2)
        self._dir = Path(tempfile.mkdtemp(prefix="ltx2-emulator-"))
        classes: tuple[type[ProviderAPI], ...] = (
            EachlabsAPI,
            FalAPI,
            GMICloudAPI,
            RunComfyAPI,
            AIMLAPI,
        )
        for cls in classes:
            provider_api = cls(self)
            self._apis[provider_api.name] = provider_api
        app = web.Application(client_max_size=CLIENT_MAX_SIZE, middlewares=[self._middleware(None)])
        for api in self._apis.values():
            app.router.add_routes(api.routes())
        app.router.add_routes(
            [
                web.get("/media/{name}", self._media),
                web.put("/upload/{token}", self._upload_put),
                web.get("/files/{token}/{name}", self._upload_get),
                web.get("/_emulator/stats", self._stats_handler),
                web.get("/_emulator/jobs", self._jobs_handler),
                web.get("/_emulator/health", self._health),
            ]
        )
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, ssl_context=self.ssl)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            shutil.rmtree(self._dir, ignore_errors=True)
            raise
        self._runner = runner
        port = runner.addresses[0][1]
        self._url = self._base(port)
        self.port = port
        try:
            for api in self._apis.values():
                await self._start_root(api)
        except BaseException:
            await self.stop()
            raise
        self._session = aiohttp.ClientSession()
        if self.render == "stub":
            self._stub = await self._make_stub()

    def _base(self, port: int) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "", "::") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"{'https' if self.ssl else 'http'}://{host}:{port}"

    async def _start_root(self, api: ProviderAPI) -> None:
        """A listener serving ``api``'s real paths from its root (its own free port)."""
        app = web.Application(client_max_size=CLIENT_MAX_SIZE, middlewares=[self._middleware(api)])
        app[_ROOT_OF] = api.name
        app.router.add_routes(api.root_routes())
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        self._root_runners.append(runner)
        await web.TCPSite(runner, self.host, 0, ssl_context=self.ssl).start()
        self._roots[api.name] = self._base(runner.addresses[0][1])

    async def stop(self) -> None:
        """Cancel every background task, close the server and the client session."""
        if self._runner is None:
            return
        self._closing.set()
        self._stop_render.set()
        while self._tasks:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._tasks.difference_update(tasks)
        runner, self._runner = self._runner, None
        await runner.cleanup()
        roots, self._root_runners = self._root_runners, []
        for root in roots:
            await root.cleanup()
        self._roots.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)

    # -- public properties -----------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (https with ``ssl=``)."""
        if not self._url:
            raise RuntimeError("the emulator is not started")
        return self._url

    def provider_url(self, name: str) -> str:
        """Base URL for ``ltx2.Client(name, base_url=...)``: ``{url}/{name}``."""
        if name not in PROVIDERS:
            raise ValueError(f"unknown provider {name!r}; one of {', '.join(PROVIDERS)}")
        return f"{self.url}/{name}"

    def root_url(self, name: str) -> str:
        """The listener that serves provider ``name`` at its real paths from the host root
        (``http://127.0.0.1:PORT``), for SDKs that keep only a base URL's host (AI/ML API's,
        fal-client's module URLs, gmicloud's): e.g. ``Client("aimlapi", base_url=...)`` or
        ``aimlapi.AsyncAIMLAPI(base_url=f"{root}/v1")``."""
        if name not in PROVIDERS:
            raise ValueError(f"unknown provider {name!r}; one of {', '.join(PROVIDERS)}")
        if name not in self._roots:
            raise RuntimeError("the emulator is not started")
        return self._roots[name]

    def base_for(self, request: web.Request, name: str) -> str:
        """The base URL ``request`` reached provider ``name`` at: its host-root listener or
        its prefix on the main one (for URLs the provider puts in its replies)."""
        if request.app.get(_ROOT_OF) == name:
            return self._roots[name]
        return self.provider_url(name)

    def add_session_token(self, token: str) -> None:
        """Accept ``token`` as a key from now on (GMI Cloud's login issues session tokens)."""
        self._session_tokens.add(token)

    @property
    def fal_jwks_url(self) -> str:
        """Where the fal webhook signing key is published as JWKS."""
        return f"{self.url}/fal-rest/.well-known/jwks.json"

    @property
    def fal_storage_url(self) -> str:
        """Stand-in for fal's REST host (``rest.alpha.fal.ai``): storage uploads, JWKS."""
        return f"{self.url}/fal-rest"

    def stats_for(self, provider: str) -> dict[str, Any]:
        """The counters of one provider (a live dict)."""
        return self.stats[provider]

    # -- helpers for the provider modules ---------------------------------------------------

    def api(self, name: str) -> ProviderAPI:
        """The route module of provider ``name``."""
        return self._apis[name]

    def scaled(self, seconds: float) -> float:
        """Provider seconds to wall seconds."""
        return seconds * self.time_scale

    def now(self) -> float:
        """Event-loop time."""
        return asyncio.get_running_loop().time()

    def new_id(self) -> str:
        """A UUID4 string (reproducible with a seed)."""
        return str(uuid.UUID(int=self._ids.getrandbits(128), version=4))

    def key_ok(self, key: str) -> bool:
        """Whether ``key`` is accepted."""
        return bool(key) and (
            self.api_keys is None or key in self.api_keys or key in self._session_tokens
        )

    def spawn(self, coro: Coroutine[Any, Any, T], name: str | None = None) -> asyncio.Task[T]:
        """Run ``coro`` as a task the emulator owns and cancels on :meth:`stop`."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def media_url(self, job: Job) -> str:
        """The result video's URL."""
        return f"{self.url}/media/{job.id}.mp4"

    def thumbnail_url(self, job: Job) -> str:
        """A PNG preview's URL (GMI's ``thumbnail_image_url``)."""
        return f"{self.url}/media/{job.id}.png"

    def find_job(self, provider: str, job_id: str) -> Job | None:
        """The job ``job_id`` if it belongs to ``provider``."""
        job = self.jobs.get(job_id)
        return job if job is not None and job.provider == provider else None

    def count_status(self, job: Job) -> None:
        """Count one status read of ``job`` (per-job counts in the stats)."""
        job.status_requests += 1
        per_job = self.stats[job.provider]["status_requests_by_job"]
        per_job[job.id] = per_job.get(job.id, 0) + 1

    @property
    def closing(self) -> asyncio.Event:
        """Set when :meth:`stop` begins (long-lived handlers watch it)."""
        return self._closing

    def is_own_url(self, url: str) -> bool:
        """Whether ``url`` points at this emulator (uploads live here)."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or port != self.port:
            return False
        return (parts.hostname or "") in {"127.0.0.1", "localhost", "::1", self.host}

    def new_upload(
        self,
        provider: str,
        file_name: str,
        content_type: str,
        required_headers: Mapping[str, str] | None = None,
    ) -> tuple[str, str]:
        """Register a presigned upload; returns ``(upload_url, file_url)``. A PUT to it that
        lacks any of ``required_headers`` (or changes one) is refused with 403, as a
        storage URL signed for those headers refuses it."""
        token = uuid.UUID(int=self._ids.getrandbits(128), version=4).hex
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", file_name.rsplit("/", 1)[-1])[:120] or "file"
        self._uploads[token] = _Upload(
            provider,
            safe,
            content_type or "application/octet-stream",
            required_headers=dict(required_headers) if required_headers else None,
        )
        return f"{self.url}/upload/{token}", f"{self.url}/files/{token}/{quote(safe)}"

    def store_upload(self, provider: str, file_name: str, content_type: str, data: bytes) -> str:
        """Keep an uploaded file (fal's one-step CDN upload); returns its URL."""
        _, file_url = self.new_upload(provider, file_name, content_type)
        token = urlsplit(file_url).path.split("/")[2]
        upload = self._uploads[token]
        upload.data = data
        self.stats[provider]["uploads"] += 1
        return file_url

    # -- faults and limits -----------------------------------------------------------------

    async def inject_faults(
        self, api: ProviderAPI, request: web.Request, is_read: bool, is_create: bool
    ) -> web.StreamResponse | None:
        """Maybe answer with a fault instead of the real reply (or delay it)."""
        st = api.stats
        dice = self.dice
        if is_read and dice.roll("reset"):
            st["resets"] += 1
            st["faults"]["reset"] += 1
            transport = request.transport
            if transport is not None:
                transport.abort()
            return web.Response(status=500)  # never reaches the client
        burst = self._burst_left[api.name]
        if burst > 0 or dice.roll("server_error"):
            self._burst_left[api.name] = (
                burst - 1 if burst > 0 else self.faults.server_error_burst - 1
            )
            st["server_errors"] += 1
            st["faults"]["server_error"] += 1
            status = 503 if is_create else dice.misc.choice((500, 502, 503))
            message = "Service Unavailable" if status == 503 else "Internal Server Error"
            return api.error(status, message, "injected fault: server_error")
        if dice.roll("rate_limit"):
            retry_after = self.scaled(dice.misc.uniform(1.0, 5.0))
            st["rate_limited"] += 1
            st["faults"]["rate_limit"] += 1
            return api.error(
                429,
                "Rate limit exceeded",
                "injected fault: rate_limit",
                headers={"Retry-After": format_seconds(retry_after)},
            )
        if dice.roll("slow"):
            st["faults"]["slow"] += 1
            await asyncio.sleep(self.scaled(self.faults.slow_seconds))
        return None

    def check_limits(self, api: ProviderAPI, key: str) -> tuple[str, float] | None:
        """Eachlabs' per-key limits: ``(reason, retry_after_seconds)`` when over one."""
        if not self.limits or api.name != "eachlabs":
            return None
        now = self.now()
        window = self.scaled(RATE_WINDOW_SECONDS)
        times = self._create_times.setdefault(key, deque())
        while times and times[0] <= now - window:
            times.popleft()
        creates, concurrent = self.creates_per_minute, self.concurrent
        if creates is not None and len(times) >= creates:
            return (
                f"Rate limit exceeded: {creates} creates per minute per key",
                times[0] + window - now,
            )
        active = self._active[api.name].get(key, set())
        if concurrent is not None and len(active) >= concurrent:
            soonest = min(job.deadline for job in active)
            return (
                f"Rate limit exceeded: {concurrent} concurrent predictions per key",
                max(soonest - now, self.scaled(0.5)),
            )
        return None

    # -- jobs ------------------------------------------------------------------------------

    def create_job(
        self,
        api: ProviderAPI,
        key: str,
        request: dict[str, Any],
        params: JobParams,
        *,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        image_bytes: bytes | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Job:
        """Accept a job: draw its processing time, register it and start it."""
        provider = api.name
        now = self.now()
        lo, hi = self._processing[provider]
        nominal = lo if lo == hi else self._timing.uniform(lo, hi)
        job = Job(
            id=self.new_id(),
            provider=provider,
            key=key,
            request=_trim_request(request),
            params=params,
            processing_time=self.scaled(nominal),
            nominal_time=nominal,
            started=now,
            queue_position=min(self._pending_count[provider], 25),
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
            image_bytes=image_bytes,
            extra=dict(extra or {}),
        )
        st = self.stats[provider]
        if self.dice.roll("job_failure"):
            st["faults"]["job_failure"] += 1
            job.fail_with = JobFailure("internal", "Generation failed: the model runner crashed")
        if webhook_url and nominal <= 0 and self.dice.roll("webhook_early"):
            st["faults"]["webhook_early"] += 1
            job.extra["early"] = True
        self.jobs[job.id] = job
        st["creates"] += 1
        self._pending_count[provider] += 1
        active = self._active[provider].setdefault(key, set())
        active.add(job)
        seen = st["max_concurrent_seen"]
        seen[key] = max(seen.get(key, 0), len(active))
        if provider == "eachlabs":
            self._create_times.setdefault(key, deque()).append(now)
        self._launch(job)
        return job

    async def early_webhook(self, job: Job) -> None:
        """For a ``webhook_early`` job: wait for it to end and deliver its webhook now."""
        if job.extra.get("early"):
            await job.done.wait()
            if job.state != "cancelled" or api_sends_on_cancel(self.api(job.provider)):
                await self.webhooks.send_all(job)

    def cancel_job(self, job: Job) -> bool:
        """Cancel ``job`` if it has not finished; returns whether it did."""
        if job.finished:
            return False
        task = self._job_tasks.pop(job.id, None)
        if task is not None:
            task.cancel()
        self._end(job, "cancelled")
        return True

    def _launch(self, job: Job) -> None:
        if job.processing_time <= 0:
            outcome = self._sync_outcome(job)
            if outcome is not None:
                self._finish(job, outcome)
                return
        task = self.spawn(self._run(job), name=f"ltx2-emulator-job-{job.id}")
        self._job_tasks[job.id] = task
        task.add_done_callback(lambda _t: self._job_tasks.pop(job.id, None))

    def _sync_outcome(self, job: Job) -> Outcome | None:
        """The outcome, when it needs no I/O and no rendering (stub mode, local image)."""
        if job.fail_with is not None:
            return job.fail_with
        if self.render != "stub":
            return None
        resolved, data, failure = self._local_image(job)
        if failure is not None:
            return failure
        if not resolved:
            # Stub mode is for benchmarks: a remote URL is taken as reachable, not fetched.
            return self._stub_outcome(None)
        return self._stub_outcome(data)

    async def _run(self, job: Job) -> None:
        try:
            outcome = await self._produce(job)
        except Exception:
            # A bug or an I/O error here must not leave the job pending forever.
            log.exception("emulator: job %s failed unexpectedly", job.id)
            outcome = JobFailure("internal", "Generation failed: internal error")
        delay = job.deadline - self.now()
        if delay > 0:
            await asyncio.sleep(delay)
        self._finish(job, outcome)

    async def _produce(self, job: Job) -> Outcome:
        if job.fail_with is not None:
            return job.fail_with
        resolved, data, failure = self._local_image(job)
        if failure is not None:
            return failure
        url = job.params.image_url
        if not resolved and url is not None and self.render == "stub":
            return self._stub_outcome(None)  # remote URLs are not fetched in stub mode
        if not resolved and url is not None:
            try:
                data = await self._fetch(url)
            except _FetchError as exc:
                return JobFailure("image_download", f"Failed to download image from {url}: {exc}")
        job.image_bytes = None
        if self.render == "stub":
            return self._stub_outcome(data)
        motion = job.params.camera_motion or motion_from_prompt(job.params.prompt)
        width, height = job.params.size
        spec = RenderSpec(
            width, height, job.params.fps, job.params.duration, job.params.generate_audio, motion
        )
        try:
            media, size = await self._rendered(data, job.params.prompt, spec)
            thumb, _ = await self._rendered(data, job.params.prompt, None)
        except RenderError as exc:
            return JobFailure("image_decode", f"Unsupported or corrupt image: {exc}")
        return media, thumb, size

    def _local_image(self, job: Job) -> tuple[bool, bytes | None, JobFailure | None]:
        url = job.params.image_url
        if url is None:
            return True, None, None
        if job.image_bytes is not None:
            return True, job.image_bytes, None
        if self.is_own_url(url):
            data = self._own_file(url)
            if data is None:
                return (
                    True,
                    None,
                    JobFailure("image_download", f"Failed to download image from {url}: HTTP 404"),
                )
            return True, data, None
        return False, None, None

    def _own_file(self, url: str) -> bytes | None:
        m = re.match(r"^/files/([0-9a-f]+)/", urlsplit(url).path)
        upload = self._uploads.get(m.group(1)) if m else None
        return upload.data if upload is not None else None

    def _stub_outcome(self, data: bytes | None) -> Outcome:
        from ._render import probe_image

        if data is not None:
            try:
                probe_image(data)
            except RenderError as exc:
                return JobFailure("image_decode", f"Unsupported or corrupt image: {exc}")
        assert self._stub is not None
        return self._stub

    def _finish(self, job: Job, outcome: Outcome) -> None:
        if job.finished:
            return
        if isinstance(outcome, JobFailure):
            job.failure = outcome
            self._end(job, "failed")
        else:
            job.media_path, job.thumb_path, job.file_size = outcome
            self._end(job, "succeeded")

    def _end(self, job: Job, state: str) -> None:
        job.state = state
        job.finished_at = time.time()
        job.image_bytes = None
        self._pending_count[job.provider] -= 1
        active = self._active[job.provider].get(job.key)
        if active is not None:
            active.discard(job)
        job.done.set()
        self.webhooks.job_finished(job)

    async def _fetch(self, url: str) -> bytes:
        assert self._session is not None
        try:
            timeout = aiohttp.ClientTimeout(total=30)
            async with self._session.get(url, timeout=timeout) as resp:
                if resp.status != 200:
                    raise _FetchError(f"HTTP {resp.status}")
                data = await resp.content.read(MAX_FILE_BYTES + 1)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise _FetchError(exc.__class__.__name__) from None
        if len(data) > MAX_FILE_BYTES:
            raise _FetchError("file larger than 50 MB")
        return data

    async def deliver(
        self, url: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int | None, str | None]:
        """POST one webhook; returns ``(status, error)``."""
        assert self._session is not None
        timeout = aiohttp.ClientTimeout(
            total=max(MIN_WEBHOOK_TIMEOUT, self.scaled(WEBHOOK_TIMEOUT_SECONDS))
        )
        try:
            async with self._session.post(url, data=body, headers=headers, timeout=timeout) as resp:
                await resp.read()
                return resp.status, None
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            return None, exc.__class__.__name__

    # -- rendering -------------------------------------------------------------------------

    async def _rendered(
        self, data: bytes | None, prompt: str, spec: RenderSpec | None
    ) -> tuple[Path, int]:
        """A rendered clip (or the thumbnail when ``spec`` is None), cached by content."""
        if data is not None:
            digest = hashlib.sha256(data).hexdigest()
        else:
            digest = "prompt-" + hashlib.sha256(prompt.encode()).hexdigest()
        key = (digest, spec)
        task = self._render_cache.get(key)
        if task is None:
            task = self.spawn(self._render_task(data, prompt, digest, spec))
            task.add_done_callback(_consume_exception)
            self._render_cache[key] = task
        return await asyncio.shield(task)

    async def _render_task(
        self, data: bytes | None, prompt: str, digest: str, spec: RenderSpec | None
    ) -> tuple[Path, int]:
        from ._render import render_clip, render_thumbnail

        assert self._dir is not None
        assert self._render_sem is not None
        text = prompt if data is None else digest
        if spec is None:
            path = self._dir / f"{digest[:32]}.png"
        else:
            name = (
                f"{digest[:32]}-{spec.width}x{spec.height}-{spec.fps}-{spec.duration}"
                f"-{int(spec.audio)}-{spec.motion}.mp4"
            )
            path = self._dir / name
        async with self._render_sem:
            if spec is None:
                await anyio.to_thread.run_sync(render_thumbnail, data, text, path)
            else:
                stop = self._stop_render.is_set
                await anyio.to_thread.run_sync(
                    lambda: render_clip(data, text, spec, path, should_stop=stop),
                    abandon_on_cancel=True,
                )
        return path, path.stat().st_size

    async def _make_stub(self) -> tuple[Path, Path, int]:
        assert self._dir is not None
        clip, thumb = self._dir / "stub.mp4", self._dir / "stub.png"
        blobs = await anyio.to_thread.run_sync(_stub_blobs)
        clip.write_bytes(blobs["mp4"])
        thumb.write_bytes(blobs["png"])
        return clip, thumb, len(blobs["mp4"])

    # -- emulator-wide routes --------------------------------------------------------------

    def _middleware(self, fixed: ProviderAPI | None) -> Any:
        @web.middleware
        async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
            try:
                response: web.StreamResponse = await handler(request)
                return response
            except web.HTTPException as exc:
                if exc.status < 400:
                    raise
                api = fixed or self._api_for(request.path)
                if api is None:
                    return web.json_response({"error": exc.reason}, status=exc.status)
                return api.error(exc.status, exc.reason, f"{request.method} {request.path}")
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("emulator: %s %s failed", request.method, request.path)
                api = fixed or self._api_for(request.path)
                if api is None:
                    return web.json_response({"error": "internal error"}, status=500)
                return api.error(500, "Internal server error")

        return middleware

    def _api_for(self, path: str) -> ProviderAPI | None:
        first = path.lstrip("/").split("/", 1)[0]
        if first == "fal-rest":
            first = "fal"
        return self._apis.get(first)

    async def _media(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        job_id, _, ext = name.rpartition(".")
        job = self.jobs.get(job_id)
        if job is None or job.state != "succeeded" or ext not in ("mp4", "png"):
            return web.json_response({"error": "not found"}, status=404)
        path = job.media_path if ext == "mp4" else job.thumb_path
        if path is None or not path.exists():
            return web.json_response({"error": "not found"}, status=404)
        if ext == "mp4" and request.method == "GET":
            self.stats[job.provider]["downloads"] += 1
        content_type = "video/mp4" if ext == "mp4" else "image/png"
        return web.FileResponse(path, headers={"Content-Type": content_type})

    async def _upload_put(self, request: web.Request) -> web.StreamResponse:
        upload = self._uploads.get(request.match_info["token"])
        if upload is None:
            return web.json_response({"error": "unknown or expired upload URL"}, status=404)
        for name, value in (upload.required_headers or {}).items():
            if request.headers.get(name) != value:
                # S3's answer to a PUT whose signed headers are missing or changed.
                return web.Response(
                    status=403,
                    text=f"SignatureDoesNotMatch: the request lacks the signed header {name}",
                )
        if request.content_length is not None and request.content_length > MAX_FILE_BYTES:
            return web.json_response({"error": "file larger than 50 MB"}, status=413)
        data = await request.read()
        if len(data) > MAX_FILE_BYTES:
            return web.json_response({"error": "file larger than 50 MB"}, status=413)
        upload.data = data
        if request.headers.get("Content-Type"):
            upload.content_type = request.headers["Content-Type"]
        self.stats[upload.provider]["uploads"] += 1
        etag = hashlib.md5(data, usedforsecurity=False).hexdigest()
        return web.Response(status=200, headers={"ETag": f'"{etag}"'})

    async def _upload_get(self, request: web.Request) -> web.StreamResponse:
        upload = self._uploads.get(request.match_info["token"])
        if upload is None or upload.data is None:
            return web.json_response({"error": "not found"}, status=404)
        return web.Response(body=upload.data, headers={"Content-Type": upload.content_type})

    async def _stats_handler(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.stats)

    def job_timeline(self, provider: str | None = None) -> list[dict[str, Any]]:
        """Every job's timing (for benchmarks): wall-clock ``created_at``, ``due_at`` (when
        its processing time is over) and ``finished_at`` (when it reached its terminal
        state, ``None`` while pending), its ``nominal_time`` and ``status_requests``."""
        return [
            {
                "id": job.id,
                "provider": job.provider,
                "state": job.state,
                "created_at": job.created_at,
                "due_at": job.created_at + job.processing_time,
                "finished_at": job.finished_at,
                "nominal_time": job.nominal_time,
                "processing_time": job.processing_time,
                "status_requests": job.status_requests,
            }
            for job in self.jobs.values()
            if provider is None or job.provider == provider
        ]

    async def _jobs_handler(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.job_timeline(request.query.get("provider")))

    async def _health(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"status": "ok", "jobs": len(self.jobs)})


def api_sends_on_cancel(api: ProviderAPI) -> bool:
    """Whether the provider sends a webhook for a cancelled job."""
    return api.webhook_on_cancel


def _new_stats() -> dict[str, Any]:
    return {
        "creates": 0,
        "create_attempts": 0,
        "status_requests": 0,
        "result_requests": 0,
        "list_requests": 0,
        "cancels": 0,
        "upload_requests": 0,
        "uploads": 0,
        "other_requests": 0,
        "rate_limited": 0,
        "server_errors": 0,
        "resets": 0,
        "downloads": 0,
        "webhooks_sent": 0,
        "webhooks_acked": 0,
        "webhooks_failed": 0,
        "forged_sent": 0,
        "faults": dict.fromkeys(FAULT_NAMES, 0),
        "status_requests_by_job": {},
        "max_concurrent_seen": {},
        # fal's status streams open now, and the most ever open at once.
        "streams_open": 0,
        "max_streams_open": 0,
    }


def _processing_table(
    value: ProcessingTime | Mapping[str, ProcessingTime] | None,
) -> dict[str, tuple[float, float]]:
    table = dict(DEFAULT_PROCESSING)
    if value is None:
        return table
    if isinstance(value, Mapping):
        unknown = set(value) - set(PROVIDERS)
        if unknown:
            raise ValueError(f"processing_time for unknown providers: {sorted(unknown)}")
        for name, item in value.items():
            table[name] = _as_range(item)
        return table
    rng = _as_range(value)
    return dict.fromkeys(PROVIDERS, rng)


def _as_range(value: ProcessingTime) -> tuple[float, float]:
    if isinstance(value, tuple):
        lo, hi = (float(v) for v in value)
    else:
        lo = hi = float(value)
    if lo < 0 or hi < lo:
        raise ValueError(f"bad processing_time {value!r}: need 0 <= low <= high")
    return lo, hi


def _trim_request(body: dict[str, Any]) -> dict[str, Any]:
    """The request as stored: data URIs shortened so 10,000 jobs do not hold 10,000 images."""

    def trim(value: Any) -> Any:
        if isinstance(value, str) and value.startswith("data:") and len(value) > 256:
            head = value.split(",", 1)[0]
            return f"{head},...({len(value)} chars)"
        if isinstance(value, dict):
            return {k: trim(v) for k, v in value.items()}
        return value

    return {k: trim(v) for k, v in body.items()}


def _consume_exception(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()


def _stub_blobs() -> dict[str, bytes]:
    """The tiny clip and thumbnail every job gets in stub mode (rendered once a process)."""
    from ._render import render_clip, render_thumbnail

    with _STUB_LOCK:
        if not _STUB_CACHE:
            with tempfile.TemporaryDirectory(prefix="ltx2-stub-") as tmp:
                clip, thumb = Path(tmp) / "stub.mp4", Path(tmp) / "stub.png"
                spec = RenderSpec(64, 36, 25, 1, True, "dolly_in")
                render_clip(None, "ltx2 emulator stub", spec, clip)
                render_thumbnail(None, "ltx2 emulator stub", thumb, width=64)
                _STUB_CACHE["mp4"] = clip.read_bytes()
                _STUB_CACHE["png"] = thumb.read_bytes()
        return dict(_STUB_CACHE)

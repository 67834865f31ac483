"""A client's lifecycle: created → running → closing → closed (STYLE.md rule 15).

Like httpx's ``ClientState``: a small enum that every entry point checks, one clear error
(:class:`ltx2.ClientClosedError`) once the client is closing or closed, and no silent
reopening. The lifecycle also owns the client's background task group (STYLE.md rule 8):
everything the client runs behind the caller's back (the poller, status streams,
confirmations, the producer of ``as_completed``) starts here and stops on close.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import anyio
from anyio.abc import TaskGroup

from ._errors import ClientClosedError, LTX2Error

__all__ = ["ClientState", "Lifecycle", "Work"]

#: A coroutine function the client's task group runs.
Work = Callable[..., Coroutine[Any, Any, Any]]

log = logging.getLogger("ltx2")

#: Background tasks are named ``ltx2._client.<what>``: the client's own work, in task dumps.
TASK_PREFIX = "ltx2._client."


class ClientState(enum.Enum):
    """Where a client is in its life."""

    #: Constructed; nothing opened yet (no store connection, no session, no task).
    CREATED = "created"
    #: Opened by ``async with`` or its first use; background work runs.
    RUNNING = "running"
    #: ``aclose()`` has begun: nothing new starts; awaiters are being released.
    CLOSING = "closing"
    #: Closed for good. A client is never reopened.
    CLOSED = "closed"


class Lifecycle:
    """The state of one client, the event loop it belongs to and its task group."""

    __slots__ = ("_closed", "_lock", "_loop", "_stop", "_supervisor", "_tg", "name", "state")

    def __init__(self, name: str) -> None:
        self.name = name
        self.state = ClientState.CREATED
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None
        self._stop: asyncio.Event | None = None
        self._closed: asyncio.Event | None = None
        self._tg: TaskGroup | None = None
        self._supervisor: asyncio.Task[None] | None = None

    @property
    def closing(self) -> bool:
        """True from the start of ``aclose()`` on."""
        return self.state is ClientState.CLOSING or self.state is ClientState.CLOSED

    @property
    def running(self) -> bool:
        """True while background work runs (started, not closing)."""
        return self.state is ClientState.RUNNING

    def check_open(self) -> None:
        """Raise :class:`ltx2.ClientClosedError` once closing, and :class:`ltx2.LTX2Error`
        when called from another event loop than the one the client started in."""
        if self.closing:
            raise ClientClosedError(
                f"this {self.name} is closed; nothing more is sent (its jobs keep running at "
                "the provider and stay in the store: a new client's resume() finds them)"
            )
        if self._loop is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise LTX2Error(f"this {self.name} must be used inside a running event loop") from None
        if loop is not self._loop:
            raise LTX2Error(
                f"this {self.name} belongs to the event loop it was first used in, and is now "
                "used from another one (e.g. a second asyncio.run()); create one client per "
                "event loop"
            )

    async def start(
        self, opening: Callable[[], Awaitable[None]], background: Callable[[TaskGroup], None]
    ) -> None:
        """created → running, once: ``opening()`` (connections, subscriptions), then the task
        group, where ``background(tg)`` starts the long-lived work. Concurrent first uses
        wait for one another; if ``opening()`` fails the client stays created."""
        if self.state is ClientState.RUNNING:
            self.check_open()  # the event loop
            return
        self.check_open()
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._lock = asyncio.Lock()
        assert self._lock is not None
        async with self._lock:
            if self.state is not ClientState.CREATED:
                self.check_open()
                return
            await opening()
            self._stop = asyncio.Event()
            ready = anyio.Event()
            self._supervisor = self._loop.create_task(
                self._supervise(ready, background), name=f"{TASK_PREFIX}supervisor"
            )
            await ready.wait()
            if self.state is ClientState.CREATED:
                self.state = ClientState.RUNNING

    async def _supervise(self, ready: anyio.Event, background: Callable[[TaskGroup], None]) -> None:
        assert self._stop is not None
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                background(tg)
                ready.set()
                await self._stop.wait()
                tg.cancel_scope.cancel()
        finally:
            self._tg = None
            ready.set()

    def start_soon(self, func: Work, *args: Any, name: str) -> bool:
        """Run ``func(*args)`` in the client's task group; False (nothing started) once the
        client is closing."""
        tg = self._tg
        if tg is None or self.state is not ClientState.RUNNING:
            return False
        tg.start_soon(func, *args, name=TASK_PREFIX + name)
        return True

    async def start_task(self, func: Work, *, name: str) -> None:
        """``await tg.start(func)`` in the client's task group (``func`` takes
        ``task_status``). :class:`ltx2.ClientClosedError` once closing."""
        self.check_open()
        tg = self._tg
        if tg is None:
            raise ClientClosedError(f"this {self.name} is not running")
        await tg.start(func, name=TASK_PREFIX + name)

    async def close(self, closing: Callable[[], Awaitable[None]]) -> None:
        """→ closing → closed: stop the task group, then ``closing()`` (release awaiters,
        close what the client opened). A second call waits for the first to finish."""
        if self.closing:
            if self._closed is not None and self.state is ClientState.CLOSING:
                await self._closed.wait()
            return
        self.state = ClientState.CLOSING
        self._closed = asyncio.Event()
        try:
            if self._supervisor is not None:
                assert self._stop is not None
                self._stop.set()
                # Shielded: a cancelled aclose() still leaves no background task behind.
                with anyio.CancelScope(shield=True):
                    await asyncio.wait([self._supervisor])
                error = None if self._supervisor.cancelled() else self._supervisor.exception()
                if error is not None:
                    log.error("the background work of %s failed: %r", self.name, error)
            await closing()
        finally:
            self.state = ClientState.CLOSED
            self._closed.set()

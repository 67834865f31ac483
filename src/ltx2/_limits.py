"""Client-side rate limits per provider key: a sliding-window create limit and a cap on
unfinished jobs. Every client in one event loop with the same provider and key shares them."""

from __future__ import annotations

import asyncio
import hashlib
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable

import anyio

from ._config import Limits

__all__ = ["KeyLimiter", "shared_limiter"]

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

#: Added to the window so that a create sent exactly one period after another, and delayed a
#: little less in transit, is still outside the provider's window.
_MARGIN = 1.01


class KeyLimiter:
    """Creates per sliding window and a cap on jobs in flight.

    ``acquire_create()`` waits until a create may be sent (and, with a concurrency cap, a job
    slot is free); ``release_slot()`` frees a slot when a job ends. Time is injectable.
    """

    def __init__(
        self, limits: Limits, *, clock: Clock = time.monotonic, sleep: Sleep = anyio.sleep
    ) -> None:
        self.limits = limits
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque()
        self._window_lock = anyio.Lock()
        self._slots = (
            anyio.Semaphore(limits.max_concurrent) if limits.max_concurrent is not None else None
        )
        self.in_flight = 0
        self.max_in_flight = 0

    async def acquire_create(self) -> None:
        """Wait for a free job slot, then for room in the create window."""
        if self._slots is not None:
            await self._slots.acquire()
        try:
            await self._wait_window()
        except BaseException:
            if self._slots is not None:
                self._slots.release()
            raise
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    async def _wait_window(self) -> None:
        n = self.limits.creates_per_period
        if n is None:
            return
        period = self.limits.period * _MARGIN
        async with self._window_lock:
            while True:
                now = self._clock()
                while self._sent and now - self._sent[0] >= period:
                    self._sent.popleft()
                if len(self._sent) < n:
                    self._sent.append(now)
                    return
                await self._sleep(self._sent[0] + period - now)

    def release_slot(self) -> None:
        """A job ended (or its create failed): free its slot."""
        if self.in_flight <= 0:
            return
        self.in_flight -= 1
        if self._slots is not None:
            self._slots.release()

    def penalize(self, seconds: float) -> None:
        """The provider answered 429 anyway: keep creates back for ``seconds``."""
        n = self.limits.creates_per_period
        if n is None or seconds <= 0:
            return
        # Fill the window so the next create waits at least ``seconds``.
        start = self._clock() + seconds - self.limits.period * _MARGIN
        self._sent = deque([max(start, t) for t in self._sent] + [start] * (n - len(self._sent)))


_SHARED: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, str, Limits], KeyLimiter]
] = weakref.WeakKeyDictionary()


def shared_limiter(provider: str, api_key: str, limits: Limits) -> KeyLimiter:
    """The limiter for this provider and key in the running event loop (created once)."""
    loop = asyncio.get_running_loop()
    per_loop = _SHARED.setdefault(loop, {})
    fingerprint = hashlib.sha256(api_key.encode()).hexdigest()[:16]
    key = (provider, fingerprint, limits)
    limiter = per_loop.get(key)
    if limiter is None:
        limiter = per_loop[key] = KeyLimiter(limits)
    return limiter

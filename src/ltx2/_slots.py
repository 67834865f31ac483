"""``Slots``: a semaphore for the per-request hot path (the transport's connection places).

What ``asyncio.Semaphore`` does, without its cost on the path every API call takes: on Python
3.11 its ``acquire`` builds a generator over its waiters on every call, free or not (~1.5 µs;
an API call takes one, three per job of a fan-out, a fifth of what the transport adds to a
call besides aiohttp). Here a free place is a counter decrement, and a place freed while
someone waits goes straight to the first waiter, in the order they came.
"""

from __future__ import annotations

import asyncio
import collections

__all__ = ["Slots"]


class Slots:
    """``async with slots:`` holds one of ``n`` places, waiting (first come, first served)
    while none is free. A waiter cancelled while waiting takes no place; one cancelled just
    as a place was handed to it passes the place on."""

    __slots__ = ("_free", "_waiters")

    def __init__(self, n: int) -> None:
        self._free = n
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    def locked(self) -> bool:
        """True when a caller would wait."""
        return self._free == 0 or bool(self._waiters)

    async def __aenter__(self) -> None:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._release()  # handed a place, then cancelled: the next one gets it
            raise

    async def __aexit__(self, *exc: object) -> None:
        self._release()

    def _release(self) -> None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():  # a cancelled waiter is skipped
                waiter.set_result(None)
                return
        self._free += 1

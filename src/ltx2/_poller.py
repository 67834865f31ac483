"""The fallback poller: one task for every pending job of a client.

Each job has a due time in one heap. The schedule starts from the provider's stated processing
time and then polls every ``ratio`` × the job's age (see :class:`ltx2.PollPolicy`), so a
result is known within ~10 % of the job's time after it is ready, at a cost that grows only
with the logarithm of the job's time. When a webhook is expected the poller is a safety net
polling every max(30 s, 25 % of the longest stated time), so a webhook that never comes
costs at most that. All due jobs are checked in one wake-up
with bounded concurrency; a 429 pushes every poll back by its ``Retry-After``.

The loop and its checks use plain asyncio primitives: a future with a timer to sleep on, and
at most ``concurrency`` worker tasks that ``run`` owns (started as polls come due, each
taking due jobs from one queue until it is empty and then waiting for more; cancelled and
awaited when ``run`` ends). A poll costs no task, semaphore or callback of its own: per poll
that is a fraction of a task per check, let alone anyio's task-group tasks and limiters
(benchmarks/bench_fanout.py).
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
from anyio.abc import TaskGroup

from ._config import PollPolicy
from ._errors import LTX2Error, RateLimitError

__all__ = ["Poller"]

log = logging.getLogger("ltx2")

#: Worker tasks are named like anyio would name them, so they read as the client's own.
_TASK_NAME = "ltx2._poller.Poller._work"
#: A job a status stream watches is first polled after this × the longest stated time.
_STREAM_GRACE = 1.5
#: How much of an interval a poll may be sent early to make up for its round trip and lag.
_MAX_EARLY = 0.1


@dataclass(slots=True)
class _Entry:
    started: float
    due: float
    webhook: bool
    polls: int = 0
    watched: bool = False


class Poller:
    """Schedules ``check(key)`` calls for pending jobs. ``run()`` is the one task."""

    def __init__(
        self,
        check: Callable[[str], Awaitable[None]],
        policy: PollPolicy,
        expected: tuple[float, float],
        *,
        concurrency: int = 64,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._check = check
        self.policy = policy
        self.expected = expected
        self._clock = clock
        self._rng = rng or random.Random(policy.seed)
        self._entries: dict[str, _Entry] = {}
        self._heap: list[tuple[float, str]] = []
        self._wake: asyncio.Future[None] | None = None
        self._concurrency = concurrency
        #: Due checks, in the order they came due, for the workers to take.
        self._ready: collections.deque[tuple[str, _Entry, float]] = collections.deque()
        #: Workers waiting for a due check (each on its own future).
        self._idle: collections.deque[asyncio.Future[None]] = collections.deque()
        self._workers: set[asyncio.Task[None]] = set()
        self._paused_until = 0.0
        self.polls = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def concurrency(self) -> int:
        """At most this many checks at once (``resume()`` bounds its first reads by it too)."""
        return self._concurrency

    def add(self, key: str, *, webhook: bool, age: float = 0.0, watched: bool = False) -> None:
        """Start polling a job created ``age`` seconds ago. ``watched``: a live status stream
        follows the job (and calls :meth:`unwatch` when it ends or fails), so polls are only
        a net for a stream that stalls: the lazier schedule of ``webhook_grace``."""
        now = self._clock()
        p = self.policy
        scale = p.time_scale
        if watched:
            first = self.expected[1] * (p.webhook_grace or _STREAM_GRACE) * scale
        elif webhook:
            first = (
                self.webhook_bound()
                if p.webhook_grace is None
                else self.expected[1] * p.webhook_grace * scale
            )
        elif p.first is not None:
            first = p.first * scale
        else:
            first = self.expected[0] * p.first_fraction * scale
        entry = _Entry(
            started=now - age,
            due=max(now, now - age + first),
            webhook=webhook or watched,
            watched=watched,
        )
        self._entries[key] = entry
        self._push(key, entry.due)

    def remove(self, key: str) -> None:
        """Stop polling a job (it finished)."""
        self._entries.pop(key, None)

    def poll_now(self, key: str) -> None:
        """Check a job at the next wake-up (e.g. to confirm a webhook delivery)."""
        entry = self._entries.get(key)
        if entry is not None:
            entry.due = self._clock()
            self._push(key, entry.due)

    def unwatch(self, key: str) -> None:
        """The status stream that followed a job ended or failed before the job did: check
        it at the next wake-up, and from then on on the schedule of a job nothing else
        follows (not the lazy one of a watched job)."""
        entry = self._entries.get(key)
        if entry is not None and entry.watched:
            entry.watched = entry.webhook = False
        self.poll_now(key)

    def pause(self, seconds: float) -> None:
        """Hold every poll back (the provider answered 429)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    def _push(self, key: str, due: float) -> None:
        wake = not self._heap or due < self._heap[0][0]
        heapq.heappush(self._heap, (due, key))
        if wake:
            _wake_up(self._wake)

    def interval(self, age: float, *, webhook: bool, watched: bool = False) -> float:
        """The time between two polls of a job ``age`` seconds old, before jitter: ``ratio``
        of its age within the policy's bounds (scaled); with a webhook expected, at least
        ``max_interval``."""
        p = self.policy
        lo, hi = p.min_interval * p.time_scale, p.max_interval * p.time_scale
        if not webhook and not watched:
            return min(hi, max(lo, p.ratio * age))
        if p.webhook_grace is None and not watched:
            return self.webhook_bound()
        return max(hi, p.ratio * age)

    def webhook_bound(self) -> float:
        """With a webhook expected (and no ``webhook_grace``), the time between two polls:
        ``max(webhook_latency, webhook_fraction × the longest stated time)``, scaled. A
        webhook that never comes delays a result by at most this."""
        p = self.policy
        return max(p.webhook_latency, p.webhook_fraction * self.expected[1]) * p.time_scale

    def job_interval(self, key: str) -> float | None:
        """:meth:`interval` for a job this poller holds (``None`` if it does not)."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        return self.interval(
            self._clock() - entry.started, webhook=entry.webhook, watched=entry.watched
        )

    def _next_interval(self, entry: _Entry, at: float | None = None) -> float:
        age = (self._clock() if at is None else at) - entry.started
        jitter = 1.0 - self._rng.uniform(0.0, self.policy.jitter)
        return self.interval(age, webhook=entry.webhook, watched=entry.watched) * jitter

    async def run(self, tg: TaskGroup | None = None) -> None:
        """The polling loop; runs until cancelled. Checks run in at most ``concurrency``
        worker tasks that this loop owns: when it is cancelled it cancels them and waits for
        them to end. (``tg``, the client's task group, is accepted for compatibility and not
        needed.)"""
        loop = asyncio.get_running_loop()
        try:
            while True:
                now = self._clock()
                if self._paused_until > now:
                    await anyio.sleep(self._paused_until - now)
                    continue
                while self._heap:
                    due, key = self._heap[0]
                    entry = self._entries.get(key)
                    if entry is None or entry.due != due:
                        heapq.heappop(self._heap)  # stale: finished, or rescheduled
                        continue
                    if due > now:
                        break
                    heapq.heappop(self._heap)
                    # Provisional next due so the job is not picked twice; set properly after.
                    entry.due = float("inf")
                    self._ready.append((key, entry, due))
                if self._ready:
                    self._dispatch(loop)
                self._wake = waiter = loop.create_future()
                timer = None
                if self._heap:
                    delay = max(0.0, self._heap[0][0] - self._clock())
                    timer = loop.call_later(delay, _wake_up, waiter)
                try:
                    await waiter
                finally:
                    self._wake = None
                    if timer is not None:
                        timer.cancel()
        finally:
            tasks = list(self._workers)
            for task in tasks:
                task.cancel()
            if tasks:
                with anyio.CancelScope(shield=True):
                    await asyncio.gather(*tasks, return_exceptions=True)
            self._ready.clear()
            self._idle.clear()

    def _dispatch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Hand the due checks to workers: wake idle ones, start more (up to
        ``concurrency``) while checks are left over."""
        waiting = len(self._ready)
        while waiting and self._idle:
            idle = self._idle.popleft()
            if not idle.done():
                idle.set_result(None)
                waiting -= 1
        while waiting and len(self._workers) < self._concurrency:
            task = loop.create_task(self._work(), name=_TASK_NAME)
            self._workers.add(task)
            task.add_done_callback(self._workers.discard)
            waiting -= 1

    async def _work(self) -> None:
        """One worker: the due checks, one at a time, until ``run`` cancels it."""
        loop = asyncio.get_running_loop()
        while True:
            while self._ready:
                await self._poll(*self._ready.popleft())
            idle = loop.create_future()
            self._idle.append(idle)
            await idle

    async def _poll(self, key: str, entry: _Entry, due: float) -> None:
        if self._entries.get(key) is not entry:
            return
        entry.polls += 1
        self.polls += 1
        began = self._clock()
        try:
            await self._check(key)
        except RateLimitError as exc:
            self.pause(exc.retry_after or self.policy.min_interval * self.policy.time_scale)
        except LTX2Error as exc:
            log.warning("poll of job %s failed: %s", key, exc)
        except Exception:
            # Nothing a check does may end polling for every job (the next one comes on
            # schedule); a bug shows in the log.
            log.exception("poll of job %s failed unexpectedly", key)
        if self._entries.get(key) is entry:
            # What must come within ``ratio`` × the job's age is the next *reading*, not the
            # next request: count the interval from when this check began, and send the next
            # one as much earlier as this one took to answer plus how late it started (by at
            # most _MAX_EARLY of the interval, so a slow provider or a 429 pause never makes
            # polls much faster). Counted from the end instead, results would come a round
            # trip or two later than the policy promises.
            now = self._clock()
            interval = self._next_interval(entry, began)
            early = min(now - began + max(0.0, began - due), interval * _MAX_EARLY)
            entry.due = max(now, began + interval - early)
            self._push(key, entry.due)


def _wake_up(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)

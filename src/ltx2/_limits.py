"""Client-side rate limits per provider key: a sliding-window create limit and a cap on
unfinished jobs.

The client talks to its limits through two small protocols: a :class:`LimitsBackend` makes
(or shares) the :class:`Limiter` of one provider key. :class:`LocalLimits` (the default) keeps
them in the process: every client in one event loop with the same provider, key and limits
shares one :class:`KeyLimiter`. :class:`ltx2.stores.RedisLimits` keeps them in Redis, shared
by every replica on the key (a :class:`ltx2.RedisStore` uses it by itself).

A key is only ever named by :func:`key_fingerprint`, a keyed hash of it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

import anyio

from ._config import Limits

__all__ = [
    "Clock",
    "CreatePermit",
    "KeyLimiter",
    "Limiter",
    "LimitsBackend",
    "LocalLimits",
    "Sleep",
    "key_fingerprint",
    "limits_backend_for",
    "shared_limiter",
]

#: The key of the fingerprint HMAC. Fixed, so that every replica (and every store) names one
#: provider key the same way; what it protects is the key itself: the fingerprint is a keyed
#: hash, so it neither is the key nor can be looked up in a table of plain hashes of keys.
_FINGERPRINT_KEY = b"ltx2 provider key fingerprint v1"


def key_fingerprint(provider: str, api_key: str) -> str:
    """A provider key's name in stores and limits: HMAC-SHA256 over ``provider`` and the key,
    128 bits in hex. The same in every process; the key cannot be recovered from it."""
    message = f"{provider}\0{api_key}".encode()
    return hmac.new(_FINGERPRINT_KEY, message, hashlib.sha256).hexdigest()[:32]


class CreatePermit:
    """One create let go by a limiter. Call :meth:`answered` when its reply (or its failure)
    came back: a shared window then dates the create by when the provider had surely seen it,
    not by when it was let go (another process's next create is timed from it); and a create
    let go after a 429 and accepted lifts that 429's hold-off (the provider takes creates
    again)."""

    __slots__ = ("_on_answer", "_on_resend")

    def __init__(
        self,
        on_answer: Callable[[bool], None] | None = None,
        on_resend: Callable[[], None] | None = None,
    ) -> None:
        self._on_answer = on_answer
        self._on_resend = on_resend

    def resent(self) -> None:
        """The create is sent again (the transport's retry, e.g. after its own 429): its
        success then counts from this send, after the 429s that came before it."""
        if self._on_resend is not None and self._on_answer is not None:
            self._on_resend()

    def answered(self, *, accepted: bool = False) -> None:
        """The create's reply came back (idempotent: only the first call counts).

        ``accepted``: the reply was a success (2xx, a job id read from it). The hold-off of
        every 429 that came before this create was let go (or last sent again, see
        :meth:`resent`) is then lifted, in this process and
        (with a shared backend) in every replica. A 429 that came while this create was in
        flight holds on: its create proves nothing about it (the 429 may be about the jobs
        in flight, this one among them). Call it as the reply is read."""
        on_answer, self._on_answer = self._on_answer, None
        if on_answer is not None:
            on_answer(accepted)


@runtime_checkable
class Limiter(Protocol):
    """The limits of one provider key, as a client uses them."""

    async def acquire_create(self) -> CreatePermit:
        """Wait for a free job slot and for room in the create window; take both."""

    def release_slot(self) -> None:
        """A job ended (or its create failed): free one of its slots."""

    async def count_in(self) -> None:
        """Take a slot without waiting, for a job already running at the provider (resume)."""

    def penalize(self, seconds: float) -> None:
        """The provider answered 429: send no create for ``seconds`` (the caller caps it,
        at ``RetryPolicy.max_retry_after``), unless a create let go after this call is
        accepted (:meth:`CreatePermit.answered`) and lifts the hold first."""

    async def aclose(self) -> None:
        """This client is done with the limiter (it frees what only this client used)."""


@runtime_checkable
class LimitsBackend(Protocol):
    """Where the limits of provider keys live (see :class:`LocalLimits`,
    :class:`ltx2.stores.RedisLimits`)."""

    def limiter(self, provider: str, fingerprint: str, limits: Limits) -> Limiter:
        """The limiter of this provider key (by :func:`key_fingerprint`) and these limits.
        Called in the client's event loop; each call is matched by one ``aclose()``."""


Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

#: Added to the window so that a create sent exactly one period after another, and delayed a
#: little less in transit, is still outside the provider's window.
_MARGIN = 1.01
#: ... and at least this many seconds: a create is stamped when the limiter lets it go, and
#: reaches the provider a little later (a short scaled window has almost no 1 % margin).
_MIN_MARGIN = 0.05
#: Waits shorter than this count as over: a sleep until ``t`` can wake a rounding error
#: before ``t``, and must not turn into a loop of ever tinier sleeps.
_EPSILON = 1e-6


class KeyLimiter:
    """Creates per sliding window and a cap on jobs in flight, for one provider key.

    ``acquire_create()`` waits until a job slot is free (at most ``limits.max_concurrent``
    unfinished jobs, first come first served) and then until the create window has room (at
    most ``limits.creates_per_period`` creates in any ``limits.period`` seconds) and past any
    hold-off a 429 asked for; ``release_slot()`` frees the slot when the job ends (or its create
    failed). ``penalize(seconds)`` holds every create back after a 429's ``Retry-After``, until
    then or until a create let go after it is accepted (``CreatePermit.answered``).

    ``in_flight`` counts the slots taken (a resumed job may be counted in directly: waiters
    compare against it, so the cap holds either way); ``max_in_flight`` is its high-water mark.
    ``clock`` and ``sleep`` are injectable, so tests run the limiter on virtual time.
    """

    def __init__(
        self, limits: Limits, *, clock: Clock = time.monotonic, sleep: Sleep = anyio.sleep
    ) -> None:
        self.limits = limits
        self._clock = clock
        self._sleep = sleep
        # Each create's place in the window: a one-item list, so that its reply can date it
        # later (``CreatePermit.answered``). Re-dated places may stand out of order; the head
        # then expires last, which only ever holds creates back longer, never less.
        self._sent: deque[list[float]] = deque()
        self._taken: list[float] | None = None
        self._window_lock = anyio.Lock()
        self._not_before = -math.inf
        # When the latest 429 came: only a create let go after it can lift its hold.
        self._held_since = -math.inf
        # The sleep of the waiter held back by a 429, which a lift cuts short.
        self._held: anyio.CancelScope | None = None
        self._waiters: deque[anyio.Event] = deque()
        self.in_flight = 0
        self.max_in_flight = 0

    async def acquire_create(self) -> CreatePermit:
        """Wait for a free job slot, then for room in the create window."""
        waited = await self._acquire_slot()
        try:
            await self._wait_window(fast=not waited)
        except BaseException:
            self.release_slot()
            raise
        place, self._taken = self._taken, None
        sent = [self._clock()]  # when it was let go, or last sent again
        return CreatePermit(
            lambda accepted: self._answered(place, accepted, sent[0]),
            lambda: sent.__setitem__(0, self._clock()),
        )

    def _answered(self, place: list[float] | None, accepted: bool, sent: float) -> None:
        if place is not None:
            # A create is let go now but reaches the provider a little later (later still on
            # a loaded machine): dated again by its reply, the window counts it from a moment
            # the provider had surely seen it.
            place[0] = max(place[0], self._clock())
        if accepted and sent > self._held_since:
            # Let go after every 429 so far and accepted: the provider takes creates again.
            # A create sent before a 429 proves nothing (the 429 may be about the jobs in
            # flight, which that create was one of).
            self._lift()

    def _lift(self) -> None:
        """A create let go after the latest 429 was accepted: the provider takes creates
        again, so the hold-off ends now (a 429 that comes later holds again)."""
        self._not_before = -math.inf
        if self._held is not None:
            self._held.cancel()

    async def _acquire_slot(self) -> bool:
        """Take a slot; returns whether it had to wait for one."""
        cap = self.limits.max_concurrent
        if cap is None or (not self._waiters and self.in_flight < cap):
            self._take()
            return False
        # First come first served: a releaser hands its slot to the oldest waiter (``_wake``
        # counts it in before setting the event), so a stream of new callers cannot starve it.
        event = anyio.Event()
        self._waiters.append(event)
        try:
            await event.wait()
        except BaseException:
            if event.is_set():
                self.release_slot()  # handed a slot while being cancelled: pass it on
            else:
                self._waiters.remove(event)
            raise
        return True

    def _take(self) -> None:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _wake(self) -> None:
        cap = self.limits.max_concurrent
        while self._waiters and (cap is None or self.in_flight < cap):
            self._take()
            self._waiters.popleft().set()

    async def _wait_window(self, *, fast: bool = False) -> None:
        n = self.limits.creates_per_period
        period = max(self.limits.period * _MARGIN, self.limits.period + _MIN_MARGIN)
        # ``fast``: the slot came without waiting, so nothing was handed over that a cancel
        # must give back. Then, if nobody waits ahead and there is room, take it at once (no
        # lock and no checkpoint: most creates, and every one with no limits).
        if fast and not self._window_lock.locked() and self._take_window(n, period):
            return
        # One waiter at a time, in arrival order: the lock is held while sleeping.
        async with self._window_lock:
            while True:
                now = self._clock()
                if self._not_before - now > _EPSILON:
                    with anyio.CancelScope() as self._held:
                        await self._sleep(self._not_before - now)
                    self._held = None
                    continue
                if n is None:
                    return
                while self._sent and self._sent[0][0] + period - now <= _EPSILON:
                    self._sent.popleft()
                if len(self._sent) < n:
                    self._taken = [now]
                    self._sent.append(self._taken)
                    return
                await self._sleep(self._sent[0][0] + period - now)

    def _take_window(self, n: int | None, period: float) -> bool:
        """Take a place in the create window now if the window and any 429 hold-off allow
        (no await: nothing can come between the check and the take)."""
        now = self._clock()
        if self._not_before - now > _EPSILON:
            return False
        if n is None:
            return True
        while self._sent and self._sent[0][0] + period - now <= _EPSILON:
            self._sent.popleft()
        if len(self._sent) < n:
            self._taken = [now]
            self._sent.append(self._taken)
            return True
        return False

    def release_slot(self) -> None:
        """A job ended (or its create failed): free its slot."""
        if self.in_flight <= 0:
            return
        self.in_flight -= 1
        self._wake()

    async def count_in(self) -> None:
        """Take a slot without waiting (a resumed job is already running at the provider;
        waiters compare against the count, so the cap holds either way)."""
        self._take()

    def penalize(self, seconds: float) -> None:
        """The provider answered 429 anyway: send no create for ``seconds`` (its
        ``Retry-After``), whatever the window would allow."""
        if seconds > 0:
            now = self._clock()
            self._not_before = max(self._not_before, now + seconds)
            self._held_since = now

    async def aclose(self) -> None:
        """Nothing to free: the limiter lives as long as its event loop."""


_SHARED: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, str, Limits], KeyLimiter]
] = weakref.WeakKeyDictionary()


def shared_limiter(provider: str, api_key: str, limits: Limits) -> KeyLimiter:
    """The limiter for this provider, key and limits in the running event loop (made once).

    Clients that share a key but were given different :class:`Limits` (or time scales) keep
    separate limiters, each counting only its own clients' creates and jobs.
    """
    return _local_limiter(provider, key_fingerprint(provider, api_key), limits)


def _local_limiter(provider: str, fingerprint: str, limits: Limits) -> KeyLimiter:
    loop = asyncio.get_running_loop()
    per_loop = _SHARED.setdefault(loop, {})
    # Only a fingerprint of the key is kept, never the key.
    key = (provider, fingerprint, limits)
    limiter = per_loop.get(key)
    if limiter is None:
        limiter = per_loop[key] = KeyLimiter(limits)
    return limiter


def limits_backend_for(value: object, store: object) -> LimitsBackend:
    """The backend ``Client(limits_backend=value)`` means: a :class:`LimitsBackend` as is;
    ``"local"`` for :class:`LocalLimits`; a ``redis://``, ``rediss://`` or ``unix://`` URL for
    :class:`ltx2.stores.RedisLimits` on it; None for the store's own
    (:meth:`ltx2.stores.Store.limits_backend`: Redis for a RedisStore), else local."""
    from ._errors import InvalidRequestError

    allowed = "'local', a redis://, rediss:// or unix:// URL, or a LimitsBackend"
    if value is None:
        own = getattr(store, "limits_backend", None)
        backend = own() if callable(own) else None
        return backend if isinstance(backend, LimitsBackend) else LocalLimits()
    if isinstance(value, str):
        if value == "local":
            return LocalLimits()
        if value.split("://", 1)[0] in ("redis", "rediss", "unix"):
            from .stores import RedisLimits

            return RedisLimits(value)
        from .stores._redis import safe_url

        raise InvalidRequestError(
            f"limits_backend: {safe_url(value)!r} is not a Redis URL (allowed: {allowed}, "
            "e.g. ltx2.stores.RedisLimits)",
            field="limits_backend", value=safe_url(value), allowed=allowed,
        )  # fmt: skip
    if isinstance(value, LimitsBackend):
        return value
    raise InvalidRequestError(
        f"limits_backend: got a {type(value).__name__} (allowed: {allowed}, e.g. "
        "ltx2.stores.RedisLimits)",
        field="limits_backend", value=type(value).__name__, allowed=allowed,
    )  # fmt: skip


class LocalLimits:
    """Limits kept in this process: every client in one event loop with the same provider,
    key and :class:`~ltx2.Limits` shares one :class:`KeyLimiter`. The default."""

    def limiter(self, provider: str, fingerprint: str, limits: Limits) -> Limiter:
        return _local_limiter(provider, fingerprint, limits)

    def __repr__(self) -> str:
        return "<ltx2 LocalLimits>"

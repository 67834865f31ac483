"""``RedisLimits``: the limits of a provider key kept in Redis, shared by every replica.

Layout (``{p}`` the prefix; ``{s}`` the scope, ``{provider}:{fingerprint}`` of the key)::

    {p}:limits:{s}:slots      zset slot id -> its lease's expiry       (jobs in flight)
    {p}:limits:{s}:creates    zset create id -> when it was let go     (the sliding window)
    {p}:limits:{s}:hold       no create before this time               (a 429's Retry-After)
    {p}:limits:{s}:hold:at    when the latest 429 holding it came      (µs)
    {p}:limits:{s}:lifted:at  when the latest accepted create was let go (µs)
    {p}:limits:{s}:queue      zset waiter -> ticket                    (who asked first)
    {p}:limits:{s}:waiters    zset waiter -> expiry                    (waiters still asking)
    {p}:limits:{s}:tickets    the ticket counter

Every time is Redis' own clock (``TIME``, in ms), so replicas' clocks never matter.

A create is dated twice: when it is let go, and (later, never earlier) when its reply came back
(:meth:`CreatePermit.answered`), since between the two the provider saw it at a moment no
replica knows; another replica's create, a window later, is timed from the later date, so a
create that was slow to leave cannot make the next one arrive inside the provider's window.

A 429 holds every replica's creates back (capped at ``max_hold``); a create let go after it and
accepted lifts the hold everywhere (the provider takes creates again), but only a hold set by
429s that came before that create was let go (one that came while it was in flight may be about
the jobs in flight, that create among them): each 429 and each create is dated in its process
(the Redis time of its script, less how long the script took to leave), and the dates decide
whichever script runs first. A lift is announced on the scope's channel, so waiting replicas
go at once.

One Lua script decides a create, atomically: it drops slots whose lease expired (a replica
that died), creates older than the window and waiters that stopped asking; then grants a slot
and a place in the window together, or says how long to wait. Waiters are granted in ticket
order (a waiter is one process: its own callers queue in-process behind one lock), so a
replica that releases and asks again at once cannot starve one that asks less often: each
waiting replica is granted within (its place in the queue) grants. A replica renews its slots'
leases every third of a lease; when it dies they lapse within one lease and its place in the
queue a few seconds later.

Slot ids are ``{host}/{pid}/{random}#{n}``. A slot is anonymous to the client
(``release_slot`` frees any of this process's), so the protocol is the same as
:class:`~ltx2._limits.KeyLimiter`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import math
import os
import socket
import time
import uuid
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from .._config import Limits
from .._errors import TransportError
from .._limits import CreatePermit, Limiter
from ._redis import budget_client, down_errors, safe_url, stop_task

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

__all__ = ["RedisLimits"]

logger = logging.getLogger("ltx2.limits")

DEFAULT_URL = "redis://127.0.0.1:6379/0"
#: Creates wait this long for an unreachable Redis before they fail (seconds).
DEFAULT_DOWN_TIMEOUT = 30.0
#: A 429's hold-off is capped at this (seconds; RetryPolicy.max_retry_after's default).
DEFAULT_MAX_HOLD = 120.0
#: Added to the window, as in KeyLimiter (1 %), but at least 20 ms rather than 50: a create is
#: dated again by its reply (see the module's docstring), which the provider saw it before, so
#: the transit the larger minimum covers is in the date already.
_MARGIN = 1.01
_MIN_MARGIN = 0.02
#: A waiter blocked on slots is woken by the release (announced on the scope's channel);
#: it also asks again after this long, doubling up to ``_POLL_MAX``, should a release's
#: announcement be lost.
_POLL_MIN = 0.005
_POLL_MAX = 0.2
#: A waiter is dropped from the queue this long after it stopped asking (ms).
_WAITER_TTL_MS = 2000
#: While Redis is unreachable, creates ask again this often (seconds).
_DOWN_RETRY = 0.25
#: A waiter held back by a 429 asks again at least this often (seconds), should the
#: announcement of a lift be lost.
_HOLD_POLL = 1.0
#: How long an accepted create's date is kept for a 429's script that comes late (ms).
_LIFTED_TTL_MS = 60_000

_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cap, n = tonumber(ARGV[3]), tonumber(ARGV[4])
local period, lease, wttl = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local dead = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now)
for i = 1, #dead do redis.call('ZREM', KEYS[4], dead[i]) end
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - period)
if not redis.call('ZSCORE', KEYS[4], ARGV[1]) then
  redis.call('ZADD', KEYS[4], redis.call('INCR', KEYS[6]), ARGV[1])
end
local rank = redis.call('ZRANK', KEYS[4], ARGV[1])
local wait = 0
local hold = tonumber(redis.call('GET', KEYS[3]) or '0')
if hold > now then wait = hold - now end
local blocked = false
if cap >= 0 and cap - redis.call('ZCARD', KEYS[1]) <= rank then blocked = true end
if n >= 0 then
  local room = n - redis.call('ZCARD', KEYS[2])
  if room <= rank then
    local nth = redis.call('ZRANGE', KEYS[2], rank - room, rank - room, 'WITHSCORES')
    if nth[2] then wait = math.max(wait, tonumber(nth[2]) + period - now, 1) end
  end
end
local keep = math.max(period, lease, wttl) * 2
if wait == 0 and not blocked then
  redis.call('ZREM', KEYS[4], ARGV[1])
  redis.call('ZREM', KEYS[5], ARGV[1])
  if cap >= 0 then
    redis.call('ZADD', KEYS[1], now + lease, ARGV[2])
    redis.call('PEXPIRE', KEYS[1], lease + 1000)
  end
  if n >= 0 then
    redis.call('ZADD', KEYS[2], now, ARGV[8])
    redis.call('PEXPIRE', KEYS[2], period + 1000)
  end
  return {1, 0, 0}
end
redis.call('ZADD', KEYS[5], now + wait + wttl, ARGV[1])
redis.call('PEXPIRE', KEYS[4], keep + wait)
redis.call('PEXPIRE', KEYS[5], keep + wait)
redis.call('PEXPIRE', KEYS[6], keep + wait)
if wait == 0 then return {0, -1, 0} end
if hold > now and hold - now >= wait then return {0, wait, 1} end
return {0, wait, 0}
"""

# Renew (or take, for a resumed job) the leases of these slots: ARGV[1] the lease (ms), the
# rest slot ids. A slot whose lease lapsed while this replica was slow is taken again: its job
# is still in flight, so it must count (the cap may be over for a while; nothing is granted
# until it is under again).
_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], now + lease, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], lease + 1000)
return #ARGV - 1
"""

# Free a slot and tell the waiters (ARGV[1] the slot, ARGV[2] the channel).
_RELEASE = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[2], '1')
return 1
"""

# A create's reply came back. KEYS: creates, hold, hold:at, lifted:at. ARGV[1] its id in the
# window ('' for none): dated by now (only later, never earlier). ARGV[2] '1' if it was
# accepted: then, let go ARGV[3] µs ago, it lifts a hold whose every 429 came before, and
# leaves its date (for ARGV[5] ms) to a 429's script that comes late but came before it;
# ARGV[4] the channel the lift is announced on.
_ANSWERED = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[1] ~= '' then redis.call('ZADD', KEYS[1], 'XX', 'GT', now, ARGV[1]) end
if ARGV[2] ~= '1' then return 0 end
local at = tonumber(t[1]) * 1000000 + tonumber(t[2]) - tonumber(ARGV[3])
local lifted = tonumber(redis.call('GET', KEYS[4]) or '-1')
if at > lifted then
  redis.call('SET', KEYS[4], string.format('%d', at), 'PX', tonumber(ARGV[5]))
end
local held = tonumber(redis.call('GET', KEYS[3]) or '-1')
if redis.call('EXISTS', KEYS[2]) == 1 and held < at then
  redis.call('DEL', KEYS[2], KEYS[3])
  redis.call('PUBLISH', ARGV[4], 'lift')
  return 1
end
return 0
"""

# Hold every create back for ARGV[1] ms (never shortening a longer hold), for a 429 that came
# ARGV[2] µs ago; not if a create accepted after it lifted the hold already. KEYS: hold,
# hold:at, lifted:at.
_HOLD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local at = tonumber(t[1]) * 1000000 + tonumber(t[2]) - tonumber(ARGV[2])
if at <= tonumber(redis.call('GET', KEYS[3]) or '-1') then return 0 end
local ms = tonumber(ARGV[1])
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if now + ms > cur then redis.call('SET', KEYS[1], now + ms, 'PX', ms) end
local held = tonumber(redis.call('GET', KEYS[2]) or '-1')
local ttl = redis.call('PTTL', KEYS[1])
if at > held and ttl > 0 then
  redis.call('SET', KEYS[2], string.format('%d', at), 'PX', ttl)
end
return 1
"""


def _stamp(at: list[float]) -> None:
    at[0] = time.monotonic()


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _age_us(since: float) -> int:
    """Microseconds from ``since`` (``time.monotonic()``) to now."""
    return max(0, round((time.monotonic() - since) * 1e6))


class RedisLimits:
    """Shared limits in Redis: a provider key's creates per window and jobs in flight hold
    across every process that uses it (``Client(limits_backend=...)``).

    A :class:`ltx2.RedisStore` makes one by itself (same server and prefix), so replicas on a
    Redis store share their limits without this; pass one (or just a Redis URL as
    ``limits_backend=``) when the store is elsewhere, e.g. a :class:`ltx2.SQLiteStore` per
    replica.

    ``url``: the Redis server; ``client``: a ``redis.asyncio.Redis`` to use instead (not
    closed here). ``prefix`` namespaces the keys (as the store's). ``down_timeout``: how long a
    create waits for an unreachable Redis before it raises :class:`ltx2.TransportError` (the
    caller's own timeout may end it sooner); it never goes ahead without the limits.
    ``max_hold``: the longest a 429's ``Retry-After`` holds every replica back; a create
    accepted after the 429 (by any replica) lifts the hold at once.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        prefix: str = "ltx2",
        client: Redis | None = None,
        down_timeout: float = DEFAULT_DOWN_TIMEOUT,
        max_hold: float = DEFAULT_MAX_HOLD,
    ) -> None:
        self._url = url
        self._prefix = prefix
        self._client = client
        self._owns_client = client is None
        self.down_timeout = down_timeout
        self.max_hold = max_hold
        self._scripts: tuple[AsyncScript, ...] | None = None
        self._limiters: dict[tuple[str, str, Limits], _RedisKeyLimiter] = {}
        self._down = False

    def __repr__(self) -> str:
        return f"<ltx2 RedisLimits url={safe_url(self._url)!r} prefix={self._prefix!r}>"

    @property
    def prefix(self) -> str:
        """The prefix of every key."""
        return self._prefix

    def limiter(self, provider: str, fingerprint: str, limits: Limits) -> Limiter:
        """The limiter of this key and limits (one per backend; clients share it)."""
        key = (provider, fingerprint, limits)
        limiter = self._limiters.get(key)
        if limiter is None:
            limiter = self._limiters[key] = _RedisKeyLimiter(
                self, f"{self._prefix}:limits:{provider}:{fingerprint}", limits
            )
        limiter.users += 1
        return limiter

    # -- Redis ---------------------------------------------------------------------------

    def _redis(self) -> tuple[Redis, tuple[AsyncScript, ...]]:
        if self._client is None:
            self._client = budget_client(self._url)
        if self._scripts is None:
            c = self._client
            self._scripts = (
                c.register_script(_ACQUIRE),
                c.register_script(_RENEW),
                c.register_script(_HOLD),
                c.register_script(_ANSWERED),
                c.register_script(_RELEASE),
            )
        return self._client, self._scripts

    def _went_down(self, exc: BaseException) -> None:
        if not self._down:
            self._down = True
            logger.warning(
                "ltx2: the limits backend (Redis at %s) is unreachable (%s); creates wait "
                "for it", safe_url(self._url), type(exc).__name__,
            )  # fmt: skip

    def _came_back(self) -> None:
        if self._down:
            self._down = False
            logger.info("ltx2: the limits backend (Redis at %s) is back", safe_url(self._url))

    async def _forget(self, limiter: _RedisKeyLimiter) -> None:
        for key, value in list(self._limiters.items()):
            if value is limiter:
                del self._limiters[key]
        if not self._limiters and self._owns_client and self._client is not None:
            client, self._client = self._client, None
            self._scripts = None
            await client.aclose()


class _RedisKeyLimiter:
    """One provider key's limits in Redis, as one process sees them (shared by its
    clients)."""

    def __init__(self, backend: RedisLimits, base: str, limits: Limits) -> None:
        self._backend = backend
        self.limits = limits
        self._keys = [f"{base}:{kind}" for kind in ("slots", "creates", "hold")]
        self._keys += [f"{base}:{kind}" for kind in ("queue", "waiters", "tickets")]
        self._hold_keys = [f"{base}:hold", f"{base}:hold:at", f"{base}:lifted:at"]
        self._channel = f"{base}:released"
        self._listener: asyncio.Task[None] | None = None
        # Names its slots and its place in the queue; host and pid tell an operator (and a
        # test) which process holds what.
        self._id = f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:12]}"
        self._seq = itertools.count()
        self._lease = max(0.3, limits.lease)
        period = limits.period
        self._period_ms = _ms(max(period * _MARGIN, period + _MIN_MARGIN))
        self._lock = asyncio.Lock()  # one caller of this process asks Redis at a time
        self._released = asyncio.Event()
        self._held: list[str] = []
        # A 429's hold-off in this process, until its hold is in Redis (which then decides).
        self._not_before = 0.0
        self._holds_out = 0  # hold scripts not yet run
        self._held_since = -math.inf  # when this process's latest 429 came
        # Set (and replaced) when a hold ends early: lifted here, or announced by a replica.
        self._hold_changed = asyncio.Event()
        self._renewer: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self.users = 0
        self.in_flight = 0
        self.max_in_flight = 0

    def _new_id(self) -> str:
        return f"{self._id}#{next(self._seq)}"

    async def acquire_create(self) -> CreatePermit:
        limits = self.limits
        async with self._lock:
            poll = _POLL_MIN
            down_since: float | None = None
            while True:
                hold = self._not_before - time.monotonic()
                if hold > 0:
                    await self._wait_hold(hold)
                    continue
                self._released.clear()  # a release from now on wakes the wait below
                slot = self._new_id()
                client, scripts = self._backend._redis()
                args: list[str | int] = [
                    self._id,
                    slot,
                    -1 if limits.max_concurrent is None else limits.max_concurrent,
                    -1 if limits.creates_per_period is None else limits.creates_per_period,
                    self._period_ms,
                    _ms(self._lease),
                    _WAITER_TTL_MS,
                    slot,
                ]
                try:
                    granted, wait_ms, held = await scripts[0](
                        keys=self._keys, args=args, client=client
                    )
                except asyncio.CancelledError:
                    # The script may have run: give back a slot it may have granted.
                    self._spawn(self._release(slot))
                    raise
                except down_errors() as exc:
                    now = time.monotonic()
                    down_since = now if down_since is None else down_since
                    self._backend._went_down(exc)
                    left = self._backend.down_timeout - (now - down_since)
                    if left <= 0:
                        raise TransportError(
                            f"the limits backend (Redis at {safe_url(self._backend._url)}) is "
                            f"down ({type(exc).__name__}): no create was sent, to stay within "
                            f"the key's limits; waited {self._backend.down_timeout:g} s",
                            maybe_sent=False,
                        ) from None
                    await asyncio.sleep(min(_DOWN_RETRY, left))
                    continue
                self._backend._came_back()
                down_since = None
                if int(granted):
                    self._take(slot if limits.max_concurrent is not None else None)
                    in_window = slot if limits.creates_per_period is not None else ""
                    sent = [time.monotonic()]  # when it was let go, or last sent again
                    return CreatePermit(
                        functools.partial(self._on_answer, in_window, sent),
                        functools.partial(_stamp, sent),
                    )
                wait_ms = int(wait_ms)
                if int(held):
                    # A 429's hold: a create accepted anywhere ends it (announced).
                    self._start_listener()
                    await self._wait_hold(min(wait_ms / 1000, _HOLD_POLL))
                    poll = _POLL_MIN
                    continue
                if wait_ms >= 0:
                    await asyncio.sleep(wait_ms / 1000)
                    poll = _POLL_MIN
                    continue
                # Blocked on slots: a release anywhere wakes us (through the channel).
                self._start_listener()
                try:
                    await asyncio.wait_for(self._released.wait(), poll)
                except TimeoutError:
                    poll = min(_POLL_MAX, poll * 2)

    def _take(self, slot: str | None) -> None:
        if slot is not None:
            self._held.append(slot)
            self._start_renewer()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    async def count_in(self) -> None:
        slot = self._new_id() if self.limits.max_concurrent is not None else None
        self._take(slot)
        if slot is not None:
            try:
                await self._renew([slot])
            except down_errors() as exc:
                # Counted here; the renewer takes it in Redis once Redis answers again.
                self._backend._went_down(exc)

    def release_slot(self) -> None:
        if self.in_flight <= 0:
            return
        self.in_flight -= 1
        if self._held:
            self._spawn(self._release(self._held.pop()))
        else:
            self._released.set()

    async def _release(self, slot: str) -> None:
        try:
            client, scripts = self._backend._redis()
            await scripts[4](keys=[self._keys[0]], args=[slot, self._channel], client=client)
        except down_errors() as exc:
            self._backend._went_down(exc)  # its lease lapses by itself
        finally:
            self._released.set()

    def penalize(self, seconds: float) -> None:
        seconds = min(seconds, self._backend.max_hold)
        if seconds <= 0:
            return
        now = time.monotonic()
        self._not_before = max(self._not_before, now + seconds)
        self._held_since = now
        self._holds_out += 1
        self._spawn(self._hold(seconds, now))

    def _on_answer(self, create: str, sent_at: list[float], accepted: bool) -> None:
        sent = sent_at[0]
        if accepted and sent > self._held_since:
            # Let go after every 429 this process saw, and accepted: its hold ends here
            # now, and in Redis when the script runs (dated by when this create was let go,
            # so a 429 that came while it was in flight, here or anywhere, holds on).
            self._not_before = 0.0
            self._notify_hold()
        elif not create and not accepted:
            return  # no window to date it in, nothing to lift
        self._spawn(self._answered(create, accepted, sent))

    async def _answered(self, create: str, accepted: bool, at: float) -> None:
        keys = [self._keys[1], *self._hold_keys[:3]]
        try:
            client, scripts = self._backend._redis()
            args: list[str | int] = [create, "1" if accepted else "0", _age_us(at)]
            args += [self._channel, _LIFTED_TTL_MS]
            await scripts[3](keys=keys, args=args, client=client)
        except down_errors() as exc:
            self._backend._went_down(exc)  # its grant time (and any hold) stands

    async def _hold(self, seconds: float, at: float) -> None:
        landed = False
        try:
            client, scripts = self._backend._redis()
            args = [_ms(seconds), _age_us(at)]
            await scripts[2](keys=self._hold_keys, args=args, client=client)
            landed = True
        except down_errors() as exc:
            self._backend._went_down(exc)  # held here still
        finally:
            self._holds_out -= 1
        if landed and self._holds_out == 0:
            # Redis has every hold this process saw (or knew a create accepted after it):
            # from now on it decides, so that a replica's lift frees this one too.
            self._not_before = 0.0
            self._notify_hold()

    def _notify_hold(self) -> None:
        """A hold ended early: wake those waiting it out."""
        changed, self._hold_changed = self._hold_changed, asyncio.Event()
        changed.set()

    async def _wait_hold(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if a hold ends early."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._hold_changed.wait(), seconds)

    async def _renew(self, slots: list[str]) -> None:
        client, scripts = self._backend._redis()
        args: list[str | int] = [_ms(self._lease), *slots]
        await scripts[1](keys=[self._keys[0]], args=args, client=client)

    def _start_renewer(self) -> None:
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.get_running_loop().create_task(
                self._renew_loop(), name="ltx2 limits lease renewer"
            )

    async def _renew_loop(self) -> None:
        while self._held:
            await asyncio.sleep(self._lease / 3)
            if not self._held:
                return
            try:
                await self._renew(list(self._held))
                self._backend._came_back()
            except down_errors() as exc:
                self._backend._went_down(exc)
            except Exception:
                logger.exception("ltx2: renewing limit leases failed")

    def _start_listener(self) -> None:
        if self._listener is None or self._listener.done():
            self._listener = asyncio.get_running_loop().create_task(
                self._listen(), name="ltx2 limits release listener"
            )

    async def _listen(self) -> None:
        me = asyncio.current_task()
        # Runs while it is this limiter's listener, not only until cancelled (a cancel can be
        # lost in get_message: see RedisStore._listen).
        while self._listener is me:
            client, _ = self._backend._redis()
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                while self._listener is me:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
                    if message is not None:
                        if message.get("data") in ("lift", b"lift"):
                            self._notify_hold()  # a replica's create was accepted
                        else:
                            self._released.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Down, or a reply we did not expect: waiters fall back to asking again.
                self._backend._went_down(exc)
                await asyncio.sleep(_DOWN_RETRY)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def aclose(self) -> None:
        self.users -= 1
        if self.users > 0:
            return
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=2.0)
        tasks = (self._renewer, self._listener)
        self._renewer = self._listener = None
        for task in tasks:
            if task is not None:
                await stop_task(task)
        await self._backend._forget(self)

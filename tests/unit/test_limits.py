"""``KeyLimiter`` on virtual time: the create window and the in-flight cap hold under 200
concurrent submits, a 429's ``Retry-After`` holds every create back, cancelled waiters give
their slot back, and clients on one key in one loop get one limiter."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
from collections.abc import Awaitable, Callable

import anyio
import pytest

import ltx2
from ltx2._limits import KeyLimiter, shared_limiter


class VirtualTime:
    """A clock and a sleep for the limiter: time moves only when every task is blocked, to
    the earliest pending wake-up. A test of minutes of limits takes milliseconds."""

    def __init__(self) -> None:
        self.now = 0.0
        self._timers: list[tuple[float, int, anyio.Event]] = []
        self._seq = itertools.count()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        event = anyio.Event()
        heapq.heappush(self._timers, (self.now + max(0.0, seconds), next(self._seq), event))
        await event.wait()

    async def run(self, main: Callable[[], Awaitable[None]]) -> None:
        """Run ``main`` to its end, advancing time whenever everything waits."""
        finished = anyio.Event()

        async def wrapped() -> None:
            try:
                await main()
            finally:
                finished.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(wrapped)
            while True:
                await _all_blocked()
                if finished.is_set():
                    break
                assert self._timers, "deadlock: every task waits and no timer is pending"
                when, _, event = heapq.heappop(self._timers)
                self.now = max(self.now, when)
                event.set()


async def _all_blocked() -> None:
    """Return once every other task waits and the event loop has nothing ready to run.

    (``anyio.wait_all_tasks_blocked`` sleeps 0.1 s per look and can look before the loop's
    ready callbacks, such as a finished child waking its task group, have run.) Looks at
    asyncio's private ``Task._fut_waiter`` and ``loop._ready``, as anyio does: test-only.
    """
    me = asyncio.current_task()
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(0)
        if getattr(loop, "_ready", None):
            continue
        waiters = [getattr(t, "_fut_waiter", None) for t in asyncio.all_tasks() if t is not me]
        if all(w is not None and not w.done() for w in waiters):
            return


def max_in_any_window(times: list[float], period: float) -> int:
    """The most events in any half-open window ``[t, t + period)``."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= period:
            start += 1
        best = max(best, end - start + 1)
    return best


async def test_limits_hold_under_200_concurrent_submits() -> None:
    limits = ltx2.Limits(creates_per_period=100, max_concurrent=10, period=60.0)
    vt = VirtualTime()
    limiter = KeyLimiter(limits, clock=vt.clock, sleep=vt.sleep)
    rng = random.Random(5)
    creates: list[float] = []
    in_flight = 0
    most_in_flight = 0

    async def submit_and_run(seconds: float) -> None:
        nonlocal in_flight, most_in_flight
        await limiter.acquire_create()
        creates.append(vt.now)
        in_flight += 1
        most_in_flight = max(most_in_flight, in_flight)
        await vt.sleep(seconds)  # the job runs at the provider
        in_flight -= 1
        limiter.release_slot()

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            for _ in range(200):
                tg.start_soon(submit_and_run, rng.uniform(0.1, 3.0))

    await vt.run(main)

    assert len(creates) == 200
    assert max_in_any_window(creates, limits.period) <= 100
    assert most_in_flight == 10
    assert limiter.max_in_flight == 10
    assert limiter.in_flight == 0
    # Not needlessly slow either: the 101st create goes out right after the first window
    # (60 s plus the 1 % margin), and everything is sent within two windows.
    assert sorted(creates)[100] == pytest.approx(60.6, abs=0.5)
    assert max(creates) < 2 * 60.6


async def test_the_window_alone_holds_with_no_concurrency_cap() -> None:
    limits = ltx2.Limits(creates_per_period=7, period=10.0)
    vt = VirtualTime()
    limiter = KeyLimiter(limits, clock=vt.clock, sleep=vt.sleep)
    creates: list[float] = []

    async def submit() -> None:
        await limiter.acquire_create()
        creates.append(vt.now)

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            for _ in range(200):
                tg.start_soon(submit)

    await vt.run(main)
    assert len(creates) == 200
    assert max_in_any_window(creates, 10.0) == 7
    assert limiter.in_flight == 200  # nothing released: the count is only a count


@pytest.mark.parametrize(
    "limits", [ltx2.Limits(creates_per_period=100, period=60.0), ltx2.Limits()], ids=str
)
async def test_penalize_holds_every_create_back_for_retry_after(limits: ltx2.Limits) -> None:
    vt = VirtualTime()
    limiter = KeyLimiter(limits, clock=vt.clock, sleep=vt.sleep)
    creates: list[float] = []

    async def create() -> None:
        await limiter.acquire_create()
        creates.append(vt.now)

    async def main() -> None:
        await create()
        vt.now = 3.0
        limiter.penalize(30.0)  # a 429 with Retry-After: 30 at t = 3
        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(create)

    await vt.run(main)
    assert creates == [0.0] + [33.0] * 5  # nobody went before t = 3 + 30


async def test_a_shorter_penalty_does_not_shorten_a_longer_one() -> None:
    vt = VirtualTime()
    limiter = KeyLimiter(ltx2.Limits(), clock=vt.clock, sleep=vt.sleep)
    limiter.penalize(20.0)
    limiter.penalize(5.0)
    limiter.penalize(0.0)

    async def main() -> None:
        await limiter.acquire_create()

    await vt.run(main)
    assert vt.now == 20.0


async def test_cancelled_waiters_do_not_keep_or_lose_slots() -> None:
    vt = VirtualTime()
    limiter = KeyLimiter(ltx2.Limits(max_concurrent=2), clock=vt.clock, sleep=vt.sleep)
    got: list[int] = []

    async def main() -> None:
        await limiter.acquire_create()
        await limiter.acquire_create()
        async with anyio.create_task_group() as tg:

            async def wait(n: int) -> None:
                await limiter.acquire_create()
                got.append(n)

            for n in range(3):
                tg.start_soon(wait, n)
            await vt.sleep(0)  # returns once every waiter waits
            assert len(limiter._waiters) == 3
            # Free a slot, which is handed to waiter 0, and cancel every waiter before it
            # runs: the handed-over slot must come back, not leak.
            limiter.release_slot()
            tg.cancel_scope.cancel()
        assert got == []
        assert limiter.in_flight == 1
        # A slot is free again, first come first served.
        await limiter.acquire_create()
        assert limiter.in_flight == 2

    await vt.run(main)


async def test_a_job_counted_in_directly_takes_a_slot() -> None:
    # Client.resume() counts re-attached jobs in with ``in_flight += 1``.
    vt = VirtualTime()
    limiter = KeyLimiter(ltx2.Limits(max_concurrent=1), clock=vt.clock, sleep=vt.sleep)
    limiter.in_flight += 1
    order: list[str] = []

    async def main() -> None:
        async def submit() -> None:
            await limiter.acquire_create()
            order.append("created")

        async with anyio.create_task_group() as tg:
            tg.start_soon(submit)
            await vt.sleep(5.0)
            order.append("resumed job ended")
            limiter.release_slot()
        limiter.release_slot()
        limiter.release_slot()  # more releases than slots taken change nothing
        assert limiter.in_flight == 0

    await vt.run(main)
    assert order == ["resumed job ended", "created"]


async def test_one_limiter_per_provider_key_and_limits_in_a_loop() -> None:
    limits = ltx2.Limits(creates_per_period=100, max_concurrent=10)
    same = shared_limiter("eachlabs", "key-1", limits)
    assert shared_limiter("eachlabs", "key-1", ltx2.Limits(100, 10)) is same
    assert shared_limiter("eachlabs", "key-2", limits) is not same
    assert shared_limiter("fal", "key-1", limits) is not same
    assert shared_limiter("eachlabs", "key-1", ltx2.Limits(100, 5)) is not same


def test_a_key_fingerprint_is_a_keyed_hash_stable_per_provider_and_key() -> None:
    from ltx2._limits import key_fingerprint

    secret = "sk-live-0123456789abcdef"
    fp = key_fingerprint("eachlabs", secret)
    assert fp == key_fingerprint("eachlabs", secret)  # the same in every replica
    assert len(fp) == 32
    assert secret not in fp
    assert fp != key_fingerprint("fal", secret)
    assert fp != key_fingerprint("eachlabs", secret + "x")
    # Not a plain hash of the key that a table of hashes could look up.
    import hashlib

    assert fp not in hashlib.sha256(secret.encode()).hexdigest()


def test_limits_backend_is_chosen_from_the_store_or_the_option() -> None:
    from ltx2._limits import LocalLimits, limits_backend_for
    from ltx2.stores import RedisLimits

    redis_store = ltx2.RedisStore("redis://127.0.0.1:1/0", prefix="app")
    own = limits_backend_for(None, redis_store)
    assert isinstance(own, RedisLimits)
    assert own.prefix == "app"
    assert limits_backend_for(None, redis_store) is own  # one per store
    assert isinstance(limits_backend_for(None, ltx2.MemoryStore()), LocalLimits)
    assert isinstance(limits_backend_for("local", redis_store), LocalLimits)
    url = limits_backend_for("redis://127.0.0.1:1/0", ltx2.MemoryStore())
    assert isinstance(url, RedisLimits)
    given = RedisLimits("redis://127.0.0.1:1/0", prefix="x")
    assert limits_backend_for(given, ltx2.MemoryStore()) is given


@pytest.mark.parametrize("value", ["memcached://h:1", "http://user:hunter2@h/", 42, object()])
def test_a_bad_limits_backend_is_refused_naming_the_field(value: object) -> None:
    with pytest.raises(ltx2.InvalidRequestError) as info:
        ltx2.Client("eachlabs", api_key="k", limits_backend=value)  # type: ignore[arg-type]
    assert info.value.field == "limits_backend"
    assert "redis://" in str(info.value)
    assert "hunter2" not in str(info.value)
    assert "hunter2" not in repr(info.value.value)

"""``RedisLimits`` on a real redis-server: several limiters on one key (each its own backend,
as separate replicas are) keep one window and one cap between them; a 429 seen by one holds
all back; a limiter that stops renewing loses its slots within one lease; no waiter starves;
keys, providers and prefixes never share limits; and an unreachable Redis makes creates wait,
then fail with a TransportError naming the limits backend, never go ahead."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid

import pytest
from tests._redis import RedisServer

import ltx2
from ltx2._limits import Limiter, key_fingerprint
from ltx2.stores import RedisLimits

pytestmark = pytest.mark.redis


def max_in_any_window(times: list[float], period: float) -> int:
    """The most events in any half-open window ``[t, t + period)``."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= period:
            start += 1
        best = max(best, end - start + 1)
    return best


@pytest.fixture
def prefix() -> str:
    return f"limits-{uuid.uuid4().hex[:8]}"


def fp(key: str = "shared-key") -> str:
    return key_fingerprint("eachlabs", key)


async def test_three_replicas_share_one_window_and_one_cap(
    redis_server: RedisServer, prefix: str
) -> None:
    limits = ltx2.Limits(creates_per_period=20, max_concurrent=4, period=1.0, lease=2.0)
    backends = [RedisLimits(redis_server.url, prefix=prefix) for _ in range(3)]
    limiters = [b.limiter("eachlabs", fp(), limits) for b in backends]
    creates: list[float] = []
    running = 0
    most = 0

    async def job(limiter: Limiter) -> None:
        nonlocal running, most
        await limiter.acquire_create()
        creates.append(time.monotonic())
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.02)
        running -= 1
        limiter.release_slot()

    start = time.monotonic()
    await asyncio.gather(*(job(limiters[i % 3]) for i in range(60)))
    wall = time.monotonic() - start
    for limiter in limiters:
        await limiter.aclose()

    assert len(creates) == 60
    assert most <= 4
    assert max_in_any_window(creates, 1.0) <= 20
    # The window is the binding limit: 60 creates need 2 windows beyond the first, no more.
    assert wall < 3 * 1.06, wall
    assert min(creates) - start < 0.5


async def test_a_429_seen_by_one_replica_holds_every_replica_back(
    redis_server: RedisServer, prefix: str
) -> None:
    limits = ltx2.Limits(creates_per_period=100, max_concurrent=10, period=60.0)
    one, other = (RedisLimits(redis_server.url, prefix=prefix) for _ in range(2))
    first = one.limiter("eachlabs", fp(), limits)
    second = other.limiter("eachlabs", fp(), limits)
    first.penalize(0.5)
    await asyncio.sleep(0.05)  # the hold reaches Redis in the background
    start = time.monotonic()
    await second.acquire_create()
    assert time.monotonic() - start >= 0.4
    # ... and for at most max_hold.
    capped = RedisLimits(redis_server.url, prefix=prefix, max_hold=0.3)
    third = capped.limiter("eachlabs", fp(), limits)
    third.penalize(3600)
    await asyncio.sleep(0.05)
    start = time.monotonic()
    await second.acquire_create()
    assert time.monotonic() - start < 1.0
    for limiter in (first, second, third):
        await limiter.aclose()


async def test_a_replica_that_stops_renewing_loses_its_slots_within_one_lease(
    redis_server: RedisServer, prefix: str
) -> None:
    lease = 0.6
    limits = ltx2.Limits(max_concurrent=2, lease=lease)
    dead_backend = RedisLimits(redis_server.url, prefix=prefix)
    dead = dead_backend.limiter("eachlabs", fp(), limits)
    await dead.acquire_create()
    await dead.acquire_create()
    # Its renewer stops, as a SIGKILLed process's does (the slots stay taken in Redis).
    renewer = dead._renewer  # type: ignore[attr-defined]
    renewer.cancel()
    taken = time.monotonic()
    alive = RedisLimits(redis_server.url, prefix=prefix).limiter("eachlabs", fp(), limits)
    await asyncio.wait_for(alive.acquire_create(), 5)
    assert time.monotonic() - taken <= lease + 0.2
    # A live replica's slots are renewed: held past several leases, they still count.
    await alive.acquire_create()
    await asyncio.sleep(lease * 2.5)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(alive.acquire_create(), lease)
    await alive.aclose()
    await dead.aclose()  # its connections (a dead process's would go with it)


async def test_no_replica_starves_when_another_releases_and_asks_again_at_once(
    redis_server: RedisServer, prefix: str
) -> None:
    limits = ltx2.Limits(max_concurrent=1, lease=5.0)
    greedy = RedisLimits(redis_server.url, prefix=prefix).limiter("eachlabs", fp(), limits)
    patient = RedisLimits(redis_server.url, prefix=prefix).limiter("eachlabs", fp(), limits)
    stop = asyncio.Event()

    async def hog() -> None:
        while not stop.is_set():
            await greedy.acquire_create()
            await asyncio.sleep(0.01)
            greedy.release_slot()  # ... and asks again at once: it must not keep the slot

    hogs = [asyncio.create_task(hog()) for _ in range(4)]
    try:
        await asyncio.sleep(0.1)
        waits = []
        for _ in range(5):
            start = time.monotonic()
            await asyncio.wait_for(patient.acquire_create(), 2)
            waits.append(time.monotonic() - start)
            patient.release_slot()
    finally:
        stop.set()
        await asyncio.gather(*hogs, return_exceptions=True)
    # Granted in ticket order: behind at most one hog's turn, never starved.
    assert max(waits) < 0.5, waits
    await greedy.aclose()
    await patient.aclose()


async def test_keys_providers_and_prefixes_never_share_limits(
    redis_server: RedisServer, prefix: str
) -> None:
    limits = ltx2.Limits(creates_per_period=1, max_concurrent=1, period=60.0)
    backend = RedisLimits(redis_server.url, prefix=prefix)
    other_app = RedisLimits(redis_server.url, prefix=f"{prefix}-other")
    limiters = [
        backend.limiter("eachlabs", key_fingerprint("eachlabs", "key-1"), limits),
        backend.limiter("eachlabs", key_fingerprint("eachlabs", "key-2"), limits),
        backend.limiter("fal", key_fingerprint("fal", "key-1"), limits),
        other_app.limiter("eachlabs", key_fingerprint("eachlabs", "key-1"), limits),
    ]
    # Each has its one create and its one slot, whatever the others took.
    await asyncio.wait_for(asyncio.gather(*(lim.acquire_create() for lim in limiters)), 2)
    again = RedisLimits(redis_server.url, prefix=prefix)
    same = again.limiter("eachlabs", key_fingerprint("eachlabs", "key-1"), limits)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(same.acquire_create(), 0.3)
    for lim in [*limiters, same]:
        await lim.aclose()


async def test_the_key_is_never_in_redis(redis_server: RedisServer, prefix: str) -> None:
    import redis.asyncio as aioredis

    secret = f"sk-{uuid.uuid4().hex}"
    limits = ltx2.Limits(creates_per_period=5, max_concurrent=2, period=10.0)
    limiter = RedisLimits(redis_server.url, prefix=prefix).limiter(
        "eachlabs", key_fingerprint("eachlabs", secret), limits
    )
    await limiter.acquire_create()
    limiter.penalize(1.0)
    await asyncio.sleep(0.05)
    client = aioredis.from_url(redis_server.url, decode_responses=True)
    try:
        keys = [k async for k in client.scan_iter(f"{prefix}:*")]
        assert keys
        assert all(secret not in k for k in keys)
        for k in keys:
            kind = await client.type(k)
            value = await (client.zrange(k, 0, -1) if kind == "zset" else client.get(k))
            assert secret not in str(value)
    finally:
        await client.aclose()
    await limiter.aclose()


async def test_creates_wait_for_a_down_redis_then_fail_with_a_clear_transport_error(
    own_redis: RedisServer, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    limits = ltx2.Limits(creates_per_period=10, max_concurrent=2, period=1.0)
    backend = RedisLimits(own_redis.url, prefix=prefix, down_timeout=1.0)
    limiter = backend.limiter("eachlabs", fp(), limits)
    await limiter.acquire_create()
    own_redis.stop()
    caplog.set_level(logging.WARNING, logger="ltx2")
    start = time.monotonic()
    with pytest.raises(ltx2.TransportError, match="limits backend") as info:
        await limiter.acquire_create()
    took = time.monotonic() - start
    assert 1.0 <= took < 1.0 + 2.5, took  # waited down_timeout (each attempt fails in < 2 s)
    assert info.value.maybe_sent is False
    assert "shared-key" not in str(info.value)
    # Logged once for the whole outage, not once per attempt.
    downs = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert 1 <= len(downs) <= 2, [r.getMessage() for r in downs]

    # A create that waits longer goes ahead once Redis is back.
    patient = RedisLimits(own_redis.url, prefix=prefix, down_timeout=30.0)
    other = patient.limiter("eachlabs", fp(), limits)
    waiting = asyncio.create_task(other.acquire_create())
    await asyncio.sleep(0.3)
    assert not waiting.done()
    own_redis.start()
    await asyncio.wait_for(waiting, 10)
    await limiter.aclose()
    await other.aclose()


async def test_a_create_accepted_on_one_replica_lifts_the_hold_a_429_set_on_another(
    redis_server: RedisServer, prefix: str
) -> None:
    # Replica A has a create out; replica B is answered 429 with Retry-After: 3600 (held for
    # max_hold, 60 s); A's create, sent again after that (its transport's retry), is accepted:
    # the provider takes creates again, so replica C's waiting create, and B's next one, go
    # at once. (Accepted without being sent again, it would prove nothing: see below.)
    limits = ltx2.Limits(creates_per_period=100, max_concurrent=10, period=60.0)
    backends = [RedisLimits(redis_server.url, prefix=prefix, max_hold=60.0) for _ in range(3)]
    a, b, c = (backend.limiter("eachlabs", fp(), limits) for backend in backends)
    out = await a.acquire_create()
    b.penalize(3600)
    await asyncio.sleep(0.1)  # the hold reaches Redis in the background
    waiting = asyncio.create_task(c.acquire_create())
    await asyncio.sleep(0.3)
    assert not waiting.done()  # held back by B's 429
    out.resent()
    out.answered(accepted=True)
    await asyncio.wait_for(waiting, 5.0)  # not 60 s
    await asyncio.wait_for(b.acquire_create(), 5.0)
    for limiter in (a, b, c):
        await limiter.aclose()


async def test_a_create_in_flight_when_a_429_came_lifts_no_replica_when_accepted(
    redis_server: RedisServer, prefix: str
) -> None:
    # The 429 may be about the jobs in flight (a concurrency limit), A's among them.
    limits = ltx2.Limits(creates_per_period=100, max_concurrent=10, period=60.0)
    backends = [RedisLimits(redis_server.url, prefix=prefix, max_hold=60.0) for _ in range(2)]
    a, c = (backend.limiter("eachlabs", fp(), limits) for backend in backends)
    out = await a.acquire_create()
    await asyncio.sleep(0.01)
    c.penalize(3600)
    await asyncio.sleep(0.1)  # the hold reaches Redis in the background
    out.answered(accepted=True)
    waiting = asyncio.create_task(c.acquire_create())
    await asyncio.sleep(0.5)
    assert not waiting.done()  # still held
    waiting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiting
    for limiter in (a, c):
        await limiter.aclose()


async def test_a_429_that_came_after_the_accepted_reply_holds_every_replica_on(
    redis_server: RedisServer, prefix: str
) -> None:
    limits = ltx2.Limits(creates_per_period=100, max_concurrent=10, period=60.0)
    a, b, c = (
        RedisLimits(redis_server.url, prefix=prefix).limiter("eachlabs", fp(), limits)
        for _ in range(3)
    )
    out = await a.acquire_create()
    out.answered(accepted=True)
    await asyncio.sleep(0.05)
    b.penalize(0.6)  # came after A's success: the provider refuses again
    await asyncio.sleep(0.05)
    start = time.monotonic()
    await c.acquire_create()
    assert time.monotonic() - start >= 0.4
    for limiter in (a, b, c):
        await limiter.aclose()


async def test_a_429_that_came_before_the_accepted_reply_is_lifted_even_if_its_hold_lands_late(
    redis_server: RedisServer, prefix: str
) -> None:
    # Replica B saw its 429 before A's create was let go, but B's hold reaches Redis only
    # after A's lift (a slow replica): it is dated by when the 429 came, so it stays lifted.
    limits = ltx2.Limits(creates_per_period=100, max_concurrent=10, period=60.0)
    a, b, c = (
        RedisLimits(redis_server.url, prefix=prefix).limiter("eachlabs", fp(), limits)
        for _ in range(3)
    )
    came = time.monotonic()
    await asyncio.sleep(0.05)
    out = await a.acquire_create()
    out.answered(accepted=True)
    await asyncio.sleep(0.05)
    await b._hold(60.0, came)  # type: ignore[attr-defined]  # B's late hold script
    await asyncio.wait_for(c.acquire_create(), 2.0)
    for limiter in (a, b, c):
        await limiter.aclose()


async def test_a_clients_retry_after_3600_holds_the_shared_key_back_for_max_retry_after_only(
    redis_server: RedisServer, prefix: str
) -> None:
    # The client caps a 429's hold at RetryPolicy.max_retry_after before it reaches the
    # shared limits (as for KeyLimiter): the next submit goes after 0.3 s, not after an hour.
    from aioresponses import aioresponses

    create = "https://api.eachlabs.ai/v1/prediction/"
    retry = ltx2.RetryPolicy(attempts=1, max_retry_after=0.3)
    backend = RedisLimits(redis_server.url, prefix=prefix)
    with aioresponses() as m:
        m.post(create, status=429, headers={"Retry-After": "3600"},
               payload={"status": "error", "message": "rate limited"})  # fmt: skip
        m.post(create, payload={"status": "success", "predictionID": "p-2"})
        async with ltx2.Client(
            "eachlabs", api_key="sk-shared-cap", retry=retry, limits_backend=backend,
            poll=ltx2.PollPolicy(first=3600, min_interval=1, max_interval=2),
        ) as c:  # fmt: skip
            with pytest.raises(ltx2.RateLimitError):
                await c.submit(image="https://cdn.example.com/cat.jpg", prompt="one")
            start = time.monotonic()
            second = await asyncio.wait_for(
                c.submit(image="https://cdn.example.com/cat.jpg", prompt="two"), 10.0
            )
            waited = time.monotonic() - start
    assert second.id == "p-2"
    assert waited >= 0.2, waited  # held back (by Redis' hold), up to the cap only

"""A successful create lifts a 429's hold-off (issue 10, item 8): once the provider accepts a
create again, a long ``Retry-After`` stops holding the key back. Only a hold set before the
accepted create's reply is lifted; a 429 that comes after it holds on. The hold itself is
capped at ``RetryPolicy.max_retry_after``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import anyio
import pytest
from aioresponses import CallbackResult, aioresponses
from tests.unit.test_limits import VirtualTime

import ltx2
from ltx2._limits import KeyLimiter

EACHLABS_CREATE = "https://api.eachlabs.ai/v1/prediction/"
IMAGE = "https://cdn.example.com/cat.jpg"

Callback = Callable[..., Awaitable[CallbackResult]]


async def test_an_accepted_create_lifts_the_hold_of_a_429_that_came_before_its_reply() -> None:
    # Create A is let go; create B (let go later) is answered 429 Retry-After: 60 at t = 2;
    # A's reply, a success, comes at t = 5: the provider accepts creates, so the waiting
    # create C goes at once, not at t = 62.
    vt = VirtualTime()
    limiter = KeyLimiter(ltx2.Limits(creates_per_period=100, period=60.0), clock=vt.clock,
                         sleep=vt.sleep)  # fmt: skip
    sent: list[float] = []

    async def main() -> None:
        a = await limiter.acquire_create()
        b = await limiter.acquire_create()
        async with anyio.create_task_group() as tg:
            vt.now = 2.0
            b.answered()
            limiter.penalize(60.0)

            async def c() -> None:
                await limiter.acquire_create()
                sent.append(vt.now)

            tg.start_soon(c)
            await vt.sleep(3.0)
            assert sent == []  # held back by B's 429
            a.answered(accepted=True)
        await limiter.acquire_create()
        sent.append(vt.now)

    await vt.run(main)
    assert sent == [5.0, 5.0]


async def test_a_429_after_the_accepted_reply_holds_on() -> None:
    vt = VirtualTime()
    limiter = KeyLimiter(ltx2.Limits(), clock=vt.clock, sleep=vt.sleep)

    async def main() -> None:
        a = await limiter.acquire_create()
        b = await limiter.acquire_create()
        vt.now = 1.0
        a.answered(accepted=True)
        limiter.penalize(30.0)  # B's 429 came after A's success: the provider refuses again
        a.answered(accepted=True)  # a permit answers once: a second call changes nothing
        b.answered()  # a failed (or unreadable) reply lifts nothing
        await limiter.acquire_create()

    await vt.run(main)
    assert vt.now == 31.0


async def test_a_failed_reply_lifts_nothing() -> None:
    vt = VirtualTime()
    limiter = KeyLimiter(ltx2.Limits(), clock=vt.clock, sleep=vt.sleep)

    async def main() -> None:
        a = await limiter.acquire_create()
        limiter.penalize(20.0)
        a.answered(accepted=False)
        await limiter.acquire_create()

    await vt.run(main)
    assert vt.now == 20.0


async def test_a_create_answered_429_then_accepted_on_its_retry_lifts_its_own_hold() -> None:
    # The transport retries a create answered 429 after min(Retry-After, max_retry_after); its
    # success there lifts the hold (another create waiting need not wait any longer).
    vt = VirtualTime()
    limiter = KeyLimiter(ltx2.Limits(), clock=vt.clock, sleep=vt.sleep)

    async def main() -> None:
        a = await limiter.acquire_create()
        limiter.penalize(50.0)  # its first answer: 429, Retry-After: 50
        vt.now = 10.0  # its retry (a transport whose cap is 10 s) is accepted
        a.answered(accepted=True)
        await limiter.acquire_create()

    await vt.run(main)
    assert vt.now == 10.0


def _create_replies(*replies: tuple[float, int, dict[str, object]]) -> Callback:
    """One callback for every create, answering them in order: ``(delay, status, body)``.
    (aioresponses matches concurrent requests to one registered reply each only when the
    replies are immediate; a delayed one is shared by the next request.)"""
    pending = list(replies)

    async def reply(url: object, **kwargs: object) -> CallbackResult:
        delay, status, body = pending.pop(0)
        headers = {"Retry-After": "3600"} if status == 429 else None
        await asyncio.sleep(delay)
        return CallbackResult(status=status, payload=body, headers=headers)

    return reply


async def test_after_a_retry_after_3600_a_successful_create_lets_the_next_submit_go_at_once() -> (
    None
):
    # Two submits in flight: the second is answered 429 with Retry-After: 3600 (held back for
    # max_retry_after, 60 s), then the first one's success comes. The next submit goes at once.
    retry = ltx2.RetryPolicy(attempts=1, max_retry_after=60.0)
    replies = _create_replies(
        (0.3, 200, {"status": "success", "predictionID": "p-1"}),
        (0.0, 429, {"status": "error", "message": "rate limited"}),
        (0.0, 200, {"status": "success", "predictionID": "p-3"}),
    )
    with aioresponses() as m:
        m.post(EACHLABS_CREATE, callback=replies, repeat=True)
        async with ltx2.Client(
            "eachlabs", api_key="sk-lift", retry=retry,
            poll=ltx2.PollPolicy(first=3600, min_interval=1, max_interval=2),
        ) as c:  # fmt: skip
            with anyio.fail_after(10):
                first = asyncio.create_task(c.submit(image=IMAGE, prompt="one"))
                await asyncio.sleep(0.05)  # the first create is out
                with pytest.raises(ltx2.RateLimitError) as refused:
                    await c.submit(image=IMAGE, prompt="two")
                assert refused.value.retry_after == 3600
                assert (await first).id == "p-1"
                # Held back, it would wait 60 s (an hour uncapped) and fail_after would end it.
                third = await c.submit(image=IMAGE, prompt="three")
    assert third.id == "p-3"

"""One ``Retry-After: 3600`` must not freeze the key for an hour (issue 10, item 8): the
limiter's hold-off is capped at ``RetryPolicy.max_retry_after``, like the transport's wait."""

from __future__ import annotations

import anyio
from aioresponses import aioresponses

import ltx2

EACHLABS_CREATE = "https://api.eachlabs.ai/v1/prediction/"
IMAGE = "https://cdn.example.com/cat.jpg"


async def test_a_huge_retry_after_holds_creates_back_only_up_to_the_cap() -> None:
    retry = ltx2.RetryPolicy(attempts=3, base_delay=0.0, max_delay=0.0, max_retry_after=0.05)
    with aioresponses() as m:
        m.post(EACHLABS_CREATE, status=429, headers={"Retry-After": "3600"},
               payload={"status": "error", "message": "rate limited"})  # fmt: skip
        m.post(EACHLABS_CREATE, payload={"status": "success", "predictionID": "p-1"})
        m.post(EACHLABS_CREATE, payload={"status": "success", "predictionID": "p-2"})
        async with ltx2.Client(
            "eachlabs", api_key="sk-cap", retry=retry,
            poll=ltx2.PollPolicy(first=3600, min_interval=1, max_interval=2),
        ) as c:  # fmt: skip
            with anyio.fail_after(5):
                first = await c.submit(image=IMAGE, prompt="one")
                second = await c.submit(image=IMAGE, prompt="two")
    assert (first.id, second.id) == ("p-1", "p-2")

"""A connect timeout is "not sent" (issue 10, item 6): aiohttp raises
``ConnectionTimeoutError`` when ``connect`` runs out opening a connection or waiting for a
pooled one, before any byte of the request left. A create that met one is retried (and,
without retries, raises a ``TransportError`` with ``maybe_sent`` False and leaves no record),
while a read timeout after the request was sent is never retried and keeps the record as
UNKNOWN for ``resume()``."""

from __future__ import annotations

import aiohttp
import pytest
from aioresponses import aioresponses
from tests.conftest import NO_BACKOFF
from yarl import URL

import ltx2

BASE = "https://api.eachlabs.ai"
CREATE = f"{BASE}/v1/prediction/"
IMAGE = "https://cdn.example.com/cat.jpg"
CREATED = {"status": "success", "predictionID": "p-1"}


def creates(m: aioresponses) -> int:
    return len(m.requests.get(("POST", URL(CREATE)), []))


async def test_a_create_whose_connect_timed_out_is_retried() -> None:
    store = ltx2.MemoryStore()
    with aioresponses() as m:
        m.post(CREATE, exception=aiohttp.ConnectionTimeoutError("Connection timeout to host"))
        m.post(CREATE, payload=CREATED)
        async with ltx2.Client("eachlabs", api_key="k", store=store, retry=NO_BACKOFF) as c:
            job = await c.submit(image=IMAGE, prompt="a cat")
            assert creates(m) == 2
            (record,) = await store.unfinished("eachlabs")
    assert job.id == "p-1"
    assert record.job_id == "p-1"


async def test_a_connect_timeout_without_retries_is_not_sent_and_leaves_no_record() -> None:
    store = ltx2.MemoryStore()
    with aioresponses() as m:
        m.post(CREATE, exception=aiohttp.ConnectionTimeoutError("Connection timeout to host"))
        retry = ltx2.RetryPolicy(enabled=False)
        async with ltx2.Client("eachlabs", api_key="k", store=store, retry=retry) as c:
            with pytest.raises(ltx2.TransportError, match="timed out") as info:
                await c.submit(image=IMAGE, prompt="a cat")
            assert await store.unfinished("eachlabs") == []
    assert info.value.maybe_sent is False


@pytest.mark.parametrize(
    "timeout",
    [aiohttp.SocketTimeoutError("Timeout on reading data from socket"), TimeoutError()],
    ids=["read", "total"],
)
async def test_a_timeout_after_sending_is_not_retried_and_keeps_the_record(
    timeout: Exception,
) -> None:
    store = ltx2.MemoryStore()
    with aioresponses() as m:
        m.post(CREATE, exception=timeout)
        m.post(CREATE, payload=CREATED)  # a second create would get this
        async with ltx2.Client("eachlabs", api_key="k", store=store, retry=NO_BACKOFF) as c:
            with pytest.raises(ltx2.TransportError, match="timed out") as info:
                await c.submit(image=IMAGE, prompt="a cat")
            assert creates(m) == 1
            (record,) = await store.unfinished("eachlabs")
    assert info.value.maybe_sent is True
    assert record.status is ltx2.JobStatus.UNKNOWN

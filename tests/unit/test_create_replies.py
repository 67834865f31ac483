"""A create reply that cannot be read (issue 10, item 4): the create was sent, so the job may
exist at the provider. The caller gets a ``TransportError``, and the record stays in the store
as ``UNKNOWN`` for ``resume()`` (never deleted, never submitted again)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aioresponses import aioresponses
from tests.conftest import NO_BACKOFF

import ltx2
from ltx2.providers import get

IMAGE = "https://cdn.example.com/cat.jpg"
KEY = "sk-create-reply-secret"
ANY_POST = re.compile(r"^https?://.*$")

#: (provider, body, content type): 2xx bodies that are no create reply.
UNREADABLE = [
    ("eachlabs", "null", "application/json"),
    ("eachlabs", "[]", "application/json"),
    ("eachlabs", '["predictionID"]', "application/json"),
    ("eachlabs", '"success"', "application/json"),
    ("eachlabs", "<html>502 from a proxy</html>", "text/html"),
    ("eachlabs", '{"status": "success"}', "application/json"),  # no id at all
    ("fal", "null", "application/json"),
    ("fal", "[1, 2]", "application/json"),
    ("aimlapi", "null", "application/json"),
    ("aimlapi", "{not json", "application/json"),
    ("runcomfy", "[]", "application/json"),
    ("gmicloud", "7", "application/json"),
]


@pytest.mark.parametrize(("provider", "body", "ctype"), UNREADABLE)
async def test_unreadable_create_reply_keeps_the_record_unknown(
    provider: str, body: str, ctype: str
) -> None:
    store = ltx2.MemoryStore()
    with aioresponses() as m:
        m.post(ANY_POST, body=body, content_type=ctype)
        async with ltx2.Client(provider, api_key=KEY, store=store, retry=NO_BACKOFF) as c:
            with pytest.raises(ltx2.TransportError) as info:
                await c.submit(image=IMAGE, prompt="a cat", duration=_duration(provider))
    assert provider in str(info.value)
    assert KEY not in str(info.value)
    (record,) = await store.unfinished(provider)
    assert record.status is ltx2.JobStatus.UNKNOWN
    assert record.job_id is None


async def test_a_parser_that_breaks_on_a_reply_still_keeps_the_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Whatever a provider module raises on a reply (a bug, a shape nobody foresaw), it is an
    unreadable reply of a create that was sent: no raw AttributeError reaches the caller."""
    cls = get("eachlabs")

    def broken(self: Any, reply: Any) -> Any:
        return reply.json().get("predictionID")  # AttributeError on a list

    monkeypatch.setattr(cls, "parse_create", broken)
    store = ltx2.MemoryStore()
    with aioresponses() as m:
        m.post(ANY_POST, payload=["odd"])
        async with ltx2.Client("eachlabs", api_key=KEY, store=store, retry=NO_BACKOFF) as c:
            with pytest.raises(ltx2.TransportError):
                await c.submit(image=IMAGE, prompt="a cat")
    (record,) = await store.unfinished("eachlabs")
    assert record.status is ltx2.JobStatus.UNKNOWN


async def test_resume_reports_the_unreadable_create_as_unknown_and_sends_nothing() -> None:
    store = ltx2.MemoryStore()
    with aioresponses() as m:
        m.post(ANY_POST, body="null", content_type="application/json")
        async with ltx2.Client("eachlabs", api_key=KEY, store=store, retry=NO_BACKOFF) as c:
            with pytest.raises(ltx2.TransportError):
                await c.submit(image=IMAGE, prompt="a cat")
        async with ltx2.Client("eachlabs", api_key=KEY, store=store, retry=NO_BACKOFF) as c:
            (job,) = await c.resume()
        assert job.status is ltx2.JobStatus.UNKNOWN
        assert sum(len(v) for v in m.requests.values()) == 1  # the one create, never resent


def _duration(provider: str) -> int:
    return get(provider).capabilities.durations[0]

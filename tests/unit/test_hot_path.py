"""What the per-job hot path may cache or skip, and the behaviour it must keep."""

from __future__ import annotations

import contextlib
import json

import pytest

from ltx2._types import HTTPReply
from ltx2.providers._base import is_loopback_url, same_origin


def test_reply_body_is_parsed_once_and_empty_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = json.loads
    monkeypatch.setattr(json, "loads", lambda s, **kw: calls.append(s) or real(s, **kw))
    reply = HTTPReply(200, {}, b'{"request_id": "r1"}')
    first = reply.json()
    assert first == {"request_id": "r1"}
    assert reply.json() is first
    assert len(calls) == 1
    assert HTTPReply(204, {}, b"").json() is None


def test_unparsable_reply_raises_every_time() -> None:
    reply = HTTPReply(200, {}, b"{not json")
    for _ in range(2):
        with pytest.raises(ValueError):
            reply.json()


def test_reply_equality_and_repr_ignore_the_parse_cache() -> None:
    a, b = HTTPReply(200, {}, b"{}"), HTTPReply(200, {}, b"{}")
    a.json()
    assert a == b
    assert "_parsed" not in repr(a)


BASE = "http://127.0.0.1:8765/runcomfy"


@pytest.mark.parametrize(
    ("url", "same"),
    [
        ("http://127.0.0.1:8765/runcomfy/v1/requests/x/status", True),
        ("http://127.0.0.1:8765/other/path", True),
        ("HTTP://127.0.0.1:8765/runcomfy/x", True),  # schemes compare as parsed (lower)
        ("http://127.0.0.1:8766/runcomfy/x", False),
        ("https://127.0.0.1:8765/runcomfy/x", False),
        ("http://127.0.0.1:8765@evil.example/runcomfy/x", False),
        ("http://evil.example/?http://127.0.0.1:8765/runcomfy", False),
        ("http://127.0.0.1:8765", True),
    ],
)
def test_same_origin_fast_path_agrees_with_parsing(url: str, same: bool) -> None:
    assert same_origin(url, BASE) is same
    assert same_origin(url, BASE + "/") is same


def test_same_origin_default_port_and_host_case() -> None:
    assert same_origin("https://Queue.Fal.Run:443/x", "https://queue.fal.run") is False
    assert same_origin("https://QUEUE.fal.run/x", "https://queue.fal.run") is True


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:1/x", True),
        ("http://[::1]:1/x", True),
        ("http://localhost/x", True),
        ("http://a.localhost/x", True),
        ("http://LOCALHOST/x", True),
        ("https://example.com/cat.jpg", False),
        ("https://10.0.0.1/cat.jpg", False),
        ("not a url", False),
    ],
)
def test_is_loopback_url(url: str, loopback: bool) -> None:
    assert is_loopback_url(url) is loopback
    assert is_loopback_url(url) is loopback  # cached answer, same


@pytest.mark.parametrize("space", [" ", "\t", "\n", "\u00a0", "\u2003", "\u3000", "\x1c"])
def test_image_url_with_any_whitespace_is_refused_naming_the_field(space: str) -> None:
    import ltx2

    with pytest.raises(ltx2.InvalidRequestError) as info:
        ltx2.VideoRequest(image=f"https://example.com/a{space}b.jpg", prompt="p")
    assert info.value.field == "image"
    assert "not a valid URL" in str(info.value)


def test_image_url_without_whitespace_is_kept() -> None:
    import ltx2

    url = "https://example.com/" + "a" * 4000 + ".jpg"
    assert ltx2.VideoRequest(image=url, prompt="p").image == url


@pytest.mark.parametrize("limits", [(None, None), (100, 10)])
async def test_free_limiter_takes_a_create_without_a_loop_iteration(
    limits: tuple[int | None, int | None],
) -> None:
    import asyncio

    import ltx2
    from ltx2._limits import KeyLimiter

    limiter = KeyLimiter(ltx2.Limits(*limits))
    ran: list[str] = []

    async def other() -> None:
        ran.append("other")

    task = asyncio.get_running_loop().create_task(other())
    await limiter.acquire_create()
    assert ran == []  # nothing else ran: the create was not held up by a checkpoint
    await task
    assert ran == ["other"]
    assert limiter.in_flight == 1


async def test_penalized_limiter_still_waits_in_order() -> None:
    import asyncio

    import ltx2
    from ltx2._limits import KeyLimiter

    limiter = KeyLimiter(ltx2.Limits())
    limiter.penalize(0.05)
    order: list[int] = []

    async def create(i: int) -> None:
        await limiter.acquire_create()
        order.append(i)

    await asyncio.gather(*(create(i) for i in range(5)))
    assert order == [0, 1, 2, 3, 4]


async def test_reply_headers_are_read_case_insensitively_without_a_copy() -> None:
    from aioresponses import aioresponses

    import ltx2
    from ltx2._transport import Transport
    from ltx2._types import HTTPCall
    from ltx2.providers import get

    provider = get("runcomfy")("key", None)
    transport = Transport(provider, timeouts=ltx2.Timeouts(), retry=ltx2.RetryPolicy())
    try:
        with aioresponses() as mocked:
            mocked.get("https://h.example/x", status=200, body=b"{}",
                       headers={"X-Fal-Error-Type": "t", "Retry-After": "3"})  # fmt: skip
            reply = await transport.send(HTTPCall("GET", "https://h.example/x", "status"))
    finally:
        await transport.aclose()
    assert reply.headers.get("x-fal-error-type") == "t"
    assert reply.headers.get("retry-after") == "3"
    assert reply.headers.get("Retry-After") == "3"


async def test_poller_checks_due_jobs_in_at_most_concurrency_workers() -> None:
    """200 jobs due at once are all checked, never more than ``concurrency`` at a time, by
    at most ``concurrency`` tasks in all (not a task per poll); closing leaves none."""
    import asyncio

    import ltx2
    from ltx2._poller import Poller

    tasks: set[asyncio.Task[object] | None] = set()
    checked: list[str] = []
    running = peak = 0

    async def check(key: str) -> None:
        nonlocal running, peak
        tasks.add(asyncio.current_task())
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0)
        running -= 1
        checked.append(key)
        poller.remove(key)

    poller = Poller(check, ltx2.PollPolicy(first=0.0), (30.0, 120.0), concurrency=4)
    for i in range(200):
        poller.add(f"job-{i}", webhook=False)
    before = asyncio.all_tasks()
    runner = asyncio.get_running_loop().create_task(poller.run())
    for _ in range(200):
        if len(checked) == 200:
            break
        await asyncio.sleep(0.005)
    assert sorted(checked) == sorted(f"job-{i}" for i in range(200))
    assert peak <= 4
    assert len(tasks) <= 4
    runner.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await runner
    assert [t for t in asyncio.all_tasks() - before if not t.done()] == []

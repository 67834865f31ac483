"""Shared fixtures. Everything runs on 127.0.0.1; no test waits for real provider time."""

from __future__ import annotations

import functools
import io
import socket
import threading
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import ltx2
from ltx2._lifecycle import ClientState


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--record",
        action="store_true",
        default=False,
        help="live tier (-m live): write the providers' replies, redacted, to "
        "tests/fixtures/<provider>/live/",
    )


#: Poll fast and retry without waiting, for tests against aioresponses.
FAST_POLL = ltx2.PollPolicy(first=0.01, min_interval=0.01, max_interval=0.05, webhook_grace=0.0005)
NO_BACKOFF = ltx2.RetryPolicy(attempts=3, base_delay=0.0, max_delay=0.0)


def make_png(width: int = 64, height: int = 36) -> bytes:
    """A real PNG (Pillow when present, else a minimal hand-made one)."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover
        return b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 80, 40)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def png() -> bytes:
    return make_png()


@pytest.fixture
async def receiver() -> AsyncIterator[ltx2.WebhookReceiver]:
    rx = ltx2.WebhookReceiver()
    await rx.start("127.0.0.1", 0)
    try:
        yield rx
    finally:
        await rx.stop()


@pytest.fixture
def free_port() -> int:
    """A loopback port nobody listens on (for a server a test starts in another process)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- the suite's guard: no test leaves a thread or a client behind -----------------------------

#: Every ltx2.Client made in this process (weakly: a collected one is not a leak of a test's).
_CLIENTS: weakref.WeakSet[ltx2.Client] = weakref.WeakSet()


def _track_clients() -> None:
    init = ltx2.Client.__init__
    if getattr(init, "_tracked", False):
        return

    @functools.wraps(init)
    def tracked(self: ltx2.Client, *args: Any, **kw: Any) -> None:
        init(self, *args, **kw)
        _CLIENTS.add(self)

    tracked._tracked = True  # type: ignore[attr-defined]
    ltx2.Client.__init__ = tracked  # type: ignore[method-assign]


_track_clients()

#: Worker threads of thread pools (asyncio's default executor, ``to_thread``): they end on
#: their own when the pool shuts down and never keep the interpreter from exiting.
_POOL_THREADS = ("asyncio_", "ThreadPoolExecutor-")
#: How long a thread that is ending (an aiosqlite worker just told to stop) may take.
_THREAD_END = 2.0


@pytest.fixture(autouse=True)
def _nothing_left_behind() -> Iterator[None]:
    """Fail a test that leaves a non-daemon thread running (a store it did not close: an
    aiosqlite worker keeps pytest from exiting) or an ltx2 Client started and never closed.

    Autouse and set up before the test's event loop, so this runs after the loop closed."""
    threads = set(threading.enumerate())
    clients = set(_CLIENTS)
    yield
    left = [
        t for t in threading.enumerate()
        if t not in threads and not t.daemon and not t.name.startswith(_POOL_THREADS)
    ]  # fmt: skip
    for thread in left:
        thread.join(_THREAD_END)
    alive = [t.name for t in left if t.is_alive()]
    running = [
        repr(c) for c in _CLIENTS
        if c not in clients and c._lifecycle.state is ClientState.RUNNING
    ]  # fmt: skip
    problems = []
    if alive:
        problems.append(f"non-daemon threads left running (a store not closed?): {alive}")
    if running:
        problems.append(f"ltx2 clients started and never closed (aclose()): {running}")
    if problems:
        pytest.fail("; ".join(problems), pytrace=False)

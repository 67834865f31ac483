"""Shared fixtures. Everything runs on 127.0.0.1; no test waits for real provider time."""

from __future__ import annotations

import io
import socket
from collections.abc import AsyncIterator

import pytest

import ltx2


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

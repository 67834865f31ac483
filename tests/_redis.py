"""A real redis-server for the tests, on 127.0.0.1 and a free port, with AOF persistence
(``appendfsync always``) so a restart keeps every acknowledged write.

Tests that need it skip, with the reason, only when the server truly cannot start (no
``redis-server`` binary, or it fails to come up); with ``CI`` set they fail instead, so CI
never silently skips them.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ltx2.stores import Store

__all__ = ["RedisServer", "redis_or_skip", "skip_reason", "start_redis"]

_START_TIMEOUT = 10.0
#: Every server started and not yet stopped: stopped at exit should a teardown not run.
_RUNNING: set[RedisServer] = set()


def skip_reason() -> str | None:
    """Why no redis-server can be started here (None: it can)."""
    if shutil.which("redis-server") is None:
        return "redis-server is not installed (apt-get install redis-server)"
    return None


def _free_port() -> int:
    # redis-server cannot pick port 0 itself: take one from the OS and hand it over.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One redis-server process; ``restart`` stops it and starts it again on the same port
    and data directory."""

    def __init__(self, directory: Path, port: int) -> None:
        self.directory = directory
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self._process: subprocess.Popen[bytes] | None = None
        self._log = directory / "redis.log"

    def start(self) -> None:
        """Start the server and wait until it answers PING (RuntimeError if it does not)."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(skip_reason())
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [
            binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "yes",
            "--appendfsync", "always",
            "--daemonize", "no",
            "--loglevel", "warning",
            "--logfile", str(self._log),
        ]  # fmt: skip
        self._process = subprocess.Popen(  # noqa: S603 - a fixed binary and arguments
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            if _ping(self.port):
                _RUNNING.add(self)
                return
            time.sleep(0.02)
        self.stop()
        log = self._log.read_text(errors="replace")[-2000:] if self._log.exists() else ""
        raise RuntimeError(f"redis-server did not start on port {self.port}: {log.strip()}")

    def stop(self, *, kill: bool = False) -> None:
        """Stop the server: SIGTERM (it writes its AOF and exits) or, with ``kill``, SIGKILL
        (a crash; ``appendfsync always`` still keeps every acknowledged write)."""
        process, self._process = self._process, None
        _RUNNING.discard(self)
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def restart(self, *, kill: bool = False) -> None:
        """Stop the server and start it again on the same port, with the same data."""
        self.stop(kill=kill)
        self.start()

    @property
    def running(self) -> bool:
        """True while the process is alive."""
        return self._process is not None and self._process.poll() is None


@atexit.register
def _stop_all() -> None:
    for server in list(_RUNNING):
        server.stop()


def start_redis(directory: Path) -> RedisServer:
    """Start a redis-server keeping its data in ``directory``; a few ports are tried in case
    another process takes the free one first."""
    error: RuntimeError | None = None
    for _ in range(3):
        server = RedisServer(directory, _free_port())
        try:
            server.start()
        except RuntimeError as exc:
            error = exc
            continue
        return server
    assert error is not None
    raise error


def redis_or_skip(directory: Path) -> RedisServer:
    """:func:`start_redis`, or skip the test with the reason (fail when ``CI`` is set)."""
    reason = skip_reason()
    if reason is None:
        try:
            return start_redis(directory)
        except (RuntimeError, OSError) as exc:
            reason = f"redis-server could not start: {exc}"
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: tests that need Redis must run)")
    pytest.skip(reason)


@contextlib.asynccontextmanager
async def each_store(
    request: pytest.FixtureRequest, tmp_path: Path, prefix: str = "test"
) -> AsyncIterator[Store]:
    """The store a ``store`` fixture parametrized over ``memory``, ``sqlite`` and ``redis``
    gives its test, open (a file in tmp_path; a fresh key prefix on the session's
    ``redis_server``), and closed after it."""
    from ltx2.stores import MemoryStore, RedisStore, SQLiteStore

    s: Store
    if request.param == "memory":
        s = MemoryStore()
    elif request.param == "sqlite":
        s = SQLiteStore(tmp_path / "jobs.db")
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        s = RedisStore(server.url, prefix=f"{prefix}-{uuid.uuid4().hex[:12]}")
    await s.open()
    try:
        yield s
    finally:
        await s.close()

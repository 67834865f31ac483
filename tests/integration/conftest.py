"""Fixtures for the integration tests.

Redis: ``redis_server`` is one real redis-server for the session; ``own_redis`` is a
redis-server of the test's own, for tests that stop and restart it. Both skip (or, with
``CI`` set, fail) only when redis-server truly cannot start.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests._redis import RedisServer, redis_or_skip


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = redis_or_skip(Path(tmp_path_factory.mktemp("redis")))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = redis_or_skip(tmp_path / "redis")
    try:
        yield server
    finally:
        server.stop()

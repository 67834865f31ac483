"""The ``store`` fixture: every contract test runs against MemoryStore, SQLiteStore (a file in
tmp_path) and RedisStore (a real redis-server started for the session, a fresh key prefix per
test)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from tests._redis import RedisServer, each_store, redis_or_skip

from ltx2.stores import Store


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = redis_or_skip(Path(tmp_path_factory.mktemp("redis")))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["memory", "sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with each_store(request, tmp_path, "test") as s:
        yield s  # closed by each_store: a client leaves a store passed in open

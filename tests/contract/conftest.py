"""The ``store`` fixture: every contract test runs against MemoryStore, SQLiteStore (a file in
tmp_path) and RedisStore (a real redis-server started for the session, a fresh key prefix per
test)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from tests._redis import RedisServer, redis_or_skip

from ltx2.stores import MemoryStore, RedisStore, SQLiteStore, Store


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = redis_or_skip(Path(tmp_path_factory.mktemp("redis")))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["memory", "sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    s: Store
    if request.param == "memory":
        s = MemoryStore()
    elif request.param == "sqlite":
        s = SQLiteStore(tmp_path / "jobs.db")
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        s = RedisStore(server.url, prefix=f"test-{uuid.uuid4().hex[:12]}")
    await s.open()
    try:
        yield s
    finally:
        await s.close()

"""A job record holds a reference to its image, never the image (issue 10, item 10).

A 1 MB image sent inline (bytes, a data URI, a local path) used to be copied, as a data URI,
into the job's record: 1.3 MB written on every change and, with Redis, published to every
replica on each of them. The record now keeps the image's SHA-256, size and type; an image
that was uploaded (Eachlabs' presigned upload, fal's storage, ``uploader=``) or given as a URL
is kept as that URL. Each case goes through a real ``Client`` on the emulator, with each store,
and reads the record back through the store's public API.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import random
import sqlite3
import struct
import uuid
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tests._redis import RedisServer, each_store

import ltx2
from ltx2._limits import key_fingerprint
from ltx2._types import JobStatus, StatusUpdate
from ltx2.emulator import Emulator
from ltx2.stores import JobRecord, MemoryStore, RedisStore, SQLiteStore, Store, new_record

SCALE = 0.002
#: What a record, or one event about it, may take at most (the image was 1.3 MB of it).
SMALL = 4096
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def big_png(size: int = 1_000_000) -> bytes:
    """A real PNG of about ``size`` bytes (random RGB pixels, so that nothing, a store
    included, could hide it by compressing), made without Pillow."""
    rng = random.Random(size)
    side = max(1, int((size / 3) ** 0.5))
    rows = b"".join(b"\x00" + rng.randbytes(side * 3) for _ in range(side))

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        PNG_MAGIC
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 1))
        + chunk(b"IEND", b"")
    )


def digest(data: bytes) -> dict[str, Any]:
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "mime": "image/png"}


def size_of(record: JobRecord) -> int:
    return len(json.dumps(record.to_json(), separators=(",", ":")))


async def raw_size(store: Store, key: str, redis_url: str = "") -> int:
    """How many bytes the store itself holds for the record (its JSON as written)."""
    if isinstance(store, SQLiteStore):
        with sqlite3.connect(store.path) as db:
            (size,) = db.execute(
                "SELECT length(record) FROM ltx2_jobs WHERE key = ?", (key,)
            ).fetchone()
        return int(size)
    assert isinstance(store, RedisStore)
    import redis.asyncio

    r = redis.asyncio.Redis.from_url(redis_url)
    try:
        return int(await r.strlen(f"{store.prefix}:job:{key}"))
    finally:
        await r.aclose()


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(time_scale=SCALE, seed=3, render="stub") as e:
        yield e


@pytest.fixture(params=["memory", "sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with each_store(request, tmp_path, "img") as s:
        yield s  # closed by each_store: a client leaves a store passed in open


def client(emu: Emulator, name: str, store: Store, **extra: Any) -> ltx2.Client:
    if name == "fal":
        extra.setdefault("storage_url", emu.fal_storage_url)
    return ltx2.Client(
        name,  # type: ignore[arg-type]
        api_key="test-key",
        base_url=emu.provider_url(name),
        time_scale=SCALE,
        store=store,
        **extra,
    )


class Events:
    """Every message published on a RedisStore's events channel, from a subscriber of the
    test's own (what another replica hears)."""

    def __init__(self, store: RedisStore, url: str) -> None:
        import redis.asyncio

        self._redis = redis.asyncio.Redis.from_url(url)
        self._pubsub = self._redis.pubsub()
        self._channel = f"{store.prefix}:events"
        self._marker = f"end-{uuid.uuid4().hex}"
        self.messages: list[bytes] = []

    async def __aenter__(self) -> Events:
        await self._pubsub.subscribe(self._channel)
        return self

    async def collect(self) -> list[bytes]:
        """Every message so far: publishes a marker and reads up to it (pub/sub keeps the
        order of one channel), so nothing published before is missed and nothing waits."""
        await self._redis.publish(self._channel, self._marker)
        async with asyncio.timeout(10):
            while True:
                msg = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
                if msg is None:
                    continue
                if msg["data"] == self._marker.encode():
                    return self.messages
                self.messages.append(msg["data"])

    async def __aexit__(self, *exc: object) -> None:
        await self._pubsub.aclose()
        await self._redis.aclose()


async def run_job(
    emu: Emulator, name: str, store: Store, image: Any, **extra: Any
) -> tuple[ltx2.Job, JobRecord]:
    async with client(emu, name, store, **extra) as c:
        job = await c.submit(image=image, prompt="The cat yawns")
        await job.result(timeout=30)
    record = await store.find(name, job.id)
    assert record is not None
    assert record.terminal
    return job, record


# -- an image sent inline: its digest and size --------------------------------------------


@pytest.mark.parametrize("name", ["runcomfy", "aimlapi", "fal"])
async def test_an_inline_image_is_kept_as_its_digest_in_every_store(
    emu: Emulator, store: Store, name: str
) -> None:
    image = big_png()
    job, record = await run_job(emu, name, store, image)
    # The provider got the image itself (inline) ...
    sent = emu.jobs[job.id].params.image_url or ""
    assert sent.startswith("data:image/png;base64,")
    # ... the record only what it was.
    assert record.request["image"] == digest(image)
    assert size_of(record) < SMALL
    assert record.request["prompt"] == "The cat yawns"


async def test_redis_events_about_an_inline_image_job_are_small(
    emu: Emulator, redis_server: RedisServer
) -> None:
    image = big_png()
    store = RedisStore(redis_server.url, prefix=f"img-{uuid.uuid4().hex[:12]}")
    await store.open()
    try:
        async with Events(store, redis_server.url) as events:
            job, _record = await run_job(emu, "runcomfy", store, image)
            messages = await events.collect()
    finally:
        await store.close()
    # created, started, finished at least: each change is one event, each one small.
    assert len(messages) >= 2
    assert max(len(m) for m in messages) < SMALL, [len(m) for m in messages]
    last = json.loads(messages[-1])["record"]
    assert last["job_id"] == job.id
    assert last["request"]["image"] == digest(image)


@pytest.mark.parametrize("form", ["path", "data URI", "bytearray"])
async def test_every_inline_form_is_kept_as_the_same_digest(
    emu: Emulator, tmp_path: Path, form: str
) -> None:
    image = big_png()
    given: Any
    if form == "path":
        given = tmp_path / "cat.png"
        given.write_bytes(image)
    elif form == "data URI":
        given = "data:image/png;base64," + base64.b64encode(image).decode()
    else:
        given = bytearray(image)
    store = MemoryStore()
    _, record = await run_job(emu, "aimlapi", store, given)
    assert record.request["image"] == digest(image)
    assert size_of(record) < SMALL


# -- an image that was uploaded, or given as a URL: that URL ------------------------------


@pytest.mark.parametrize(
    ("name", "extra"),
    [("eachlabs", {}), ("fal", {"data_uri_threshold": 0})],
    ids=["eachlabs-presign", "fal-storage"],
)
async def test_an_uploaded_image_is_kept_as_its_uploaded_url(
    emu: Emulator, store: Store, name: str, extra: dict[str, Any]
) -> None:
    job, record = await run_job(emu, name, store, big_png(), **extra)
    sent = emu.jobs[job.id].params.image_url
    assert sent is not None
    assert sent.startswith(emu.url)
    assert record.request["image"] == sent
    assert size_of(record) < SMALL
    assert emu.stats_for(name)["uploads"] == 1


async def test_an_image_stored_by_the_users_uploader_is_kept_as_its_url(
    emu: Emulator, store: Store
) -> None:
    urls: list[str] = []

    async def uploader(data: bytes, mime: str) -> str:
        urls.append(emu.store_upload("gmicloud", "cat.png", mime, data))
        return urls[-1]

    _, record = await run_job(emu, "gmicloud", store, big_png(), uploader=uploader)
    assert len(urls) == 1
    assert record.request["image"] == urls[0]
    assert size_of(record) < SMALL


async def test_an_image_given_as_a_url_is_kept_as_that_url(emu: Emulator, store: Store) -> None:
    url = "https://images.example.com/cats/cat.png?v=2"
    _, record = await run_job(emu, "runcomfy", store, url)
    assert record.request["image"] == url
    assert size_of(record) < SMALL


# -- records written before: an inline image still in them -------------------------------


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def test_an_old_record_holding_an_inline_image_loads_resumes_and_shrinks(
    emu: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    kind: str,
) -> None:
    """A record an older ltx2 wrote, with the image inline as a data URI, still loads (no
    migration), resume() takes its job over, and its next write keeps only the digest."""
    image = big_png()
    data_uri = "data:image/png;base64," + base64.b64encode(image).decode()
    store: Store
    url = ""
    if kind == "sqlite":
        store = SQLiteStore(tmp_path / "jobs.db")
    else:
        url = request.getfixturevalue("redis_server").url
        store = RedisStore(url, prefix=f"img-{uuid.uuid4().hex[:12]}")
    await store.open()
    try:
        async with client(emu, "runcomfy", MemoryStore()) as first:
            job = await first.submit(image="https://images.example.com/cat.png", prompt="p")
        old = new_record(
            "runcomfy", {"prompt": "p"}, owner="old", with_secret=False,
            scope=key_fingerprint("runcomfy", "test-key"),
        )  # fmt: skip
        old.job_id, old.meta = job.id, dict(job.meta)
        old.update = StatusUpdate(JobStatus.QUEUED, "in_queue")
        written = JobRecord.to_json

        def as_before(record: JobRecord) -> dict[str, Any]:
            d = written(record)
            d["request"] = {**d["request"], "image": data_uri}  # what every record held
            return d

        with monkeypatch.context() as m:
            m.setattr(JobRecord, "to_json", as_before)
            await store.add(old)
        assert await raw_size(store, old.key, url) > len(data_uri)

        loaded = await store.get(old.key)
        assert loaded is not None
        assert loaded.request["image"] == digest(image)
        (unfinished,) = await store.unfinished("runcomfy")
        assert unfinished.request["image"] == digest(image)

        async with client(emu, "runcomfy", store) as second:
            (resumed,) = await second.resume()
            assert resumed.id == job.id
            await resumed.result(timeout=30)
        record = await store.get(old.key)
        assert record is not None
        assert record.terminal
        assert record.request["image"] == digest(image)
        assert await raw_size(store, old.key, url) < SMALL  # rewritten without the image
    finally:
        await store.close()

"""SQLiteStore on a real file: several stores (and processes) on one file, restarts, WAL,
the sweep of finished records, and lazy opening."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ltx2._types import JobStatus, StatusUpdate
from ltx2.stores import JobRecord, SQLiteStore, new_record

RUNNING = StatusUpdate(JobStatus.RUNNING, raw="IN_PROGRESS")
SUCCEEDED = StatusUpdate(JobStatus.SUCCEEDED, raw="COMPLETED", video_url="https://v/1.mp4")
HOOK_OK = StatusUpdate(JobStatus.SUCCEEDED, raw="OK", video_url="https://v/hook.mp4")


def record() -> JobRecord:
    return new_record("fal", {"prompt": "a cat"}, owner="proc-1", with_secret=False)


async def test_two_stores_on_one_file_see_each_others_records(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    async with SQLiteStore(path) as a, SQLiteStore(path) as b:
        rec = record()
        await a.add(rec)
        assert await b.get(rec.key) == rec
        await b.set_created(rec.key, "r-1", {"response_url": "u"}, RUNNING)
        found = await a.find("fal", "r-1")
        assert found is not None
        assert found.meta == {"response_url": "u"}
        _, accepted = await a.deliver(rec.token, HOOK_OK, "r-1")
        assert accepted
        _, accepted = await b.deliver(rec.token, HOOK_OK, "r-1")
        assert not accepted  # the duplicate, at the other store


async def test_racing_changes_through_two_connections_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    async with SQLiteStore(path) as a, SQLiteStore(path) as b:
        recs = [record() for _ in range(30)]
        for rec in recs:
            await a.add(rec)
        await asyncio.gather(
            *(
                op
                for rec in recs
                for op in (a.deliver(rec.token, HOOK_OK, None), b.update(rec.key, RUNNING))
            )
        )
        for rec in recs:
            got = await b.get(rec.key)
            assert got is not None
            assert got.update == RUNNING
            assert got.delivery == HOOK_OK


async def test_a_record_survives_closing_and_reopening(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    rec = record()
    async with SQLiteStore(path) as first:
        await first.add(rec)
        await first.set_created(rec.key, "r-1", {}, RUNNING)
        written = await first.get(rec.key)
    async with SQLiteStore(path) as second:
        assert await second.get(rec.key) == written
        assert [r.key for r in await second.unfinished()] == [rec.key]
        assert await second.get_by_token(rec.token) == written


async def test_a_crashed_process_leaves_its_jobs_to_its_successor(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    child = textwrap.dedent(
        f"""
        import asyncio, os
        from ltx2._types import JobStatus, StatusUpdate
        from ltx2.stores import SQLiteStore, new_record

        async def main():
            store = SQLiteStore({str(path)!r})
            rec = new_record("fal", {{"prompt": "x"}}, owner="dead", with_secret=False)
            rec.key = "from-child"
            await store.add(rec)
            await store.set_created(rec.key, "r-9", {{}}, StatusUpdate(JobStatus.QUEUED))
            os._exit(0)  # no close: a crash

        asyncio.run(main())
        """
    )
    subprocess.run([sys.executable, "-c", child], check=True, timeout=60)  # noqa: S603
    async with SQLiteStore(path) as successor:
        got = await successor.find("fal", "r-9")
        assert got is not None
        assert got.key == "from-child"
        assert got.status is JobStatus.QUEUED
        assert [r.key for r in await successor.unfinished()] == ["from-child"]


async def test_the_file_is_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    async with SQLiteStore(path) as store:
        await store.add(record())
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_finished_records_older_than_keep_finished_seconds_are_swept(
    tmp_path: Path,
) -> None:
    path = tmp_path / "jobs.db"
    done, running = record(), record()
    async with SQLiteStore(path) as store:
        for rec in (done, running):
            await store.add(rec)
        await store.update(done.key, SUCCEEDED)
        await store.update(running.key, RUNNING)
    async with SQLiteStore(path) as keeper:
        assert await keeper.get(done.key) is not None  # a week by default
    async with SQLiteStore(path, keep_finished_seconds=0) as sweeper:
        assert await sweeper.get(done.key) is None
        assert await sweeper.get(running.key) is not None  # unfinished: never swept


async def test_any_method_opens_the_store_and_open_close_are_idempotent(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "jobs.db")
    rec = record()
    await store.add(rec)  # not opened yet
    await asyncio.gather(store.open(), store.open())
    assert await store.get(rec.key) == rec
    await store.close()
    await store.close()
    assert await store.get(rec.key) == rec  # reopens
    await store.close()


async def test_a_missing_aiosqlite_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "aiosqlite", None)
    with pytest.raises(ImportError, match=r"pip install 'ltx2\[sqlite\]'"):
        await SQLiteStore(tmp_path / "jobs.db").open()


def test_the_repr_names_the_file_only(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "jobs.db")
    assert repr(store) == f"<SQLiteStore path={str(tmp_path / 'jobs.db')!r}>"


async def test_cancelled_changes_do_not_keep_the_file_locked(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    async with SQLiteStore(path) as a, SQLiteStore(path) as b:
        recs = [record() for _ in range(20)]
        for rec in recs:
            await a.add(rec)
        for delay in (0.0, 0.001, 0.003):
            tasks = [asyncio.create_task(a.update(rec.key, RUNNING)) for rec in recs]
            await asyncio.sleep(delay)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            # The other connection can still write (no transaction left open on a).
            await asyncio.wait_for(b.set_owner(recs[0].key, f"b-{delay}"), 5)
        done = await a.update(recs[1].key, SUCCEEDED)
        assert done is not None

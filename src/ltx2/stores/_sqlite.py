"""``SQLiteStore``: job records in one SQLite file (WAL), so jobs survive a restart.

One table, ``ltx2_jobs``: the record's JSON plus the columns the lookups need (``token``,
``provider``/``job_id``, ``terminal``/``created_at``; ``terminal`` is 0 for an unfinished
record, 1 for a finished one and 2 once it is also collected, so the finished-and-uncollected
lookup is one range of the ``(terminal, updated_at)`` index). Every change is one ``BEGIN
IMMEDIATE`` transaction that reads the record, applies :func:`~ltx2.stores._base.apply_update`
(or the delivery / create rules) in Python and writes it back, so two writers, in this process
or in another one that opened the same file, never lose each other's change. Nothing is cached
in memory: the file is the truth (a crashed process's successor opens it and resumes).

Listeners are in-process: a change made by another process on the same file is not announced
here; that process's own listeners hear it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .._types import StatusUpdate
from ._base import (
    JobRecord,
    Store,
    apply_clear_delivery,
    apply_collected,
    apply_created,
    apply_delivery,
    apply_update,
    copy_record,
    in_scope,
)

if TYPE_CHECKING:
    import aiosqlite

__all__ = ["SQLiteStore"]

#: Finished records are kept this long (seconds) after their last change, then deleted.
DEFAULT_KEEP_FINISHED_SECONDS = 7 * 86400
#: How long a writer waits for another process's transaction on the same file (ms).
_BUSY_TIMEOUT_MS = 30_000
#: Finished records are swept at most this often (seconds).
_SWEEP_EVERY = 60.0
_SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ltx2_jobs (
    key         TEXT PRIMARY KEY,
    token       TEXT NOT NULL,
    provider    TEXT NOT NULL,
    job_id      TEXT,
    terminal    INTEGER NOT NULL DEFAULT 0,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    record      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ltx2_jobs_token ON ltx2_jobs (token);
CREATE INDEX IF NOT EXISTS ltx2_jobs_job ON ltx2_jobs (provider, job_id);
CREATE INDEX IF NOT EXISTS ltx2_jobs_unfinished ON ltx2_jobs (terminal, created_at);
CREATE INDEX IF NOT EXISTS ltx2_jobs_finished ON ltx2_jobs (terminal, updated_at);
"""

_UPSERT = """
INSERT INTO ltx2_jobs (key, token, provider, job_id, terminal, created_at, updated_at, record)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET
    token = excluded.token, provider = excluded.provider, job_id = excluded.job_id,
    terminal = excluded.terminal, created_at = excluded.created_at,
    updated_at = excluded.updated_at, record = excluded.record
"""

# The lookups a change starts from (fixed SQL, never built from input).
_SELECT_BY_KEY = "SELECT record FROM ltx2_jobs WHERE key = ?"
_SELECT_BY_HOOK = "SELECT record FROM ltx2_jobs WHERE token = ? LIMIT 1"

_MISSING_EXTRA = "SQLiteStore needs aiosqlite: pip install 'ltx2[sqlite]'"


def _load(raw: str) -> JobRecord:
    return JobRecord.from_json(json.loads(raw))


def _dump(record: JobRecord) -> str:
    return json.dumps(record.to_json(), separators=(",", ":"))


def _row(record: JobRecord, raw: str) -> tuple[Any, ...]:
    return (
        record.key,
        record.token,
        record.provider,
        record.job_id,
        (2 if record.collected else 1) if record.terminal else 0,
        record.created_at,
        record.updated_at,
        raw,
    )


class SQLiteStore(Store):
    """Job records in a SQLite file, so unfinished jobs survive a restart.

    ``path`` is the database file (created if missing; several processes may open it).
    ``keep_finished_seconds``: finished records older than this (since their last change) are
    deleted when the store opens and, at most once a minute, as jobs finish.

    Needs the ``sqlite`` extra (``pip install 'ltx2[sqlite]'``). Use as ``async with store:``
    or call :meth:`open` / :meth:`close`; any method opens the store if needed.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        keep_finished_seconds: float = DEFAULT_KEEP_FINISHED_SECONDS,
    ) -> None:
        super().__init__()
        self._path = os.fspath(path)
        self._keep_finished = keep_finished_seconds
        self._db: aiosqlite.Connection | None = None
        # One connection runs one transaction at a time: tasks of this process queue here,
        # other processes wait on SQLite's own lock (busy_timeout).
        self._lock = asyncio.Lock()
        self._open_lock = asyncio.Lock()
        self._last_sweep = 0.0

    def __repr__(self) -> str:
        return f"<SQLiteStore path={self._path!r}>"

    @property
    def path(self) -> str:
        """The database file."""
        return self._path

    async def open(self) -> None:
        """Open the file, switch it to WAL and create the table. Idempotent."""
        if self._db is not None:
            return
        async with self._open_lock:
            if self._db is not None:
                return
            try:
                import aiosqlite
            except ImportError as exc:
                raise ImportError(_MISSING_EXTRA) from exc
            # isolation_level=None: no implicit transactions; each change opens its own.
            db = await aiosqlite.connect(self._path, isolation_level=None)
            try:
                await db.execute_fetchall(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
                await db.execute_fetchall("PRAGMA journal_mode = WAL")
                # NORMAL is durable across process crashes in WAL mode (a power cut may lose
                # the last transactions); FULL would fsync every commit.
                await db.execute_fetchall("PRAGMA synchronous = NORMAL")
                try:
                    # One script, one transaction (executescript commits anything pending
                    # first, so the BEGIN has to be inside it).
                    await db.executescript(
                        f"BEGIN IMMEDIATE; {_SCHEMA} PRAGMA user_version = {_SCHEMA_VERSION};"
                        " COMMIT;"
                    )
                except BaseException:
                    with contextlib.suppress(Exception):
                        await db.execute_fetchall("ROLLBACK")
                    raise
            except BaseException:
                await db.close()
                raise
            self._db = db
        await self._sweep(force=True)

    async def close(self) -> None:
        """Close the connection. Idempotent; a later call reopens it."""
        async with self._open_lock:
            db, self._db = self._db, None
            if db is not None:
                async with self._lock:
                    await db.close()

    async def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            await self.open()
        assert self._db is not None
        return self._db

    async def _query(self, sql: str, params: Iterable[Any] = ()) -> list[str]:
        db = await self._conn()
        async with self._lock:
            rows = await db.execute_fetchall(sql, tuple(params))
        return [str(row[0]) for row in rows]

    async def _one(self, sql: str, params: Iterable[Any]) -> JobRecord | None:
        rows = await self._query(sql, params)
        return _load(rows[0]) if rows else None

    async def _change(
        self, select: str, params: tuple[Any, ...], change: Callable[[JobRecord], bool]
    ) -> tuple[JobRecord | None, bool]:
        """Read one record, let ``change`` edit it, write it back if it returns True; all in
        one transaction. Returns the record as it is now (None: no such record) and whether
        it was written."""
        db = await self._conn()
        async with self._lock:
            try:
                # Inside the try: a BEGIN whose await is cancelled still runs, and must not
                # leave the connection (and the file's write lock) in a transaction.
                await db.execute_fetchall("BEGIN IMMEDIATE")
                rows = list(await db.execute_fetchall(select, params))
                if not rows:
                    await db.execute_fetchall("COMMIT")
                    return None, False
                record = _load(str(rows[0][0]))
                changed = change(record)
                if changed:
                    await db.execute_fetchall(_UPSERT, _row(record, _dump(record)))
                await db.execute_fetchall("COMMIT")
            except BaseException:
                # A failed BEGIN or a cancelled COMMIT that still went through leaves nothing
                # to roll back; that error is not worth raising over the original one.
                with contextlib.suppress(Exception):
                    await db.execute_fetchall("ROLLBACK")
                raise
        if changed and record.terminal:
            await self._sweep()
        return record, changed

    async def _sweep(self, *, force: bool = False) -> None:
        now = time.time()
        if not force and now - self._last_sweep < _SWEEP_EVERY:
            return
        self._last_sweep = now
        db = await self._conn()
        async with self._lock:
            await db.execute_fetchall(
                "DELETE FROM ltx2_jobs WHERE terminal >= 1 AND updated_at < ?",
                (now - self._keep_finished,),
            )

    async def add(self, record: JobRecord) -> None:
        raw = _dump(record)
        db = await self._conn()
        async with self._lock:
            await db.execute_fetchall(_UPSERT, _row(record, raw))

    async def get(self, key: str) -> JobRecord | None:
        return await self._one(_SELECT_BY_KEY, (key,))

    async def get_by_token(self, token: str) -> JobRecord | None:
        return await self._one(_SELECT_BY_HOOK, (token,))

    async def find(
        self, provider: str, job_id: str, *, scope: str | None = None
    ) -> JobRecord | None:
        rows = await self._query(
            "SELECT record FROM ltx2_jobs WHERE provider = ? AND job_id = ? "
            "ORDER BY updated_at DESC",
            (provider, job_id),
        )
        # The scope is in the record (a job id is one provider's, so this is one row or two).
        found = (_load(raw) for raw in rows)
        return next((r for r in found if in_scope(r, provider, scope)), None)

    async def set_created(
        self, key: str, job_id: str, meta: dict[str, str], update: StatusUpdate
    ) -> JobRecord | None:
        record, _ = await self._change(
            _SELECT_BY_KEY, (key,), lambda r: apply_created(r, job_id, meta, update)
        )
        if record is None:
            return None
        await self._publish(record)
        return copy_record(record)

    async def update(self, key: str, update: StatusUpdate) -> JobRecord | None:
        record, changed = await self._change(
            _SELECT_BY_KEY, (key,), lambda r: apply_update(r, update)
        )
        if record is None or not changed:
            return None
        await self._publish(record)
        return copy_record(record)

    async def deliver(
        self, token: str, update: StatusUpdate, job_id: str | None
    ) -> tuple[JobRecord | None, bool]:
        record, accepted = await self._change(
            _SELECT_BY_HOOK, (token,), lambda r: apply_delivery(r, update, job_id)
        )
        if record is None:
            return None, False
        if accepted:
            await self._publish(record)
        return copy_record(record), accepted

    async def clear_delivery(self, key: str) -> None:
        await self._change(_SELECT_BY_KEY, (key,), apply_clear_delivery)

    async def unfinished(
        self, provider: str | None = None, *, scope: str | None = None
    ) -> list[JobRecord]:
        if provider is None:
            rows = await self._query(
                "SELECT record FROM ltx2_jobs WHERE terminal = 0 ORDER BY created_at, rowid"
            )
        else:
            rows = await self._query(
                "SELECT record FROM ltx2_jobs WHERE terminal = 0 AND provider = ? "
                "ORDER BY created_at, rowid",
                (provider,),
            )
        return [r for r in map(_load, rows) if in_scope(r, provider, scope)]

    async def uncollected(
        self, provider: str | None = None, *, scope: str | None = None, since: float = 0.0
    ) -> list[JobRecord]:
        rows = await self._query(
            "SELECT record FROM ltx2_jobs WHERE terminal = 1 AND updated_at >= ? "
            "ORDER BY updated_at, rowid",
            (since,),
        )
        found = map(_load, rows)
        return [r for r in found if not r.collected and in_scope(r, provider, scope)]

    async def set_collected(self, key: str) -> None:
        await self._change(_SELECT_BY_KEY, (key,), apply_collected)

    async def delete(self, key: str) -> None:
        db = await self._conn()
        async with self._lock:
            await db.execute_fetchall("DELETE FROM ltx2_jobs WHERE key = ?", (key,))

    async def set_owner(self, key: str, owner: str) -> None:
        def own(record: JobRecord) -> bool:
            if record.owner == owner:
                return False
            record.owner = owner
            return True

        await self._change(_SELECT_BY_KEY, (key,), own)

"""``MemoryStore``: the default, in one process, gone when it exits."""

from __future__ import annotations

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

__all__ = ["MemoryStore"]


class MemoryStore(Store):
    """Job records in a dict. Fast and small; use :class:`ltx2.SQLiteStore` to survive
    restarts or :class:`ltx2.RedisStore` to share jobs between replicas.

    ``keep_finished`` caps how many finished records are kept (oldest dropped first), so a
    long-running process does not grow without bound.
    """

    def __init__(self, *, keep_finished: int = 10_000) -> None:
        super().__init__()
        self._records: dict[str, JobRecord] = {}
        self._by_token: dict[str, str] = {}
        self._by_job: dict[tuple[str, str], str] = {}
        self._finished: dict[str, None] = {}
        self._keep_finished = keep_finished

    def __repr__(self) -> str:
        return f"<MemoryStore records={len(self._records)}>"

    async def add(self, record: JobRecord) -> None:
        record = copy_record(record)
        self._records[record.key] = record
        self._by_token[record.token] = record.key
        if record.job_id:
            self._by_job[(record.provider, record.job_id)] = record.key

    async def get(self, key: str) -> JobRecord | None:
        record = self._records.get(key)
        return None if record is None else copy_record(record)

    async def get_by_token(self, token: str) -> JobRecord | None:
        record = self._records.get(self._by_token.get(token, ""))
        return None if record is None else copy_record(record)

    async def find(
        self, provider: str, job_id: str, *, scope: str | None = None
    ) -> JobRecord | None:
        key = self._by_job.get((provider, job_id))
        record = None if key is None else await self.get(key)
        return record if record is not None and in_scope(record, provider, scope) else None

    async def set_created(
        self, key: str, job_id: str, meta: dict[str, str], update: StatusUpdate
    ) -> JobRecord | None:
        record = self._records.get(key)
        if record is None:
            return None
        if record.job_id is not None and record.job_id != job_id:
            self._by_job.pop((record.provider, record.job_id), None)
        apply_created(record, job_id, meta, update)
        self._by_job[(record.provider, job_id)] = key
        self._note_finished(record)
        await self._publish(record)
        return copy_record(record)

    async def update(self, key: str, update: StatusUpdate) -> JobRecord | None:
        record = self._records.get(key)
        if record is None or not apply_update(record, update):
            return None
        self._note_finished(record)
        await self._publish(record)
        return copy_record(record)

    async def deliver(
        self, token: str, update: StatusUpdate, job_id: str | None
    ) -> tuple[JobRecord | None, bool]:
        key = self._by_token.get(token)
        record = None if key is None else self._records.get(key)
        if record is None:
            return None, False
        if not apply_delivery(record, update, job_id):
            return copy_record(record), False
        await self._publish(record)
        return copy_record(record), True

    async def clear_delivery(self, key: str) -> None:
        record = self._records.get(key)
        if record is not None:
            apply_clear_delivery(record)

    async def unfinished(
        self, provider: str | None = None, *, scope: str | None = None
    ) -> list[JobRecord]:
        return sorted(
            (
                copy_record(r)
                for r in self._records.values()
                if not r.terminal and in_scope(r, provider, scope)
            ),
            key=lambda r: r.created_at,
        )

    async def uncollected(
        self, provider: str | None = None, *, scope: str | None = None, since: float = 0.0
    ) -> list[JobRecord]:
        found = (self._records.get(key) for key in self._finished)
        return sorted(
            (
                copy_record(r)
                for r in found
                if r is not None
                and not r.collected
                and r.updated_at >= since
                and in_scope(r, provider, scope)
            ),
            key=lambda r: r.updated_at,
        )

    async def set_collected(self, key: str) -> None:
        record = self._records.get(key)
        if record is not None:
            apply_collected(record)

    async def delete(self, key: str) -> None:
        record = self._records.pop(key, None)
        if record is None:
            return
        self._by_token.pop(record.token, None)
        if record.job_id:
            self._by_job.pop((record.provider, record.job_id), None)
        self._finished.pop(key, None)

    async def set_owner(self, key: str, owner: str) -> None:
        record = self._records.get(key)
        if record is not None:
            record.owner = owner

    def _note_finished(self, record: JobRecord) -> None:
        if not record.terminal:
            return
        self._finished[record.key] = None
        while len(self._finished) > self._keep_finished:
            oldest = next(iter(self._finished))
            self._finished.pop(oldest)
            old = self._records.pop(oldest, None)
            if old is not None:
                self._by_token.pop(old.token, None)
                if old.job_id:
                    self._by_job.pop((old.provider, old.job_id), None)

"""The store: job records and webhook deliveries, the one source of truth a job resolves from.

Flow: the client writes a record *before* it sends the create (so a webhook that beats the
create reply finds it), then ``set_created`` with the provider's id. Status changes from polls
go through ``update``; webhook deliveries through ``deliver``. Every change is published to the
store's listeners (in-process for memory and SQLite; over Redis pub/sub across replicas), and
jobs resolve from those notifications. A record that is terminal never changes again, so a
duplicate, late or out-of-order delivery resolves nothing twice.
"""

from __future__ import annotations

import logging
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._request import stored_image
from .._types import JobStatus, StatusUpdate

log = logging.getLogger("ltx2.stores")

#: Where a record keeps the job id a delivery named while the create reply was not in yet.
DELIVERED_JOB_ID = "delivered_job_id"

if TYPE_CHECKING:
    from .._limits import LimitsBackend

__all__ = ["ChangeListener", "JobRecord", "Store", "new_record"]


@dataclass(slots=True)
class JobRecord:
    """One job as the store keeps it.

    ``request`` is what was asked for: the generation parameters, ``prompt``, and ``image``:
    the URL the provider fetched it from (the caller's, or where ltx2 or the caller's
    ``uploader=`` put it), ``{"sha256", "bytes", "mime"}`` for an image sent inline
    (:func:`ltx2._request.image_reference`), or None; never the image's bytes, so a record
    stays small (it is rewritten, and with Redis published, on every change).
    ``key`` is ltx2's own id for the job (not secret; logged). ``token`` is the 128-bit
    secret in the webhook URL; ``webhook_secret`` the per-job secret a provider echoes back
    (Eachlabs). ``job_id`` is the provider's id, ``None`` until the create reply is read.
    ``update`` is the latest normalized status (``None``: the create was sent and no reply
    read yet). ``delivery`` is a webhook delivery the awaiting client has not acted on yet.
    ``meta`` holds what the provider's later calls need (fal's response URL, ...).
    ``owner`` names the client that awaits the job (one per process/replica). ``scope`` names
    the provider key the job was created with (:func:`ltx2._limits.key_fingerprint`, a keyed
    hash, never the key): :meth:`Store.unfinished` and :meth:`Store.find` given a scope see
    only its records, so two apps, or two keys, on one store never resume each other's jobs.
    ``collected``: the job's outcome reached its caller (``await job`` returned or raised
    it); until then a finished record is one :meth:`Store.uncollected` lists, for resume().
    """

    key: str
    provider: str
    request: dict[str, Any]
    token: str
    webhook_secret: str | None = None
    job_id: str | None = None
    update: StatusUpdate | None = None
    delivery: StatusUpdate | None = None
    meta: dict[str, str] = field(default_factory=dict)
    owner: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    scope: str = ""
    collected: bool = False

    @property
    def status(self) -> JobStatus | None:
        """The normalized status, ``None`` while the create reply is not known."""
        return None if self.update is None else self.update.status

    @property
    def terminal(self) -> bool:
        """True once the job succeeded, failed or was cancelled."""
        return self.update is not None and self.update.status.terminal

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (SQLite and Redis store this)."""
        return {
            "key": self.key,
            "provider": self.provider,
            "request": self.request,
            "token": self.token,
            "webhook_secret": self.webhook_secret,
            "job_id": self.job_id,
            "update": None if self.update is None else self.update.to_json(),
            "delivery": None if self.delivery is None else self.delivery.to_json(),
            "meta": self.meta,
            "owner": self.owner,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "scope": self.scope,
            "collected": self.collected,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> JobRecord:
        """The inverse of :meth:`to_json`."""
        return cls(
            key=d["key"],
            provider=d["provider"],
            request=_stored_request(d["request"]),
            token=d["token"],
            webhook_secret=d.get("webhook_secret"),
            job_id=d.get("job_id"),
            update=None if d.get("update") is None else StatusUpdate.from_json(d["update"]),
            delivery=None if d.get("delivery") is None else StatusUpdate.from_json(d["delivery"]),
            meta=dict(d.get("meta") or {}),
            owner=d.get("owner"),
            created_at=float(d.get("created_at", 0.0)),
            updated_at=float(d.get("updated_at", 0.0)),
            scope=str(d.get("scope") or ""),
            collected=bool(d.get("collected", False)),
        )

    def __repr__(self) -> str:
        # token and webhook_secret are secrets: never shown.
        return (
            f"JobRecord(key={self.key!r}, provider={self.provider!r}, job_id={self.job_id!r}, "
            f"status={self.status})"
        )


def new_record(
    provider: str,
    request: dict[str, Any],
    *,
    owner: str | None,
    with_secret: bool,
    scope: str = "",
) -> JobRecord:
    """A fresh record with a random key and a 128-bit webhook token (and secret), in
    ``scope`` (the fingerprint of the key it is created with)."""
    now = time.time()
    return JobRecord(
        # 128 random bits as 32 hex digits, like uuid4().hex, at a third of its cost.
        key=secrets.token_hex(16),
        provider=provider,
        request=_stored_request(request),
        token=secrets.token_urlsafe(16),  # 16 bytes = 128 bits
        webhook_secret=secrets.token_urlsafe(24) if with_secret else None,
        owner=owner,
        created_at=now,
        updated_at=now,
        scope=scope,
    )


def _stored_request(request: dict[str, Any]) -> dict[str, Any]:
    """``request`` with its image as a record keeps it: an inline image (a data URI, as
    records from earlier versions hold it) becomes its digest and size, so an old record
    loads as it is and its next write is small."""
    image = request.get("image")
    if isinstance(image, str) and image[:5].lower() == "data:":
        return {**request, "image": stored_image(image)}
    return request


def in_scope(record: JobRecord, provider: str | None, scope: str | None) -> bool:
    """True if the record is of this provider and scope (None: any)."""
    return (provider is None or record.provider == provider) and (
        scope is None or record.scope == scope
    )


ChangeListener = Callable[[JobRecord], Awaitable[None] | None]


def apply_update(record: JobRecord, update: StatusUpdate) -> bool:
    """Apply a status update to a record in place; False if it changes nothing.

    A terminal record never changes. An update equal to the current one is no change. A
    non-terminal update never replaces a terminal one (late or out-of-order readings).
    """
    if record.terminal:
        return False
    if record.update == update:
        return False
    record.update = update
    if update.status.terminal:
        record.delivery = None
    record.updated_at = time.time()
    return True


def apply_created(
    record: JobRecord, job_id: str, meta: dict[str, str], update: StatusUpdate
) -> bool:
    """Record the provider's reply to the create: the id and meta always land; the first
    status only if no delivery or poll made the record terminal first. Always a change.

    A delivery that came before the create reply named its job; if that is not the job the
    create made (a replayed delivery of another job, under this token), it is discarded."""
    delivered = record.meta.get(DELIVERED_JOB_ID)
    if delivered is not None and delivered != job_id:
        if record.delivery is not None:
            log.warning(
                "discarded a %s delivery that came before the create reply: it names job %s, "
                "the create made job %s",
                record.provider, delivered, job_id,
            )  # fmt: skip
        record.delivery = None
        record.meta = {k: v for k, v in record.meta.items() if k != DELIVERED_JOB_ID}
    record.job_id = job_id
    record.meta = {**record.meta, **meta}
    apply_update(record, update)
    record.updated_at = time.time()
    return True


def apply_delivery(record: JobRecord, update: StatusUpdate, job_id: str | None) -> bool:
    """Keep a webhook delivery on a record; False if the record is already terminal or
    already holds a delivery (a duplicate)."""
    if record.terminal or record.delivery is not None:
        return False
    if job_id and record.job_id and job_id != record.job_id:
        return False  # a delivery for another job under this token: never trusted
    record.delivery = update
    if job_id and record.job_id is None:
        record.meta = {**record.meta, DELIVERED_JOB_ID: job_id}
    record.updated_at = time.time()
    return True


def apply_collected(record: JobRecord) -> bool:
    """Mark a finished record collected (its outcome reached the caller); False if it is not
    finished or already collected. Its ``updated_at`` (when it finished) stays."""
    if not record.terminal or record.collected:
        return False
    record.collected = True
    return True


def apply_clear_delivery(record: JobRecord) -> bool:
    """Drop a delivery that its status read did not confirm; False if there was none."""
    if record.delivery is None:
        return False
    record.delivery = None
    return True


def copy_record(record: JobRecord) -> JobRecord:
    """A copy that shares nothing mutable with ``record`` (its dicts hold plain values).

    Built field by field: it runs on every change (the receiver's hot path), and
    ``dataclasses.replace`` costs several times as much."""
    r = record
    request = dict(r.request)
    image = request.get("image")
    if type(image) is dict:  # an inline image's reference: shared by no copy either
        request["image"] = dict(image)
    return JobRecord(
        r.key, r.provider, request, r.token, r.webhook_secret, r.job_id, r.update,
        r.delivery, dict(r.meta), r.owner, r.created_at, r.updated_at, r.scope, r.collected,
    )  # fmt: skip


class Store(ABC):
    """Where job records live. Use as ``async with store:`` or call ``open``/``close``.

    Every method is safe to call concurrently. Listeners get a copy of the record after each
    change, in the process that subscribed (for Redis: in every replica).
    """

    def __init__(self) -> None:
        self._listeners: list[ChangeListener] = []

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Connect / create tables. Idempotent."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections. Idempotent."""

    async def __aenter__(self) -> Store:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def subscribe(self, listener: ChangeListener) -> Callable[[], None]:
        """Call ``listener(record)`` after every change; returns an unsubscribe function."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    async def _publish(self, record: JobRecord) -> None:
        for listener in tuple(self._listeners):
            result = listener(copy_record(record))
            if result is not None:
                await result

    @abstractmethod
    async def add(self, record: JobRecord) -> None:
        """Insert a new record (before its create request is sent)."""

    @abstractmethod
    async def get(self, key: str) -> JobRecord | None:
        """The record with this key."""

    @abstractmethod
    async def get_by_token(self, token: str) -> JobRecord | None:
        """The record whose webhook token is ``token`` (the receiver's lookup)."""

    @abstractmethod
    async def find(
        self, provider: str, job_id: str, *, scope: str | None = None
    ) -> JobRecord | None:
        """The record of a provider's job id (in ``scope`` only, when given)."""

    @abstractmethod
    async def set_created(
        self, key: str, job_id: str, meta: dict[str, str], update: StatusUpdate
    ) -> JobRecord | None:
        """Record the create reply: the provider's id, its meta and first status (kept as is
        if a delivery or poll already made the record terminal). Publishes the change."""

    @abstractmethod
    async def update(self, key: str, update: StatusUpdate) -> JobRecord | None:
        """Apply a status update (see :func:`apply_update`). Publishes and returns the new
        record if it changed anything, else returns None."""

    @abstractmethod
    async def deliver(
        self, token: str, update: StatusUpdate, job_id: str | None
    ) -> tuple[JobRecord | None, bool]:
        """Keep a webhook delivery for the record with this token (see
        :func:`apply_delivery`). Returns ``(record, accepted)``; record None means no such
        token. Publishes when accepted."""

    @abstractmethod
    async def clear_delivery(self, key: str) -> None:
        """Drop a delivery that turned out false (its confirmation said otherwise)."""

    @abstractmethod
    async def unfinished(
        self, provider: str | None = None, *, scope: str | None = None
    ) -> list[JobRecord]:
        """Every record that is not terminal (oldest first), of ``provider`` and ``scope``
        when given."""

    async def uncollected(
        self, provider: str | None = None, *, scope: str | None = None, since: float = 0.0
    ) -> list[JobRecord]:
        """Every finished record not yet marked collected (:meth:`set_collected`) whose last
        change (when it finished) is at or after ``since`` (a Unix time), oldest first, of
        ``provider`` and ``scope`` when given: the jobs that ended while nobody collected them
        (their process crashed), which :meth:`ltx2.Client.resume` hands back. A store that
        keeps no finished records returns none."""
        return []

    async def set_collected(self, key: str) -> None:  # noqa: B027 - optional hook
        """The finished job's outcome reached its caller: :meth:`uncollected` no longer
        lists it. Nothing for a record that is not finished, or gone. Publishes nothing."""

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Forget a record."""

    async def lease(self, key: str, owner: str, ttl: float) -> bool:
        """Take the right to poll this job for ``ttl`` seconds. Only one owner at a time
        holds it (so N replicas do not poll one job N times). Single-process stores always
        grant it."""
        return True

    def limits_backend(self) -> LimitsBackend | None:
        """Where clients on this store keep their keys' limits when not told otherwise:
        None (in the process) unless the store is shared by replicas (Redis)."""
        return None

    async def set_owner(self, key: str, owner: str) -> None:  # noqa: B027 - optional hook
        """Record which client awaits the job (resume takes jobs over)."""

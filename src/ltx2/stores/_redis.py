"""``RedisStore``: job records in Redis, shared by every replica of a service.

Layout (``{p}`` is the prefix)::

    {p}:job:{key}                    the record's JSON          TTL ttl, finished_ttl once terminal
    {p}:token:{token}                -> key (webhook lookups)   same TTL as the record
    {p}:jobid:{provider}:{job_id}    -> key                     same TTL as the record
    {p}:unfinished                   zset key -> created_at     (resync)
    {p}:unfinished:{provider}:{scope} zset key -> created_at    (resume: one provider key's)
    {p}:finished                     zset key -> finish time    (resync after a reconnect)
    {p}:uncollected:{provider}:{scope} zset key -> finish time  (resume: finished, not collected)
    {p}:lease:{key}                  owner of the poll lease    PX ttl
    {p}:events                       pub/sub channel: {"src": instance id, "record": {...}}

Changes are optimistic compare-and-set: read the record, apply the same Python rules as every
other store (:func:`~ltx2.stores._base.apply_update`, :func:`~ltx2.stores._base.apply_delivery`),
then one Lua script writes it only if the stored JSON still has the SHA-1 that was read, updates
the indexes and TTLs and PUBLISHes the event, all atomically (so events leave in the order the
changes were made). On a conflict the change is read and applied again. The rules live in one
place (Python) and a retried script whose reply was lost is recognised (the stored JSON already
is the one being written), so a Redis restart neither loses nor doubles a change.

Listeners: the replica that makes a change calls its own listeners directly, before the method
returns (as :class:`~ltx2.stores.MemoryStore` does), and ignores its own echo on the channel by
the instance id in each event. Every other replica hears the event from its one background
subscriber task. When that subscription is re-established (Redis restarted, the connection
dropped), :meth:`RedisStore.resync` re-reads every unfinished record and every record that
finished since the subscriber last heard from Redis, and calls the listeners with them: events
published during the gap are lost by pub/sub, so listeners may get a record twice and must
treat a record they already know as no news (jobs resolve once).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from .._types import StatusUpdate
from ._base import (
    ChangeListener,
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
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

    from ._redis_limits import RedisLimits

__all__ = ["RedisStore"]

logger = logging.getLogger("ltx2.stores")

DEFAULT_URL = "redis://127.0.0.1:6379/0"
#: Unfinished records live this long after their last change (seconds).
DEFAULT_TTL = 7 * 86400
#: Finished records live this long after they finished (seconds).
DEFAULT_FINISHED_TTL = 86400
#: Per-command retries on connection errors and timeouts, with backoff and jitter (capped at
#: 0.25 s), for at most ``RETRY_BUDGET`` seconds in all: a Redis restart of a second or so is
#: ridden out, and a Redis that is down fails each command in under 2 s (and is logged once
#: per outage), instead of holding every caller for many seconds of retries.
RETRY_BUDGET = 1.5
_BACKOFF_BASE = 0.02
_BACKOFF_CAP = 0.25
_CONNECT_TIMEOUT = 1.0
#: Connections per store (the subscriber holds one); more concurrent commands wait for one,
#: up to ``_POOL_TIMEOUT`` seconds.
_MAX_CONNECTIONS = 64
_POOL_TIMEOUT = 60.0
#: How long ``open`` waits for the event subscription to be confirmed (seconds).
_SUBSCRIBE_TIMEOUT = 10.0
#: The subscriber wakes at least this often, which dates "last heard from Redis" (seconds).
_POLL_SECONDS = 1.0
#: Resync looks this much further back than the last time Redis was heard from, for clock
#: differences between replicas (finish times are the writer's clock).
_CLOCK_SKEW = 30.0
_MGET_CHUNK = 500
_MISSING_EXTRA = "RedisStore needs redis-py: pip install 'ltx2[redis]'"

# Write one record if it is still the one that was read (ARGV[1] is its SHA-1; empty: write
# unconditionally), keep its indexes, TTLs and the unfinished/finished sets, publish the event.
# Returns 1 written, 2 already written (a retry whose first reply was lost), 0 changed
# meanwhile, -1 gone.
_PUT = """
local cur = redis.call('GET', KEYS[1])
if ARGV[1] ~= '' then
  if not cur then return -1 end
  local sha = redis.sha1hex(cur)
  if sha ~= ARGV[1] then
    if sha == redis.sha1hex(ARGV[2]) then return 2 end
    return 0
  end
end
local ttl = tonumber(ARGV[3])
redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
redis.call('SET', KEYS[2], ARGV[7], 'PX', ttl)
if ARGV[10] == '1' then redis.call('SET', KEYS[3], ARGV[7], 'PX', ttl) end
if ARGV[4] == '1' then
  redis.call('ZREM', KEYS[4], ARGV[7])
  redis.call('ZREM', KEYS[6], ARGV[7])
  redis.call('ZADD', KEYS[5], ARGV[6], ARGV[7])
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', '(' .. ARGV[11])
  if ARGV[12] == '1' then
    redis.call('ZREM', KEYS[7], ARGV[7])
  else
    redis.call('ZADD', KEYS[7], ARGV[6], ARGV[7])
    redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', '(' .. ARGV[11])
  end
else
  redis.call('ZADD', KEYS[4], ARGV[5], ARGV[7])
  redis.call('ZADD', KEYS[6], ARGV[5], ARGV[7])
  redis.call('ZREM', KEYS[5], ARGV[7])
end
if ARGV[9] ~= '' then redis.call('PUBLISH', ARGV[8], ARGV[9]) end
return 1
"""

# Forget a record: the record, its lease, its set entries, and the indexes that still point
# at it (ARGV[1] is the key; ARGV[2] says whether KEYS[3] is a job id index).
_DELETE = """
redis.call('DEL', KEYS[1], KEYS[6])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
if ARGV[2] == '1' and redis.call('GET', KEYS[3]) == ARGV[1] then redis.call('DEL', KEYS[3]) end
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
redis.call('ZREM', KEYS[7], ARGV[1])
redis.call('ZREM', KEYS[8], ARGV[1])
return 1
"""

# Take the poll lease, or extend it when this owner already holds it.
_LEASE = """
local cur = redis.call('GET', KEYS[1])
if not cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""


def _bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _load(raw: str | bytes) -> JobRecord:
    return JobRecord.from_json(json.loads(raw))


def _dump(record: JobRecord) -> str:
    return json.dumps(record.to_json(), separators=(",", ":"))


def _sha1(raw: bytes) -> str:
    return hashlib.sha1(raw, usedforsecurity=False).hexdigest()


def safe_url(url: str) -> str:
    """The URL without its user name and password (for reprs and logs)."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if parts.username is not None or parts.password is not None:
            netloc = f"***@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
        # The query may carry ?password=... (unix socket URLs): never shown.
        return urlunsplit(parts._replace(netloc=netloc, query=""))
    except ValueError:
        return "<unparsable url>"


def down_errors() -> tuple[type[Exception], ...]:
    """The errors that mean Redis did not answer (redis-py's, imported lazily)."""
    from redis.exceptions import ConnectionError, TimeoutError

    return (ConnectionError, TimeoutError, OSError)


_logged_down: set[str] = set()


def _log_down(url: str, exc: BaseException) -> None:
    # Once per outage per server: a down Redis fails every command, and the log must not
    # repeat that for each one (the first success logs that it is back).
    if url not in _logged_down:
        _logged_down.add(url)
        logger.warning(
            "ltx2: Redis at %s is unreachable (%s); its commands fail until it is back",
            safe_url(url), type(exc).__name__,
        )  # fmt: skip


def _log_up(url: str) -> None:
    if url in _logged_down:
        _logged_down.discard(url)
        logger.info("ltx2: Redis at %s is reachable again", safe_url(url))


def _budget_retry(url: str) -> Any:
    """A redis-py ``Retry`` that stops after ``RETRY_BUDGET`` seconds (not after a count, so
    that nested retries, connect inside command, cannot multiply)."""
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialWithJitterBackoff

    class BudgetRetry(Retry):
        async def call_with_retry(
            self, do: Any, fail: Any, is_retryable: Any = None, with_failure_count: bool = False
        ) -> Any:
            deadline = time.monotonic() + RETRY_BUDGET
            failures = 0
            self._backoff.reset()  # type: ignore[no-untyped-call]
            while True:
                try:
                    result = await do()
                except self._supported_errors as error:
                    if is_retryable is not None and not is_retryable(error):
                        raise
                    failures += 1
                    await (fail(error, failures) if with_failure_count else fail(error))
                    delay = self._backoff.compute(failures)
                    if time.monotonic() + delay >= deadline:
                        _log_down(url, error)
                        raise
                    await asyncio.sleep(delay)
                else:
                    _log_up(url)
                    return result

    return BudgetRetry(ExponentialWithJitterBackoff(base=_BACKOFF_BASE, cap=_BACKOFF_CAP), -1)


def budget_client(url: str, *, max_connections: int = _MAX_CONNECTIONS) -> Redis:
    """A ``redis.asyncio.Redis`` for ``url`` whose commands retry for ``RETRY_BUDGET``
    seconds at most, from a blocking pool (a burst of concurrent commands waits for a
    connection instead of failing with "Too many connections")."""
    try:
        from redis.asyncio import BlockingConnectionPool, Redis
        from redis.exceptions import ConnectionError, TimeoutError
    except ImportError as exc:
        raise ImportError(_MISSING_EXTRA) from exc
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=_POOL_TIMEOUT,
        decode_responses=True,
        retry=_budget_retry(url),
        retry_on_error=[ConnectionError, TimeoutError],
        socket_connect_timeout=_CONNECT_TIMEOUT,
        socket_timeout=10,
        health_check_interval=15,
    )
    return Redis.from_pool(pool)


class RedisStore(Store):
    """Job records in Redis, shared by several replicas of a service.

    A webhook delivery received by any replica reaches the listeners of every replica (over
    the ``{prefix}:events`` channel), and :meth:`lease` makes sure one replica at a time
    polls a job.

    ``url``: the Redis server. ``prefix`` namespaces every key (and the channel), so several
    apps can share a database. ``ttl``: seconds an unfinished record lives after its last
    change; ``finished_ttl``: seconds a finished one lives. ``client``: a
    ``redis.asyncio.Redis`` to use instead of one made from ``url`` (its retry settings are
    then yours; it is not closed by :meth:`close`).

    Needs the ``redis`` extra (``pip install 'ltx2[redis]'``). Use as ``async with store:``
    or call :meth:`open` / :meth:`close`; any method opens the store if needed. Commands retry
    on connection errors for a few seconds, so a Redis restart is ridden out; with AOF or RDB
    persistence on the server, no job is lost. Every key has a TTL, so run the server with
    ``maxmemory-policy noeviction`` (a ``volatile-*`` policy may evict live jobs).

    Listeners of the replica that makes a change are called before the change call returns;
    other replicas hear it shortly after, in the order the changes were made. After the
    subscriber reconnects, :meth:`resync` repeats the records it may have missed, so a
    listener can get a record it has already seen.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        prefix: str = "ltx2",
        ttl: float = DEFAULT_TTL,
        finished_ttl: float = DEFAULT_FINISHED_TTL,
        client: Redis | None = None,
    ) -> None:
        super().__init__()
        self._url = url
        self._prefix = prefix
        self._ttl_ms = max(1, int(ttl * 1000))
        self._finished_ttl = finished_ttl
        self._finished_ttl_ms = max(1, int(finished_ttl * 1000))
        self._client: Redis | None = client
        self._owns_client = client is None
        self._scripts: tuple[AsyncScript, AsyncScript, AsyncScript] | None = None
        self._instance = uuid.uuid4().hex
        self._channel = f"{prefix}:events"
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self._open_lock = asyncio.Lock()
        self._opened = False
        self._last_alive = time.time()
        self._limits: RedisLimits | None = None

    def __repr__(self) -> str:
        return f"<RedisStore url={safe_url(self._url)!r} prefix={self._prefix!r}>"

    @property
    def prefix(self) -> str:
        """The prefix of every key and of the events channel."""
        return self._prefix

    # -- connection and subscriber ------------------------------------------------------

    def _redis(self) -> Redis:
        if self._client is None:
            self._client = budget_client(self._url)
        if self._scripts is None:
            client = self._client
            self._scripts = (
                client.register_script(_PUT),
                client.register_script(_DELETE),
                client.register_script(_LEASE),
            )
        return self._client

    def limits_backend(self) -> RedisLimits:
        """Limits on this store's Redis and prefix, so that replicas on the store share each
        key's limits (see :class:`~ltx2.stores.RedisLimits`). Made once; its connections are
        its own."""
        if self._limits is None:
            from ._redis_limits import RedisLimits

            given = None if self._owns_client else self._client
            self._limits = RedisLimits(self._url, prefix=self._prefix, client=given)
        return self._limits

    def _key(self, kind: str, name: str) -> str:
        return f"{self._prefix}:{kind}:{name}"

    def _scoped_unfinished(self, provider: str, scope: str) -> str:
        return f"{self._prefix}:unfinished:{provider}:{scope}"

    def _uncollected(self, provider: str, scope: str) -> str:
        return f"{self._prefix}:uncollected:{provider}:{scope}"

    async def open(self) -> None:
        """Connect, and subscribe to the events channel (waits for Redis to confirm, so
        nothing changed after ``open`` returns is missed). Idempotent."""
        if self._opened:
            return
        async with self._open_lock:
            if self._opened:
                return
            await self._redis().ping()
            self._start_subscriber()
            try:
                await asyncio.wait_for(self._subscribed.wait(), _SUBSCRIBE_TIMEOUT)
            except TimeoutError:
                from redis.exceptions import ConnectionError

                raise ConnectionError(
                    f"RedisStore could not subscribe to {self._channel!r} on {safe_url(self._url)}"
                ) from None
            self._opened = True

    async def close(self) -> None:
        """Stop the subscriber and close the connections (a ``client`` passed in stays
        open). Idempotent."""
        async with self._open_lock:
            task, self._task = self._task, None
            if task is not None:
                await stop_task(task)
            self._opened = False
            self._subscribed = asyncio.Event()
            if self._owns_client and self._client is not None:
                client, self._client = self._client, None
                self._scripts = None
                await client.aclose()

    def subscribe(self, listener: ChangeListener) -> Callable[[], None]:
        """Call ``listener(record)`` after every change made by any replica; returns an
        unsubscribe function. Starts the store's subscriber task if an event loop runs."""
        unsubscribe = super().subscribe(listener)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return unsubscribe  # open() starts it
        self._start_subscriber()
        return unsubscribe

    def _start_subscriber(self) -> None:
        if self._task is None or self._task.done():
            self._redis()
            self._task = asyncio.get_running_loop().create_task(
                self._listen(), name=f"ltx2 RedisStore subscriber {self._prefix}"
            )

    async def _listen(self) -> None:
        client = self._redis()
        me = asyncio.current_task()
        subscribed_before = False
        failures = 0
        # Ends when close() lets go of it (self._task), not only by its cancel: redis-py's
        # get_message(timeout=) can turn a cancel that meets its timeout into a timeout and
        # return None, and the loop would run on with close() awaiting it for ever.
        while self._task is me:
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                while self._task is me:
                    alive_before = self._last_alive
                    message = await pubsub.get_message(timeout=_POLL_SECONDS)
                    now = time.time()
                    if message is not None:
                        if message["type"] == "subscribe":
                            # redis-py re-subscribes by itself after a reconnect; either
                            # way a confirmation after the first one means there was a gap.
                            if subscribed_before:
                                logger.info("ltx2: RedisStore reconnected; resyncing")
                                await self._resync_quietly(alive_before)
                            subscribed_before = True
                            failures = 0
                            self._subscribed.set()
                        elif message["type"] == "message":
                            await self._on_event(message["data"])
                    self._last_alive = now
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Redis down for longer than the retries, or a reply we did not expect: the
                # subscriber must outlive both.
                failures += 1
                if isinstance(exc, down_errors()):
                    _log_down(self._url, exc)  # once per outage, with the commands' failures
                    log = logger.debug
                else:
                    log = logger.warning if failures == 1 else logger.debug
                log(
                    "ltx2: RedisStore subscriber lost its connection (%s); retrying",
                    type(exc).__name__,
                )
                await asyncio.sleep(min(_BACKOFF_CAP * 4, _BACKOFF_BASE * 2**failures))
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _on_event(self, data: str | bytes) -> None:
        try:
            event = json.loads(data)
            if event.get("src") == self._instance:
                return  # our own change: our listeners were called when we made it
            record = JobRecord.from_json(event["record"])
        except (ValueError, KeyError, TypeError, AttributeError):
            logger.debug("ltx2: RedisStore ignored a malformed event")
            return
        await self._notify(record)

    async def _notify(self, record: JobRecord) -> None:
        # Called from the subscriber task: a failing listener is logged (by job key only),
        # never allowed to stop the others or the subscriber.
        for listener in tuple(self._listeners):
            try:
                result = listener(replace(record))
                if result is not None:
                    await result
            except Exception:
                logger.exception("ltx2: a store listener failed on job %s", record.key)

    async def _resync_quietly(self, since: float) -> None:
        try:
            await self.resync(since=since)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("ltx2: RedisStore resync failed (%s)", type(exc).__name__)

    async def resync(self, *, since: float | None = None) -> None:
        """Call the listeners with every unfinished record and every record that finished
        since ``since`` (a Unix time; default: when the subscriber last heard from Redis).

        The subscriber does this by itself after it reconnects, so that changes whose events
        were lost while it was away still reach the jobs waiting in this process.
        """
        client = self._redis()
        start = (self._last_alive if since is None else since) - _CLOCK_SKEW
        keys = [_text(k) for k in await client.zrange(f"{self._prefix}:unfinished", 0, -1)]
        keys += [
            _text(k) for k in await client.zrangebyscore(f"{self._prefix}:finished", start, "+inf")
        ]
        for record in await self._load_many(dict.fromkeys(keys)):
            await self._notify(record)

    # -- reading and writing --------------------------------------------------------------

    async def _client_ready(self) -> Redis:
        if not self._opened:
            await self.open()
        return self._redis()

    async def _load_many(self, keys: Iterable[str]) -> list[JobRecord]:
        client = await self._client_ready()
        wanted = list(keys)
        records: list[JobRecord] = []
        for i in range(0, len(wanted), _MGET_CHUNK):
            chunk = wanted[i : i + _MGET_CHUNK]
            raws = await client.mget([self._key("job", k) for k in chunk])
            records.extend(_load(raw) for raw in raws if raw is not None)
        return records

    async def _put(self, record: JobRecord, raw: str, *, expected: str, publish: bool) -> int:
        client = await self._client_ready()
        assert self._scripts is not None
        terminal = record.terminal
        job_key = self._key("job", record.key)
        has_job_id = bool(record.job_id)
        job_id_key = (
            self._key("jobid", f"{record.provider}:{record.job_id}") if has_job_id else job_key
        )
        event = f'{{"src":"{self._instance}","record":{raw}}}' if publish else ""
        result = await self._scripts[0](
            keys=[
                job_key,
                self._key("token", record.token),
                job_id_key,
                f"{self._prefix}:unfinished",
                f"{self._prefix}:finished",
                self._scoped_unfinished(record.provider, record.scope),
                self._uncollected(record.provider, record.scope),
            ],
            args=[
                expected,
                raw,
                self._finished_ttl_ms if terminal else self._ttl_ms,
                "1" if terminal else "0",
                repr(record.created_at),
                repr(record.updated_at),
                record.key,
                self._channel,
                event,
                "1" if has_job_id else "0",
                repr(time.time() - self._finished_ttl),
                "1" if record.collected else "0",
            ],
            client=client,
        )
        return int(result)

    async def _change(
        self, key: str, change: Callable[[JobRecord], bool], *, publish: bool
    ) -> tuple[JobRecord | None, bool]:
        """Read the record, let ``change`` edit it and, if it returns True, write it back
        unless someone else wrote it meanwhile (then start over). Returns the record as it is
        now (None: no such record) and whether it was written."""
        client = await self._client_ready()
        job_key = self._key("job", key)
        while True:
            raw = await client.get(job_key)
            if raw is None:
                return None, False
            raw_bytes = _bytes(raw)
            record = _load(raw_bytes)
            if not change(record):
                return record, False
            result = await self._put(
                record, _dump(record), expected=_sha1(raw_bytes), publish=publish
            )
            if result > 0:
                return record, True
            if result < 0:
                return None, False

    async def add(self, record: JobRecord) -> None:
        await self._put(record, _dump(record), expected="", publish=False)

    async def get(self, key: str) -> JobRecord | None:
        client = await self._client_ready()
        raw = await client.get(self._key("job", key))
        return None if raw is None else _load(raw)

    async def get_by_token(self, token: str) -> JobRecord | None:
        client = await self._client_ready()
        key = await client.get(self._key("token", token))
        record = None if key is None else await self.get(_text(key))
        return record if record is not None and record.token == token else None

    async def find(
        self, provider: str, job_id: str, *, scope: str | None = None
    ) -> JobRecord | None:
        client = await self._client_ready()
        key = await client.get(self._key("jobid", f"{provider}:{job_id}"))
        record = None if key is None else await self.get(_text(key))
        if record is None or record.job_id != job_id or not in_scope(record, provider, scope):
            return None
        return record

    async def set_created(
        self, key: str, job_id: str, meta: dict[str, str], update: StatusUpdate
    ) -> JobRecord | None:
        record, _ = await self._change(
            key, lambda r: apply_created(r, job_id, meta, update), publish=True
        )
        if record is None:
            return None
        await self._publish(record)
        return copy_record(record)

    async def update(self, key: str, update: StatusUpdate) -> JobRecord | None:
        record, changed = await self._change(key, lambda r: apply_update(r, update), publish=True)
        if record is None or not changed:
            return None
        await self._publish(record)
        return copy_record(record)

    async def deliver(
        self, token: str, update: StatusUpdate, job_id: str | None
    ) -> tuple[JobRecord | None, bool]:
        client = await self._client_ready()
        key = await client.get(self._key("token", token))
        if key is None:
            return None, False
        stale = False

        def change(record: JobRecord) -> bool:
            nonlocal stale
            if record.token != token:  # the index outlived its record's token
                stale = True
                return False
            return apply_delivery(record, update, job_id)

        record, accepted = await self._change(_text(key), change, publish=True)
        if record is None or stale:
            return None, False
        if accepted:
            await self._publish(record)
        return copy_record(record), accepted

    async def clear_delivery(self, key: str) -> None:
        await self._change(key, apply_clear_delivery, publish=False)

    async def unfinished(
        self, provider: str | None = None, *, scope: str | None = None
    ) -> list[JobRecord]:
        client = await self._client_ready()
        sets = [f"{self._prefix}:unfinished"]
        if provider is not None and scope is not None:
            # One provider key's own set: another app's or key's jobs are not even read.
            sets.insert(0, self._scoped_unfinished(provider, scope))
        keys = [_text(k) for k in await client.zrange(sets[0], 0, -1)]
        records = await self._load_many(keys)
        gone = set(keys) - {r.key for r in records}
        if gone:  # expired by their TTL
            for name in sets:
                await client.zrem(name, *gone)
        return [r for r in records if not r.terminal and in_scope(r, provider, scope)]

    async def uncollected(
        self, provider: str | None = None, *, scope: str | None = None, since: float = 0.0
    ) -> list[JobRecord]:
        client = await self._client_ready()
        if provider is not None and scope is not None:
            # One provider key's own set: only its finished, uncollected jobs are read.
            name = self._uncollected(provider, scope)
            keys = [_text(k) for k in await client.zrangebyscore(name, since, "+inf")]
        else:
            name = None
            keys = [
                _text(k)
                for k in await client.zrangebyscore(f"{self._prefix}:finished", since, "+inf")
            ]
        records = await self._load_many(keys)
        gone = set(keys) - {r.key for r in records}
        if gone and name is not None:  # expired by their TTL
            await client.zrem(name, *gone)
        found = [
            r for r in records if r.terminal and not r.collected and in_scope(r, provider, scope)
        ]
        return sorted(found, key=lambda r: r.updated_at)

    async def set_collected(self, key: str) -> None:
        await self._change(key, apply_collected, publish=False)

    async def delete(self, key: str) -> None:
        client = await self._client_ready()
        assert self._scripts is not None
        record = await self.get(key)
        job_key = self._key("job", key)
        has_job_id = record is not None and bool(record.job_id)
        await self._scripts[1](
            keys=[
                job_key,
                self._key("token", record.token) if record is not None else job_key,
                (
                    self._key("jobid", f"{record.provider}:{record.job_id}")
                    if record is not None and has_job_id
                    else job_key
                ),
                f"{self._prefix}:unfinished",
                f"{self._prefix}:finished",
                self._key("lease", key),
                (
                    self._scoped_unfinished(record.provider, record.scope)
                    if record is not None
                    else f"{self._prefix}:unfinished"
                ),
                (
                    self._uncollected(record.provider, record.scope)
                    if record is not None
                    else f"{self._prefix}:unfinished"
                ),
            ],
            args=[key, "1" if has_job_id else "0"],
            client=client,
        )

    async def lease(self, key: str, owner: str, ttl: float) -> bool:
        """Take the right to poll this job for ``ttl`` seconds (``SET NX PX``); re-entrant:
        the owner that holds it extends it. Another owner gets it only once it expired."""
        client = await self._client_ready()
        assert self._scripts is not None
        result = await self._scripts[2](
            keys=[self._key("lease", key)],
            args=[owner, max(1, int(ttl * 1000))],
            client=client,
        )
        return bool(int(result))

    async def set_owner(self, key: str, owner: str) -> None:
        def own(record: JobRecord) -> bool:
            if record.owner == owner:
                return False
            record.owner = owner
            return True

        await self._change(key, own, publish=False)


async def stop_task(task: asyncio.Task[None]) -> None:
    """Cancel a subscriber task and wait for it to end, cancelling it again should a cancel
    be lost (see :meth:`RedisStore._listen`); a cancel of the caller goes on to the caller."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=_POLL_SECONDS * 2)
    if not task.cancelled():
        with contextlib.suppress(Exception):
            task.result()

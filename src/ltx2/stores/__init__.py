"""Job stores: where job records and webhook deliveries live.

``MemoryStore`` (default), ``SQLiteStore`` (survives restarts; extra ``sqlite``) and
``RedisStore`` (shared by replicas; extra ``redis``), and ``RedisLimits``, a provider key's
limits shared by replicas through Redis. All three pass one contract test suite.
Importing this package imports neither aiosqlite nor redis: each store imports its driver
when it opens.
"""

from __future__ import annotations

from ._base import ChangeListener, JobRecord, Store, new_record
from ._memory import MemoryStore
from ._redis import RedisStore
from ._redis_limits import RedisLimits
from ._sqlite import SQLiteStore

__all__ = [
    "ChangeListener",
    "JobRecord",
    "MemoryStore",
    "RedisLimits",
    "RedisStore",
    "SQLiteStore",
    "Store",
    "new_record",
]

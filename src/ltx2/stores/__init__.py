"""Job stores: where job records and webhook deliveries live.

``MemoryStore`` (default), ``SQLiteStore`` (survives restarts; extra ``sqlite``) and
``RedisStore`` (shared by replicas; extra ``redis``). All three pass one contract test suite.
"""

from __future__ import annotations

from ._base import ChangeListener, JobRecord, Store, new_record
from ._memory import MemoryStore

__all__ = ["ChangeListener", "JobRecord", "MemoryStore", "Store", "new_record"]

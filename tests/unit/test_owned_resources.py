"""A client closes only what it opened (issue 10, item 7): a store passed in stays open for
the other clients that share it; a store the client made is closed."""

from __future__ import annotations

import ltx2

KEY = "sk-owned-secret"


class CountingStore(ltx2.MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.closed = 0

    async def close(self) -> None:
        self.closed += 1
        await super().close()


async def test_closing_one_client_leaves_a_shared_store_open_for_the_other() -> None:
    store = CountingStore()
    heard: list[str] = []
    first = ltx2.Client("eachlabs", api_key=KEY, store=store)
    second = ltx2.Client("eachlabs", api_key=KEY, store=store)
    async with second:
        async with first:
            pass
        assert store.closed == 0  # the first client did not close the shared store
        store.subscribe(lambda record: heard.append(record.key))
        record = ltx2.stores.new_record("eachlabs", {}, owner=None, with_secret=False)
        await store.add(record)
        await store.set_created(
            record.key, "p-1", {}, ltx2.StatusUpdate(ltx2.JobStatus.QUEUED, "submitted")
        )
    assert heard == [record.key]
    assert store.closed == 0  # nor did the second: the store is its creator's to close

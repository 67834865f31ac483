"""Webhook delivery: retries per provider, and the webhook faults (drop, duplicate, early,
out-of-order, forged)."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from ._faults import derived_rng
from ._jobs import Job

if TYPE_CHECKING:
    from ._server import Emulator

__all__ = ["WebhookDispatcher"]

# Out-of-order deliveries are held until this many are waiting, or this long (scaled).
_HOLD_BATCH = 8
_HOLD_SECONDS = 5.0
# Of the held jobs, this share also gets a later, conflicting delivery.
_CONFLICT_SHARE = 0.5


class WebhookDispatcher:
    """Sends each finished job's webhook (Eachlabs and fal; the others have none)."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self._rng = derived_rng(emu.seed, "webhooks")
        self._held: list[Job] = []
        self._flush_scheduled = False

    def job_finished(self, job: Job) -> None:
        """Called once when ``job`` ends; schedules (or withholds) its deliveries."""
        if not job.webhook_url or job.extra.get("early"):
            return
        api = self.emu.api(job.provider)
        if not api.retry_delays:
            return
        if job.state == "cancelled" and not api.webhook_on_cancel:
            return
        faults = api.stats["faults"]
        dice = self.emu.dice
        if dice.roll("webhook_drop"):
            faults["webhook_drop"] += 1
            job.webhook_deliveries.append({"kind": "dropped", "at": time.time()})
            return
        if dice.roll("webhook_out_of_order"):
            faults["webhook_out_of_order"] += 1
            self._hold(job)
            return
        self.emu.spawn(self.send_all(job), name=f"ltx2-emulator-webhook-{job.id}")

    async def send_all(self, job: Job, *, conflicting: bool = False, detach: bool = False) -> None:
        """Deliver ``job``'s webhook with retries, plus any forged / duplicate / conflicting
        extra. With ``detach``, retries after a failed first try run in their own task."""
        api = self.emu.api(job.provider)
        if self.emu.dice.roll("webhook_forged"):
            api.stats["faults"]["webhook_forged"] += 1
            await self._attempt(job, "forged", 1)
        if await self._attempt(job, "genuine", 1):
            await self._after(job, True, conflicting)
        elif detach:
            self.emu.spawn(self._retry_then(job, conflicting))
        else:
            await self._retry_then(job, conflicting)

    async def _retry_then(self, job: Job, conflicting: bool) -> None:
        delays = self.emu.api(job.provider).retry_delays
        ok = False
        for attempt, delay in enumerate(delays, start=2):
            await asyncio.sleep(self.emu.scaled(delay))
            if await self._attempt(job, "genuine", attempt):
                ok = True
                break
        await self._after(job, ok, conflicting)

    async def _after(self, job: Job, ok: bool, conflicting: bool) -> None:
        api = self.emu.api(job.provider)
        if ok and self.emu.dice.roll("webhook_duplicate"):
            api.stats["faults"]["webhook_duplicate"] += 1
            await self._attempt(job, "duplicate", 1)
        if conflicting:
            await self._attempt(job, "conflicting", 1)

    async def _attempt(self, job: Job, kind: str, attempt: int) -> bool:
        assert job.webhook_url is not None
        api = self.emu.api(job.provider)
        variant = "genuine" if kind == "duplicate" else kind
        body, headers = api.webhook(job, variant, self._rng)
        status, error = await self.emu.deliver(job.webhook_url, body, headers)
        ok = status is not None and 200 <= status < 300
        job.webhook_deliveries.append(
            {"kind": kind, "attempt": attempt, "status": status, "error": error, "at": time.time()}
        )
        st = api.stats
        if kind == "forged":
            st["forged_sent"] += 1
        else:
            st["webhooks_sent"] += 1
            st["webhooks_acked" if ok else "webhooks_failed"] += 1
        return ok

    def _hold(self, job: Job) -> None:
        self._held.append(job)
        if len(self._held) >= _HOLD_BATCH:
            self._release_now()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            self.emu.spawn(self._release_later())

    async def _release_later(self) -> None:
        await asyncio.sleep(self.emu.scaled(_HOLD_SECONDS))
        self._flush_scheduled = False
        self._release_now()

    def _release_now(self) -> None:
        batch, self._held = self._held, []
        if batch:
            self._rng.shuffle(batch)
            self.emu.spawn(self._release(batch))

    async def _release(self, batch: list[Job]) -> None:
        # One after another, so the shuffled order is the order the receiver sees; a failed
        # first try retries in its own task instead of holding up the rest.
        for job in batch:
            conflicting = self._rng.random() < _CONFLICT_SHARE
            await self.send_all(job, conflicting=conflicting, detach=True)

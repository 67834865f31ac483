"""Fault settings (:class:`Faults`) and the seeded dice that inject them."""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from typing import Any

__all__ = ["FAULT_NAMES", "FaultDice", "Faults", "derived_rng"]


@dataclass(frozen=True)
class Faults:
    """Which faults the emulator injects, each as a rate from 0.0 to 1.0 (default: none).

    Every rate is applied independently, per request (or per webhook delivery / job), with a
    random generator derived from the emulator's ``seed``, so a seeded run is reproducible.

    Attributes:
        server_error: a 5xx reply. On a create it is a 503 and no job is created, so a retry
            is safe; on other requests a 500, 502 or 503.
        server_error_burst: how many consecutive requests (to that provider) one 5xx burst
            lasts once it starts.
        rate_limit: a spurious 429 with a ``Retry-After`` header; no job is created.
        reset: the connection is dropped with no reply (status/result/list GETs only).
        slow: a reply is delayed by ``slow_seconds`` (scaled by the time scale).
        slow_seconds: the delay of a slow reply, before scaling.
        webhook_drop: a job's webhook is never sent.
        webhook_duplicate: a job's webhook is delivered twice.
        webhook_early: for jobs with zero processing time, the job finishes and its webhook
            is delivered and acknowledged before the create reply is sent.
        webhook_out_of_order: finished jobs' deliveries are held and released in shuffled
            order, and a conflicting (opposite-outcome) delivery may follow the real one.
        webhook_forged: an extra delivery with a wrong ``X-Webhook-Secret``, a bad fal
            signature, a stale timestamp or an altered body is sent to the same URL first.
        job_failure: a job ends failed (the provider's generation error) instead of
            succeeding. Not in the original brief; useful for chaos runs.
    """

    server_error: float = 0.0
    server_error_burst: int = 1
    rate_limit: float = 0.0
    reset: float = 0.0
    slow: float = 0.0
    slow_seconds: float = 5.0
    webhook_drop: float = 0.0
    webhook_duplicate: float = 0.0
    webhook_early: float = 0.0
    webhook_out_of_order: float = 0.0
    webhook_forged: float = 0.0
    job_failure: float = 0.0

    def __post_init__(self) -> None:
        for name in FAULT_NAMES:
            rate = getattr(self, name)
            if isinstance(rate, bool) or not isinstance(rate, int | float):
                raise TypeError(f"Faults.{name} must be a number, got {rate!r}")
            if not 0.0 <= float(rate) <= 1.0:
                raise ValueError(f"Faults.{name} must be between 0.0 and 1.0, got {rate!r}")
        if isinstance(self.server_error_burst, bool) or not isinstance(
            self.server_error_burst, int
        ):
            raise TypeError("Faults.server_error_burst must be an int")
        if self.server_error_burst < 1:
            raise ValueError("Faults.server_error_burst must be at least 1")
        if not isinstance(self.slow_seconds, int | float) or self.slow_seconds < 0:
            raise ValueError("Faults.slow_seconds must be a number >= 0")

    @classmethod
    def parse(cls, text: str) -> Faults:
        """Build a :class:`Faults` from a CLI string like ``"server_error=0.1,webhook_drop=0.2"``.

        Items are separated by commas (or whitespace); an empty string or ``"none"`` means no
        faults. Unknown names raise :class:`ValueError` listing the valid ones.
        """
        text = text.strip()
        if not text or text.lower() == "none":
            return cls()
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for item in text.replace(",", " ").split():
            name, sep, raw = item.partition("=")
            name = name.strip().replace("-", "_")
            if not sep or not raw.strip():
                raise ValueError(f"expected name=value in faults string, got {item!r}")
            if name not in fields:
                raise ValueError(
                    f"unknown fault {name!r}; valid names: {', '.join(sorted(fields))}"
                )
            try:
                values[name] = int(raw) if name == "server_error_burst" else float(raw)
            except ValueError:
                raise ValueError(f"bad value for fault {name!r}: {raw!r}") from None
        return cls(**values)

    def any(self) -> bool:
        """Whether any fault rate is above zero."""
        return any(getattr(self, name) > 0 for name in FAULT_NAMES)


# The rate fields (everything but the two tuning knobs).
FAULT_NAMES: tuple[str, ...] = (
    "server_error",
    "rate_limit",
    "reset",
    "slow",
    "webhook_drop",
    "webhook_duplicate",
    "webhook_early",
    "webhook_out_of_order",
    "webhook_forged",
    "job_failure",
)


class FaultDice:
    """One independent seeded random stream per fault, so the sequence of hits for one fault
    does not shift when another fault is enabled, and a seed reproduces a run."""

    def __init__(self, faults: Faults, seed: int | None) -> None:
        self.faults = faults
        self._rngs = {name: derived_rng(seed, f"fault:{name}") for name in FAULT_NAMES}
        self.misc = derived_rng(seed, "fault:misc")

    def roll(self, name: str) -> bool:
        """Whether fault ``name`` happens this time (never draws when its rate is 0)."""
        rate = float(getattr(self.faults, name))
        if rate <= 0.0:
            return False
        return self._rngs[name].random() < rate


def derived_rng(seed: int | None, purpose: str) -> random.Random:
    """A generator for one ``purpose``, reproducible from ``seed`` (random when ``None``)."""
    # A str seed is hashed with SHA-512 by random.Random, so this is stable across runs.
    return random.Random(f"{seed}:{purpose}") if seed is not None else random.Random()

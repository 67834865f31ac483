"""Immutable settings with named defaults: timeouts, retries, rate limits and polling."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from ._errors import InvalidRequestError

__all__ = ["DownloadPolicy", "Limits", "PollPolicy", "RetryPolicy", "Timeouts", "check_seconds"]


def check_seconds(name: str, value: Any, *, zero: bool = False) -> float:
    """``value`` as a number of seconds, or :class:`ltx2.InvalidRequestError` naming ``name``:
    a real number (not a bool, not NaN), positive (or zero, if ``zero``) and finite."""
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or math.isnan(value) or math.isinf(value) or value < 0 or (value == 0 and not zero):
        allowed = "a number of seconds " + (">= 0" if zero else "> 0")
        what = f"{value!r}" if ok else f"{value!r} ({type(value).__name__})"
        raise InvalidRequestError(
            f"{name}: {what} is not {allowed}", field=name, value=value, allowed=allowed
        )
    return float(value)


@dataclass(frozen=True, slots=True)
class Timeouts:
    """HTTP timeouts in seconds: ``connect`` to open a connection, ``read`` between bytes of a
    reply, ``total`` for one API call (downloads have no total, only ``read``)."""

    connect: float = 10.0
    read: float = 60.0
    total: float = 120.0

    def __post_init__(self) -> None:
        for f in fields(self):
            check_seconds(f"timeouts.{f.name}", getattr(self, f.name))


@dataclass(frozen=True, slots=True)
class DownloadPolicy:
    """Where a video download (``Video.save``, ``Video.stream``) may go.

    Every URL, the first and each redirect hop, must be http or https; at most
    ``max_redirects`` redirects are followed, by hand, each hop checked. By default any
    host is allowed, so a redirect is held to the same rules as the first URL.
    ``allow_loopback=False`` refuses loopback addresses (``localhost``, 127.0.0.0/8, ::1) and
    ``allow_private=False`` refuses private, link-local, multicast, reserved and unspecified
    ones (10/8, 172.16/12, 192.168/16, 169.254/16 — cloud metadata —, fc00::/7, ...): a
    server-side deployment that downloads URLs a provider names wants both off
    (:meth:`public_only`). Host names are resolved and every address they resolve to is
    checked. A refused URL raises :class:`ltx2.TransportError` naming the host.
    """

    allow_private: bool = True
    allow_loopback: bool = True
    max_redirects: int = 5

    def __post_init__(self) -> None:
        for name in ("allow_private", "allow_loopback"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidRequestError(
                    f"download_policy.{name}: {getattr(self, name)!r} is not a bool",
                    field=f"download_policy.{name}", value=getattr(self, name), allowed="a bool",
                )  # fmt: skip
        n = self.max_redirects
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= 100:
            raise InvalidRequestError(
                f"download_policy.max_redirects: {n!r} is not a redirect count",
                field="download_policy.max_redirects", value=n, allowed="an int from 0 to 100",
            )  # fmt: skip

    @classmethod
    def public_only(cls, *, max_redirects: int = 5) -> DownloadPolicy:
        """Public addresses only: no loopback, private or link-local hosts."""
        return cls(allow_private=False, allow_loopback=False, max_redirects=max_redirects)

    @property
    def restricted(self) -> bool:
        """True when some addresses are refused (hosts then have to be resolved first)."""
        return not (self.allow_private and self.allow_loopback)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries of 429, 5xx and connection failures: exponential backoff with full jitter.

    The n-th retry waits ``uniform(0, min(max_delay, base_delay * 2**n))``, or the provider's
    ``Retry-After`` when it sent one (capped at ``max_retry_after``). A create is retried only
    when the provider cannot have started it: a connection that never opened, a 429, or a 503.
    ``enabled=False`` turns retries off (tests).
    """

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 20.0
    max_retry_after: float = 120.0
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class Limits:
    """Client-side limits per provider API key, so a fan-out never meets a 429.

    ``creates_per_period`` creates in any window of ``period`` seconds (a sliding window, the
    strictest reading of "N per minute"), and at most ``max_concurrent`` unfinished jobs.
    ``None`` means no limit. Every client in a process with the same provider and key shares
    one set of limits; with a shared limits backend (a :class:`ltx2.RedisStore`, or
    ``Client(limits_backend=...)``) every replica on the key shares them.

    ``lease``: with a shared backend, each job's slot is a lease of this many seconds that the
    replica holding it renews (every third of it); a replica that dies frees its slots within
    one lease.
    """

    creates_per_period: int | None = None
    max_concurrent: int | None = None
    period: float = 60.0
    lease: float = 30.0

    def scaled(self, time_scale: float) -> Limits:
        """The same limits with the window and the lease scaled (for an emulator with a time
        scale)."""
        return Limits(
            self.creates_per_period,
            self.max_concurrent,
            self.period * time_scale,
            self.lease * time_scale,
        )


@dataclass(frozen=True, slots=True)
class PollPolicy:
    """When the fallback poller asks a provider for a job's status.

    The first poll comes ``first`` seconds after the create (default: the provider's stated
    shortest processing time × ``first_fraction``); after that the interval is ``ratio`` × the
    job's age, within ``[min_interval, max_interval]``, shortened by up to ``jitter`` (a
    fraction) so that jobs created together do not poll together. Since a job's time is at
    least its age, a result is known within ``ratio`` × the job's time (or ``min_interval``)
    after it is ready.

    When a webhook is expected the poller is only a safety net: it waits ``webhook_grace`` ×
    the provider's longest stated time before its first poll, then polls every
    ``max_interval``.

    ``time_scale`` multiplies every duration (use the emulator's time scale in tests).
    ``seed`` makes the jitter reproducible (benchmarks and tests; ``None``: a fresh draw).
    """

    first: float | None = None
    first_fraction: float = 0.9
    ratio: float = 0.1
    min_interval: float = 1.0
    max_interval: float = 30.0
    jitter: float = 0.05
    webhook_grace: float = 1.5
    time_scale: float = 1.0
    seed: int | None = None

"""Immutable settings with named defaults: timeouts, retries, rate limits and polling."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import urlsplit

from ._errors import InvalidRequestError

__all__ = [
    "EMULATOR_URL_ENV",
    "TIME_SCALE_ENV",
    "DownloadPolicy",
    "Limits",
    "PollPolicy",
    "RetryPolicy",
    "Timeouts",
    "check_base_url",
    "check_positive",
    "check_seconds",
    "emulator_from_env",
    "where_to_connect",
]

#: The root URL of an ltx2 emulator (what ``ltx2 emulator`` prints). When set, a client given
#: no ``base_url`` talks to ``{root}/{provider}`` instead of the provider (docs/quickstart.md).
EMULATOR_URL_ENV = "LTX2_EMULATOR_URL"
#: With ``LTX2_EMULATOR_URL``: the client's default ``time_scale`` (the emulator's own).
TIME_SCALE_ENV = "LTX2_TIME_SCALE"


def check_seconds(name: str, value: Any, *, zero: bool = False) -> float:
    """``value`` as a number of seconds, or :class:`ltx2.InvalidRequestError` naming ``name``:
    a real number (not a bool, not NaN), positive (or zero, if ``zero``) and finite."""
    return check_positive(name, value, zero=zero, what="a number of seconds")


def check_positive(name: str, value: Any, *, zero: bool = False, what: str = "a number") -> float:
    """``value`` as a float if it is a finite real number > 0 (>= 0 with ``zero``), else
    :class:`ltx2.InvalidRequestError` naming ``name``, the value and what is allowed."""
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or math.isnan(value) or math.isinf(value) or value < 0 or (value == 0 and not zero):
        allowed = f"{what} " + (">= 0" if zero else "> 0")
        shown = f"{value!r}" if ok else f"{value!r} ({type(value).__name__})"
        raise InvalidRequestError(
            f"{name}: {shown} is not {allowed}", field=name, value=value, allowed=allowed
        )
    return float(value)


def check_base_url(url: Any, field: str = "base_url") -> str:
    """``url`` if it is an http(s) URL with a host (and no credentials, query or fragment),
    without its trailing slash; else :class:`ltx2.InvalidRequestError` naming ``field``."""
    allowed = "an http(s) URL with a host, e.g. https://proxy.example.com/eachlabs"
    if not isinstance(url, str):
        raise InvalidRequestError(
            f"{field}: {url!r} ({type(url).__name__}) is not a URL",
            field=field, value=url, allowed=allowed,
        )  # fmt: skip
    shown = url if len(url) <= 120 else url[:117] + "..."
    problem = None
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        problem = str(exc)
    else:
        if "://" not in url:
            problem = "it has no scheme (http:// or https://)"
        elif parts.scheme.lower() not in ("http", "https"):
            problem = f"its scheme is {parts.scheme!r}, not http or https"
        elif any(c.isspace() for c in url.strip()):
            problem = "it contains spaces"
        elif not parts.hostname:
            problem = "it has no host"
        elif parts.username is not None or parts.password is not None:
            shown = "<a URL with credentials>"  # never repeat them
            problem = "it carries credentials; pass the key as api_key="
        elif parts.query or parts.fragment:
            problem = "a base URL has no query or fragment"
    if problem is not None:
        raise InvalidRequestError(
            f"{field}: {shown!r} is not a usable base URL: {problem}",
            field=field, value=shown, allowed=allowed,
        )  # fmt: skip
    return url.strip().rstrip("/")


def emulator_from_env(provider: str) -> tuple[str, float | None] | None:
    """``(base_url, time_scale)`` for ``provider`` when ``LTX2_EMULATOR_URL`` is set (the
    time scale from ``LTX2_TIME_SCALE``, if set); None when it is not."""
    root = os.environ.get(EMULATOR_URL_ENV, "").strip()
    if not root:
        return None
    base = check_base_url(f"{check_base_url(root, EMULATOR_URL_ENV)}/{provider}", EMULATOR_URL_ENV)
    text = os.environ.get(TIME_SCALE_ENV, "").strip()
    if not text:
        return base, None
    try:
        scale = float(text)
    except ValueError:
        scale = math.nan
    if not (scale > 0 and math.isfinite(scale)):
        raise InvalidRequestError(
            f"{TIME_SCALE_ENV}: {text!r} is not a positive number",
            field=TIME_SCALE_ENV, value=text, allowed="a number > 0, e.g. 0.01",
        )  # fmt: skip
    return base, scale


def where_to_connect(provider: str, base_url: Any, time_scale: Any) -> tuple[str | None, float]:
    """A client's ``(base_url, time_scale)``: as given (checked), else from
    ``LTX2_EMULATOR_URL`` and ``LTX2_TIME_SCALE`` when no ``base_url`` is given; the time
    scale defaults to 1. ``base_url`` None means the provider's own."""
    if base_url is not None:
        base_url = check_base_url(base_url)
    else:
        found = emulator_from_env(provider)
        if found is not None:
            base_url, env_scale = found
            if time_scale is None:
                time_scale = env_scale
    scale = 1.0 if time_scale is None else check_positive("time_scale", time_scale)
    return base_url, scale


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

    When a webhook is expected the poller is only a safety net, bounding what a webhook that
    never comes costs (Eachlabs documents webhooks for Workflows V2 only, so one may not come):
    it polls every ``max(webhook_latency, webhook_fraction × the provider's longest stated
    time)``, from the create on, so a result is known at most that long after the job ended
    (Eachlabs: 30 s). ``webhook_grace`` (a factor of the longest stated time) instead delays
    the first poll that long and then polls every ``max_interval`` or ``ratio`` × the age:
    the older, lazier safety net, for deployments sure of their webhooks (a large value
    turns it off).

    ``time_scale`` multiplies every duration (use the emulator's time scale in tests).
    ``seed`` makes the jitter reproducible (benchmarks and tests; ``None``: a fresh draw).
    """

    first: float | None = None
    first_fraction: float = 0.9
    ratio: float = 0.1
    min_interval: float = 1.0
    max_interval: float = 30.0
    jitter: float = 0.05
    webhook_grace: float | None = None
    webhook_latency: float = 30.0
    webhook_fraction: float = 0.25
    time_scale: float = 1.0
    seed: int | None = None

"""Small value types shared by the providers, the transport, the stores and the jobs."""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["HTTPCall", "HTTPReply", "JobStatus", "StatusUpdate"]

#: HTTPReply's "not parsed yet" (``None`` is a parsed empty body).
_UNPARSED: Any = object()


class JobStatus(enum.StrEnum):
    """The normalized status of a job, whatever the provider calls it.

    ``UNKNOWN`` is only seen after :meth:`ltx2.Client.resume`: the process stopped between
    sending a create and reading its reply, and the provider could not say whether the job
    exists. Such a job is never submitted again on its own.
    """

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"

    @property
    def terminal(self) -> bool:
        """True for SUCCEEDED, FAILED and CANCELLED."""
        return self in _TERMINAL


_TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """One normalized reading of a job's state, from a status reply, a result or a webhook.

    ``raw`` is the provider's own status word. ``video_url`` is set when the job succeeded and
    the reply carried the video; ``needs_result`` says the video has to be fetched with the
    provider's result call (fal, RunComfy). ``error`` is the provider's failure message.
    """

    status: JobStatus
    raw: str = ""
    video_url: str | None = None
    error: str | None = None
    queue_position: int | None = None
    logs: tuple[str, ...] = ()
    metrics: Mapping[str, Any] = field(default_factory=dict)
    needs_result: bool = False
    error_code: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (for stores)."""
        d: dict[str, Any] = {"status": self.status.value, "raw": self.raw}
        if self.video_url is not None:
            d["video_url"] = self.video_url
        if self.error is not None:
            d["error"] = self.error
        if self.queue_position is not None:
            d["queue_position"] = self.queue_position
        if self.logs:
            d["logs"] = list(self.logs)
        if self.metrics:
            d["metrics"] = dict(self.metrics)
        if self.needs_result:
            d["needs_result"] = True
        if self.error_code is not None:
            d["error_code"] = self.error_code
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> StatusUpdate:
        """The inverse of :meth:`to_json`."""
        return cls(
            status=JobStatus(d["status"]),
            raw=str(d.get("raw", "")),
            video_url=d.get("video_url"),
            error=d.get("error"),
            queue_position=d.get("queue_position"),
            logs=tuple(d.get("logs", ())),
            metrics=dict(d.get("metrics", {})),
            needs_result=bool(d.get("needs_result", False)),
            error_code=d.get("error_code"),
        )


@dataclass(frozen=True, slots=True)
class HTTPCall:
    """An HTTP request a provider module describes and the transport sends.

    ``json`` and ``data`` are exclusive. ``idempotent`` tells the transport whether a retry
    after the request may have reached the provider is safe (status reads are; creates are
    not). ``kind`` names the call for logs, limits and metrics: ``create``, ``status``,
    ``result``, ``cancel``, ``upload``, ``list``. ``accept``: error statuses to return as
    replies instead of raising.
    """

    method: str
    url: str
    kind: str
    headers: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] | None = None
    json: Any = None
    data: bytes | None = None
    idempotent: bool = True
    #: Error statuses that are answers here, returned like a 2xx (fal's cancel answers 409
    #: ALREADY_COMPLETED for a job that finished: not a failure of the call).
    accept: frozenset[int] = frozenset()

    def __repr__(self) -> str:
        # Headers hold the API key: never show them.
        return f"HTTPCall({self.method} {self.url} kind={self.kind})"


@dataclass(frozen=True, slots=True)
class HTTPReply:
    """What came back: status, headers (looked up by lower-case name; the transport passes
    aiohttp's case-insensitive headers) and the raw body."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    _parsed: Any = field(default=_UNPARSED, init=False, repr=False, compare=False)

    def json(self) -> Any:
        """The body parsed as JSON (``None`` for an empty body). Parsed once: the transport's
        error check and the provider's parser both read it. Treat the value as read-only.
        Raises ValueError for a body that is not JSON, including one nested deeper than the
        interpreter's stack."""
        if self._parsed is not _UNPARSED:
            return self._parsed
        try:
            value = json.loads(self.body) if self.body else None
        except RecursionError:
            raise ValueError("the reply is JSON nested too deeply") from None
        object.__setattr__(self, "_parsed", value)
        return value

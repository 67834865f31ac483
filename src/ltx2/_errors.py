"""The exceptions ltx2 raises.

Every error is an :class:`LTX2Error`::

    LTX2Error
    ├── InvalidRequestError (also ValueError)   bad input, caught before any request
    ├── APIError                                the provider answered with an error
    │   ├── BadRequestError        400 (and 422)
    │   ├── AuthenticationError    401, 403, or no API key at all
    │   ├── NotFoundError          404
    │   ├── RateLimitError         429 (.retry_after)
    │   └── ServerError            5xx
    ├── TransportError                          connection failures and timeouts
    ├── JobFailedError                          the job ended in failure (.job, .message, .code)
    ├── JobCancelledError                       the job was cancelled (.job)
    ├── JobTimeoutError                         result(timeout=) ran out (.job); it keeps running
    ├── ClientClosedError                       the client was closed (the job keeps running)
    ├── WebhookError                            a delivery that fails verification
    └── UnsupportedError                        the provider cannot do that

aiohttp's exceptions are translated into these once, in the transport; nothing above the
transport sees them. Messages never carry API keys, webhook secrets or tokens: they are built
from the method, the URL with its tokens redacted, and the status, never from a lower
library's repr (which may carry request headers and query strings).

Every error pickles with its fields (they cross process pools and task queues). A ``job``
field is pickled as a :class:`JobSnapshot` (id, provider, key, status): a live
:class:`~ltx2.Job` belongs to its client and event loop.
"""

from __future__ import annotations

import pickle
import reprlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._job import Job

__all__ = [
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "ClientClosedError",
    "InvalidRequestError",
    "JobCancelledError",
    "JobFailedError",
    "JobSnapshot",
    "JobTimeoutError",
    "LTX2Error",
    "NotFoundError",
    "RateLimitError",
    "ServerError",
    "TransportError",
    "UnsupportedError",
    "WebhookError",
]


@dataclass(frozen=True, slots=True)
class JobSnapshot:
    """What an unpickled error keeps of its ``job``: the provider's ``id``, the
    ``provider``, ltx2's ``key`` for the job and its last known ``status``."""

    id: str
    provider: str
    key: str = ""
    status: str = ""


def _snapshot(value: Any) -> Any:
    """A picklable stand-in for a :class:`~ltx2.Job` (anything else is returned as is)."""
    if isinstance(value, JobSnapshot) or not all(
        hasattr(value, name) for name in ("id", "provider", "key", "status")
    ):
        return value
    status = value.status
    return JobSnapshot(
        str(value.id), str(value.provider), str(value.key), str(getattr(status, "value", status))
    )


def _picklable(value: Any) -> Any:
    """``value``, or its short repr when it does not pickle (an ``InvalidRequestError``'s
    ``value`` may be an open file or a PIL image)."""
    try:
        pickle.dumps(value)
    except Exception:
        return reprlib.repr(value)
    return value


def _rebuild(cls: type[LTX2Error], args: tuple[Any, ...], state: dict[str, Any]) -> LTX2Error:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class LTX2Error(Exception):
    """Base class of every error ltx2 raises."""

    def __reduce__(self) -> tuple[Any, ...]:
        # BaseException pickles as cls(*args), which keyword-only fields (status_code=,
        # job=, ...) do not survive; rebuild from the message and the fields instead.
        state = {k: _picklable(_snapshot(v) if k == "job" else v) for k, v in self.__dict__.items()}
        return (_rebuild, (type(self), tuple(_picklable(a) for a in self.args), state))


class InvalidRequestError(LTX2Error, ValueError):
    """Bad input, caught before any request is sent.

    ``field`` names the offending field, ``value`` is what was given (shortened) and
    ``allowed`` says what is accepted.
    """

    def __init__(
        self, message: str, *, field: str | None = None, value: Any = None, allowed: Any = None
    ) -> None:
        super().__init__(message)
        self.field = field
        self.value = value
        self.allowed = allowed


class APIError(LTX2Error):
    """The provider answered with an error status.

    ``status_code`` is the HTTP status (``None`` when no request was sent, e.g. a missing API
    key), ``message`` the provider's message, ``details`` its details (any JSON),
    ``provider`` the provider's name, ``error_type`` the provider's error type when it names
    one (fal's ``X-Fal-Error-Type``), ``method`` and ``url`` the request that got the answer
    (the URL with its tokens redacted). The text says all of them:
    ``fal: POST https://queue.fal.run/fal-ai/ltx-2/image-to-video/fast: HTTP 422: ...``.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None,
        provider: str,
        details: Any = None,
        error_type: str | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        where = f" {method} {url}" if method and url else f" {url}" if url else ""
        status = f" HTTP {status_code}:" if status_code is not None else ""
        super().__init__(f"{provider}:{where}{':' if where else ''}{status} {message}")
        self.message = message
        self.status_code = status_code
        self.provider = provider
        self.details = details
        self.error_type = error_type
        self.method = method
        self.url = url


class BadRequestError(APIError):
    """400 or 422: the provider refused the input."""


class AuthenticationError(APIError):
    """401 or 403, or no API key was found for the provider."""


class NotFoundError(APIError):
    """404: unknown model or job id."""


class RateLimitError(APIError):
    """429. ``retry_after`` is the provider's ``Retry-After`` in seconds, when it sent one."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServerError(APIError):
    """5xx: the provider failed. ``retry_after``: a 503's ``Retry-After`` in seconds, when it
    sent one."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class TransportError(LTX2Error):
    """The request did not get an HTTP answer: connection refused or reset, or a timeout.

    ``maybe_sent`` is False when the request never left, so the provider saw nothing: the
    connection never opened, or ``connect`` ran out (opening one, or waiting for a free one).
    """

    def __init__(self, message: str, *, maybe_sent: bool = True) -> None:
        super().__init__(message)
        self.maybe_sent = maybe_sent


class JobFailedError(LTX2Error):
    """The job ended in failure. ``job`` is the :class:`~ltx2.Job`, ``message`` the reason,
    ``code`` the provider's error code when it gives one (else ``None``)."""

    def __init__(self, job: Job, message: str, code: str | None = None) -> None:
        super().__init__(f"{job.provider} job {job.id} failed: {message}")
        self.job = job
        self.message = message
        self.code = code


class JobCancelledError(LTX2Error):
    """The job was cancelled (by the caller or at the provider)."""

    def __init__(self, job: Job) -> None:
        super().__init__(f"{job.provider} job {job.id} was cancelled")
        self.job = job


class JobTimeoutError(LTX2Error, TimeoutError):
    """``result(timeout=)`` ran out before the job finished. The job keeps running: ``job``
    is the :class:`~ltx2.Job`, to await again, follow or cancel."""

    def __init__(self, job: Job, message: str) -> None:
        super().__init__(message)
        self.job = job


class ClientClosedError(LTX2Error):
    """The :class:`~ltx2.Client` was closed: it sends nothing more, and whoever still awaited
    one of its jobs gets this. The job itself keeps running at the provider and stays in the
    store, so a new client's :meth:`~ltx2.Client.resume` can pick it up."""


class WebhookError(LTX2Error):
    """A webhook delivery failed verification (token, secret or signature)."""


class UnsupportedError(LTX2Error):
    """The provider cannot do what was asked (e.g. cancel on AI/ML API)."""


def error_for_status(status_code: int) -> type[APIError]:
    """The APIError subclass for an HTTP status."""
    if status_code in (400, 422):
        return BadRequestError
    if status_code in (401, 403):
        return AuthenticationError
    if status_code == 404:
        return NotFoundError
    if status_code == 429:
        return RateLimitError
    if status_code >= 500:
        return ServerError
    return APIError

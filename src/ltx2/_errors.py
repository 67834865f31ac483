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
    ├── JobCancelledError                       the job was cancelled
    ├── JobTimeoutError                         result(timeout=) ran out; the job keeps running
    ├── WebhookError                            a delivery that fails verification
    └── UnsupportedError                        the provider cannot do that

aiohttp's exceptions are translated into these once, in the transport; nothing above the
transport sees them. Messages never carry API keys, webhook secrets or tokens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._job import Job

__all__ = [
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "InvalidRequestError",
    "JobCancelledError",
    "JobFailedError",
    "JobTimeoutError",
    "LTX2Error",
    "NotFoundError",
    "RateLimitError",
    "ServerError",
    "TransportError",
    "UnsupportedError",
    "WebhookError",
]


class LTX2Error(Exception):
    """Base class of every error ltx2 raises."""


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

    ``status_code`` is the HTTP status, ``message`` the provider's message, ``details`` its
    details (any JSON), ``provider`` the provider's name.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        provider: str,
        details: Any = None,
        error_type: str | None = None,
    ) -> None:
        super().__init__(f"{provider}: HTTP {status_code}: {message}")
        self.message = message
        self.status_code = status_code
        self.provider = provider
        self.details = details
        self.error_type = error_type


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
    """5xx: the provider failed."""


class TransportError(LTX2Error):
    """The request did not get an HTTP answer: connection refused or reset, or a timeout.

    ``maybe_sent`` is False when the connection never opened, so the provider saw nothing.
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

"""Keeping webhook tokens out of access logs.

A delivery's URL ends in the job's token (``…/{provider}/{token}``), and aiohttp's access log
writes every request line. The standalone receiver logs nothing by default, or, with
``WebhookReceiver(access_log=logger)``, through :class:`RedactingAccessLogger`. A host app
that mounts the receiver keeps its own access log: give its runner
``access_log_class=RedactingAccessLogger``, or add a :class:`TokenRedactingFilter` to the
``aiohttp.access`` logger (it rewrites records already formatted, so it works with any
access log class).
"""

from __future__ import annotations

import logging
import re
from collections.abc import MutableMapping
from typing import Any

from aiohttp.web_log import AccessLogger

from ..providers import PROVIDERS

__all__ = ["RedactingAccessLogger", "TokenRedactingFilter", "redact_tokens"]

# A receiver path segment pair: a provider's name, then a token-shaped segment (the receiver
# routes tokens of 10 to 64 characters; ltx2 makes them with secrets.token_urlsafe).
_TOKEN_PATH = re.compile(
    r"(/(?:" + "|".join(re.escape(name) for name in PROVIDERS) + r")/)[A-Za-z0-9_\-%.~]{10,64}"
    r"(?=[/?#\s\"']|$)"
)


def redact_tokens(text: str) -> str:
    """``text`` with every ``/{provider}/{token}`` path's token replaced by ``[token]``."""
    return _TOKEN_PATH.sub(r"\1[token]", text) if "/" in text else text


class TokenRedactingFilter(logging.Filter):
    """A logging filter that redacts receiver tokens from every record it sees.

    ``logging.getLogger("aiohttp.access").addFilter(TokenRedactingFilter())``: the message,
    its arguments and aiohttp's ``first_request_line`` and ``request_path`` extras lose their
    tokens. Never drops a record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_tokens(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        for name in ("first_request_line", "request_path", "request_url"):
            value = getattr(record, name, None)
            if isinstance(value, str):
                setattr(record, name, redact_tokens(value))
        return True


class _Redacting(logging.LoggerAdapter):  # type: ignore[type-arg]
    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        extra = kwargs.get("extra")
        if isinstance(extra, dict):
            kwargs["extra"] = {
                k: redact_tokens(v) if isinstance(v, str) else v for k, v in extra.items()
            }
        return redact_tokens(str(msg)), kwargs


class RedactingAccessLogger(AccessLogger):
    """aiohttp's access logger, with receiver tokens redacted from what it writes.

    ``web.run_app(app, access_log_class=RedactingAccessLogger)`` or
    ``web.AppRunner(app, access_log_class=RedactingAccessLogger)``.
    """

    def __init__(self, logger: logging.Logger, log_format: str = AccessLogger.LOG_FORMAT) -> None:
        super().__init__(_Redacting(logger, {}), log_format)  # type: ignore[arg-type]

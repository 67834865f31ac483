"""Redaction: URLs and text made safe to put in error messages and logs.

Error text is built, never dumped (STYLE.md 18): a lower library's repr may carry request
headers (the API key) and query strings (fal's ``?fal_webhook=…/<token>``). Messages are
composed from the method, :func:`redact_url` of the URL and the status, and any text that
came from elsewhere goes through :func:`scrub` with the secrets the caller knows.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = ["REDACTED", "redact_url", "scrub", "secrets_of"]

REDACTED = "[redacted]"

# A query value is shown only when it is a short plain word under a name that does not say
# "secret": status reads name their job there (AI/ML API's ``generation_id``), while webhook
# URLs, presigned signatures and tokens are redacted.
_PLAIN = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_SENSITIVE = re.compile(
    r"token|key|secret|sig|auth|webhook|hook|credential|password|policy|session|amz|goog",
    re.IGNORECASE,
)
_AUTH_HEADERS = frozenset({"authorization", "x-api-key", "x-webhook-secret", "proxy-authorization"})


def redact_url(url: str, params: Mapping[str, str] | None = None) -> str:
    """``scheme://host[:port]/path`` of ``url``, with its query (and ``params``, sent as the
    query) shown name by name, every value that may be a token or a URL redacted. User info
    and fragments are dropped."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return REDACTED
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if params:
        pairs.extend(params.items())
    query = "&".join(
        f"{name}={value if _PLAIN.fullmatch(value) and not _SENSITIVE.search(name) else REDACTED}"
        for name, value in pairs
    )
    base = f"{parts.scheme}://{netloc}{parts.path}" if parts.scheme else parts.path
    return f"{base}?{query}" if query else base


def secrets_of(
    headers: Mapping[str, str] | None,
    params: Mapping[str, str] | None = None,
    body: Any = None,
    url: str | None = None,
) -> list[str]:
    """The secret strings a request carries: its auth header values (and the bare key after
    ``Bearer``/``Key``), the query values :func:`redact_url` would hide, and the values of a
    JSON body's fields named like secrets (``webhook_url``, ``webhook_secret``); of a URL
    among them, also its long path segments (a webhook token) and query values."""
    found: list[str] = []
    for name, value in (headers or {}).items():
        if name.lower() in _AUTH_HEADERS and value:
            found.append(value)
            found.extend(part for part in value.split() if len(part) >= 8)
    pairs = list((params or {}).items())
    if url:
        with contextlib.suppress(ValueError):
            pairs += parse_qsl(urlsplit(url).query)
    for name, value in pairs:
        if value and (not _PLAIN.fullmatch(value) or _SENSITIVE.search(name)):
            found.extend(_and_parts(value))
    if isinstance(body, dict):
        for name, value in body.items():
            if isinstance(value, str) and value and _SENSITIVE.search(str(name)):
                found.extend(_and_parts(value))
    return found


def _and_parts(value: str) -> list[str]:
    out = [value]
    if "://" in value:
        with contextlib.suppress(ValueError):
            parts = urlsplit(value)
            out += [seg for seg in parts.path.split("/") if len(seg) >= 16]
            out += [v for _, v in parse_qsl(parts.query) if len(v) >= 8]
    return out


def scrub(text: str, secrets: Iterable[str], *, limit: int = 300) -> str:
    """``text`` with every secret replaced by ``[redacted]``, shortened to ``limit``."""
    for secret in sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text if len(text) <= limit else text[: limit - 1] + "…"

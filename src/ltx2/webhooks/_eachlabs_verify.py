"""Eachlabs' webhook authentication, checked by pure functions over ``(body, headers)``.

A prediction created with a ``webhook_secret`` has every delivery signed
(docs.eachlabs.ai, source ``eachlabs/mintlify-docs`` api/webhooks/verifying-signatures.mdx):
``X-Webhook-Signature: sha256=<lowercase hex HMAC-SHA256(secret, "<ts>.<raw body>")>`` with
``X-Webhook-Timestamp: <ts>`` (unix seconds), the same on every retry; the page suggests a
five-minute tolerance and a constant-time comparison. Signed deliveries still carry the
secret itself in ``X-Webhook-Secret`` (the older scheme, seed 000 and
api/webhooks/payload-reference.mdx), which is what is checked when no signature came.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from .._errors import WebhookError
from ._headers import header as _header

__all__ = ["DEFAULT_TOLERANCE", "verify_eachlabs", "verify_secret"]

#: api/webhooks/verifying-signatures.mdx: "Five minutes is a reasonable default".
DEFAULT_TOLERANCE = 300.0

_SIGNATURE = "x-webhook-signature"
_TIMESTAMP = "x-webhook-timestamp"
_ECHO = "x-webhook-secret"
_PREFIX = "sha256="


def verify_eachlabs(
    body: bytes,
    headers: Mapping[str, str],
    secret: str | None,
    *,
    now: float,
    tolerance: float = DEFAULT_TOLERANCE,
) -> None:
    """Check one Eachlabs delivery for a job created with ``secret`` (``None``: the job has
    no secret, nothing to check). The signature when ``X-Webhook-Signature`` is present,
    else the legacy ``X-Webhook-Secret`` echo. Raises :class:`ltx2.WebhookError`."""
    if secret is None:
        return
    signature = _header(headers, _SIGNATURE)
    if signature is None:
        verify_secret(headers, secret)
        return
    timestamp = (_header(headers, _TIMESTAMP) or "").strip()
    if not (timestamp.isascii() and timestamp.isdigit()):
        raise WebhookError("missing or malformed X-Webhook-Timestamp")
    try:
        skew = abs(now - int(timestamp))
    except (ValueError, OverflowError):  # thousands of digits: not a time at all
        raise WebhookError("malformed X-Webhook-Timestamp") from None
    if skew > tolerance:
        raise WebhookError(f"X-Webhook-Timestamp is more than {tolerance:g} s from now")
    signature = signature.strip()
    if not signature.startswith(_PREFIX):
        raise WebhookError("X-Webhook-Signature does not start with sha256=")
    expected = hmac.new(
        secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    given = signature[len(_PREFIX) :].lower().encode("utf-8", "replace")
    if not hmac.compare_digest(expected.encode(), given):
        raise WebhookError("X-Webhook-Signature does not match the body")


def verify_secret(headers: Mapping[str, str], expected: str | None) -> None:
    """The legacy check: Eachlabs echoes the per-job ``webhook_secret`` in
    ``X-Webhook-Secret``; compare it in constant time. Raises :class:`ltx2.WebhookError`."""
    if expected is None:
        return
    given = _header(headers, _ECHO)
    if given is None:
        raise WebhookError("missing X-Webhook-Secret header")
    if not hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode()):
        raise WebhookError("X-Webhook-Secret does not match")

"""Webhook reception: ``WebhookReceiver``, the pure verification functions it uses, and the
access-log redaction that keeps its tokens out of a host app's logs."""

from __future__ import annotations

from ._access_log import RedactingAccessLogger, TokenRedactingFilter, redact_tokens
from ._eachlabs_verify import verify_eachlabs
from ._receiver import DEFAULT_MAX_BODY, WebhookReceiver, verify_secret

__all__ = [
    "DEFAULT_MAX_BODY",
    "RedactingAccessLogger",
    "TokenRedactingFilter",
    "WebhookReceiver",
    "redact_tokens",
    "verify_eachlabs",
    "verify_secret",
]

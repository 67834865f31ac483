"""Webhook reception: ``WebhookReceiver`` and the pure verification functions it uses."""

from __future__ import annotations

from ._eachlabs_verify import verify_eachlabs
from ._receiver import DEFAULT_MAX_BODY, WebhookReceiver, verify_secret

__all__ = ["DEFAULT_MAX_BODY", "WebhookReceiver", "verify_eachlabs", "verify_secret"]

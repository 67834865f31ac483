"""The emulator's fal webhook signing key, its JWKS document and the signing function.

fal signs each webhook with Ed25519 over ``request_id \\n user_id \\n timestamp \\n
sha256_hex(body)`` and publishes its public keys as a JWKS (DESIGN.md provider table; fal's
webhook documentation). The headers are ``X-Fal-Webhook-Request-Id``, ``-User-Id``,
``-Timestamp`` (unix seconds) and ``-Signature`` (hex of the 64-byte signature).
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

__all__ = ["FalSigner", "fal_signed_message"]


def fal_signed_message(request_id: str, user_id: str, timestamp: str, body: bytes) -> bytes:
    """The exact bytes fal signs for a webhook delivery."""
    return "\n".join([request_id, user_id, timestamp, hashlib.sha256(body).hexdigest()]).encode()


class FalSigner:
    """One Ed25519 key; deterministic when ``seed`` is given, fresh otherwise."""

    def __init__(self, seed: int | None) -> None:
        if seed is None:
            self._key = Ed25519PrivateKey.generate()
        else:
            material = hashlib.sha256(f"ltx2-emulator:fal-webhook-key:{seed}".encode()).digest()
            self._key = Ed25519PrivateKey.from_private_bytes(material)
        self.public_bytes = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.kid = hashlib.sha256(self.public_bytes).hexdigest()[:16]

    def jwks(self) -> dict[str, Any]:
        """The JWKS document served at ``emu.fal_jwks_url``."""
        x = base64.urlsafe_b64encode(self.public_bytes).rstrip(b"=").decode()
        return {
            "keys": [
                {
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": x,
                    "kid": self.kid,
                    "use": "sig",
                    "alg": "EdDSA",
                }
            ]
        }

    def sign(self, request_id: str, user_id: str, timestamp: str, body: bytes) -> str:
        """Hex signature of one delivery."""
        message = fal_signed_message(request_id, user_id, timestamp, body)
        return self._key.sign(message).hex()

    def headers(self, request_id: str, user_id: str, timestamp: str, body: bytes) -> dict[str, str]:
        """The four ``X-Fal-Webhook-*`` headers of a genuine delivery."""
        return {
            "X-Fal-Webhook-Request-Id": request_id,
            "X-Fal-Webhook-User-Id": user_id,
            "X-Fal-Webhook-Timestamp": timestamp,
            "X-Fal-Webhook-Signature": self.sign(request_id, user_id, timestamp, body),
        }

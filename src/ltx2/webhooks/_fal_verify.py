"""fal's webhook signatures, checked by pure functions over ``(body, headers)``.

fal signs every delivery with Ed25519 (fal's webhook docs): the message is
``request_id\\nuser_id\\ntimestamp\\nsha256hex(body)`` from the headers
``X-Fal-Webhook-Request-Id``, ``X-Fal-Webhook-User-Id``, ``X-Fal-Webhook-Timestamp`` (unix
seconds) and the raw body; the signature is hex in ``X-Fal-Webhook-Signature``; the public
keys are published as a JWKS (:data:`FAL_JWKS_URLS`); a timestamp more than 300 s away from
now is refused. Fetching and caching the JWKS is the receiver's job, not this module's.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .._errors import WebhookError
from ._headers import header

__all__ = ["DEFAULT_TOLERANCE", "FAL_JWKS_URLS", "parse_jwks", "verify_fal_signature"]

#: Where fal publishes its webhook public keys (fal's webhook docs; the alpha host first).
FAL_JWKS_URLS = (
    "https://rest.alpha.fal.ai/.well-known/jwks.json",
    "https://rest.fal.ai/.well-known/jwks.json",
)
#: fal's webhook docs: refuse timestamps more than five minutes from now.
DEFAULT_TOLERANCE = 300.0

_REQUEST_ID = "x-fal-webhook-request-id"
_USER_ID = "x-fal-webhook-user-id"
_TIMESTAMP = "x-fal-webhook-timestamp"
_SIGNATURE = "x-fal-webhook-signature"
_HEADERS = (_REQUEST_ID, _USER_ID, _TIMESTAMP, _SIGNATURE)
_KEY_BYTES = 32
_SIGNATURE_BYTES = 64


def verify_fal_signature(
    body: bytes,
    headers: Mapping[str, str],
    public_keys: Sequence[bytes],
    *,
    now: float,
    tolerance: float = DEFAULT_TOLERANCE,
) -> None:
    """Check that a fal webhook delivery is signed by fal and recent.

    Args:
        body: the request body exactly as received.
        headers: the request headers; names are matched in any case.
        public_keys: fal's raw 32-byte Ed25519 public keys (see :func:`parse_jwks`); the
            delivery is accepted if any of them verifies it.
        now: the current unix time in seconds.
        tolerance: how far, in seconds, the signed timestamp may be from ``now``.

    Raises:
        WebhookError: a header is missing or malformed, the timestamp is outside the
            tolerance, or no key verifies the signature. The message never repeats header
            values or the body.
    """
    request_id, user_id, timestamp, signature_hex = (header(headers, n) for n in _HEADERS)
    if not request_id or not user_id or not timestamp or not signature_hex:
        missing = [name for name in _HEADERS if not header(headers, name)]
        raise WebhookError(f"fal webhook: missing header(s) {', '.join(missing)}")
    try:
        skew = abs(now - int(timestamp))
    except (ValueError, OverflowError):  # not digits, or thousands of them
        raise WebhookError(f"fal webhook: {_TIMESTAMP} is not unix seconds") from None
    if skew > tolerance:
        raise WebhookError(
            f"fal webhook: timestamp is {skew:.0f} s from now, outside the {tolerance:.0f} s "
            "tolerance (a replay, or a clock out of sync)"
        )
    try:
        signature = bytes.fromhex(signature_hex)
    except ValueError:
        raise WebhookError(f"fal webhook: {_SIGNATURE} is not hex") from None
    if len(signature) != _SIGNATURE_BYTES:
        raise WebhookError(f"fal webhook: {_SIGNATURE} is not {_SIGNATURE_BYTES} bytes")
    if not public_keys:
        raise WebhookError("fal webhook: no public keys to verify the signature with")
    message = "\n".join([request_id, user_id, timestamp, hashlib.sha256(body).hexdigest()])
    # Header values that were not UTF-8 on the wire come as surrogate escapes: give back
    # their bytes (such a delivery then fails to verify, as it should).
    try:
        signed = message.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise WebhookError("fal webhook: a signed header is not text") from None
    for raw in public_keys:
        try:
            Ed25519PublicKey.from_public_bytes(raw).verify(signature, signed)
        except (InvalidSignature, ValueError):
            continue
        return
    raise WebhookError("fal webhook: bad signature (no fal public key verifies it)")


def parse_jwks(body: Any) -> list[bytes]:
    """The raw 32-byte Ed25519 public keys in a JWKS document.

    ``body`` is the decoded JSON ``{"keys": [{"kty": "OKP", "crv": "Ed25519", "x": …}]}``
    (RFC 8037; ``x`` is unpadded base64url). Keys of other types or curves, and malformed
    keys, are skipped. Raises ValueError when ``body`` is not a JWKS at all.
    """
    if not isinstance(body, dict) or not isinstance(body.get("keys"), list):
        raise ValueError("not a JWKS document: expected an object with a 'keys' list")
    keys: list[bytes] = []
    for jwk in body["keys"]:
        if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            continue
        x = jwk.get("x")
        if not isinstance(x, str):
            continue
        try:
            raw = base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
        except (binascii.Error, ValueError):
            continue
        if len(raw) == _KEY_BYTES and raw not in keys:
            keys.append(raw)
    return keys

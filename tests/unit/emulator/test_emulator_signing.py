"""The fal webhook signing key: deterministic per seed, JWKS form, signatures verify."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ltx2.emulator._signing import FalSigner, fal_signed_message


def public_key(jwks: dict[str, list[dict[str, str]]]) -> Ed25519PublicKey:
    (jwk,) = jwks["keys"]
    x = jwk["x"]
    return Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(x + "=" * (-len(x) % 4)))


def test_message_layout() -> None:
    body = b'{"a": 1}'
    expected = f"rid\nuid\n1700000000\n{hashlib.sha256(body).hexdigest()}".encode()
    assert fal_signed_message("rid", "uid", "1700000000", body) == expected


def test_seeded_keys_are_stable_and_distinct() -> None:
    assert FalSigner(1).jwks() == FalSigner(1).jwks()
    assert FalSigner(1).jwks() != FalSigner(2).jwks()
    assert FalSigner(None).jwks() != FalSigner(None).jwks()
    (jwk,) = FalSigner(1).jwks()["keys"]
    assert {k: jwk[k] for k in ("kty", "crv", "use", "alg")} == {
        "kty": "OKP",
        "crv": "Ed25519",
        "use": "sig",
        "alg": "EdDSA",
    }
    assert len(base64.urlsafe_b64decode(jwk["x"] + "=")) == 32


def test_headers_verify_and_tampering_fails() -> None:
    signer = FalSigner(3)
    body = b'{"request_id": "r", "status": "OK"}'
    headers = signer.headers("r", "u", "1700000000", body)
    assert set(headers) == {
        "X-Fal-Webhook-Request-Id",
        "X-Fal-Webhook-User-Id",
        "X-Fal-Webhook-Timestamp",
        "X-Fal-Webhook-Signature",
    }
    signature = bytes.fromhex(headers["X-Fal-Webhook-Signature"])
    assert len(signature) == 64
    key = public_key(signer.jwks())
    key.verify(signature, fal_signed_message("r", "u", "1700000000", body))
    for args in (
        ("r", "u", "1700000001", body),
        ("r", "u", "1700000000", body + b" "),
        ("x", "u", "1700000000", body),
    ):
        with pytest.raises(InvalidSignature):
            key.verify(signature, fal_signed_message(*args))
    with pytest.raises(InvalidSignature):
        public_key(FalSigner(4).jwks()).verify(
            signature, fal_signed_message("r", "u", "1700000000", body)
        )

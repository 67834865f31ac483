"""fal webhook signatures: Ed25519 over request_id, user_id, timestamp and sha256(body)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ltx2._errors import WebhookError
from ltx2.webhooks._fal_verify import FAL_JWKS_URLS, parse_jwks, verify_fal_signature

NOW = 1_761_763_441.0
BODY = json.dumps(
    {"request_id": "req-1", "status": "OK", "payload": {"video": {"url": "https://v/x.mp4"}}}
).encode()


def raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def sign(
    key: Ed25519PrivateKey,
    body: bytes = BODY,
    *,
    request_id: str = "req-1",
    user_id: str = "user-9",
    timestamp: int = int(NOW),
) -> dict[str, str]:
    message = "\n".join([request_id, user_id, str(timestamp), hashlib.sha256(body).hexdigest()])
    return {
        "X-Fal-Webhook-Request-Id": request_id,
        "X-Fal-Webhook-User-Id": user_id,
        "X-Fal-Webhook-Timestamp": str(timestamp),
        "X-Fal-Webhook-Signature": key.sign(message.encode()).hex(),
    }


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def keys(key: Ed25519PrivateKey) -> list[bytes]:
    return [raw_public(key)]


def test_a_signed_delivery_verifies(key: Ed25519PrivateKey, keys: list[bytes]) -> None:
    verify_fal_signature(BODY, sign(key), keys, now=NOW)


def test_any_of_several_keys_may_verify(key: Ed25519PrivateKey) -> None:
    other = raw_public(Ed25519PrivateKey.generate())
    verify_fal_signature(BODY, sign(key), [other, b"short", raw_public(key)], now=NOW)


def test_one_changed_body_byte_fails(key: Ed25519PrivateKey, keys: list[bytes]) -> None:
    headers = sign(key)
    tampered = bytearray(BODY)
    tampered[10] ^= 0x01
    with pytest.raises(WebhookError, match="bad signature"):
        verify_fal_signature(bytes(tampered), headers, keys, now=NOW)


def test_changed_timestamp_within_tolerance_fails(
    key: Ed25519PrivateKey, keys: list[bytes]
) -> None:
    headers = sign(key)
    headers["X-Fal-Webhook-Timestamp"] = str(int(NOW) + 1)
    with pytest.raises(WebhookError, match="bad signature"):
        verify_fal_signature(BODY, headers, keys, now=NOW)


def test_changed_timestamp_outside_tolerance_fails_on_time(
    key: Ed25519PrivateKey, keys: list[bytes]
) -> None:
    headers = sign(key)
    headers["X-Fal-Webhook-Timestamp"] = str(int(NOW) - 301)
    with pytest.raises(WebhookError, match="tolerance"):
        verify_fal_signature(BODY, headers, keys, now=NOW)


def test_changed_request_id_fails(key: Ed25519PrivateKey, keys: list[bytes]) -> None:
    headers = sign(key)
    headers["X-Fal-Webhook-Request-Id"] = "req-2"
    with pytest.raises(WebhookError, match="bad signature"):
        verify_fal_signature(BODY, headers, keys, now=NOW)


def test_changed_user_id_fails(key: Ed25519PrivateKey, keys: list[bytes]) -> None:
    headers = sign(key)
    headers["X-Fal-Webhook-User-Id"] = "someone-else"
    with pytest.raises(WebhookError, match="bad signature"):
        verify_fal_signature(BODY, headers, keys, now=NOW)


def test_another_key_fails(key: Ed25519PrivateKey) -> None:
    forger = Ed25519PrivateKey.generate()
    with pytest.raises(WebhookError, match="bad signature"):
        verify_fal_signature(BODY, sign(forger), [raw_public(key)], now=NOW)


def test_no_keys_fails(key: Ed25519PrivateKey) -> None:
    with pytest.raises(WebhookError, match="no public keys"):
        verify_fal_signature(BODY, sign(key), [], now=NOW)


@pytest.mark.parametrize("age", [301.0, 3600.0, -301.0])
def test_signed_timestamp_outside_300_s_fails(
    key: Ed25519PrivateKey, keys: list[bytes], age: float
) -> None:
    # correctly signed, but too old (or too far in the future): a replay
    headers = sign(key, timestamp=int(NOW - age))
    with pytest.raises(WebhookError, match="tolerance"):
        verify_fal_signature(BODY, headers, keys, now=NOW)


@pytest.mark.parametrize("age", [0.0, 299.0, 300.0, -300.0])
def test_signed_timestamp_inside_300_s_passes(
    key: Ed25519PrivateKey, keys: list[bytes], age: float
) -> None:
    verify_fal_signature(BODY, sign(key, timestamp=int(NOW - age)), keys, now=NOW)


def test_tolerance_is_a_setting(key: Ed25519PrivateKey, keys: list[bytes]) -> None:
    headers = sign(key, timestamp=int(NOW) - 60)
    verify_fal_signature(BODY, headers, keys, now=NOW, tolerance=60)
    with pytest.raises(WebhookError):
        verify_fal_signature(BODY, headers, keys, now=NOW, tolerance=59)


@pytest.mark.parametrize(
    "name",
    [
        "X-Fal-Webhook-Request-Id",
        "X-Fal-Webhook-User-Id",
        "X-Fal-Webhook-Timestamp",
        "X-Fal-Webhook-Signature",
    ],
)
def test_a_missing_header_fails(key: Ed25519PrivateKey, keys: list[bytes], name: str) -> None:
    headers = sign(key)
    del headers[name]
    with pytest.raises(WebhookError, match=f"missing header.*{name.lower()}"):
        verify_fal_signature(BODY, headers, keys, now=NOW)


def test_an_empty_header_counts_as_missing(key: Ed25519PrivateKey, keys: list[bytes]) -> None:
    headers = sign(key)
    headers["X-Fal-Webhook-Signature"] = ""
    with pytest.raises(WebhookError, match="missing header"):
        verify_fal_signature(BODY, headers, keys, now=NOW)


def test_no_headers_at_all_fails(keys: list[bytes]) -> None:
    with pytest.raises(WebhookError, match="missing header"):
        verify_fal_signature(BODY, {}, keys, now=NOW)


@pytest.mark.parametrize("case", [str.lower, str.upper, str.title])
def test_header_names_in_any_case(
    key: Ed25519PrivateKey, keys: list[bytes], case: Callable[[str], str]
) -> None:
    headers = {case(k): v for k, v in sign(key).items()}
    verify_fal_signature(BODY, headers, keys, now=NOW)


def test_any_mapping_works(key: Ed25519PrivateKey, keys: list[bytes]) -> None:
    class Headers(Mapping[str, str]):
        def __init__(self, d: dict[str, str]) -> None:
            self._d = d

        def __getitem__(self, k: str) -> str:
            return self._d[k]

        def __iter__(self) -> Iterator[str]:
            return iter(self._d)

        def __len__(self) -> int:
            return len(self._d)

    verify_fal_signature(BODY, Headers(sign(key)), keys, now=NOW)


@pytest.mark.parametrize(
    ("header", "value", "reason"),
    [
        ("X-Fal-Webhook-Timestamp", "yesterday", "not unix seconds"),
        ("X-Fal-Webhook-Signature", "zz" * 64, "not hex"),
        ("X-Fal-Webhook-Signature", "ab" * 10, "not 64 bytes"),
    ],
)
def test_malformed_headers_fail(
    key: Ed25519PrivateKey, keys: list[bytes], header: str, value: str, reason: str
) -> None:
    headers = sign(key)
    headers[header] = value
    with pytest.raises(WebhookError, match=reason):
        verify_fal_signature(BODY, headers, keys, now=NOW)


def test_errors_never_repeat_the_signature_or_body(
    key: Ed25519PrivateKey, keys: list[bytes]
) -> None:
    headers = sign(key)
    with pytest.raises(WebhookError) as info:
        verify_fal_signature(BODY + b"x", headers, keys, now=NOW)
    text = str(info.value)
    assert headers["X-Fal-Webhook-Signature"] not in text
    assert "req-1" not in text
    assert "user-9" not in text


def jwk(key: Ed25519PrivateKey) -> dict[str, str]:
    x = base64.urlsafe_b64encode(raw_public(key)).rstrip(b"=").decode()
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "k1", "use": "sig"}


def test_parse_jwks_round_trips(key: Ed25519PrivateKey) -> None:
    other = Ed25519PrivateKey.generate()
    body = {
        "keys": [
            jwk(key),
            {"kty": "RSA", "n": "abc", "e": "AQAB"},  # other type: skipped
            {"kty": "OKP", "crv": "X25519", "x": jwk(key)["x"]},  # other curve: skipped
            {"kty": "OKP", "crv": "Ed25519", "x": "dG9vc2hvcnQ"},  # wrong length: skipped
            {"kty": "OKP", "crv": "Ed25519"},  # no x: skipped
            "junk",
            jwk(other),
            jwk(key),  # duplicate: once
        ]
    }
    assert parse_jwks(body) == [raw_public(key), raw_public(other)]
    verify_fal_signature(BODY, sign(other), parse_jwks(body), now=NOW)


@pytest.mark.parametrize("body", [None, [], {"keys": "x"}, {}, "jwks"])
def test_parse_jwks_rejects_what_is_not_a_jwks(body: object) -> None:
    with pytest.raises(ValueError):
        parse_jwks(body)


def test_jwks_urls() -> None:
    assert FAL_JWKS_URLS == (
        "https://rest.alpha.fal.ai/.well-known/jwks.json",
        "https://rest.fal.ai/.well-known/jwks.json",
    )

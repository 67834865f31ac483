"""Webhooks: Eachlabs' exec_id form with X-Webhook-Secret, fal's Ed25519-signed form with a
JWKS, retries, and the webhook faults."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ltx2.emulator import Emulator, Faults

Receiver = Any  # the conftest's webhook receiver (records deliveries, can fail the first N)

EACH_H = {"X-API-Key": "k"}
SECRET = "s3cret"
FAL_H = {"Authorization": "Key k"}


async def each_create(
    http: aiohttp.ClientSession, emu: Emulator, image: str, hook: str, secret: str | None = SECRET
) -> str:
    body: dict[str, Any] = {
        "model": "ltx-v-2-image-to-video-fast",
        "input": {"image_url": image, "prompt": "pan left"},
        "webhook_url": hook,
    }
    if secret is not None:
        body["webhook_secret"] = secret
    async with http.post(
        emu.provider_url("eachlabs") + "/v1/prediction/", json=body, headers=EACH_H
    ) as resp:
        assert resp.status == 200, await resp.text()
        return str((await resp.json())["predictionID"])


async def fal_submit(http: aiohttp.ClientSession, emu: Emulator, image: str, hook: str) -> str:
    async with http.post(
        emu.provider_url("fal") + "/fal-ai/ltx-2/image-to-video/fast",
        params={"fal_webhook": hook},
        json={"image_url": image, "prompt": "static shot"},
        headers=FAL_H,
    ) as resp:
        assert resp.status == 200, await resp.text()
        return str((await resp.json())["request_id"])


async def jwks_keys(http: aiohttp.ClientSession, emu: Emulator) -> list[Ed25519PublicKey]:
    async with http.get(emu.fal_jwks_url) as resp:
        doc = await resp.json()
    keys = []
    for jwk in doc["keys"]:
        assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == (
            "OKP",
            "Ed25519",
            "EdDSA",
            "sig",
        )
        assert "=" not in jwk["x"]
        raw = base64.urlsafe_b64decode(jwk["x"] + "=" * (-len(jwk["x"]) % 4))
        keys.append(Ed25519PublicKey.from_public_bytes(raw))
    return keys


def fal_verify(
    keys: list[Ed25519PublicKey], headers: dict[str, str], body: bytes, now: float | None = None
) -> bool:
    """What a receiver does: rebuild the signed message; any key may match; 300 s tolerance."""
    try:
        request_id = headers["X-Fal-Webhook-Request-Id"]
        user_id = headers["X-Fal-Webhook-User-Id"]
        timestamp = headers["X-Fal-Webhook-Timestamp"]
        signature = bytes.fromhex(headers["X-Fal-Webhook-Signature"])
    except (KeyError, ValueError):
        return False
    if abs((now or time.time()) - int(timestamp)) > 300:
        return False
    message = "\n".join([request_id, user_id, timestamp, hashlib.sha256(body).hexdigest()]).encode()
    for key in keys:
        try:
            key.verify(signature, message)
        except InvalidSignature:
            continue
        return True
    return False


async def test_eachlabs_webhook_is_signed_and_shaped_as_documented(
    start_emulator: Callable[..., Awaitable[Emulator]],
    http: aiohttp.ClientSession,
    hosted_image: Callable[[Emulator], Awaitable[str]],
    receiver: Receiver,
) -> None:
    # docs.eachlabs.ai (eachlabs/mintlify-docs): api/webhooks/payload-reference.mdx for the
    # bodies, api/webhooks/verifying-signatures.mdx for the signature.
    emu = await start_emulator(processing_time=10)
    image = await hosted_image(emu)
    pid = await each_create(http, emu, image, receiver.url)
    await receiver.wait_for(1)
    headers, body, _ = receiver.deliveries[0]
    assert headers["X-Webhook-Secret"] == SECRET
    timestamp = headers["X-Webhook-Timestamp"]
    assert abs(time.time() - int(timestamp)) < 60
    expected = hmac.new(SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    assert headers["X-Webhook-Signature"] == "sha256=" + expected.hexdigest()
    payload = json.loads(body)
    assert payload == {
        "exec_id": pid,
        "flow_id": None,
        "status": "succeeded",
        "output": {"url": emu.media_url(emu.jobs[pid])},
        "error": "",
    }
    # And a failed one: no secret given, so no signature and no secret header.
    bad = await each_create(http, emu, f"{emu.url}/files/00/missing.jpg", receiver.url, secret=None)
    await receiver.wait_for(2)
    headers, body, _ = receiver.deliveries[1]
    assert "X-Webhook-Secret" not in headers
    assert "X-Webhook-Signature" not in headers
    payload = json.loads(body)
    assert (payload["exec_id"], payload["status"], payload["error"]) == (bad, "failed", "")
    (step,) = payload["output"]
    assert set(step["error"]) == {"error_code", "error_message"}
    assert "download" in step["error"]["error_message"]
    assert emu.stats_for("eachlabs")["webhooks_acked"] == 2


async def test_eachlabs_retries_a_failing_receiver_three_tries_about_10s_apart(
    start_emulator: Callable[..., Awaitable[Emulator]],
    http: aiohttp.ClientSession,
    hosted_image: Callable[[Emulator], Awaitable[str]],
    receiver: Receiver,
) -> None:
    emu = await start_emulator(processing_time=0)
    image = await hosted_image(emu)
    receiver.fail_first = 10  # never acks
    pid = await each_create(http, emu, image, receiver.url)
    await receiver.wait_for(3)
    await asyncio.sleep(0.3)  # a fourth try would come 0.1 s after the third
    assert len(receiver.deliveries) == 3
    times = [t for _, _, t in receiver.deliveries]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(0.08 <= gap <= 0.5 for gap in gaps), gaps  # 10 s scaled by 0.01
    st = emu.stats_for("eachlabs")
    assert (st["webhooks_sent"], st["webhooks_failed"], st["webhooks_acked"]) == (3, 3, 0)
    assert [d["attempt"] for d in emu.jobs[pid].webhook_deliveries] == [1, 2, 3]


async def test_receiver_answering_500_first_gets_the_retry_acked(
    start_emulator: Callable[..., Awaitable[Emulator]],
    http: aiohttp.ClientSession,
    hosted_image: Callable[[Emulator], Awaitable[str]],
    receiver: Receiver,
) -> None:
    emu = await start_emulator(processing_time=0)
    receiver.fail_first = 1
    await fal_submit(http, emu, await hosted_image(emu), receiver.url)
    await receiver.wait_for(2)
    st = emu.stats_for("fal")
    assert (st["webhooks_failed"], st["webhooks_acked"]) == (1, 1)


async def test_fal_webhook_signature_verifies_with_jwks_and_fails_when_tampered(
    start_emulator: Callable[..., Awaitable[Emulator]],
    http: aiohttp.ClientSession,
    data_uri: str,
    receiver: Receiver,
) -> None:
    emu = await start_emulator(processing_time=0)
    rid = await fal_submit(http, emu, data_uri, receiver.url)
    await receiver.wait_for(1)
    headers, body, _ = receiver.deliveries[0]
    payload = json.loads(body)
    assert payload["request_id"] == rid
    assert payload["gateway_request_id"]
    assert payload["status"] == "OK"
    assert payload["payload"]["video"]["content_type"] == "video/mp4"
    assert "error" not in payload
    keys = await jwks_keys(http, emu)
    assert fal_verify(keys, headers, body)
    # One byte of the body.
    tampered = bytearray(body)
    tampered[10] ^= 0x01
    assert not fal_verify(keys, headers, bytes(tampered))
    # The timestamp (still within tolerance, but not what was signed).
    moved = dict(
        headers, **{"X-Fal-Webhook-Timestamp": str(int(headers["X-Fal-Webhook-Timestamp"]) + 1)}
    )
    assert not fal_verify(keys, moved, body)
    # Another key (another emulator seed) does not verify it.
    other = await start_emulator(seed=1)
    assert not fal_verify(await jwks_keys(http, other), headers, body)
    # The same seed publishes the same key.
    same = await start_emulator(seed=0)
    assert fal_verify(await jwks_keys(http, same), headers, body)


async def test_fal_error_webhook_has_error_and_detail(
    start_emulator: Callable[..., Awaitable[Emulator]],
    http: aiohttp.ClientSession,
    receiver: Receiver,
) -> None:
    emu = await start_emulator(processing_time=0)
    await fal_submit(http, emu, "data:image/png;base64,aGVsbG8=", receiver.url)
    await receiver.wait_for(1)
    headers, body, _ = receiver.deliveries[0]
    payload = json.loads(body)
    assert payload["status"] == "ERROR"
    assert payload["error"] == "Invalid status code: 422"
    assert payload["payload"]["detail"][0]["type"] == "image_load_error"
    assert fal_verify(await jwks_keys(http, emu), headers, body)


async def many_each_jobs(
    http: aiohttp.ClientSession, emu: Emulator, image: str, hook: str, n: int
) -> list[str]:
    return [await each_create(http, emu, image, hook) for _ in range(n)]


async def test_webhook_drop_rate_and_never_sent(
    start_emulator: Callable[..., Awaitable[Emulator]],
    http: aiohttp.ClientSession,
    hosted_image: Callable[[Emulator], Awaitable[str]],
    receiver: Receiver,
) -> None:
    emu = await start_emulator(processing_time=0, limits=False, faults=Faults(webhook_drop=0.25))
    ids = await many_each_jobs(http, emu, await hosted_image(emu), receiver.url, 200)
    dropped = emu.stats_for("eachlabs")["faults"]["webhook_drop"]
    assert 0.15 <= dropped / 200 <= 0.35
    await receiver.wait_for(200 - dropped)
    await asyncio.sleep(0.05)
    assert len(receiver.deliveries) == 200 - dropped
    delivered = {json.loads(b)["exec_id"] for _, b, _ in receiver.deliveries}
    never = {i for i in ids if emu.jobs[i].webhook_deliveries[0]["kind"] == "dropped"}
    assert len(never) == dropped
    assert not delivered & never


async def test_webhook_duplicate_sends_the_same_delivery_twice(
    start_emulator: Callable[..., Awaitable[Emulator]],
    http: aiohttp.ClientSession,
    hosted_image: Callable[[Emulator], Awaitable[str]],
    receiver: Receiver,
) -> None:
    emu = await start_emulator(processing_time=0, faults=Faults(webhook_duplicate=1.0))
    pid = await each_create(http, emu, await hosted_image(emu), receiver.url)
    await receiver.wait_for(2)
    assert receiver.deliveries[0][1] == receiver.deliveries[1][1]
    assert json.loads(receiver.deliveries[0][1])["exec_id"] == pid
    assert emu.stats_for("eachlabs")["faults"]["webhook_duplicate"] == 1


async def test_webhook_early_is_acknowledged_before_the_create_reply(
    start_emulator: Callable[..., Awaitable[Emulator]],
    http: aiohttp.ClientSession,
    hosted_image: Callable[[Emulator], Awaitable[str]],
    receiver: Receiver,
) -> None:
    emu = await start_emulator(processing_time=0, faults=Faults(webhook_early=1.0))
    image = await hosted_image(emu)
    pid = await each_create(http, emu, image, receiver.url)
    # The delivery is already in when the create reply arrives.
    assert len(receiver.deliveries) == 1
    assert json.loads(receiver.deliveries[0][1])["exec_id"] == pid
    rid = await fal_submit(http, emu, image, receiver.url)
    assert len(receiver.deliveries) == 2
    assert json.loads(receiver.deliveries[1][1])["request_id"] == rid
    assert emu.stats_for("eachlabs")["faults"]["webhook_early"] == 1


async def test_webhook_early_does_not_apply_to_jobs_that_take_time(
    start_emulator: Callable[..., Awaitable[Emulator]],
    http: aiohttp.ClientSession,
    hosted_image: Callable[[Emulator], Awaitable[str]],
    receiver: Receiver,
) -> None:
    emu = await start_emulator(processing_time=5, faults=Faults(webhook_early=1.0))
    await each_create(http, emu, await hosted_image(emu), receiver.url)
    assert receiver.deliveries == []
    await receiver.wait_for(1)


async def test_webhook_out_of_order_shuffles_and_may_follow_with_a_conflict(
    start_emulator: Callable[..., Awaitable[Emulator]],
    http: aiohttp.ClientSession,
    hosted_image: Callable[[Emulator], Awaitable[str]],
    receiver: Receiver,
) -> None:
    emu = await start_emulator(
        processing_time=0, faults=Faults(webhook_out_of_order=1.0), limits=False
    )
    ids = await many_each_jobs(http, emu, await hosted_image(emu), receiver.url, 16)
    await receiver.wait_for(16)
    await asyncio.sleep(0.1)
    payloads = [json.loads(b) for _, b, _ in receiver.deliveries]
    first_seen: list[str] = []
    for p in payloads:
        if p["exec_id"] not in first_seen:
            first_seen.append(p["exec_id"])
    assert sorted(first_seen) == sorted(ids)
    assert first_seen != ids  # shuffled, not finishing order
    # Where a job got two deliveries, the genuine success came first, a conflict after.
    conflicts = [i for i in ids if sum(p["exec_id"] == i for p in payloads) == 2]
    assert conflicts
    for job_id in conflicts:
        statuses = [p["status"] for p in payloads if p["exec_id"] == job_id]
        assert statuses == ["succeeded", "failed"]
        # Both carry the right secret: only ordering tells them apart.
        kinds = [d["kind"] for d in emu.jobs[job_id].webhook_deliveries]
        assert kinds == ["genuine", "conflicting"]


async def test_webhook_forged_eachlabs_wrong_secret_comes_first(
    start_emulator: Callable[..., Awaitable[Emulator]],
    http: aiohttp.ClientSession,
    hosted_image: Callable[[Emulator], Awaitable[str]],
    receiver: Receiver,
) -> None:
    emu = await start_emulator(processing_time=0, faults=Faults(webhook_forged=1.0))
    pid = await each_create(http, emu, await hosted_image(emu), receiver.url)
    await receiver.wait_for(2)
    (forged_h, forged_b, _), (real_h, real_b, _) = receiver.deliveries
    assert forged_h.get("X-Webhook-Secret") != SECRET
    assert real_h["X-Webhook-Secret"] == SECRET
    assert json.loads(forged_b)["exec_id"] == json.loads(real_b)["exec_id"] == pid
    assert json.loads(forged_b)["output"] != json.loads(real_b)["output"]
    assert emu.stats_for("eachlabs")["forged_sent"] == 1


async def test_webhook_forged_fal_never_verifies(
    start_emulator: Callable[..., Awaitable[Emulator]],
    http: aiohttp.ClientSession,
    data_uri: str,
    receiver: Receiver,
) -> None:
    emu = await start_emulator(processing_time=0, faults=Faults(webhook_forged=1.0))
    keys = await jwks_keys(http, emu)
    for _ in range(12):
        await fal_submit(http, emu, data_uri, receiver.url)
    await receiver.wait_for(24)
    verdicts = [fal_verify(keys, h, b) for h, b, _ in receiver.deliveries]
    assert verdicts.count(True) == 12
    assert verdicts.count(False) == 12
    assert emu.stats_for("fal")["forged_sent"] == 12


@pytest.mark.parametrize("name", ["webhook_duplicate", "webhook_forged", "webhook_out_of_order"])
async def test_webhook_fault_rates_are_near_their_setting(
    start_emulator: Callable[..., Awaitable[Emulator]],
    http: aiohttp.ClientSession,
    hosted_image: Callable[[Emulator], Awaitable[str]],
    receiver: Receiver,
    name: str,
) -> None:
    emu = await start_emulator(processing_time=0, limits=False, faults=Faults(**{name: 0.25}))
    await many_each_jobs(http, emu, await hosted_image(emu), receiver.url, 200)
    await receiver.wait_for(200)
    await asyncio.sleep(0.2)
    hits = emu.stats_for("eachlabs")["faults"][name]
    assert 0.15 <= hits / 200 <= 0.35, hits


async def test_eachlabs_sends_no_webhook_for_a_cancelled_prediction(
    start_emulator: Callable[..., Awaitable[Emulator]],
    http: aiohttp.ClientSession,
    hosted_image: Callable[[Emulator], Awaitable[str]],
    receiver: Receiver,
) -> None:
    # api/webhooks/payload-reference.mdx: "cancellations do not trigger one".
    emu = await start_emulator(processing_time=60)
    image = await hosted_image(emu)
    pid = await each_create(http, emu, image, receiver.url)
    async with http.post(
        f"{emu.provider_url('eachlabs')}/v1/prediction/{pid}/cancel", headers={"X-API-Key": "k"}
    ) as resp:
        assert resp.status == 200
    assert emu.jobs[pid].state == "cancelled"
    await asyncio.sleep(0.2)
    assert receiver.deliveries == []
    assert emu.stats_for("eachlabs")["webhooks_sent"] == 0

"""One cheapest generation per provider against the real API (``pytest -m live``).

Each provider runs only when its key is set (the variables ``ltx2.Client`` reads:
``EACHLABS_API_KEY``, ``FAL_KEY``, ``GMI_API_KEY``, ``RUNCOMFY_API_TOKEN``,
``AIML_API_KEY``). The flow goes through the provider module and a plain aiohttp session,
so every reply can be recorded (``--record``) exactly as it came; it polls, never waits for
a webhook (no public URL here).

For a dry run of this tier itself (tests/integration/test_live_tier.py),
``LTX2_LIVE_<PROVIDER>_BASE_URL`` points a provider elsewhere (the emulator) and
``LTX2_LIVE_RECORD_DIR`` writes the recordings under another directory.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import aiohttp
import pytest

from ltx2._request import VideoRequest
from ltx2._types import HTTPCall, HTTPReply, JobStatus, StatusUpdate
from ltx2.providers import PROVIDERS, get
from tests.live._record import Recording

pytestmark = pytest.mark.live

#: seed 001's own example input (a public image every provider can fetch).
IMAGE = "https://storage.googleapis.com/falserverless/example_inputs/ltxv-2-i2v-input.jpg"
PROMPT = "The camera slowly dollies in toward her face as people blur past."
#: Up to the longest stated processing time (GMI: 120 s) several times over.
DEADLINE = 900.0
POLL_EVERY = float(os.environ.get("LTX2_LIVE_POLL_EVERY", "5"))


async def send(session: aiohttp.ClientSession, call: HTTPCall) -> HTTPReply:
    async with session.request(
        call.method, call.url, headers=dict(call.headers), params=call.params, json=call.json
    ) as resp:
        body = await resp.read()
        headers = {k.lower(): v for k, v in resp.headers.items()}
        return HTTPReply(resp.status, headers, body)


@pytest.mark.parametrize("name", PROVIDERS)
async def test_one_cheapest_generation(name: str, request: pytest.FixtureRequest) -> None:
    cls = get(name)
    key = cls.api_key_from_env(os.environ)
    if key is None:
        pytest.skip(f"no {name} key: set {' or '.join(cls.key_variables())}")
    provider = cls(key, os.environ.get(f"LTX2_LIVE_{name.upper()}_BASE_URL"))
    elsewhere = os.environ.get("LTX2_LIVE_RECORD_DIR")
    directory = Path(elsewhere) / name / "live" if elsewhere else None
    record = Recording(name, key, directory) if request.config.getoption("--record") else None
    video = VideoRequest(image=IMAGE, prompt=PROMPT, duration=6, generate_audio=False)
    async with aiohttp.ClientSession() as session:
        reply = await send(
            session, provider.create(video, IMAGE, webhook_url=None, webhook_secret=None)
        )
        if record:
            record.add("create", reply)
        assert reply.status < 300, reply.body[:500]
        created = provider.parse_create(reply)
        update: StatusUpdate | None = created.update
        started = time.monotonic()
        while update is None or not update.status.terminal:
            assert time.monotonic() - started < DEADLINE, f"{name} job {created.job_id} hangs"
            await asyncio.sleep(POLL_EVERY)
            reply = await send(session, provider.status(created.job_id, created.meta))
            if record:
                record.add("status", reply)
            assert reply.status < 300, reply.body[:500]
            update = provider.parse_status(reply)
        if update.needs_result:
            reply = await send(session, provider.result(created.job_id, created.meta))
            if record:
                record.add("result", reply)
            update = provider.parse_result(reply)
    assert update.status is JobStatus.SUCCEEDED, update.error
    assert update.video_url

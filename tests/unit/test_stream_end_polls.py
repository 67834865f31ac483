"""A fal job whose status stream ends or fails before the job does is polled from then on
like a job nothing else follows (its place among the streams frees for nobody): not on the
lazy schedule of a job a live stream watches, where the next poll would come minutes later."""

from __future__ import annotations

import re

import anyio
import pytest
from aioresponses import aioresponses
from tests.conftest import NO_BACKOFF

import ltx2

FAL_CREATE = "https://queue.fal.run/fal-ai/ltx-2/image-to-video/fast"
BASE = "https://queue.fal.run/fal-ai/ltx-2/requests/r-1"
IMAGE = "https://cdn.example.com/cat.jpg"
VIDEO = "https://cdn.example.com/r-1.mp4"
#: Polls 10 % of the job's age apart, at least 10 ms; a watched job's are 60 s or more apart.
POLL = ltx2.PollPolicy(first=0.01, min_interval=0.01, max_interval=60.0, jitter=0.0)


@pytest.mark.parametrize("stream", ["ends", "fails"])
async def test_a_job_whose_stream_stopped_is_polled_on_the_ordinary_schedule(stream: str) -> None:
    with aioresponses() as m:
        m.post(
            re.compile(rf"^{re.escape(FAL_CREATE)}(\?.*)?$"),
            payload={"request_id": "r-1", "response_url": BASE, "status_url": f"{BASE}/status",
                     "cancel_url": f"{BASE}/cancel"},
        )  # fmt: skip
        stream_url = re.compile(rf"^{re.escape(BASE)}/status/stream\?logs=1$")
        if stream == "ends":
            m.get(stream_url, body='data: {"status": "IN_PROGRESS"}\n\n',
                  content_type="text/event-stream")  # fmt: skip
        else:
            m.get(stream_url, status=500, payload={"detail": "stream unavailable"})
        status_url = re.compile(rf"^{re.escape(BASE)}/status\?logs=1$")
        # The poll the stream's end asks for still finds the job running; the next one not.
        m.get(status_url, payload={"status": "IN_PROGRESS", "logs": []})
        m.get(status_url, payload={"status": "COMPLETED"}, repeat=True)
        m.get(BASE, payload={"video": {"url": VIDEO}}, repeat=True)
        async with ltx2.Client("fal", api_key="k", poll=POLL, retry=NO_BACKOFF) as client:
            job = await client.submit(image=IMAGE, prompt="a cat")
            with anyio.fail_after(10):  # on the watched schedule: 60 s
                video = await job
    assert video.url == VIDEO

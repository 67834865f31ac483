"""``resume()`` of a job whose create reply was never stored but whose webhook came first
(issue 10, item 13): the record holds an authenticated delivery naming the provider's id, so
the job comes back as that job (and resolves), not as UNKNOWN with an empty id."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
from aioresponses import CallbackResult, aioresponses
from tests.conftest import NO_BACKOFF

import ltx2

BASE = "https://api.eachlabs.ai"
CREATE = f"{BASE}/v1/prediction/"
IMAGE = "https://cdn.example.com/cat.jpg"
LOOPBACK = ["http://127.0.0.1"]


async def post(url: str, body: dict[str, Any], headers: dict[str, str]) -> int:
    async with aiohttp.ClientSession() as s, s.post(url, json=body, headers=headers) as r:
        return r.status


@pytest.mark.parametrize("status", ["succeeded", "processing"])
async def test_a_job_whose_webhook_beat_a_lost_create_reply_resumes_by_the_delivered_id(
    receiver: ltx2.WebhookReceiver, tmp_path: Path, status: str
) -> None:
    acks: list[int] = []

    async def create(url: object, **kw: Any) -> CallbackResult:
        body = kw["json"]
        # Eachlabs calls back before its create reply reaches us, and then the reply is lost
        # (the connection drops): the record has the delivery, not the id.
        delivery = {"exec_id": "p-early", "status": status, "output": "", "error": ""}
        if status == "succeeded":
            delivery["output"] = "https://cdn/p-early.mp4"
        acks.append(await post(body["webhook_url"], delivery,
                               {"X-Webhook-Secret": body["webhook_secret"]}))  # fmt: skip
        raise aiohttp.ServerDisconnectedError()

    store = ltx2.SQLiteStore(tmp_path / "jobs.db")
    try:
        with aioresponses(passthrough=LOOPBACK) as m, anyio.fail_after(20):
            m.post(CREATE, callback=create)
            m.get(f"{BASE}/v1/prediction/p-early",
                  payload={"status": "success", "output": "https://cdn/p-early.mp4"},
                  repeat=True)  # fmt: skip
            async with ltx2.Client(
                "eachlabs", api_key="k", webhooks=receiver, store=store, retry=NO_BACKOFF,
                poll=ltx2.PollPolicy(first=3600, webhook_grace=1000),
            ) as c:  # fmt: skip
                with pytest.raises(ltx2.TransportError):
                    await c.submit(image=IMAGE, prompt="p")
            # ... and the process goes away. Its successor resumes the job by its id.
            async with ltx2.Client(
                "eachlabs", api_key="k", store=store, retry=NO_BACKOFF,
                poll=ltx2.PollPolicy(first=0.01, min_interval=0.01, max_interval=0.05),
            ) as successor:  # fmt: skip
                (job,) = await successor.resume()
                assert job.id == "p-early"
                assert job.status is not ltx2.JobStatus.UNKNOWN
                video = await job.result(timeout=10)
    finally:
        await store.close()
    assert acks == [200]
    assert video.url == "https://cdn/p-early.mp4"

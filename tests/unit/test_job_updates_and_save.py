"""``job.updates()`` yields only changes a user reads (issue 13, item 13); ``video.save``
into a missing folder (item 11)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aioresponses import aioresponses
from tests.conftest import FAST_POLL, NO_BACKOFF

import ltx2

BASE = "https://api.eachlabs.ai"
CREATE = f"{BASE}/v1/prediction/"
IMAGE = "https://cdn.example.com/cat.jpg"
OUT = "https://cdn.example.com/out.mp4"


def client() -> ltx2.Client:
    return ltx2.Client("eachlabs", api_key="k", poll=FAST_POLL, retry=NO_BACKOFF)


async def test_readings_that_differ_only_in_metrics_are_not_yielded() -> None:
    with aioresponses() as m:
        m.post(CREATE, payload={"status": "success", "predictionID": "p-1"})
        m.get(f"{BASE}/v1/prediction/p-1", payload={"status": "starting"})
        for i in range(6):  # Eachlabs: "processing" six times, only the metrics move
            m.get(
                f"{BASE}/v1/prediction/p-1",
                payload={"status": "processing", "metrics": {"elapsed": i}},
            )
        m.get(
            f"{BASE}/v1/prediction/p-1",
            payload={"status": "success", "output": OUT, "metrics": {"predict_time": 9.0}},
        )
        async with client() as c:
            job = await c.submit(image=IMAGE, prompt="p")
            seen = [(u.status.value, u.raw) async for u in job.updates()]
            video = await job
    assert seen == [
        ("queued", "submitted"),
        ("running", "starting"),
        ("running", "processing"),
        ("succeeded", "success"),
    ]
    assert video.metrics == {"predict_time": 9.0}


async def test_a_new_log_line_or_queue_position_is_a_change() -> None:
    status = "https://queue.fal.run/fal-ai/ltx-2/requests/r-1/status"
    events = [
        {"status": "IN_QUEUE", "queue_position": 2},
        {"status": "IN_QUEUE", "queue_position": 2},
        {"status": "IN_QUEUE", "queue_position": 1},
        {"status": "IN_PROGRESS", "logs": [{"message": "loading"}]},
        {"status": "IN_PROGRESS", "logs": [{"message": "loading"}], "metrics": {"a": 1}},
        {"status": "IN_PROGRESS", "logs": [{"message": "loading"}, {"message": "step 1"}]},
        {"status": "COMPLETED"},
    ]
    with aioresponses() as m:
        m.post(
            "https://queue.fal.run/fal-ai/ltx-2/image-to-video/fast",
            payload={"request_id": "r-1", "status_url": status,
                     "response_url": "https://queue.fal.run/fal-ai/ltx-2/requests/r-1"},
        )  # fmt: skip
        m.get(
            f"{status}/stream?logs=1",
            body="".join(f"data: {json.dumps(e)}\n\n" for e in events),
            content_type="text/event-stream",
        )
        m.get("https://queue.fal.run/fal-ai/ltx-2/requests/r-1", payload={"video": {"url": OUT}})
        async with ltx2.Client("fal", api_key="k", poll=FAST_POLL, retry=NO_BACKOFF) as c:
            job = await c.submit(image=IMAGE, prompt="p")
            seen = [(u.raw, u.queue_position, u.logs) async for u in job.updates()]
            await job
    assert seen == [
        ("submitted", None, ()),
        ("IN_QUEUE", 2, ()),
        ("IN_QUEUE", 1, ()),
        ("IN_PROGRESS", None, ("loading",)),
        ("IN_PROGRESS", None, ("loading", "step 1")),
        ("COMPLETED", None, ()),
    ]


async def test_save_creates_missing_parent_folders(tmp_path: Path) -> None:
    video = ltx2.Video(OUT, "p-1", "eachlabs")
    target = tmp_path / "out" / "nested" / "x.mp4"
    with aioresponses() as m:
        m.get(OUT, body=b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100)
        size = await video.save(target)
    assert size == 112
    assert target.read_bytes().startswith(b"\x00\x00\x00\x18ftyp")
    assert [p.name for p in target.parent.iterdir()] == ["x.mp4"]  # no temporary left


async def test_save_where_a_file_blocks_the_folder_names_the_path(tmp_path: Path) -> None:
    (tmp_path / "out").write_text("a file, not a folder")
    video = ltx2.Video(OUT, "p-1", "eachlabs")
    with pytest.raises(ltx2.LTX2Error, match=r"out/x\.mp4") as err:
        await video.save(tmp_path / "out" / "x.mp4")
    assert not isinstance(err.value, FileNotFoundError | NotADirectoryError)


async def test_save_onto_a_folder_names_the_path(tmp_path: Path) -> None:
    (tmp_path / "x.mp4").mkdir()
    video = ltx2.Video(OUT, "p-1", "eachlabs")
    with aioresponses() as m:
        m.get(OUT, body=b"\x00" * 10)
        with pytest.raises(ltx2.LTX2Error, match=r"x\.mp4"):
            await video.save(tmp_path / "x.mp4")

"""One real 1080p25 6 s clip through the emulator over HTTP (the only full-size render)."""

from __future__ import annotations

import base64
import io
import itertools
from pathlib import Path

import aiohttp
import av
import numpy as np
import pytest

from ltx2.emulator import Emulator


def jpeg(width: int, height: int) -> bytes:
    from ltx2.emulator._render import synthetic_scene

    buf = io.BytesIO()
    synthetic_scene("e2e", width, height).save(buf, "JPEG")
    return buf.getvalue()


@pytest.mark.slow
async def test_full_1080p25_six_second_clip_end_to_end(tmp_path: Path) -> None:
    """One real clip through the emulator: size, fps, duration, AAC, motion."""
    image = "data:image/jpeg;base64," + base64.b64encode(jpeg(1280, 720)).decode()
    async with (
        Emulator(time_scale=0.01, seed=0, processing_time=0) as emu,
        aiohttp.ClientSession() as http,
    ):
        async with http.post(
            emu.provider_url("aimlapi") + "/v2/video/generations",
            json={
                "model": "ltxv/ltxv-2-fast",
                "prompt": "The camera pans right",
                "image_url": image,
                "duration": 6,
                "resolution": "1080p",
                "fps": 25,
                "generate_audio": True,
            },
            headers={"Authorization": "Bearer k"},
        ) as resp:
            gen = await resp.json()
        job = emu.jobs[gen["id"]]
        await job.done.wait()
        assert job.state == "succeeded", job.failure
        async with http.get(emu.media_url(job)) as resp:
            (tmp_path / "clip.mp4").write_bytes(await resp.read())
    with av.open(str(tmp_path / "clip.mp4")) as container:
        video = container.streams.video[0]
        assert (video.codec_context.width, video.codec_context.height) == (1920, 1080)
        assert video.codec_context.name == "h264"
        assert float(video.average_rate) == 25
        audio = [(a.codec_context.name, a.rate, a.channels) for a in container.streams.audio]
        assert audio == [("aac", 48000, 2)]
        assert abs(float(container.duration / av.time_base) - 6.0) < 0.1
        # Small copies, so 150 decoded 1080p frames do not need 900 MB.
        frames = [
            f.reformat(width=192, height=108).to_ndarray(format="rgb24").astype(np.int16)
            for f in container.decode(video=0)
        ]
    assert abs(len(frames) - 150) <= 1
    assert np.abs(frames[-1] - frames[0]).mean() > 5
    steps = [np.abs(b - a).mean() for a, b in itertools.pairwise(frames)]
    assert sum(step > 0 for step in steps) >= len(steps) - 2

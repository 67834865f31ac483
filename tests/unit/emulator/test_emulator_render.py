"""Rendering: camera words, real MP4s with the asked geometry, audio iff asked, motion."""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import av
import numpy as np
import pytest

from ltx2.emulator._render import (
    CAMERA_MOTIONS,
    RenderError,
    RenderSpec,
    motion_from_prompt,
    probe_image,
    render_clip,
    render_thumbnail,
    synthetic_scene,
)


def jpeg(width: int = 320, height: int = 240) -> bytes:
    buf = io.BytesIO()
    synthetic_scene("unit", width, height).save(buf, "JPEG")
    return buf.getvalue()


def frames_of(path: Path) -> tuple[list[np.ndarray], dict[str, object]]:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        info: dict[str, object] = {
            "width": video.codec_context.width,
            "height": video.codec_context.height,
            "fps": float(video.average_rate),
            "codec": video.codec_context.name,
            "pix_fmt": video.codec_context.pix_fmt,
            "audio": [(a.codec_context.name, a.rate, a.channels) for a in container.streams.audio],
        }
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    return frames, info


@pytest.mark.parametrize(
    ("prompt", "motion"),
    [
        ("The camera slowly dollies in toward her face", "dolly_in"),  # seeds 001/003
        ("Zoom in on the cat", "dolly_in"),
        ("a slow push-in", "dolly_in"),
        ("The camera pulls back to reveal the city", "dolly_out"),
        ("Camera pans left across the room", "dolly_left"),
        ("pan right over the hills", "dolly_right"),
        ("tilt up to the sky", "jib_up"),
        ("the crane down shot", "jib_down"),
        ("static shot, locked-off", "static"),
        ("a rack focus from the glass to the face", "focus_shift"),
        ("pans left, then zooms in", "dolly_left"),  # the first phrase wins
        ("A lone cyclist pedals through the rain", "dolly_in"),  # default: gentle dolly in
    ],
)
def test_motion_from_prompt(prompt: str, motion: str) -> None:
    assert motion_from_prompt(prompt) == motion


def test_probe_rejects_non_images() -> None:
    assert probe_image(jpeg()) == (320, 240)
    with pytest.raises(RenderError):
        probe_image(b"hello world")
    with pytest.raises(RenderError):
        render_clip(
            b"\x89PNG not really",
            "x",
            RenderSpec(64, 36, 25, 1, False, "static"),
            Path("/nonexistent/x.mp4"),
        )


@pytest.mark.parametrize("motion", CAMERA_MOTIONS)
def test_every_motion_renders_moving_frames(tmp_path: Path, motion: str) -> None:
    out = tmp_path / f"{motion}.mp4"
    render_clip(jpeg(), "x", RenderSpec(160, 90, 25, 1, False, motion), out)
    frames, info = frames_of(out)
    assert (info["width"], info["height"], info["codec"], info["pix_fmt"]) == (
        160,
        90,
        "h264",
        "yuv420p",
    )
    assert info["audio"] == []
    assert len(frames) == 25
    first, last = frames[0].astype(np.int16), frames[-1].astype(np.int16)
    if motion == "static":
        # Only a light flicker: small but present somewhere in the clip.
        diffs = [np.abs(f.astype(np.int16) - first).mean() for f in frames]
        assert 0.3 < max(diffs) < 20
    else:
        assert np.abs(last - first).mean() > 2.0
        steps = [
            np.abs(b.astype(np.int16) - a.astype(np.int16)).mean()
            for a, b in itertools.pairwise(frames)
        ]
        # Consecutive frames differ (the ease makes the ends slowest).
        assert sum(step > 0 for step in steps) >= len(steps) - 2


def test_prompt_only_renders_a_synthetic_scene_with_audio(tmp_path: Path) -> None:
    out = tmp_path / "t2v.mp4"
    render_clip(None, "a dragon over mountains", RenderSpec(128, 72, 50, 1, True, "dolly_out"), out)
    frames, info = frames_of(out)
    assert len(frames) == 50
    assert info["fps"] == 50
    assert info["audio"] == [("aac", 48000, 2)]
    assert frames[0].std() > 10  # a scene, not a flat colour


def test_thumbnail_is_a_16_by_9_png(tmp_path: Path) -> None:
    from PIL import Image

    out = tmp_path / "t.png"
    render_thumbnail(jpeg(), "x", out)
    with Image.open(out) as img:
        assert (img.format, img.size) == ("PNG", (480, 270))

"""Reading a downloaded MP4 back: its properties, and a contact sheet of its frames.

PyAV and Pillow come with the ``emulator`` extra (which ``cli`` depends on); they are
imported inside the functions. Everything here is synchronous and CPU-bound: call it through
``asyncio.to_thread``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MediaInfo", "contact_sheet", "probe"]


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """What an MP4 holds: video size, frame rate, duration, frame count and codecs.

    ``audio`` describes the first audio stream (``"aac 48 kHz stereo"``), ``None`` if none.
    """

    width: int
    height: int
    fps: float
    duration: float
    frames: int
    video_codec: str
    audio: str | None

    def describe(self) -> str:
        """``1920x1080 · 25 fps · 6.00 s · h264`` style summary."""
        return (
            f"{self.width}x{self.height} · {self.fps:g} fps · {self.duration:.2f} s · "
            f"{self.frames} frames · {self.video_codec}"
        )


def probe(path: str | os.PathLike[str]) -> MediaInfo:
    """Open ``path`` with PyAV and read its first video and audio streams' properties."""
    import av

    with av.open(os.fspath(path)) as container:
        video = container.streams.video[0]
        rate = video.average_rate or video.base_rate or video.guessed_rate
        fps = float(rate) if rate else 0.0
        if container.duration:
            duration = container.duration / av.time_base
        elif video.duration is not None and video.time_base is not None:
            duration = float(video.duration * video.time_base)
        else:
            duration = 0.0
        frames = int(video.frames or round(duration * fps))
        audio: str | None = None
        if container.streams.audio:
            stream = container.streams.audio[0]
            ctx = stream.codec_context
            layout = getattr(ctx.layout, "name", None) or f"{ctx.channels} ch"
            audio = f"{ctx.name} {ctx.sample_rate / 1000:g} kHz {layout}"
        return MediaInfo(
            width=int(video.codec_context.width),
            height=int(video.codec_context.height),
            fps=fps,
            duration=float(duration),
            frames=frames,
            video_codec=str(video.codec_context.name),
            audio=audio,
        )


def contact_sheet(
    video_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    columns: int = 3,
    rows: int = 2,
    tile_width: int = 480,
) -> Path:
    """Write a PNG grid of ``columns * rows`` frames spread evenly over the video, first
    frame to last, each labelled with its time. Returns the PNG's path."""
    import av
    from PIL import Image, ImageDraw

    count = columns * rows
    tiles: list[tuple[float, Image.Image]] = []
    with av.open(os.fspath(video_path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        total = int(stream.frames or 0)
        if total <= 0:  # no frame count in the container: estimate from duration and rate
            rate = float(stream.average_rate or 25)
            total = max(1, round((container.duration or 0) / av.time_base * rate))
        wanted = {round(i * (total - 1) / max(1, count - 1)) for i in range(count)}
        tile_height = tile_width * stream.codec_context.height // stream.codec_context.width

        def tile(frame: av.VideoFrame) -> tuple[float, Image.Image]:
            # libswscale scales and converts in one pass, faster than Pillow on 1080p frames.
            small = frame.reformat(width=tile_width, height=tile_height, format="rgb24")
            return float(frame.time or 0.0), Image.fromarray(small.to_ndarray())

        last = None
        for index, frame in enumerate(container.decode(stream)):
            last = frame
            if index in wanted:
                tiles.append(tile(frame))
                if len(tiles) == len(wanted):
                    break
        if last is None:
            raise ValueError(f"{os.fspath(video_path)} has no video frames")
        while len(tiles) < count:  # fewer frames than the container said
            tiles.append(tile(last))

    gap = 8
    sheet = Image.new(
        "RGB",
        (columns * tile_width + (columns + 1) * gap, rows * tile_height + (rows + 1) * gap),
        (16, 16, 16),
    )
    draw = ImageDraw.Draw(sheet)
    for n, (seconds, image) in enumerate(tiles[:count]):
        x = gap + (n % columns) * (tile_width + gap)
        y = gap + (n // columns) * (tile_height + gap)
        sheet.paste(image, (x, y))
        label = f"{seconds:5.2f} s"
        draw.rectangle((x + 4, y + 4, x + 8 + 7 * len(label), y + 20), fill=(0, 0, 0))
        draw.text((x + 7, y + 6), label, fill=(255, 255, 255))
    out = Path(out_path)
    sheet.save(out, format="PNG")
    return out

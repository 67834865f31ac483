"""Jobs, their time-driven life cycle, and the shared support-matrix validation."""

from __future__ import annotations

import asyncio
import base64
import binascii
import math
import re
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ALL_DURATIONS",
    "RESOLUTIONS",
    "TERMINAL",
    "InputError",
    "Job",
    "JobFailure",
    "JobParams",
    "decode_data_uri",
    "parse_params",
]

# The support matrix all five seeds share (seeds/README.md; 000, 001, 002, 003):
# duration 6-20 s in steps of 2, > 10 s only at 1080p and 25 fps; 1080p/1440p/2160p;
# 25 or 50 fps; 16:9 only; generate_audio defaults to true.
ALL_DURATIONS = (6, 8, 10, 12, 14, 16, 18, 20)
RESOLUTIONS: dict[str, tuple[int, int]] = {
    "1080p": (1920, 1080),
    "1440p": (2560, 1440),
    "2160p": (3840, 2160),
}
FPS_VALUES = (25, 50)
ASPECT_RATIOS = ("16:9",)

# Pre-terminal stages, in order, and the fraction of the processing time at which each
# begins. Each provider maps them onto its own status words (e.g. Eachlabs
# created/created/starting/processing, GMI created/queued/dispatched/processing).
STAGES = ("created", "queued", "starting", "running")
STAGE_STARTS = (0.0, 0.05, 0.25, 0.35)
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})


class InputError(Exception):
    """A request the provider rejects: ``field`` names the offending input."""

    def __init__(
        self, field: str, message: str, *, status: int = 400, kind: str = "value_error"
    ) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.status = status
        self.kind = kind


@dataclass(frozen=True)
class JobParams:
    """A request normalized across providers."""

    image_url: str | None
    prompt: str
    duration: int
    resolution: str
    fps: int
    aspect_ratio: str
    generate_audio: bool
    camera_motion: str | None = None

    @property
    def size(self) -> tuple[int, int]:
        """Output ``(width, height)`` in pixels."""
        return RESOLUTIONS[self.resolution]


@dataclass(frozen=True)
class JobFailure:
    """Why a job failed: ``kind`` is ``image_download``, ``image_decode`` or ``internal``."""

    kind: str
    message: str


@dataclass(eq=False)
class Job:
    """One emulated generation. ``emu.jobs`` maps ids to these.

    The pre-terminal stage is a function of time since creation (so no task is needed to
    move a job along); the terminal state is set once, when the job finishes.
    """

    id: str
    provider: str
    key: str
    request: dict[str, Any]
    params: JobParams
    processing_time: float
    """Wall seconds the job takes (already multiplied by the time scale)."""
    nominal_time: float
    """The same duration before scaling: what the job "took" in provider seconds."""
    created_at: float = field(default_factory=time.time)
    started: float = 0.0
    """Event-loop time of creation."""
    queue_position: int = 0
    webhook_url: str | None = None
    webhook_secret: str | None = None
    state: str = "pending"
    """``pending`` until it ends, then ``succeeded``, ``failed`` or ``cancelled``."""
    failure: JobFailure | None = None
    fail_with: JobFailure | None = None
    finished_at: float | None = None
    media_path: Path | None = None
    thumb_path: Path | None = None
    file_size: int = 0
    image_bytes: bytes | None = None
    webhook_deliveries: list[dict[str, Any]] = field(default_factory=list)
    status_requests: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def finished(self) -> bool:
        """Whether the job reached a terminal state."""
        return self.state in TERMINAL

    @property
    def deadline(self) -> float:
        """Event-loop time at which the processing time is over."""
        return self.started + self.processing_time

    def stage(self, now: float) -> str:
        """``created``/``queued``/``starting``/``running`` or the terminal state."""
        if self.state in TERMINAL:
            return self.state
        if self.processing_time <= 0:
            return "running"
        frac = (now - self.started) / self.processing_time
        current = STAGES[0]
        for name, start in zip(STAGES, STAGE_STARTS, strict=True):
            if frac >= start:
                current = name
        return current

    @property
    def status(self) -> str:
        """The normalized status now: ``queued``, ``running`` or a terminal state."""
        stage = self.stage(asyncio.get_running_loop().time()) if self._has_loop() else "queued"
        if stage in ("created", "queued"):
            return "queued"
        if stage in ("starting", "running"):
            return "running"
        return stage

    @staticmethod
    def _has_loop() -> bool:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return False
        return True

    def next_change(self, now: float) -> float | None:
        """Seconds until the next stage boundary (``None`` once past the last one)."""
        if self.state in TERMINAL or self.processing_time <= 0:
            return None
        frac = (now - self.started) / self.processing_time
        for start in STAGE_STARTS:
            if start > frac:
                return (start - frac) * self.processing_time
        return None

    def queue_position_at(self, now: float) -> int:
        """The job's place in the queue, shrinking to 0 as the queued stages pass."""
        if self.processing_time <= 0:
            return 0
        queued_until = STAGE_STARTS[2] * self.processing_time
        left = max(0.0, 1.0 - (now - self.started) / queued_until)
        return math.ceil(self.queue_position * left)

    def elapsed_nominal(self, now: float) -> float:
        """Provider seconds spent so far (the whole nominal time once finished)."""
        if self.finished or self.processing_time <= 0:
            return round(self.nominal_time, 3)
        frac = min(1.0, (now - self.started) / self.processing_time)
        return round(self.nominal_time * frac, 3)


_DATA_URI = re.compile(
    r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^;,]*)*?),(?P<data>.*)$", re.S
)


def decode_data_uri(uri: str, *, limit: int | None = None) -> bytes:
    """Decode a ``data:`` URI (base64 or percent-encoded). Raises :class:`ValueError`.

    When ``limit`` is given, a payload whose decoded size would exceed it raises
    :class:`OverflowError` before decoding.
    """
    m = _DATA_URI.match(uri)
    if m is None:
        raise ValueError("malformed data URI")
    data = m.group("data")
    if ";base64" in (m.group("params") or ""):
        if limit is not None and (len(data) * 3) // 4 - data[-2:].count("=") > limit:
            raise OverflowError("data URI too large")
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("data URI is not valid base64") from None
    from urllib.parse import unquote_to_bytes

    raw = unquote_to_bytes(data)
    if limit is not None and len(raw) > limit:
        raise OverflowError("data URI too large")
    return raw


def _as_int(raw: Mapping[str, Any], name: str, default: int, allowed: Collection[int]) -> int:
    value = raw.get(name, default)
    if value is None:
        value = default
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(
            name, f"{name} must be an integer, one of {sorted(allowed)}", kind="type_error"
        )
    if value not in allowed:
        raise InputError(
            name,
            f"{name} must be one of {', '.join(str(v) for v in sorted(allowed))}; got {value}",
            kind="enum",
        )
    return value


def _as_choice(raw: Mapping[str, Any], name: str, default: str, allowed: Collection[str]) -> str:
    value = raw.get(name, default)
    if value is None:
        value = default
    if not isinstance(value, str) or value not in allowed:
        raise InputError(
            name, f"{name} must be one of {', '.join(allowed)}; got {value!r}", kind="enum"
        )
    return value


def parse_params(
    raw: Mapping[str, Any],
    *,
    image_field: str = "image_url",
    require_image: bool = True,
    durations: Collection[int] = ALL_DURATIONS,
    resolutions: Mapping[str, str] | None = None,
    camera_motions: Collection[str] = (),
    aspect_field: bool = True,
) -> JobParams:
    """Validate a provider's input against the shared support matrix.

    ``resolutions`` maps the provider's spelling to ours (GMI uses ``1920x1080``); the
    default accepts ``1080p``/``1440p``/``2160p``. Raises :class:`InputError`.
    """
    image = raw.get(image_field)
    if image is None or image == "":
        if require_image:
            raise InputError(image_field, f"{image_field} is required", kind="missing")
        image = None
    elif not isinstance(image, str):
        raise InputError(image_field, f"{image_field} must be a string", kind="type_error")
    prompt = raw.get("prompt")
    if prompt is None or prompt == "":
        raise InputError("prompt", "prompt is required", kind="missing")
    if not isinstance(prompt, str):
        raise InputError("prompt", "prompt must be a string", kind="type_error")
    duration = _as_int(raw, "duration", 6, durations)
    spellings = resolutions or {name: name for name in RESOLUTIONS}
    default_res = next(iter(spellings))
    resolution = spellings[_as_choice(raw, "resolution", default_res, list(spellings))]
    fps = _as_int(raw, "fps", 25, FPS_VALUES)
    aspect = _as_choice(raw, "aspect_ratio", "16:9", ASPECT_RATIOS) if aspect_field else "16:9"
    audio = raw.get("generate_audio", True)
    if audio is None:
        audio = True
    if not isinstance(audio, bool):
        raise InputError("generate_audio", "generate_audio must be a boolean", kind="type_error")
    motion = raw.get("camera_motion")
    if motion is not None:
        if not camera_motions:
            motion = None
        elif motion not in camera_motions:
            raise InputError(
                "camera_motion",
                f"camera_motion must be one of {', '.join(camera_motions)}; got {motion!r}",
                kind="enum",
            )
    # Seeds 000/001/003: "Durations longer than 10 seconds (12, 14, 16, 18, 20) are only
    # supported with 25 FPS and 1080p resolution." (002: "12-20 only at 1080p@25fps").
    if duration > 10 and (resolution != "1080p" or fps != 25):
        raise InputError(
            "duration",
            f"duration {duration} is only supported with 25 FPS and 1080p resolution "
            f"(got {fps} fps at {resolution})",
        )
    return JobParams(
        image_url=image,
        prompt=prompt,
        duration=duration,
        resolution=resolution,
        fps=fps,
        aspect_ratio=aspect,
        generate_audio=audio,
        camera_motion=motion if isinstance(motion, str) else None,
    )

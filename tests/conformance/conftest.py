"""The conformance tier: the providers' official SDKs, unchanged but for their base URLs and
keys, run their own flows against the emulator's host-root listeners (127.0.0.1 only).

What passes here was checked against code nobody in this project wrote: fal-client 1.0.3,
gmicloud 0.1.10 and aimlapi-sdk-python 2.24.0rc1 (the ``test`` extra).
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import pytest

from ltx2.emulator import Emulator

#: Emulator seconds per provider second: a job of 50 provider seconds takes 0.5 s.
SCALE = 0.01
#: The seed's own example image (seed 001); stub rendering takes remote URLs as reachable.
SEED_IMAGE = "https://storage.googleapis.com/falserverless/example_inputs/ltxv-2-i2v-input.jpg"
PROMPT = "The camera slowly dollies in toward her face"


def is_mp4(data: bytes) -> bool:
    return data[4:8] == b"ftyp"


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(time_scale=SCALE, seed=0, render="stub", processing_time=50) as emulator:
        yield emulator


@pytest.fixture
def jpeg() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (320, 180), (30, 90, 160)).save(buf, "JPEG")
    return buf.getvalue()

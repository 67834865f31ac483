"""Right and wrong calls of the public API, for ``mypy --strict`` (tests/typing/test_typing.py).

Every wrong call carries the ``# type: ignore[code]`` mypy must report for it; with
``warn_unused_ignores`` (part of ``--strict``) a wrong call that type-checks fails the test,
and so does a right call that does not. Never run, only checked.
"""

from __future__ import annotations

import io
import pathlib
from typing import assert_type

import ltx2


def requests(raw: bytes, png: io.BytesIO) -> None:
    # Right: every image form, the positional and the keyword form.
    ltx2.VideoRequest("cat.jpg", "The cat yawns")
    ltx2.VideoRequest(pathlib.Path("cat.jpg"), "The cat yawns", duration=8, fps=50)
    ltx2.VideoRequest(image=raw, prompt="p", resolution="2160p", camera_motion="dolly_in")
    ltx2.VideoRequest(image=memoryview(raw), prompt="p", generate_audio=False)
    ltx2.VideoRequest(image=png, prompt="p", aspect_ratio="16:9")
    ltx2.VideoRequest(image=open("cat.jpg", "rb"), prompt="p")  # noqa: SIM115
    ltx2.VideoRequest(prompt="text only", duration=10)

    # Wrong: a misspelt field, values outside the matrix, wrong types.
    ltx2.VideoRequest(image="cat.jpg", prompt="p", durration=8)  # type: ignore[call-overload]
    ltx2.VideoRequest(image="cat.jpg", prompt="p", resolution="4k")  # type: ignore[call-overload]
    ltx2.VideoRequest(image="cat.jpg", prompt="p", fps=30)  # type: ignore[call-overload]
    ltx2.VideoRequest(image="cat.jpg", prompt="p", duration=7)  # type: ignore[call-overload]
    ltx2.VideoRequest(image=123, prompt="p")  # type: ignore[call-overload]
    ltx2.VideoRequest(image="cat.jpg", prompt=None)  # type: ignore[call-overload]
    ltx2.VideoRequest(image="cat.jpg")  # type: ignore[call-overload]
    ltx2.VideoRequest(image=open("cat.jpg"), prompt="p")  # type: ignore[call-overload]  # noqa: SIM115
    ltx2.VideoRequest(image="cat.jpg", prompt="p", camera_motion="zoom")  # type: ignore[call-overload]
    ltx2.VideoRequest("cat.jpg", "p", fps="25")  # type: ignore[call-overload]


async def clients(request: ltx2.VideoRequest, name: str) -> None:
    # Right.
    async with ltx2.Client("fal") as client:
        job = await client.submit(image="cat.jpg", prompt="p", duration=8, fps=25)
        assert_type(job, ltx2.Job)
        await client.submit(request)
        await client.submit(request, fps=50, prompt="another")
        video = await client.generate(image=b"...", prompt="p", resolution="1440p")
        assert_type(video, ltx2.Video)
        await client.generate(request)
        await job.result(timeout=600)
    ltx2.Client("eachlabs", base_url="http://127.0.0.1:8765/eachlabs", time_scale=0.01)
    for provider in ltx2.PROVIDERS:
        ltx2.Client(provider)

    # Wrong.
    ltx2.Client("runway")  # type: ignore[arg-type]
    ltx2.Client(name)  # type: ignore[arg-type]
    async with ltx2.Client("gmicloud") as client:
        await client.submit(image="cat.jpg", prompt="p", durration=8)  # type: ignore[call-overload]
        await client.submit(image="cat.jpg", prompt="p", resolution="4k")  # type: ignore[call-overload]
        await client.submit(image="cat.jpg", prompt="p", fps=30)  # type: ignore[call-overload]
        await client.submit(image=123, prompt="p")  # type: ignore[call-overload]
        await client.submit(image="cat.jpg", prompt=None)  # type: ignore[call-overload]
        await client.submit(image="cat.jpg")  # type: ignore[call-overload]
        await client.generate(image="cat.jpg", prompt="p", durration=8)  # type: ignore[call-overload]
        await client.generate(image=123, prompt="p")  # type: ignore[call-overload]
        await client.generate(request, fps=30)  # type: ignore[call-overload]
        await client.submit("cat.jpg", "p")  # type: ignore[call-overload]

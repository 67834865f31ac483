"""Right and wrong calls of the public API, for ``mypy --strict`` (tests/typing/test_typing.py).

Every wrong call carries the ``# type: ignore[code]`` mypy must report for it; with
``warn_unused_ignores`` (part of ``--strict``) a wrong call that type-checks fails the test,
and so does a right call that does not. Never run, only checked.
"""

from __future__ import annotations

import io
import pathlib

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

"""The image inputs people have (issue 13, item 8) and the prompt bound (item 10)."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from tests.conftest import make_png

import ltx2
from ltx2._request import MAX_PROMPT_CHARS

PIL = pytest.importorskip("PIL.Image")


def _mime(request: ltx2.VideoRequest) -> str | None:
    src = request.image_source()
    assert src is not None
    return src.mime


def test_a_pil_image_is_encoded_as_png() -> None:
    img = PIL.new("RGB", (32, 18), (10, 200, 30))
    req = ltx2.VideoRequest(image=img, prompt="The cat yawns")
    assert isinstance(req.image, bytes)
    assert _mime(req) == "image/png"
    back = PIL.open(io.BytesIO(req.image))
    assert back.size == (32, 18)
    assert back.getpixel((0, 0)) == (10, 200, 30)


def test_a_pil_image_opened_from_a_jpeg_stays_a_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "cat.jpg"
    PIL.new("RGB", (32, 18), (200, 80, 40)).save(path, format="JPEG")
    with PIL.open(path) as img:
        req = ltx2.VideoRequest(img, "The cat yawns")
    assert _mime(req) == "image/jpeg"


@pytest.mark.parametrize("mode", ["RGBA", "L", "P", "CMYK", "I;16", "F"])
def test_a_pil_image_of_any_mode_becomes_an_accepted_image(mode: str) -> None:
    img = PIL.new(mode, (8, 8))
    req = ltx2.VideoRequest(image=img, prompt="p")
    assert _mime(req) in ("image/png", "image/jpeg")


def test_an_open_binary_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "cat.png"
    path.write_bytes(make_png())
    with path.open("rb") as fh:
        req = ltx2.VideoRequest(image=fh, prompt="p")
    assert req.image == path.read_bytes()
    assert _mime(req) == "image/png"


def test_a_bytesio_is_read() -> None:
    req = ltx2.VideoRequest(image=io.BytesIO(make_png()), prompt="p")
    assert req.image == make_png()


def test_a_text_mode_file_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "cat.png"
    path.write_bytes(b"not really")
    with path.open() as fh, pytest.raises(ltx2.InvalidRequestError, match=r"'rb'") as err:
        ltx2.VideoRequest(image=fh, prompt="p")
    assert err.value.field == "image"


def test_a_file_that_is_not_an_image_is_refused() -> None:
    with pytest.raises(ltx2.InvalidRequestError, match="not a PNG, JPEG"):
        ltx2.VideoRequest(image=io.BytesIO(b"%PDF-1.7 ..."), prompt="p")


def test_a_closed_file_is_refused(tmp_path: Path) -> None:
    fh = io.BytesIO(make_png())
    fh.close()
    with pytest.raises(ltx2.InvalidRequestError, match="cannot be read"):
        ltx2.VideoRequest(image=fh, prompt="p")


def test_path_bytes_bytearray_and_memoryview(tmp_path: Path) -> None:
    raw = make_png()
    path = tmp_path / "cat.png"
    path.write_bytes(raw)
    for image in (path, str(path), raw, bytearray(raw), memoryview(raw)):
        req = ltx2.VideoRequest(image=image, prompt="p")
        assert _mime(req) == "image/png", image


def test_a_file_image_is_stored_as_a_data_uri() -> None:
    req = ltx2.VideoRequest(image=io.BytesIO(make_png()), prompt="p")
    d = req.to_json()
    assert d["image"] == "data:image/png;base64," + base64.b64encode(make_png()).decode()


@pytest.mark.parametrize("bad", [123, 1.5, ["cat.jpg"], object()])
def test_other_types_are_refused_naming_what_is_accepted(bad: object) -> None:
    with pytest.raises(ltx2.InvalidRequestError, match="PIL image") as err:
        ltx2.VideoRequest(image=bad, prompt="p")  # type: ignore[call-overload]
    assert err.value.field == "image"


def test_a_prompt_over_the_bound_is_refused_before_any_request() -> None:
    ltx2.VideoRequest(image=make_png(), prompt="x" * MAX_PROMPT_CHARS)
    with pytest.raises(ltx2.InvalidRequestError, match=f"at most {MAX_PROMPT_CHARS}") as err:
        ltx2.VideoRequest(image=make_png(), prompt="x" * 100_000)
    assert err.value.field == "prompt"
    assert len(str(err.value)) < 400  # the prompt itself is not dumped into the message


def test_a_prompt_that_is_not_text_is_refused() -> None:
    with pytest.raises(ltx2.InvalidRequestError) as err:
        ltx2.VideoRequest(image=make_png(), prompt=None)  # type: ignore[call-overload]
    assert err.value.field == "prompt"

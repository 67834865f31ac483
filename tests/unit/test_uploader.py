"""Local images where a provider documents no upload (GMI Cloud: no upload in seed 002,
docs.gmicloud.ai or the gmicloud SDK), and ``Client(uploader=...)`` for any provider."""

from __future__ import annotations

import re

import pytest
from aioresponses import aioresponses
from tests.conftest import FAST_POLL, NO_BACKOFF

import ltx2

GMI = "https://console.gmicloud.ai/api/v1/ie/requestqueue/apikey/requests"
HOSTED = "https://bucket.example.com/uploads/cat.png"


def gmi(**kw: object) -> ltx2.Client:
    return ltx2.Client("gmicloud", api_key="gmi-key", poll=FAST_POLL, retry=NO_BACKOFF, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["bytes", "path"])
async def test_local_image_on_gmicloud_without_uploader_is_unsupported_before_any_request(
    png: bytes, tmp_path: object, kind: str
) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "cat.png"
    path.write_bytes(png)
    image: object = png if kind == "bytes" else str(path)
    with aioresponses() as m:
        async with gmi() as client:
            with pytest.raises(ltx2.UnsupportedError) as info:
                await client.submit(image=image, prompt="p")
        assert not m.requests
    text = str(info.value)
    assert "uploader=" in text
    assert "https URL" in text
    for name in ("eachlabs", "fal", "runcomfy", "aimlapi"):
        assert name in text  # the providers that take a local image themselves


async def test_uploader_makes_local_images_work_on_gmicloud(png: bytes) -> None:
    given: list[tuple[bytes, str]] = []

    async def upload(data: bytes, mime: str) -> str:
        given.append((data, mime))
        return HOSTED

    with aioresponses() as m:
        m.post(GMI, payload={"request_id": "r-1", "status": "queued"})
        async with gmi(uploader=upload) as client:
            job = await client.submit(image=png, prompt="p")
        (call,) = m.requests[("POST", __import__("yarl").URL(GMI))]
        assert call.kwargs["json"]["payload"]["image_uri"] == HOSTED
        assert not any("upload" in str(url) for _, url in m.requests)
    assert given == [(png, "image/png")]
    assert job.id == "r-1"


async def test_uploader_is_used_with_any_provider_instead_of_its_own_upload(png: bytes) -> None:
    async def upload(data: bytes, mime: str) -> str:
        return HOSTED

    with aioresponses() as m:
        m.post("https://api.eachlabs.ai/v1/prediction/", payload={"predictionID": "p-1"})
        async with ltx2.Client(
            "eachlabs", api_key="k", uploader=upload, poll=FAST_POLL, retry=NO_BACKOFF
        ) as client:
            await client.submit(image=png, prompt="p")
        assert not any("presign" in str(url) for _, url in m.requests)
        ((_, calls),) = [(k, v) for k, v in m.requests.items() if k[0] == "POST"]
        assert calls[0].kwargs["json"]["input"]["image_url"] == HOSTED


@pytest.mark.parametrize("returned", ["ftp://x/y.png", "", None, "http://bucket.example/x.png"])
async def test_an_uploader_must_return_an_https_url(png: bytes, returned: object) -> None:
    async def upload(data: bytes, mime: str) -> object:
        return returned

    with aioresponses() as m:
        async with gmi(uploader=upload) as client:
            with pytest.raises(ltx2.InvalidRequestError, match="uploader") as info:
                await client.submit(image=png, prompt="p")
        assert not m.requests
    assert info.value.field == "uploader"


def test_an_uploader_must_be_callable() -> None:
    with pytest.raises(ltx2.InvalidRequestError, match="uploader"):
        gmi(uploader="s3://bucket")


async def test_urls_need_no_uploader_on_gmicloud() -> None:
    with aioresponses() as m:
        m.post(GMI, payload={"request_id": "r-2", "status": "queued"})
        async with gmi() as client:
            await client.submit(image="https://cdn.example.com/cat.jpg", prompt="p")
        assert [url for _, url in m.requests if re.search("upload", str(url))] == []

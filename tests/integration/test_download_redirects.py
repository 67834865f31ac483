"""Downloads follow redirects by hand: http(s) only, every hop checked against the download
policy, a bounded number of hops; API calls never follow one to another origin."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

import ltx2
from ltx2._transport import Transport
from ltx2.providers import get

VIDEO = b"\x00\x00\x00\x18ftypmp42" + b"v" * 1000


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


@pytest.fixture
async def cdn() -> AsyncIterator[tuple[str, list[web.Request]]]:
    """A file server: /v.mp4 the video, /to?l=URL a 302 to URL, /hops/N N redirects deep."""
    seen: list[web.Request] = []

    async def video(request: web.Request) -> web.StreamResponse:
        seen.append(request)
        return web.Response(body=VIDEO, content_type="video/mp4")

    async def to(request: web.Request) -> web.StreamResponse:
        seen.append(request)
        raise web.HTTPFound(request.query["l"])

    async def hops(request: web.Request) -> web.StreamResponse:
        seen.append(request)
        n = int(request.match_info["n"])
        raise web.HTTPTemporaryRedirect(f"/hops/{n - 1}" if n else "/v.mp4")

    app = web.Application()
    app.router.add_get("/v.mp4", video)
    app.router.add_get("/to", to)
    app.router.add_get("/hops/{n}", hops)
    runner, url = await _serve(app)
    try:
        yield url, seen
    finally:
        await runner.cleanup()


def _transport(policy: ltx2.DownloadPolicy | None = None) -> Transport:
    provider = get("eachlabs")("eachlabs-key-0123456789")
    return Transport(provider, download_policy=policy or ltx2.DownloadPolicy())


async def test_download_follows_a_redirect_to_another_origin_by_default(
    cdn: tuple[str, list[web.Request]], tmp_path: Path
) -> None:
    base, seen = cdn
    other = base.replace("127.0.0.1", "localhost")
    transport = _transport()
    try:
        size = await transport.download(f"{base}/to?l={other}/v.mp4", tmp_path / "v.mp4")
    finally:
        await transport.aclose()
    assert size == len(VIDEO)
    assert (tmp_path / "v.mp4").read_bytes() == VIDEO
    assert [r.path for r in seen] == ["/to", "/v.mp4"]
    assert all("X-API-Key" not in r.headers for r in seen)  # downloads carry no key


@pytest.mark.parametrize("target", ["ftp://127.0.0.1/v.mp4", "file:///etc/passwd", "data:,x"])
async def test_download_refuses_a_redirect_to_a_non_http_scheme(
    cdn: tuple[str, list[web.Request]], tmp_path: Path, target: str
) -> None:
    base, _ = cdn
    transport = _transport()
    try:
        with pytest.raises(ltx2.TransportError, match="non-http"):
            await transport.download(f"{base}/to?l={target}", tmp_path / "v.mp4")
        with pytest.raises(ltx2.TransportError, match="non-http"):
            async for _ in transport.stream(f"{base}/to?l={target}"):
                pass
    finally:
        await transport.aclose()
    assert not (tmp_path / "v.mp4").exists()
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind


@pytest.mark.parametrize(
    "target",
    ["http://10.0.0.7/v.mp4", "http://169.254.169.254/latest/meta-data", "http://[fd00::1]/"],
)
async def test_policy_refuses_a_private_hop(
    cdn: tuple[str, list[web.Request]], tmp_path: Path, target: str
) -> None:
    base, seen = cdn
    transport = _transport(ltx2.DownloadPolicy(allow_private=False))
    try:
        with pytest.raises(ltx2.TransportError, match="private") as info:
            await transport.download(f"{base}/to?l={target}", tmp_path / "v.mp4")
    finally:
        await transport.aclose()
    host = target.split("/")[2]
    assert host in str(info.value)
    assert [r.path for r in seen] == ["/to"]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_public_only_policy_refuses_loopback_before_connecting(
    cdn: tuple[str, list[web.Request]], tmp_path: Path, host: str
) -> None:
    base, seen = cdn
    transport = _transport(ltx2.DownloadPolicy.public_only())
    try:
        with pytest.raises(ltx2.TransportError, match="loopback"):
            await transport.download(base.replace("127.0.0.1", host) + "/v.mp4", tmp_path / "x")
    finally:
        await transport.aclose()
    assert seen == []


async def test_redirect_hops_are_bounded(
    cdn: tuple[str, list[web.Request]], tmp_path: Path
) -> None:
    base, _ = cdn
    transport = _transport(ltx2.DownloadPolicy(max_redirects=3))
    try:
        assert await transport.download(f"{base}/hops/2", tmp_path / "ok.mp4") == len(VIDEO)
        with pytest.raises(ltx2.TransportError, match="more than 3 redirects"):
            await transport.download(f"{base}/hops/5", tmp_path / "no.mp4")
    finally:
        await transport.aclose()


async def test_api_call_follows_a_same_origin_redirect(tmp_path: Path) -> None:
    seen: list[str] = []

    async def moved(request: web.Request) -> web.StreamResponse:
        seen.append(request.path)
        raise web.HTTPTemporaryRedirect("/v1/prediction/p-2")

    async def status(request: web.Request) -> web.StreamResponse:
        seen.append(request.path)
        assert request.headers["X-API-Key"] == "eachlabs-key-0123456789"
        return web.json_response({"status": "processing"})

    app = web.Application()
    app.router.add_get("/v1/prediction/p-1", moved)
    app.router.add_get("/v1/prediction/p-2", status)
    runner, base = await _serve(app)
    provider = get("eachlabs")("eachlabs-key-0123456789", base)
    transport = Transport(provider)
    try:
        reply = await transport.send(provider.status("p-1", {}))
    finally:
        await transport.aclose()
        await runner.cleanup()
    assert provider.parse_status(reply).status is ltx2.JobStatus.RUNNING
    assert seen == ["/v1/prediction/p-1", "/v1/prediction/p-2"]


async def test_download_and_stream_read_headers_in_any_case(tmp_path: Path) -> None:
    async def busy(request: web.Request) -> web.StreamResponse:
        return web.json_response({"error": "busy"}, status=429, headers={"Retry-After": "3"})

    app = web.Application()
    app.router.add_get("/v.mp4", busy)
    runner, base = await _serve(app)
    transport = _transport()
    try:
        with pytest.raises(ltx2.RateLimitError) as saved:
            await transport.download(f"{base}/v.mp4", tmp_path / "v.mp4")
        with pytest.raises(ltx2.RateLimitError) as streamed:
            async for _ in transport.stream(f"{base}/v.mp4"):
                pass
    finally:
        await transport.aclose()
        await runner.cleanup()
    assert saved.value.retry_after == streamed.value.retry_after == 3.0
    assert saved.value.method == "GET"
    assert saved.value.url == f"{base}/v.mp4"


async def test_client_download_policy_applies_to_video_save(tmp_path: Path) -> None:
    """``Client(download_policy=...)`` reaches ``Video.save``: a video on loopback is refused
    by a public-only client before anything is fetched."""
    from tests.conftest import make_png

    from ltx2.emulator import Emulator

    async with Emulator(time_scale=0.01) as emu:
        async with ltx2.Client(
            "runcomfy", api_key="k-0123456789", base_url=emu.provider_url("runcomfy"),
            download_policy=ltx2.DownloadPolicy.public_only(),
        ) as client:  # fmt: skip
            video = await client.generate(image=make_png(), prompt="The cat yawns")
            with pytest.raises(ltx2.TransportError, match="loopback"):
                await video.save(tmp_path / "v.mp4")
        # After the client is closed, the video keeps its policy.
        with pytest.raises(ltx2.TransportError, match="loopback"):
            await video.save(tmp_path / "v.mp4")
    assert list(tmp_path.iterdir()) == []

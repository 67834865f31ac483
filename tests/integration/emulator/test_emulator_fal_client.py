"""The official fal-client, pointed at the emulator over https, runs an LTX-2 Fast job."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ltx2.emulator import Emulator

fal_client = pytest.importorskip("fal_client")
fal_client_client = pytest.importorskip("fal_client.client")
trustme = pytest.importorskip("trustme")

APP = "fal-ai/ltx-2/image-to-video/fast"


@pytest.fixture
async def tls_emulator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Emulator]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    # httpx (inside fal_client) trusts SSL_CERT_FILE when it builds its SSL context.
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    monkeypatch.setenv("FAL_KEY", "fal-test-key")
    async with Emulator(
        time_scale=0.01, seed=0, render="stub", processing_time=60, ssl=server_ctx
    ) as emu:
        # FAL_QUEUE_RUN_HOST is read when fal_client.client is imported, so patch the
        # format it produced instead.
        host = emu.url.removeprefix("https://")
        monkeypatch.setattr(fal_client_client, "QUEUE_URL_FORMAT", f"https://{host}/fal/")
        yield emu


async def test_fal_client_submit_status_iter_events_and_result(
    tls_emulator: Emulator, data_uri: str
) -> None:
    emu = tls_emulator
    assert emu.url.startswith("https://127.0.0.1:")
    client = fal_client.AsyncClient()
    try:
        handle = await client.submit(
            APP, arguments={"image_url": data_uri, "prompt": "The camera dollies in", "duration": 6}
        )
        assert handle.request_id in emu.jobs
        first = await client.status(APP, handle.request_id, with_logs=True)
        assert isinstance(first, fal_client.Queued | fal_client.InProgress)
        events = [event async for event in handle.iter_events(with_logs=True, interval=0.02)]
        assert isinstance(events[-1], fal_client.Completed)
        assert events[-1].error is None
        assert events[-1].metrics["inference_time"] > 0
        assert any(isinstance(e, fal_client.InProgress) for e in events)
        result = await handle.get()
        assert result["video"]["content_type"] == "video/mp4"
        assert result["video"]["url"].startswith(emu.url + "/media/")
        assert await client.result(APP, handle.request_id) == result
    finally:
        http = await client._client
        await http.aclose()
    assert emu.stats_for("fal")["creates"] == 1


async def test_fal_client_subscribe_and_cancel(tls_emulator: Emulator, data_uri: str) -> None:
    client = fal_client.AsyncClient(key="other-key")
    try:
        updates: list[object] = []
        result = await client.subscribe(
            APP,
            arguments={"image_url": data_uri, "prompt": "pan left"},
            with_logs=True,
            on_queue_update=updates.append,
            interval=0.02,
        )
        assert result["video"]["file_name"].endswith(".mp4")
        assert isinstance(updates[-1], fal_client.Completed)
        handle = await client.submit(APP, arguments={"image_url": data_uri, "prompt": "x"})
        await handle.cancel()
        status = await handle.status()
        assert isinstance(status, fal_client.Completed)
        assert status.error_type == "request_cancelled"
    finally:
        http = await client._client
        await http.aclose()

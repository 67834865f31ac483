"""No API key, webhook token or webhook secret in any error text, repr, traceback or log
record (DEBUG), on every path (create, status, result, cancel, upload, stream, download), for
all five providers, against servers that misbehave in every way we know of: a malformed
status line, an error reply that echoes the request back, a 429 with retries, a reply cut
short, and a redirect to another origin (which must not get the key either)."""

from __future__ import annotations

import contextlib
import logging
import traceback
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from tests.integration._hostile import HostileServer, Seen, echo, reply

import ltx2
from ltx2._transport import Transport
from ltx2.providers import PROVIDERS, get

KEY = "sk-live-KEYKEYKEY-0123456789abcdef"
TOKEN = "tokTOKENtok0123456789"
SECRET = "whsec-SECRETSECRET-98765"
SIGNATURE = "SIGSIGSIG-presigned-4242"
SECRETS = (KEY, TOKEN, SECRET, SIGNATURE)
IMAGE = "https://cdn.example.com/cat.png"
NO_WAIT = ltx2.RetryPolicy(attempts=3, base_delay=0.0, max_delay=0.0)


def _bad_status(seen: Seen) -> bytes:
    return b"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def _cut_short(seen: Seen) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n{"


def _rate_limited(seen: Seen) -> bytes:
    return echo(seen, "429 Too Many Requests").replace(
        b"Content-Type", b"Retry-After: 0\r\nContent-Type", 1
    )


FAULTS: dict[str, Callable[[Seen], bytes]] = {
    "bad-status-line": _bad_status,
    "echo-500": echo,
    "echo-401": lambda seen: echo(seen, "401 Unauthorized"),
    "echo-429": _rate_limited,
    "cut-short": _cut_short,
}


def _texts(error: BaseException) -> list[str]:
    out = [str(error), repr(error), "".join(traceback.format_exception(error))]
    seen: set[int] = set()
    link: BaseException | None = error
    while link is not None and id(link) not in seen:  # chained exceptions, shown or not
        seen.add(id(link))
        out += [str(link), repr(link)]
        link = link.__cause__ or link.__context__
    return out


def _assert_clean(texts: list[str], caplog: pytest.LogCaptureFixture) -> None:
    texts = list(texts)
    for record in caplog.records:
        texts.append(record.getMessage())
        texts.append(repr(record.args))
        if record.exc_info:
            texts.append("".join(traceback.format_exception(*record.exc_info)))
    leaks = [(secret, text[:300]) for text in texts for secret in SECRETS if secret in text]
    assert leaks == []


async def _every_path(transport: Transport, base: str, tmp_path: Path) -> list[BaseException]:
    """Each call a provider can make, sent once; the errors they raised."""
    provider = transport.provider
    request = ltx2.VideoRequest(image=IMAGE, prompt="The cat yawns")
    calls = [
        provider.create(
            request,
            IMAGE,
            webhook_url=f"{base}/hooks/{provider.name}/{TOKEN}",
            webhook_secret=SECRET,
        ),
        provider.status("job-1", {}),
    ]
    for build in (provider.result, provider.cancel):
        with contextlib.suppress(ltx2.UnsupportedError):
            calls.append(build("job-1", {}))
    with contextlib.suppress(ltx2.UnsupportedError):
        calls.append(provider.upload("cat.png", "image/png"))
    errors: list[BaseException] = []
    for call in calls:
        try:
            await transport.send(call)
        except ltx2.LTX2Error as exc:
            errors.append(exc)
    signed = f"{base}/put/cat.png?X-Amz-Signature={SIGNATURE}&token={TOKEN}"
    try:
        await transport.put(signed, b"png", {"Content-Type": "image/png"})
    except ltx2.LTX2Error as exc:
        errors.append(exc)
    if provider.capabilities.status_stream:
        try:
            async for _ in transport.events(provider.stream("job-1", {})):
                pass
        except ltx2.LTX2Error as exc:
            errors.append(exc)
    video = f"{base}/v.mp4?X-Amz-Signature={SIGNATURE}"
    try:
        await transport.download(video, tmp_path / "v.mp4")
    except ltx2.LTX2Error as exc:
        errors.append(exc)
    try:
        async for _ in transport.stream(video):
            pass
    except ltx2.LTX2Error as exc:
        errors.append(exc)
    return errors


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("name", PROVIDERS)
async def test_no_secret_in_errors_or_logs(
    name: str, fault: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with HostileServer(FAULTS[fault]) as server:
        provider = get(name)(KEY, server.url)
        transport = Transport(provider, retry=NO_WAIT)
        try:
            errors = await _every_path(transport, server.url, tmp_path)
        finally:
            await transport.aclose()
    assert len(errors) >= 5  # every call failed (create, status, put, download, stream...)
    assert server.seen  # and the server did see them (with the key)
    _assert_clean([t for e in errors for t in _texts(e)], caplog)


@pytest.mark.parametrize("name", PROVIDERS)
async def test_api_redirect_to_another_origin_is_refused_and_gets_no_key(
    name: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with HostileServer(lambda seen: reply("200 OK", b"{}")) as elsewhere:
        target = elsewhere.url.replace("127.0.0.1", "localhost")

        def redirect(seen: Seen) -> bytes:
            return reply("307 Temporary Redirect", headers={"Location": f"{target}/steal"})

        async with HostileServer(redirect) as server:
            provider = get(name)(KEY, server.url)
            transport = Transport(provider, retry=NO_WAIT)
            try:
                errors = await _every_path(transport, server.url, tmp_path)
            finally:
                await transport.aclose()
    api_errors = [e for e in errors if isinstance(e, ltx2.APIError)]
    assert api_errors
    for error in api_errors:
        assert "redirect" in str(error)
        assert "localhost" in str(error)  # names the target host
    # Downloads follow redirects (with no key); API calls never reach the other origin.
    assert {s.target for s in elsewhere.seen} <= {"/steal"}
    for seen in elsewhere.seen:
        assert KEY not in str(seen.headers)
        assert all(s.method == "GET" for s in elsewhere.seen)
    assert len(elsewhere.seen) == 2  # download and stream, nothing else
    _assert_clean([t for e in errors for t in _texts(e)], caplog)


@pytest.mark.parametrize("name", ["fal", "eachlabs"])
async def test_client_submit_against_a_broken_server_leaks_nothing(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Through the public API, with a receiver: the per-job token and secret the client
    makes are read back from what the server saw, then looked for everywhere."""
    caplog.set_level(logging.DEBUG)
    async with HostileServer(_bad_status) as server, ltx2.WebhookReceiver() as receiver:
        errors: list[BaseException] = []
        async with ltx2.Client(
            name, api_key=KEY, base_url=server.url, webhooks=receiver, retry=NO_WAIT
        ) as client:  # type: ignore[call-overload]
            with pytest.raises(ltx2.LTX2Error) as info:
                await client.submit(image=IMAGE, prompt="The cat yawns")
            errors.append(info.value)
            job = client.job("job-1")
            with pytest.raises(ltx2.LTX2Error) as info:
                await job.refresh()
            errors.append(info.value)
    made: list[str] = []
    for seen in server.seen:
        query = parse_qs(urlsplit(seen.target).query)
        for hook in query.get("fal_webhook", []):
            made.append(hook.rsplit("/", 1)[-1])
        if seen.body.startswith(b"{"):
            import json

            body = json.loads(seen.body)
            if body.get("webhook_url"):
                made.append(body["webhook_url"].rsplit("/", 1)[-1])
            if body.get("webhook_secret"):
                made.append(body["webhook_secret"])
    assert made  # the server did get a token (and, for Eachlabs, a secret)
    texts = [t for e in errors for t in _texts(e)]
    records = [r.getMessage() for r in caplog.records]
    assert [s for s in (KEY, *made) for t in texts + records if s in t] == []

"""Arguments are checked before anything is sent, with errors naming them (issue 13, items
9 and 10): timeouts, provider names, base URLs."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

import pytest
from aioresponses import aioresponses
from tests.conftest import FAST_POLL, NO_BACKOFF

import ltx2
from ltx2.providers import ProviderName

BASE = "https://api.eachlabs.ai"
IMAGE = "https://cdn.example.com/cat.jpg"


@pytest.fixture
async def pending_job() -> AsyncIterator[ltx2.Job]:
    with aioresponses() as m:
        m.post(f"{BASE}/v1/prediction/", payload={"status": "success", "predictionID": "p-1"})
        m.get(f"{BASE}/v1/prediction/p-1", payload={"status": "processing"}, repeat=True)
        async with ltx2.Client("eachlabs", api_key="k", poll=FAST_POLL, retry=NO_BACKOFF) as c:
            yield await c.submit(image=IMAGE, prompt="p")


@pytest.mark.parametrize("bad", [-1, -0.5, "abc", "10", math.nan, math.inf, True, [1]])
async def test_result_timeout_that_is_not_a_duration_is_refused(
    pending_job: ltx2.Job, bad: object
) -> None:
    with pytest.raises(ltx2.InvalidRequestError, match="timeout") as err:
        await pending_job.result(timeout=bad)  # type: ignore[arg-type]
    assert err.value.field == "timeout"
    assert not pending_job.done


async def test_result_timeout_zero_asks_whether_it_has_finished(pending_job: ltx2.Job) -> None:
    with pytest.raises(ltx2.JobTimeoutError):
        await pending_job.result(timeout=0)


async def test_job_timeout_error_carries_the_job(pending_job: ltx2.Job) -> None:
    with pytest.raises(ltx2.JobTimeoutError) as err:
        await pending_job.result(timeout=0.01)
    assert err.value.job is pending_job
    assert "p-1" in str(err.value)


@pytest.mark.parametrize("name", ["connect", "read", "total"])
@pytest.mark.parametrize("bad", [-1, 0, "abc", math.nan])
def test_timeouts_that_are_not_durations_are_refused(name: str, bad: object) -> None:
    with pytest.raises(ltx2.InvalidRequestError, match=f"timeouts.{name}") as err:
        ltx2.Timeouts(**{name: bad})  # type: ignore[arg-type]
    assert err.value.field == f"timeouts.{name}"


# -- provider names ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["FAL", "Fal", " fal ", "fal"])
async def test_provider_names_are_accepted_in_any_case(name: str) -> None:
    with aioresponses() as m:
        m.post(
            "https://queue.fal.run/fal-ai/ltx-2/image-to-video/fast",
            payload={"request_id": "r-1"},
        )
        async with ltx2.Client(name, api_key="k", retry=NO_BACKOFF) as c:  # type: ignore[arg-type]
            job = await c.submit(image=IMAGE, prompt="p")
    assert c.provider == "fal"
    assert job.provider == "fal"


@pytest.mark.parametrize(
    ("name", "nearest"),
    [("gmi", "gmicloud"), ("GMI Cloud", "gmicloud"), ("fall", "fal"), ("AI/ML API", "aimlapi"),
     ("eachlab", "eachlabs")],
)  # fmt: skip
def test_a_near_miss_provider_name_gets_a_suggestion(name: str, nearest: str) -> None:
    with pytest.raises(ltx2.InvalidRequestError, match=f"did you mean '{nearest}'") as err:
        ltx2.Client(name, api_key="k")  # type: ignore[arg-type]
    assert err.value.field == "provider"


@pytest.mark.parametrize("name", ["runway", "", 3, None])
def test_an_unknown_provider_lists_the_known_ones(name: object) -> None:
    with pytest.raises(ltx2.InvalidRequestError, match="eachlabs, fal, gmicloud") as err:
        ltx2.Client(name, api_key="k")  # type: ignore[arg-type]
    assert err.value.field == "provider"
    assert "did you mean" not in str(err.value)


# -- base URLs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("not a url", "no scheme"),
        ("localhost:8765", "no scheme"),
        ("ftp://proxy.example.com", "scheme is 'ftp'"),
        ("http://", "no host"),
        ("https://proxy.example.com:port", "Port"),
        ("https://proxy.example.com/x?y=1", "no query"),
        ("http://proxy .example.com", "spaces"),
        (42, "not a URL"),
    ],
)
def test_a_base_url_that_cannot_work_is_refused_at_construction(url: object, why: str) -> None:
    with pytest.raises(ltx2.InvalidRequestError, match=why) as err:
        ltx2.Client("eachlabs", api_key="k", base_url=url)  # type: ignore[arg-type]
    assert err.value.field == "base_url"


def test_a_base_url_with_credentials_is_refused_without_repeating_them() -> None:
    with pytest.raises(ltx2.InvalidRequestError, match="credentials") as err:
        ltx2.Client("eachlabs", api_key="k", base_url="https://me:hunter2@proxy.example.com")
    assert "hunter2" not in str(err.value)
    assert "hunter2" not in repr(err.value.value)


async def test_a_good_base_url_is_used_as_given() -> None:
    with aioresponses() as m:
        m.post("https://proxy.example.com/eachlabs/v1/prediction/",
               payload={"status": "success", "predictionID": "p-1"})  # fmt: skip
        async with ltx2.Client(
            "eachlabs", api_key="k", base_url="https://proxy.example.com/eachlabs/",
            retry=NO_BACKOFF,
        ) as c:  # fmt: skip
            job = await c.submit(image=IMAGE, prompt="p")
    assert job.id == "p-1"


# -- the emulator from the environment (docs/quickstart.md) ----------------------------------


async def test_ltx2_emulator_url_points_a_client_without_base_url_at_the_emulator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LTX2_EMULATOR_URL", "http://127.0.0.1:8765/")
    monkeypatch.setenv("LTX2_TIME_SCALE", "0.01")
    monkeypatch.setenv("EACHLABS_API_KEY", "any")
    with aioresponses() as m:
        m.post("http://127.0.0.1:8765/eachlabs/v1/prediction/",
               payload={"status": "success", "predictionID": "p-1"})  # fmt: skip
        async with ltx2.Client("eachlabs", retry=NO_BACKOFF) as c:
            job = await c.submit(image=IMAGE, prompt="p")
    assert job.id == "p-1"
    assert "127.0.0.1:8765/eachlabs" in repr(c)


def test_an_explicit_base_url_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LTX2_EMULATOR_URL", "http://127.0.0.1:8765")
    c = ltx2.Client("eachlabs", api_key="k", base_url="https://proxy.example.com/e")
    assert "proxy.example.com/e" in repr(c)
    assert "8765" not in repr(c)


@pytest.mark.parametrize(
    ("var", "value"),
    [("LTX2_EMULATOR_URL", "127.0.0.1:8765"), ("LTX2_TIME_SCALE", "fast"),
     ("LTX2_TIME_SCALE", "-1")],
)  # fmt: skip
def test_bad_emulator_variables_are_refused_naming_them(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str
) -> None:
    monkeypatch.setenv("LTX2_EMULATOR_URL", "http://127.0.0.1:8765")
    monkeypatch.setenv(var, value)
    with pytest.raises(ltx2.InvalidRequestError, match=var) as err:
        ltx2.Client("eachlabs", api_key="k")
    assert err.value.field == var


@pytest.mark.parametrize("bad", [0, -1, "abc", math.nan])
def test_time_scale_that_is_not_a_positive_number_is_refused(bad: object) -> None:
    with pytest.raises(ltx2.InvalidRequestError, match="time_scale") as err:
        ltx2.Client("eachlabs", api_key="k", time_scale=bad)  # type: ignore[arg-type]
    assert err.value.field == "time_scale"


@pytest.mark.parametrize("bad", [1, "yes", "false", None])
def test_trust_env_that_is_not_a_bool_is_refused(bad: object) -> None:
    with pytest.raises(ltx2.InvalidRequestError, match="trust_env") as err:
        ltx2.Client("eachlabs", api_key="k", trust_env=bad)  # type: ignore[arg-type]
    assert err.value.field == "trust_env"
    assert err.value.allowed == "True or False"


@pytest.mark.parametrize(
    ("provider", "name", "hint"),
    [
        ("eachlabs", "trsut_env", "did you mean 'trust_env'"),
        ("runcomfy", "timeout", "did you mean 'timeouts'"),
        ("gmicloud", "storage_url", "fal takes it"),  # fal's own option, not GMI's
        ("fal", "webhook", "did you mean 'webhooks'"),
        ("aimlapi", "zzz", None),
    ],
)
def test_an_option_no_one_takes_is_refused_by_name(
    provider: ProviderName, name: str, hint: str | None
) -> None:
    # A misspelt option went silently into **provider_options and was ignored.
    secret = "sk-live-0123456789abcdef"  # e.g. a key given under a wrong name
    with pytest.raises(ltx2.InvalidRequestError) as err:
        ltx2.Client(provider, api_key="k", **{name: secret})
    assert err.value.field == name
    assert f"{name!r} is not an option of Client or of {provider}" in str(err.value)
    if hint is not None:
        assert hint in str(err.value)
    assert "trust_env" in err.value.allowed
    assert secret not in str(err.value) + repr(err.value) + str(err.value.value)


def test_fal_takes_its_own_options() -> None:
    client = ltx2.Client(
        "fal", api_key="k", storage_url="https://storage.example.com", data_uri_threshold=0
    )
    assert client.capabilities.upload

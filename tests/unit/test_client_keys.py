"""Where a client's API key comes from, and what a missing or blank one gives: an
:class:`ltx2.AuthenticationError` with ``status_code=None`` that names the variable(s) to set
and says no request was sent, raised at construction, before any I/O."""

from __future__ import annotations

import pytest
from aioresponses import aioresponses

import ltx2
from ltx2.providers import all_providers, get

BLANKS = ["", " ", "\t", "\n", "  \r\n "]


@pytest.fixture(autouse=True)
def no_api_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for cls in all_providers().values():
        for name in cls.key_variables():
            monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("provider", ltx2.PROVIDERS)
def test_a_missing_key_names_every_variable_and_says_nothing_was_sent(provider: str) -> None:
    with pytest.raises(ltx2.AuthenticationError) as info:
        ltx2.Client(provider)
    error = info.value
    assert error.status_code is None
    assert error.provider == provider
    text = str(error)
    assert "HTTP" not in text
    assert "no request was sent" in text
    for name in get(provider).key_variables():
        assert name in text
    assert "api_key=" in text


def test_ai_ml_api_names_its_three_variables() -> None:
    with pytest.raises(ltx2.AuthenticationError) as info:
        ltx2.Client("aimlapi")
    for name in ("AIML_API_KEY", "AIMLAPI_API_KEY", "AIMLAPI_KEY"):
        assert name in str(info.value)


@pytest.mark.parametrize("blank", BLANKS, ids=repr)
def test_a_blank_key_argument_is_refused_the_same_way(blank: str) -> None:
    with aioresponses() as m, pytest.raises(ltx2.AuthenticationError) as info:
        ltx2.Client("fal", api_key=blank)
    assert not m.requests
    assert info.value.status_code is None
    assert "blank" in str(info.value)
    assert "no request was sent" in str(info.value)


@pytest.mark.parametrize("blank", BLANKS[1:], ids=repr)
def test_a_blank_environment_variable_is_refused_naming_it(
    blank: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAL_KEY", blank)
    with pytest.raises(ltx2.AuthenticationError) as info:
        ltx2.Client("fal")
    assert info.value.status_code is None
    assert "FAL_KEY" in str(info.value)
    assert "blank" in str(info.value)


def test_a_blank_variable_does_not_hide_a_set_one(monkeypatch: pytest.MonkeyPatch) -> None:
    # AI/ML API's variables are read in order; a blank first one is passed over.
    monkeypatch.setenv("AIML_API_KEY", " ")
    monkeypatch.setenv("AIMLAPI_KEY", "secret-key-1234")
    client = ltx2.Client("aimlapi")
    assert "secret-key-1234" not in repr(client)

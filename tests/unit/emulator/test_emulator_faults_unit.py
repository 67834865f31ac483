"""Faults: parsing, validation, and seeded dice."""

from __future__ import annotations

import dataclasses

import pytest

from ltx2.emulator import Faults
from ltx2.emulator._faults import FAULT_NAMES, FaultDice


def test_parse_cli_string() -> None:
    faults = Faults.parse("server_error=0.1, webhook_drop=0.2,server_error_burst=3 slow-seconds=2")
    assert faults == Faults(
        server_error=0.1, webhook_drop=0.2, server_error_burst=3, slow_seconds=2.0
    )
    assert Faults.parse("") == Faults.parse("none") == Faults()
    assert not Faults().any()
    assert faults.any()


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("explode=0.1", "unknown fault"),
        ("server_error", "name=value"),
        ("server_error=lots", "bad value"),
        ("server_error=1.5", "between 0.0 and 1.0"),
        ("server_error_burst=0", "at least 1"),
    ],
)
def test_parse_rejects_bad_strings(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Faults.parse(text)


def test_faults_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Faults().reset = 0.5  # type: ignore[misc]


@pytest.mark.parametrize("name", FAULT_NAMES)
def test_each_fault_hits_near_its_rate_and_a_seed_repeats_it(name: str) -> None:
    faults = Faults(**{name: 0.25})
    a = [
        FaultDice(faults, 11).roll(name) for _ in range(1)
    ]  # fresh dice each time: same first draw
    dice, again = FaultDice(faults, 11), FaultDice(faults, 11)
    run = [dice.roll(name) for _ in range(200)]
    assert run == [again.roll(name) for _ in range(200)]
    assert a[0] == run[0]
    assert 0.15 <= sum(run) / 200 <= 0.35
    other = FaultDice(faults, 12)
    assert run != [other.roll(name) for _ in range(200)]


def test_one_fault_does_not_shift_anothers_sequence() -> None:
    alone = FaultDice(Faults(reset=0.3), 5)
    mixed = FaultDice(Faults(reset=0.3, server_error=0.5), 5)
    seq_a = [alone.roll("reset") for _ in range(100)]
    seq_b = []
    for _ in range(100):
        mixed.roll("server_error")
        seq_b.append(mixed.roll("reset"))
    assert seq_a == seq_b


def test_zero_rate_never_hits() -> None:
    dice = FaultDice(Faults(), None)
    assert not any(dice.roll(name) for name in FAULT_NAMES for _ in range(50))

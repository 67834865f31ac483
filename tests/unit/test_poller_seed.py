"""PollPolicy(seed=...) makes the poller's jitter reproducible (benchmarks rely on it)."""

from __future__ import annotations

import ltx2
from ltx2._poller import Poller


async def _never(key: str) -> None:
    raise AssertionError("no check runs in these tests")


def _intervals(policy: ltx2.PollPolicy, n: int = 20) -> list[float]:
    poller = Poller(_never, policy, (30.0, 120.0), clock=lambda: 1000.0)
    for i in range(n):
        poller.add(f"job-{i}", webhook=False, age=100.0)
    assert poller.job_interval("job-0") == policy.ratio * 100.0  # before jitter
    # The jittered draw is what the seed fixes.
    return [poller._next_interval(poller._entries[f"job-{i}"]) for i in range(n)]


def test_same_seed_same_jitter_other_seed_other_jitter() -> None:
    a = _intervals(ltx2.PollPolicy(seed=7, jitter=0.5))
    b = _intervals(ltx2.PollPolicy(seed=7, jitter=0.5))
    c = _intervals(ltx2.PollPolicy(seed=8, jitter=0.5))
    assert a == b
    assert a != c
    # Jitter only ever shortens the interval, by at most ``jitter``.
    base = ltx2.PollPolicy().ratio * 100.0
    assert all(base * 0.5 <= x <= base for x in a + c)


def test_no_seed_still_jitters_within_bounds() -> None:
    xs = _intervals(ltx2.PollPolicy(jitter=0.5))
    assert len(set(xs)) > 1
    assert all(5.0 <= x <= 10.0 for x in xs)

"""With a webhook expected, the poller is a safety net whose cost is bounded: a webhook that
never comes delays a result by at most max(30 s, 25 % of the job's expected time) (issue 12
item 4: Eachlabs documents webhooks for Workflows V2 only, so one may never come)."""

from __future__ import annotations

import pytest

import ltx2
from ltx2._poller import Poller
from ltx2.providers import PROVIDERS, get


async def _never(key: str) -> None:
    raise AssertionError("no check runs in these tests")


def poll_times(policy: ltx2.PollPolicy, expected: tuple[float, float], until: float) -> list[float]:
    """When the poller polls a webhook job created at 0 (no jitter: jitter only shortens)."""
    now = [0.0]
    poller = Poller(_never, policy, expected, clock=lambda: now[0])
    poller.add("job", webhook=True)
    times = [poller._entries["job"].due]
    while times[-1] < until:
        now[0] = times[-1]
        times.append(times[-1] + poller.interval(times[-1], webhook=True))
    return times


@pytest.mark.parametrize("name", PROVIDERS)
def test_a_missing_webhook_costs_at_most_the_bound(name: str) -> None:
    expected = get(name).capabilities.expected_seconds
    bound = max(30.0, 0.25 * expected[1])
    times = poll_times(ltx2.PollPolicy(jitter=0.0), expected, until=10 * expected[1])
    # Whenever the job ends, the next poll comes within the bound.
    for ended in [i * 0.5 for i in range(int(8 * expected[1]))]:
        next_poll = min(t for t in times if t >= ended)
        assert next_poll - ended <= bound + 1e-9, (name, ended, next_poll)


def test_eachlabs_bound_is_30_s_and_polls_stay_few() -> None:
    expected = get("eachlabs").capabilities.expected_seconds  # seed 000: ~80 s
    times = poll_times(ltx2.PollPolicy(jitter=0.0), expected, until=expected[1])
    assert times[:4] == [30.0, 60.0, 90.0, 120.0]


def test_the_bound_scales_and_follows_its_settings() -> None:
    policy = ltx2.PollPolicy(jitter=0.0, time_scale=0.01, webhook_latency=10, webhook_fraction=0.5)
    times = poll_times(policy, (60.0, 100.0), until=1.0)
    assert times[0] == pytest.approx(0.5)  # max(10, 0.5 * 100) s, scaled


def test_webhook_grace_keeps_the_lazier_safety_net() -> None:
    # For deployments sure of their webhooks: the first poll after grace × longest time.
    times = poll_times(ltx2.PollPolicy(jitter=0.0, webhook_grace=1.5), (60.0, 100.0), 200)
    assert times[0] == 150.0

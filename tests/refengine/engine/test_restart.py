"""The restart policy decisions and docker's back-off (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_runtime.engine.restart import MAX_DELAY, next_delay, should_restart


@pytest.mark.parametrize("policy,code,expected", [
    ("no", 1, False), ("", 1, False), ("always", 0, True), ("always", 1, True),
    ("unless-stopped", 0, True), ("on-failure", 0, False), ("on-failure", 3, True),
])
def test_policy_decides_on_the_exit_code(policy, code, expected):
    assert should_restart(policy, 0, restart_count=0, exit_code=code, manually_stopped=False) is expected


@pytest.mark.parametrize("policy", ["no", "always", "unless-stopped", "on-failure"])
def test_a_manual_stop_is_never_restarted(policy):
    assert should_restart(policy, 0, restart_count=0, exit_code=137, manually_stopped=True) is False


def test_on_failure_restarts_exactly_max_retries_times():
    count = 0
    while should_restart("on-failure", 2, restart_count=count, exit_code=3, manually_stopped=False):
        count += 1
        assert count < 100
    assert count == 2


def test_backoff_doubles_from_100ms_and_resets_after_10s_of_running():
    delays, d = [], 0.0
    for _ in range(5):
        d = next_delay(d, ran_for=0.5)
        delays.append(d)
    assert delays == [0.1, 0.2, 0.4, 0.8, 1.6]
    assert next_delay(1.6, ran_for=10.0) == 0.1


@given(st.lists(st.floats(0, 20), max_size=50))
def test_backoff_stays_within_bounds(runs):
    d = 0.0
    for ran in runs:
        d = next_delay(d, ran_for=ran)
        assert 0.1 <= d <= MAX_DELAY

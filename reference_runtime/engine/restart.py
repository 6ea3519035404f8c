"""Restart policies as pure decisions: docker's restart manager
(moby restartmanager/restartmanager.go) without the clock.

The back-off starts at 100 ms and doubles up to one minute; it starts over
once a container ran for 10 s. A container stopped by hand (stop, kill with
the stop signal or SIGKILL) is never restarted, whatever the policy.

>>> should_restart("on-failure", 2, restart_count=2, exit_code=3, manually_stopped=False)
False
>>> next_delay(0.0, ran_for=1.0), next_delay(0.1, ran_for=1.0), next_delay(0.8, ran_for=12.0)
(0.1, 0.2, 0.1)
"""

from __future__ import annotations

FIRST_DELAY = 0.1
MAX_DELAY = 60.0
RESET_AFTER = 10.0


def should_restart(policy: str, max_retries: int, *, restart_count: int, exit_code: int,
                   manually_stopped: bool) -> bool:
    if manually_stopped or policy in ("", "no"):
        return False
    if policy in ("always", "unless-stopped"):
        return True
    if policy == "on-failure":
        return exit_code != 0 and (max_retries == 0 or restart_count < max_retries)
    return False


def next_delay(previous: float, *, ran_for: float) -> float:
    """The wait before the next restart, given the previous wait (0 for none yet)."""
    if ran_for >= RESET_AFTER:
        previous = 0.0
    delay = FIRST_DELAY if previous == 0 else previous * 2
    return min(delay, MAX_DELAY)

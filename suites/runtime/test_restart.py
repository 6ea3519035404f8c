"""Restart policies: when the engine restarts a container, how often, and
that a manual stop is never undone."""

from __future__ import annotations

import pytest

from .conftest import RESTART, stays, wait_exited

pytestmark = [pytest.mark.requires("restart-policies")]


def restart_count(engine, name: str) -> int:
    return engine.inspect(name)["RestartCount"]


@pytest.mark.spec(RESTART, "no: do not automatically restart the container (the default)")
@pytest.mark.parametrize("policy", [None, "no"], ids=["default", "no"])
def test_policy_no_never_restarts(engine, image, policy):
    flags = ["--restart", policy] if policy else []
    name = engine.create([*flags, image, "sh", "-c", "exit 3"])
    engine.cli("start", name, check=True)
    wait_exited(engine, name)
    stays(engine, name, 2.0, lambda s: s["Status"] == "exited", "a container without restart policy was restarted")
    assert restart_count(engine, name) == 0


@pytest.mark.spec(RESTART, "on-failure[:max-retries]: restart on a non-zero exit, at most max-retries times")
def test_on_failure_restarts_exactly_n_times(engine, image):
    name = engine.create(["--restart", "on-failure:2", image, "sh", "-c", "exit 3"])
    engine.cli("start", name, check=True)
    engine.wait_for(lambda: restart_count(engine, name) >= 2 and engine.state(name)["Status"] == "exited",
                    timeout=60, what=f"{name} to be restarted twice and exit")
    state = stays(engine, name, 3.0, lambda s: s["Status"] == "exited", "restarted past max-retries")
    assert restart_count(engine, name) == 2
    assert state["ExitCode"] == 3


@pytest.mark.spec(RESTART, "on-failure: a zero exit is not a failure and is not restarted")
def test_on_failure_does_not_restart_a_success(engine, image):
    name = engine.create(["--restart", "on-failure:3", image, "true"])
    engine.cli("start", name, check=True)
    wait_exited(engine, name)
    stays(engine, name, 2.0, lambda s: s["Status"] == "exited", "a zero exit was restarted")
    assert restart_count(engine, name) == 0


@pytest.mark.spec(RESTART, "always: always restart the container if it stops")
def test_always_restarts_even_after_success(engine, image):
    name = engine.create(["--restart", "always", image, "true"])
    engine.cli("start", name, check=True)
    engine.wait_for(lambda: restart_count(engine, name) >= 3, timeout=60, what=f"{name} to be restarted 3 times")


@pytest.mark.spec(RESTART, "unless-stopped: like always, except when the container was stopped")
def test_unless_stopped_restarts_until_stopped(engine, image):
    name = engine.create(["--restart", "unless-stopped", image, "sh", "-c", "sleep 0.3; exit 1"])
    engine.cli("start", name, check=True)
    engine.wait_for(lambda: restart_count(engine, name) >= 2, timeout=60, what=f"{name} to be restarted twice")
    engine.cli("stop", "-t", "1", name, check=True, timeout=60)
    after = restart_count(engine, name)
    stays(engine, name, 3.0, lambda s: not s["Running"], "restarted after docker stop")
    assert restart_count(engine, name) == after


@pytest.mark.spec(RESTART, "a restart policy only applies after a container starts successfully; a manual stop is not restarted")
@pytest.mark.parametrize("policy", ["always", "on-failure", "unless-stopped"])
def test_manual_stop_never_triggers_a_restart(engine, image, policy):
    # sleep as PID 1 ignores SIGTERM, so stop ends in SIGKILL and a non-zero status:
    # even on-failure must not treat that as a failure to restart from.
    name = engine.create(["--restart", policy, image, "sleep", "1000"])
    engine.cli("start", name, check=True)
    engine.wait_running(name)
    engine.cli("stop", "-t", "1", name, check=True, timeout=60)
    state = stays(engine, name, 3.0, lambda s: not s["Running"], f"--restart {policy} restarted a stopped container")
    assert state["ExitCode"] == 137
    assert restart_count(engine, name) == 0

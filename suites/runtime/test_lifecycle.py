"""What ``wait``, ``inspect`` and ``--rm`` report about a container's life."""

from __future__ import annotations

import pytest

from .conftest import INSPECT, WAIT, parse_time, wait_exited

RM = "https://docs.docker.com/reference/cli/docker/container/run/#rm"


@pytest.mark.spec(WAIT, "docker wait blocks until the container stops, then prints its exit code")
def test_wait_prints_the_exit_status(engine, image):
    name = engine.create([image, "sh", "-c", "sleep 1; exit 7"])
    engine.cli("start", name, check=True)
    result = engine.cli("wait", name, timeout=60)
    assert result.ok, str(result)
    assert result.stdout.strip() == "7"


@pytest.mark.spec(INSPECT, "State of a running container: Status running, Running true, Pid > 0")
def test_inspect_state_of_a_running_container(engine, image):
    name = engine.create([image, "sleep", "1000"])
    engine.cli("start", name, check=True)
    state = engine.wait_running(name)
    assert state["Status"] == "running"
    assert state["Running"] is True
    assert isinstance(state["Pid"], int) and state["Pid"] > 0
    assert state["ExitCode"] == 0
    assert state["OOMKilled"] is False
    parse_time(state["StartedAt"])


@pytest.mark.spec(INSPECT, "State of an exited container: Status exited, Running false, ExitCode, Pid 0, StartedAt <= FinishedAt")
def test_inspect_state_of_an_exited_container(engine, image):
    name = engine.create([image, "sh", "-c", "sleep 0.5; exit 42"])
    created = engine.state(name)
    assert created["Status"] == "created" and created["Running"] is False
    engine.cli("start", name, check=True)
    state = wait_exited(engine, name)
    assert state["Running"] is False
    assert state["ExitCode"] == 42
    assert state["OOMKilled"] is False
    assert state["Pid"] == 0
    assert parse_time(state["StartedAt"]) <= parse_time(state["FinishedAt"])


@pytest.mark.spec(INSPECT, "StartedAt <= FinishedAt also for a container that exits at once")
def test_started_at_precedes_finished_at_for_an_instant_exit(engine, image):
    # Twelve tries: a recorder that stamps StartedAt after reaping the process
    # gets the order wrong most of the time, and all twelve must be right.
    disordered = []
    for _ in range(12):
        name = engine.create([image, "true"])
        engine.cli("start", "-a", name, check=True)
        state = wait_exited(engine, name)
        if parse_time(state["StartedAt"]) > parse_time(state["FinishedAt"]):
            disordered.append((state["StartedAt"], state["FinishedAt"]))
    assert not disordered, f"{engine.name}: StartedAt after FinishedAt in {len(disordered)}/12 runs: {disordered[:3]}"


@pytest.mark.spec(RM, "--rm: the container is removed when it exits")
def test_rm_removes_the_container_after_exit(engine, image):
    result = engine.run(["--rm", image, "sh", "-c", "exit 3"])
    name = result.argv[result.argv.index("--name") + 1]
    assert result.returncode == 3, str(result)
    engine.wait_for(lambda: not engine.cli("inspect", "--type", "container", name).ok, timeout=10,
                    what=f"{name} to be removed")
    listed = engine.cli("ps", "-a", "-q", "--filter", f"name={name}", check=True)
    assert listed.stdout.strip() == ""

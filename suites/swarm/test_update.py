"""Rolling updates: parallelism and delay, update order, what a failed update
does (pause, continue, rollback), the monitor period, manual rollback, and the
task history ``service ps`` shows.

The tasks' own timestamps tell what happened when (every node is this host,
so they share one clock): an old task's is the moment it was shut down, a
new task's the moment it started running.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from .conftest import (CONVERGE_TIMEOUT, ROLLING_UPDATE, SERVICE_PS, SERVICE_ROLLBACK, SERVICE_UPDATE, Task,
                       replacement_violation, tasks, wait_running)

#: Bounded wait (seconds) for an update of a few tasks to reach its end state.
UPDATE_TIMEOUT = 90.0
#: The short-lived settings every service here starts with.
FAST = ("--stop-grace-period", "1s", "--restart-delay", "1s", "--update-monitor", "1s", "--rollback-monitor", "1s")
#: An updated command whose task fails at once.
FAILING = "sh -c 'exit 1'"


def update(swarm, services, name: str, *flags: str, until: str = "completed") -> dict:
    """``service update --detach FLAGS``; wait until UpdateStatus.State is ``until``."""
    swarm.manager.docker("service", "update", "--detach", *flags, name, check=True)
    swarm.wait(lambda: services.update_state(name) == until, UPDATE_TIMEOUT,
               f"the update of {name} to be {until} (now {services.update_state(name)!r})")
    return services.inspect(name)["UpdateStatus"]


def task_specs(swarm, service: str) -> dict[str, dict]:
    """Task ID -> the container spec the task was made from."""
    ids = [t.id for t in tasks(swarm, service)]
    inspected = json.loads(swarm.manager.docker("inspect", "--type", "task", *ids, check=True).stdout)
    return {t["ID"]: t["Spec"]["ContainerSpec"] for t in inspected}


def settled_tasks(swarm, service: str, before: set[str]) -> list[Task]:
    """The tasks of ``service`` once every task from ``before`` that is to be shut
    down has stopped (an update may complete while the last old task still stops)."""
    def settled():
        every = tasks(swarm, service)
        return every if all(t.state == "shutdown" for t in every if t.id in before and t.desired == "shutdown") \
            else None
    return swarm.wait(settled, UPDATE_TIMEOUT, f"the replaced tasks of {service} to be shut down")


def replaced(before: set[str], after: list[Task]) -> dict[int, tuple[Task, Task]]:
    """Slot -> (its task from before the update, its running task after), for slots
    whose running task is new."""
    by_slot: dict[int, tuple[Task, Task]] = {}
    for new in (t for t in after if t.running and t.id not in before):
        [old] = [t for t in after if t.slot == new.slot and t.id in before]
        by_slot[new.slot] = (old, new)
    return by_slot


@pytest.mark.spec(SERVICE_UPDATE, "--update-parallelism: maximum number of tasks updated simultaneously; "
                                  "--update-delay: delay between updates")
@pytest.mark.spec(ROLLING_UPDATE, "by default the scheduler stops a task, schedules the update for the stopped task, "
                                  "starts the container for the updated task and, once it runs, waits for the delay "
                                  "period before it starts the next one")
def test_parallelism_and_delay_pace_a_stop_first_update(swarm, services):
    replicas, parallelism, delay = 4, 2, 2.0
    name = services.create("--replicas", str(replicas), "--update-parallelism", str(parallelism),
                           "--update-delay", f"{delay:g}s", *FAST)
    before = {t.id for t in wait_running(swarm, name, replicas)}
    update(swarm, services, name, "--env-add", "CFT_UPDATED=1")
    pairs = replaced(before, settled_tasks(swarm, name, before))
    assert sorted(pairs) == list(range(1, replicas + 1)), f"slots replaced by the update: {sorted(pairs)}"
    for slot, (old, new) in sorted(pairs.items()):
        assert old.state == "shutdown" and old.timestamp <= new.timestamp, (
            f"slot {slot}: the new task ran at {new.timestamp} before the old one was shut down at "
            f"{old.timestamp} ({old.state}) in a stop-first update")
    problem = replacement_violation([(old.timestamp, new.timestamp) for old, new in pairs.values()],
                                    parallelism, timedelta(seconds=delay))
    assert not problem, problem
    specs = task_specs(swarm, name)
    assert all("CFT_UPDATED=1" in specs[new.id].get("Env", []) for _, new in pairs.values())


@pytest.mark.spec(SERVICE_UPDATE, "--update-order start-first: the new task is started before the old one is "
                                  "shut down")
def test_start_first_runs_the_new_task_before_the_old_one_stops(swarm, services):
    name = services.create("--replicas", "2", "--update-order", "start-first", "--update-delay", "0s", *FAST)
    before = {t.id for t in wait_running(swarm, name, 2)}
    update(swarm, services, name, "--env-add", "CFT_UPDATED=1")
    pairs = replaced(before, settled_tasks(swarm, name, before))
    assert sorted(pairs) == [1, 2]
    for slot, (old, new) in sorted(pairs.items()):
        assert old.state == "shutdown" and new.timestamp < old.timestamp, (
            f"slot {slot}: the old task was shut down at {old.timestamp} ({old.state}), the new one ran at "
            f"{new.timestamp}: not start-first")


@pytest.mark.spec(ROLLING_UPDATE, "if at any time during an update a task returns FAILED, the scheduler pauses the "
                                  "update; service inspect shows State paused and 'update paused due to failure or "
                                  "early termination of task <ID>'")
def test_a_failed_task_pauses_the_update(swarm, services):
    replicas = 3
    # the delay leaves the failure time to be seen before the next task is stopped
    name = services.create("--replicas", str(replicas), "--update-parallelism", "1", "--update-delay", "3s",
                           "--update-failure-action", "pause", *FAST)
    before = {t.id for t in wait_running(swarm, name, replicas)}
    status = update(swarm, services, name, "--args", FAILING, until="paused")
    prefix = "update paused due to failure or early termination of task "
    assert status["Message"].startswith(prefix), status
    failed_id = status["Message"][len(prefix):]
    every = tasks(swarm, name)
    [failed] = [t for t in every if t.id == failed_id]
    assert failed.id not in before and failed.state == "failed", failed
    assert task_specs(swarm, name)[failed.id]["Args"] == ["sh", "-c", "exit 1"]
    # the other slots were left alone: their tasks from before still run
    untouched = {t.id for t in every if t.running} & before
    assert len(untouched) == replicas - 1, f"tasks from before still running when paused: {len(untouched)}"


@pytest.mark.spec(SERVICE_UPDATE, "--update-failure-action continue: the update goes on past a failed task")
def test_failure_action_continue_updates_every_task(swarm, services):
    replicas = 3
    name = services.create("--replicas", str(replicas), "--update-parallelism", "1", "--update-delay", "0s",
                           "--update-failure-action", "continue", *FAST)
    before = {t.id for t in wait_running(swarm, name, replicas)}
    status = update(swarm, services, name, "--args", FAILING)
    assert status["Message"] == "update completed", status
    every = tasks(swarm, name)
    specs = task_specs(swarm, name)
    kept = [t for t in every if t.id in before and t.desired != "shutdown"]
    assert not kept, f"tasks from before the update not shut down by it: {kept}"
    updated = [t for t in every if t.id not in before]
    assert all(specs[t.id]["Args"] == ["sh", "-c", "exit 1"] for t in updated), "a new task is not of the new spec"

    def failed_slots():
        # the last slot's task may still be starting when the update is declared completed
        # (its monitor window ended first on a busy machine): its failure follows at once
        return {t.slot for t in tasks(swarm, name) if t.id not in before and t.state == "failed"}
    expected = set(range(1, replicas + 1))
    try:
        swarm.wait(lambda: failed_slots() == expected, CONVERGE_TIMEOUT, "a failed updated task in every slot")
    except AssertionError:
        pass  # the assertion below says what was seen
    failed = failed_slots()
    assert failed == expected, f"slots whose updated task failed: {sorted(failed)}"


@pytest.mark.spec(SERVICE_UPDATE, "--update-failure-action rollback: a failed update rolls the service back to its "
                                  "previous version automatically")
def test_failure_action_rollback_restores_the_previous_spec(swarm, services):
    replicas = 3
    name = services.create("--replicas", str(replicas), "--update-parallelism", "1", "--update-delay", "0s",
                           "--update-failure-action", "rollback", *FAST)
    wait_running(swarm, name, replicas)
    original = services.inspect(name)["Spec"]["TaskTemplate"]["ContainerSpec"]["Args"]
    status = update(swarm, services, name, "--args", FAILING, until="rollback_completed")
    assert status["State"] == "rollback_completed", status
    assert services.inspect(name)["Spec"]["TaskTemplate"]["ContainerSpec"]["Args"] == original
    running = wait_running(swarm, name, replicas)
    specs = task_specs(swarm, name)
    assert all(specs[t.id]["Args"] == original for t in running), "a running task is not of the previous spec"


@pytest.mark.spec(SERVICE_UPDATE, "--update-monitor: duration after each task update to monitor for failure")
def test_update_monitor_decides_whether_a_late_failure_counts(swarm, services):
    late = "sh -c 'sleep 4; exit 1'"
    flags = ("--replicas", "2", "--update-parallelism", "1", "--update-delay", "0s", "--update-failure-action",
             "pause", "--stop-grace-period", "1s", "--restart-delay", "1s")
    watched = services.create(*flags, "--update-monitor", "20s")
    unwatched = services.create(*flags, "--update-monitor", "1s")
    wait_running(swarm, watched, 2)
    wait_running(swarm, unwatched, 2)
    for name in (watched, unwatched):
        swarm.manager.docker("service", "update", "--detach", "--args", late, name, check=True)
    swarm.wait(lambda: services.update_state(watched) == "paused", UPDATE_TIMEOUT,
               f"the update of {watched} (monitored 20s) to pause at a task failing after 4s")
    # each end state is final: the order in which the two are reached does not matter
    swarm.wait(lambda: services.update_state(unwatched) in ("completed", "paused"), UPDATE_TIMEOUT,
               f"the update of {unwatched} (monitored 1s) to end")
    assert services.update_state(unwatched) == "completed", (
        f"the update of {unwatched} (monitored 1s) is {services.update_state(unwatched)!r}, the one monitored 20s "
        f"paused: a failure 4s after a task started must not count past a 1s monitor")


@pytest.mark.spec(SERVICE_ROLLBACK, "service rollback reverts a service to its previous configuration")
@pytest.mark.spec(SERVICE_PS, "service ps lists the task history: the tasks an update replaced are shown below "
                              "the slot's current task, names prefixed with \\_, desired state Shutdown")
def test_manual_rollback_and_the_task_history(swarm, services):
    name = services.create("--replicas", "2", "--update-delay", "0s", *FAST)
    first = {t.id for t in wait_running(swarm, name, 2)}
    update(swarm, services, name, "--env-add", "CFT_UPDATED=1")
    rows = [line.split("\t") for line in swarm.manager.docker(
        "service", "ps", "--no-trunc", "--format", "{{.ID}}\t{{.Name}}\t{{.DesiredState}}", name,
        check=True).stdout.splitlines()]
    table = swarm.manager.docker("service", "ps", name, check=True).stdout.splitlines()[1:]
    history = [line.split()[1:3] for line in table if line.split()[1] == "\\_"]
    assert sorted(h[1] for h in history) == [f"{name}.1", f"{name}.2"], f"history rows of service ps: {table}"
    desired = {task_id: state for task_id, _, state in rows}
    assert {desired[t] for t in first} == {"Shutdown"}, f"desired state of the replaced tasks: {rows}"
    swarm.manager.docker("service", "rollback", "--detach", name, check=True)
    swarm.wait(lambda: services.update_state(name) == "rollback_completed", UPDATE_TIMEOUT,
               f"the rollback of {name} to complete (now {services.update_state(name)!r})")
    env = services.inspect(name)["Spec"]["TaskTemplate"]["ContainerSpec"].get("Env") or []
    assert "CFT_UPDATED=1" not in env, f"the spec still has the updated environment after rollback: {env}"
    running = wait_running(swarm, name, 2)
    specs = task_specs(swarm, name)
    assert not any("CFT_UPDATED=1" in (specs[t.id].get("Env") or []) for t in running)
    assert not first & {t.id for t in running}, "rollback brought back a task, not a new task of the old spec"

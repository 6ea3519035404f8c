"""Rolling updates and rollbacks of a service's tasks (pure; modelled on
swarmkit's manager/orchestrator/update/updater.go).

swarmkit runs each update as goroutines with timers; here every step is
derived from the store alone, so any leader continues an update where the last
one left it. The service keeps private bookkeeping ``_update``::

    {"seq": n,                # bumped by every service.progress (its guard)
     "spec_version": v,       # the Spec this run rolls out
     "total": n,              # dirty slots when the run started (failure ratio)
     "tracked": {task: key},  # the tasks this run created, and their slot
     "failures": [task, ...]} # tracked tasks that failed within Monitor

A slot is dirty when it holds more than one task, or a task whose spec is not
the service's (swarmkit's ``IsTaskDirty``). ``Parallelism`` slots are worked on
at once: a worker is busy while its new task has not come up (or ended), and
for ``Delay`` after. stop-first: the old task gets desired ``shutdown`` and the
new one is created desired ``ready``, started once the old one has stopped;
start-first: the new task starts at once and the old one is shut down when the
new one runs. A tracked task that ends (``complete``, ``failed``, ``rejected``)
within ``Monitor`` of running counts as a failure; above ``MaxFailureRatio`` the
``FailureAction`` applies. With no dirty slot left and no failure within the
monitoring period, the update completes.
"""

from __future__ import annotations

from typing import Callable

from .scheduler import node_matches, task_constraints
from .state import NS, RANK, ClusterState, live, parse_time

#: swarmkit's api/defaults: Service.Update and Service.Rollback (the same values).
DEFAULT_CONFIG = {"Parallelism": 1, "Delay": 0, "FailureAction": "pause", "Monitor": 5 * NS,
                  "MaxFailureRatio": 0, "Order": "stop-first"}

#: How long a stop-first replacement waits for its old task before it starts anyway.
OLD_TASK_TIMEOUT = 60.0

ENDED = ("complete", "failed", "rejected", "orphaned")

Slots = dict  # slot key (number or node ID) -> the slot's tasks


def update_config(service: dict, rolling_back: bool) -> dict:
    """The UpdateConfig (RollbackConfig while rolling back) with defaults filled in."""
    given = service["Spec"].get("RollbackConfig" if rolling_back else "UpdateConfig") or {}
    return {**DEFAULT_CONFIG, **{k: v for k, v in given.items() if v not in (None, "")}}


def is_dirty(service: dict, task: dict, node: dict | None) -> bool:
    """Whether ``task`` runs another spec than the service's (a change of the
    constraints alone that its node still meets does not count)."""
    if task.get("_spec_version") == service["_spec_version"]:
        return False
    wanted = service["Spec"].get("TaskTemplate") or {}
    if task.get("_endpoint", {}) != (service["Spec"].get("EndpointSpec") or {}):
        return True
    if task["Spec"] == wanted:
        return False
    placement_only = {**task["Spec"], "Placement": wanted.get("Placement")} == {**wanted, "Placement":
                                                                               wanted.get("Placement")}
    return not (placement_only and node is not None and node_matches(task_constraints(wanted), node))


def _seconds(value) -> float:
    return float(value or 0) / NS


def _done_at(task: dict) -> float | None:
    """When the task came up (or, never having run, ended): a worker's wait ends then."""
    stamp = task.get("_running_at") or task.get("_ended_at")
    return parse_time(stamp) if stamp else None


def _in_flight(task: dict) -> bool:
    return live(task) and RANK[task["Status"]["State"]] < RANK["running"]


def _failed(task: dict, monitor: float) -> bool:
    if task["Status"]["State"] not in ENDED:
        return False
    if "_running_at" not in task or "_ended_at" not in task:
        return True
    return parse_time(task["_ended_at"]) - parse_time(task["_running_at"]) <= monitor


def new_task(service: dict, key, at: str, task_id: str, *, expect_live: list[str], desired: str = "running",
             private: dict | None = None) -> dict:
    """A ``task.create`` command for slot ``key`` of ``service`` (a number, or a node for global)."""
    command = {"op": "task.create", "id": task_id, "at": at, "service": service["ID"], "desired": desired,
               "expect_live": sorted(expect_live),
               "private": {"_endpoint": service["Spec"].get("EndpointSpec") or {}, **(private or {})}}
    command["slot" if isinstance(key, int) else "node"] = key
    return command


def shutdown(task: dict, at: str) -> dict:
    return {"op": "task.desired", "id": task["ID"], "at": at, "desired": "shutdown"}


def update(state: ClusterState, service: dict, slots: Slots, now: float, at: str,
           new_id: Callable[[], str]) -> list[dict]:
    """Commands that move the update (or rollback) of ``service`` on by one step."""
    status = dict(service.get("UpdateStatus") or {})
    phase = status.get("State")
    if phase in ("paused", "rollback_paused"):
        return []
    rolling_back = phase == "rollback_started"
    config = update_config(service, rolling_back)
    monitor = _seconds(config["Monitor"])

    def dirty_slot(tasks: list[dict]) -> bool:
        return len(tasks) > 1 or is_dirty(service, tasks[0], state.nodes.get(tasks[0].get("NodeID", "")))
    dirty = {key: tasks for key, tasks in sorted(slots.items()) if dirty_slot(tasks)}

    current = service.get("_update")
    if current is not None and current.get("spec_version") != service["_spec_version"]:
        current = None
    if not dirty and phase not in ("updating", "rollback_started"):
        return []  # converged, and no run to finish
    guard = {"op": "service.progress", "id": service["ID"], "at": at, "spec_version": service["_spec_version"],
             "seq": (service.get("_update") or {}).get("seq")}
    run = dict(current) if current else {"spec_version": service["_spec_version"], "total": len(dirty),
                                         "tracked": {}, "failures": []}
    run["tracked"], run["failures"] = dict(run["tracked"]), list(run["failures"])
    if not run["tracked"] and not run["total"]:  # a rollback's run learns its size at its first step
        run["total"] = len(dirty)
    changed = current is None
    if phase is None:
        status = {"State": "updating", "StartedAt": at, "Message": "update in progress"}
        changed = True

    # failures of the tasks this run started
    tracked = {task_id: state.tasks.get(task_id) for task_id in run["tracked"]}
    watching = phase in (None, "updating", "rollback_started")  # a finished run's tasks are on their own
    for task_id, task in tracked.items():
        if watching and task is not None and task_id not in run["failures"] and _failed(task, monitor):
            run["failures"].append(task_id)
            changed = True
            if config["FailureAction"] != "continue" and \
                    len(run["failures"]) / max(run["total"], 1) > float(config["MaxFailureRatio"]):
                return [_failure_action(service, guard, run, status, config["FailureAction"], rolling_back, task_id)]

    operations: list[dict] = []
    if dirty:
        parallelism = int(config["Parallelism"]) or len(dirty)
        delay = _seconds(config["Delay"])
        busy = sum(1 for task in tracked.values() if task is not None and (
            _in_flight(task) or (_done_at(task) is not None and now < _done_at(task) + delay)))
        free = parallelism - busy
        for key, tasks in dirty.items():
            clean = [t for t in tasks if not is_dirty(service, t, state.nodes.get(t.get("NodeID", "")))]
            if clean:  # this slot's new task exists: retire the others once it may take over
                keep = next((t for t in clean if t["DesiredState"] == "running"), clean[0])
                if keep.get("_start_first") and _in_flight(keep):
                    continue
                operations += [shutdown(t, at) for t in tasks if t is not keep and live(t)]
                continue
            if free <= 0:
                continue
            free -= 1
            task_id = new_id()
            running = [t for t in tasks if live(t)]
            if config["Order"] == "start-first":
                operations.append(new_task(service, key, at, task_id, expect_live=[t["ID"] for t in running],
                                           private={"_start_first": True}))
            else:
                operations += [shutdown(t, at) for t in running]
                waits = bool(running)
                operations.append(new_task(service, key, at, task_id, expect_live=[],
                                           desired="ready" if waits else "running",
                                           private={"_wait_for": running[0]["ID"], "_start_after": now}
                                           if waits else {}))
            run["tracked"][task_id] = key
            changed = True
    elif phase in ("updating", "rollback_started"):
        period = monitor
        if _seconds(config["Delay"]) >= monitor:  # swarmkit: watch past the last delay
            period = _seconds(config["Delay"]) + 1.0
        present = [t for t in tracked.values() if t is not None]
        last = max((_done_at(t) for t in present if _done_at(t) is not None), default=None)
        if not any(_in_flight(t) for t in present) and (last is None or now >= last + period):
            status.update({"State": "rollback_completed" if rolling_back else "completed",
                           "Message": "rollback completed" if rolling_back else "update completed",
                           "CompletedAt": at})
            changed = True
    if not changed:
        return operations
    return [{"op": "batch", "commands": [{**guard, "update": run, "status": status}, *operations]}]


def _failure_action(service: dict, guard: dict, run: dict, status: dict, action: str, rolling_back: bool,
                    task_id: str) -> dict:
    """swarmkit's pauseUpdate / rollbackUpdate, with its messages."""
    if action == "rollback" and not rolling_back and "PreviousSpec" in service:
        status = {**status, "State": "rollback_started",
                  "Message": f"update rolled back due to failure or early termination of task {task_id}"}
        fresh = {"spec_version": service["_previous_spec_version"], "total": 0, "tracked": {}, "failures": []}
        return {**guard, "update": fresh, "status": status, "rollback": True}
    if action == "rollback" and rolling_back:  # never roll back a rollback
        message = f"rollback paused due to failure or early termination of task {task_id}"
    else:
        message = f"update paused due to failure or early termination of task {task_id}"
    status = {**status, "State": "rollback_paused" if rolling_back else "paused", "Message": message}
    return {**guard, "update": run, "status": status}


def restart_ready(task: dict, state: ClusterState, now: float) -> bool:
    """Whether a task desired ``ready`` may start: its restart delay is over and
    the task it replaces has stopped (or its node is gone, or a minute passed)."""
    if now < float(task.get("_start_after") or 0):
        return False
    old = state.tasks.get(task.get("_wait_for") or "")
    if old is None or RANK[old["Status"]["State"]] > RANK["running"] or not old.get("NodeID"):
        return True
    node = state.nodes.get(old["NodeID"])
    if node is None or node["Status"]["State"] == "down":
        return True
    return now >= parse_time(task["CreatedAt"]) + OLD_TASK_TIMEOUT

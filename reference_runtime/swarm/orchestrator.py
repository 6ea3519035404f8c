"""What the leader proposes so the store converges: :func:`reconcile` (pure;
modelled on swarmkit's manager/orchestrator: replicated, global, restart,
taskreaper, update, and manager/scheduler).

The leader calls ``reconcile(state, now, new_id)`` after every applied change
and every ~0.25 s, and proposes the commands it returns (each one on its own:
one that fails is dropped, the next call proposes what is still needed). It
returns ``[]`` when the store has converged. It sees its own proposals only
once they are applied, so it may propose the same step twice: every command
is idempotent (a desired state only moves forward, a removed task stays
removed) or guarded (``task.create``'s ``expect_live``, ``service.progress``'s
``seq``), so the second one changes nothing or fails.

Timers live in the store: a restart's delay and the task it waits for in the
new task (``_start_after``, ``_wait_for``), an update's progress in the
service (``_update``), agents' reports in task ``Status.Timestamp``; so a new
leader carries on where the last one stopped.

Per service, in swarmkit's order:

- replicated: slots ``1..Replicas``; a task that ended, or whose node is down,
  drained or gone, is shut down and, per its restart policy, replaced by a new
  task in the same slot (desired ``ready`` until the delay passed and the old
  task stopped); scaling up fills the lowest free slots, scaling down shuts
  down the slots on the nodes with the most tasks of the service first.
- global: one task per node that is ready, not drained and meets the
  constraints; a paused node keeps what it runs and gets nothing new.
- the updater (:mod:`.updater`) rolls out a changed spec.
- the constraint enforcer rejects tasks whose node no longer meets their
  constraints (the orchestrator then replaces them).
- the task reaper keeps ``TaskHistoryRetentionLimit`` tasks per slot and
  removes the tasks of removed services and scaled-down slots once stopped.
- the scheduler (:mod:`.scheduler`) places unscheduled tasks.

>>> from reference_runtime.swarm.state import apply
>>> state = ClusterState()
>>> at = rfc3339(0)
>>> for command in ({"op": "cluster.init", "id": "c", "at": at, "tokens": {"Worker": "w", "Manager": "m"}},
...                 {"op": "node.add", "id": "n1", "at": at, "role": "manager", "addr": "10.0.0.2"},
...                 {"op": "service.create", "id": "s1", "at": at, "spec": {"Name": "web", "TaskTemplate": {},
...                                                                        "Mode": {"Replicated": {"Replicas": 1}}}}):
...     _ = apply(state, command, state.index + 1)
>>> [(c["op"], c["slot"], c["id"]) for c in reconcile(state, 0.0, lambda: "t1")]
[('task.create', 1, 't1')]
"""

from __future__ import annotations

from typing import Callable

from . import scheduler, updater
from .state import NS, RANK, ClusterState, live, parse_time, rfc3339, slot_key, tasks_of

#: swarmkit's api/defaults: Service.Task.Restart.
DEFAULT_RESTART = {"Condition": "any", "Delay": 5 * NS, "MaxAttempts": 0, "Window": 0}
DEFAULT_HISTORY = 5

#: States in which a task ended by itself (a stop the orchestrator asked for is "shutdown").
ENDED = ("complete", "failed", "rejected", "orphaned")


def reconcile(state: ClusterState, now: float, new_id: Callable[[], str]) -> list[dict]:
    """The commands to propose now; see the module docstring."""
    if state.cluster is None:
        return []
    at = rfc3339(now)
    commands: list[dict] = []
    for service in sorted(state.services.values(), key=lambda s: s["ID"]):
        tasks = tasks_of(state, service["ID"])
        if "Global" in service["Spec"]["Mode"]:
            commands += _global(state, service, tasks, now, at, new_id)
        else:
            commands += _replicated(state, service, tasks, now, at, new_id)
    commands += [{"op": "task.desired", "id": t["ID"], "at": at, "desired": "running"}
                 for t in sorted(state.tasks.values(), key=lambda t: t["ID"])
                 if t["DesiredState"] == "ready" and t["ServiceID"] in state.services
                 and updater.restart_ready(t, state, now)]
    commands += enforce_constraints(state, at)
    commands += reap(state)
    commands += scheduler.schedule(state, at)
    return commands


def enforce_constraints(state: ClusterState, at: str) -> list[dict]:
    """swarmkit's constraint enforcer: a task whose node no longer meets its
    constraints (labels changed, node demoted) is marked rejected, so the
    orchestrator replaces it elsewhere."""
    commands = []
    for task in sorted(state.tasks.values(), key=lambda t: t["ID"]):
        node = state.nodes.get(task.get("NodeID", ""))
        if node is None or not live(task) or RANK[task["Status"]["State"]] > RANK["running"]:
            continue
        if not scheduler.node_matches(scheduler.task_constraints(task["Spec"]), node):
            commands.append({"op": "task.status", "id": task["ID"], "status": {
                "Timestamp": at, "State": "rejected", "Message": "task rejected by constraint enforcer",
                "Err": "assigned node no longer meets constraints"}})
    return commands


# -- restart supervisor ---------------------------------------------------------
def restart_policy(task: dict) -> dict:
    given = task["Spec"].get("RestartPolicy") or {}
    return {**DEFAULT_RESTART, **{k: v for k, v in given.items() if v not in (None, "")}}


def _history(task: dict, service: dict) -> list[float]:
    """Restart times of this slot under the service's current spec (an update
    starts the count afresh, as swarmkit's restart history does)."""
    return list(task.get("_restarts") or []) if task.get("_spec_version") == service["_spec_version"] else []


def should_restart(task: dict, service: dict) -> bool:
    """swarmkit's shouldRestart: the condition, then MaxAttempts within Window."""
    policy = restart_policy(task)
    if policy["Condition"] == "none":
        return False
    if policy["Condition"] == "on-failure" and task["Status"]["State"] == "complete":
        return False
    attempts = int(policy["MaxAttempts"] or 0)
    if not attempts:
        return True
    history = _history(task, service)
    window = float(policy["Window"] or 0) / NS
    if window:
        ended = parse_time(task["Status"]["Timestamp"])
        history = [when for when in history if ended - window < when < ended]
    return len(history) < attempts


def _node_invalid(state: ClusterState, task: dict) -> bool:
    """swarmkit's InvalidNode: the task's node is gone, down or drained."""
    if not task.get("NodeID"):
        return False
    node = state.nodes.get(task["NodeID"])
    return node is None or node["Status"]["State"] == "down" or node["Spec"].get("Availability") == "drain"


def _needs_restart(state: ClusterState, task: dict) -> bool:
    return live(task) and (RANK[task["Status"]["State"]] > RANK["running"] or _node_invalid(state, task))


def restart(state: ClusterState, service: dict, task: dict, others: list[dict], now: float, at: str,
            new_id: Callable[[], str]) -> dict:
    """Shut ``task`` down and, if its policy says so, replace it in its slot.
    ``others``: the slot's other live tasks (the create's guard)."""
    steps = [updater.shutdown(task, at)]
    if should_restart(task, service):
        node = state.nodes.get(task.get("NodeID", ""))
        drained = node is not None and node["Spec"].get("Availability") == "drain"
        delay = 0.0 if drained else float(restart_policy(task)["Delay"] or 0) / NS
        # wait for the old task to stop, unless it has or its node is down or gone
        waits = RANK[task["Status"]["State"]] <= RANK["running"] and bool(task.get("NodeID")) and \
            node is not None and node["Status"]["State"] != "down"
        private = {"_restarts": _history(task, service) + [now]}
        if waits or delay:
            private.update({"_start_after": now + delay, "_wait_for": task["ID"] if waits else ""})
        steps.append(updater.new_task(service, slot_key(task), at, new_id(), expect_live=[t["ID"] for t in others],
                                      desired="ready" if (waits or delay) else "running", private=private))
    return {"op": "batch", "commands": steps} if len(steps) > 1 else steps[0]


def _newest(tasks: list[dict]) -> dict:
    return max(tasks, key=lambda t: (t["Status"]["Timestamp"], t["CreatedAt"], t["ID"]))


def _kept_dead(task: dict, service: dict) -> bool:
    """A slot whose last task ended by itself and must not restart still counts
    as one of the service's slots (swarmkit's UpdatableTasksInSlot)."""
    return not live(task) and task["DesiredState"] != "remove" and task["Status"]["State"] in ENDED \
        and not should_restart(task, service)


def _slot_pass(state: ClusterState, service: dict, tasks: list[dict], now: float, at: str,
               new_id: Callable[[], str], commands: list[dict]) -> tuple[dict, set]:
    """Restart what must be restarted; returns the occupied slots (key -> tasks
    the updater may work on) and the keys being restarted right now."""
    occupied, restarting = {}, set()
    by_key: dict = {}
    for task in tasks:
        by_key.setdefault(slot_key(task), []).append(task)
    for key, slot in by_key.items():
        alive = [t for t in slot if live(t)]
        ending = [t for t in alive if _needs_restart(state, t)]
        for task in ending:
            others = [t for t in alive if t not in ending]
            commands.append(restart(state, service, task, others, now, at, new_id))
            restarting.add(key)
        alive = [t for t in alive if t not in ending]
        if alive:
            occupied[key] = alive
        elif key in restarting or _kept_dead(_newest(slot), service):
            occupied[key] = [_newest(slot)]
    return occupied, restarting


# -- replicated -----------------------------------------------------------------
def _replicated(state: ClusterState, service: dict, tasks: list[dict], now: float, at: str,
                new_id: Callable[[], str]) -> list[dict]:
    commands: list[dict] = []
    occupied, restarting = _slot_pass(state, service, tasks, now, at, new_id, commands)
    wanted = int(service["Spec"]["Mode"]["Replicated"].get("Replicas", 1))
    keep = occupied
    if len(occupied) < wanted:
        free = (n for n in range(1, len(occupied) + wanted + 1) if n not in occupied)
        for _, slot in zip(range(wanted - len(occupied)), free):
            commands.append(updater.new_task(service, slot, at, new_id(), expect_live=[]))
    elif len(occupied) > wanted:
        ordered = _removal_order(occupied)
        keep = {key: occupied[key] for key in ordered[:wanted]}
        commands += [{"op": "task.desired", "id": t["ID"], "at": at, "desired": "remove"}
                     for key in ordered[wanted:] for t in occupied[key] if live(t)]
    slots = {key: tasks for key, tasks in keep.items() if key not in restarting}
    return commands + updater.update(state, service, slots, now, at, new_id)


def _removal_order(occupied: dict) -> list:
    """Slot keys, the ones to keep first (swarmkit's scale-down order): running
    before not running, low slots before high, then the nth task of the service
    on its node before the (n+1)th, so the nodes with most copies lose first."""
    def running(key) -> bool:
        return any(t["Status"]["State"] == "running" for t in occupied[key])
    keys = sorted(occupied, key=lambda k: (not running(k), k))
    per_node: dict[str, int] = {}
    ranked = []
    for key in keys:
        slot = occupied[key]
        if len(slot) == 1 and slot[0].get("NodeID"):
            per_node[slot[0]["NodeID"]] = per_node.get(slot[0]["NodeID"], 0) + 1
            ranked.append((per_node[slot[0]["NodeID"]], key))
        else:
            ranked.append((float("inf"), key))
    return [key for _, key in sorted(ranked, key=lambda pair: pair[0])]


# -- global ---------------------------------------------------------------------
def _global(state: ClusterState, service: dict, tasks: list[dict], now: float, at: str,
            new_id: Callable[[], str]) -> list[dict]:
    commands: list[dict] = []
    constraints = scheduler.task_constraints(service["Spec"].get("TaskTemplate") or {})
    # tasks on nodes that may not run the service: shut down, never replaced there
    valid = {}
    for node in state.nodes.values():
        ok = node["Status"]["State"] != "down" and node["Spec"].get("Availability") != "drain" \
            and scheduler.node_matches(constraints, node)
        valid[node["ID"]] = ok
    staying = []
    for task in tasks:
        if live(task) and not valid.get(task.get("NodeID", ""), False):
            commands.append(updater.shutdown(task, at))
        else:
            staying.append(task)
    occupied, restarting = _slot_pass(state, service, [t for t in staying if t.get("NodeID") in valid],
                                      now, at, new_id, commands)
    slots = {}
    for node_id, ok in sorted(valid.items()):
        node = state.nodes[node_id]
        if not ok or node["Spec"].get("Availability") == "pause":
            continue  # swarmkit neither adds nor updates tasks on a paused node
        if node_id not in occupied:
            if node["Status"]["State"] == "ready":
                commands.append(updater.new_task(service, node_id, at, new_id(), expect_live=[]))
        elif node_id not in restarting:
            slots[node_id] = occupied[node_id]
    return commands + updater.update(state, service, slots, now, at, new_id)


# -- task reaper ------------------------------------------------------------------
def _never_runs(task: dict) -> bool:
    return RANK[task["Status"]["State"]] < RANK["assigned"] and not live(task)


def _finished(task: dict) -> bool:
    return RANK[task["Status"]["State"]] > RANK["running"] or _never_runs(task)


def reap(state: ClusterState) -> list[dict]:
    """``task.remove`` for tasks no one needs (swarmkit's task reaper)."""
    limit = int(state.cluster["Spec"].get("Orchestration", {}).get("TaskHistoryRetentionLimit", DEFAULT_HISTORY))
    doomed: set[str] = set()
    groups: dict[tuple, list[dict]] = {}
    for task in state.tasks.values():
        service = state.services.get(task["ServiceID"])
        if service is None or task["DesiredState"] == "remove":
            if _finished(task) or state.nodes.get(task.get("NodeID", "")) is None:
                doomed.add(task["ID"])
            continue
        groups.setdefault((task["ServiceID"], slot_key(task)), []).append(task)
    if limit >= 0:
        for (service_id, _), group in groups.items():
            keep = limit
            template = state.services[service_id]["Spec"].get("TaskTemplate") or {}
            attempts = int(restart_policy({"Spec": template})["MaxAttempts"] or 0)
            if attempts:  # swarmkit keeps one more than MaxAttempts
                keep = attempts + 1
            excess = len(group) - keep
            for task in sorted(group, key=lambda t: (t["Status"]["Timestamp"], t["CreatedAt"], t["ID"])):
                if excess <= 0:
                    break
                if _finished(task) and not live(task):  # a live one awaits its restart
                    doomed.add(task["ID"])
                    excess -= 1
    return [{"op": "task.remove", "id": task_id} for task_id in sorted(doomed)]

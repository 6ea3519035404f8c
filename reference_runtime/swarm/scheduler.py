"""Placement: which nodes may run a task, and the node each unscheduled task
goes to (pure; modelled on swarmkit's manager/scheduler and manager/constraint).

A node is a candidate when it passes every filter, in swarmkit's order: ready
(Status ``ready`` and Availability ``active``), then the placement constraints.
Among the candidates a task goes to the node with the fewest tasks of its
service, then the fewest tasks in all, so replicas spread. A task that fits
nowhere stays ``pending`` with swarmkit's explanation, e.g. ``no suitable node
(scheduling constraints not satisfied on 3 nodes)``.

>>> node = {"ID": "n1", "Spec": {"Role": "manager", "Labels": {"zone": "a"}},
...         "Description": {"Hostname": "h1"}, "Status": {"State": "ready"}}
>>> node_matches(parse_constraints(["node.role==manager", "node.labels.zone != b"]), node)
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .state import RANK, ClusterState, live

EQ, NE = "==", "!="


@dataclass(frozen=True)
class Constraint:
    """One ``key==value`` / ``key!=value`` placement constraint."""

    key: str
    operator: str
    value: str

    def matches(self, actual: str) -> bool:
        # swarmkit compares case-insensitively
        same = self.value.lower() == actual.lower()
        return same if self.operator == EQ else not same


def parse_constraints(exprs: list[str]) -> list[Constraint]:
    """Constraints of a Placement; raises ValueError with swarmkit's text.

    >>> parse_constraints(["node.hostname == h1"])
    [Constraint(key='node.hostname', operator='==', value='h1')]
    """
    parsed = []
    for expr in exprs:
        for operator in (EQ, NE):  # swarmkit tries == first: "a!=b==c" splits at ==
            if operator in expr:
                key, value = (part.strip() for part in expr.split(operator, 1))
                if not key:
                    raise ValueError(f"key '{key}' is invalid")
                if not value:
                    raise ValueError(f"value '{value}' is invalid")
                parsed.append(Constraint(key, operator, value))
                break
        else:
            raise ValueError("constraint expected one operator from ==, !=")
    return parsed


def _attribute(key: str, node: dict) -> str | None:
    """The node's value for a constraint key; None for a key swarmkit does not know."""
    lowered = key.lower()
    description = node.get("Description") or {}
    simple = {
        "node.id": lambda: node["ID"],
        "node.hostname": lambda: description.get("Hostname", ""),
        "node.role": lambda: node["Spec"].get("Role", ""),
        "node.platform.os": lambda: (description.get("Platform") or {}).get("OS", ""),
        "node.platform.arch": lambda: (description.get("Platform") or {}).get("Architecture", ""),
        "node.ip": lambda: node.get("Status", {}).get("Addr", ""),
    }
    if lowered in simple:
        return simple[lowered]()
    if lowered.startswith("node.labels.") and len(key) > len("node.labels."):
        return (node["Spec"].get("Labels") or {}).get(key[len("node.labels."):], "")
    if lowered.startswith("engine.labels.") and len(key) > len("engine.labels."):
        return ((description.get("Engine") or {}).get("Labels") or {}).get(key[len("engine.labels."):], "")
    return None


def node_matches(constraints: list[Constraint], node: dict) -> bool:
    """Whether ``node`` meets every constraint (an unknown key never does)."""
    for constraint in constraints:
        actual = _attribute(constraint.key, node)
        if actual is None or not constraint.matches(actual):
            return False
    return True


def task_constraints(spec: dict) -> list[Constraint]:
    """The constraints of a TaskTemplate; invalid ones place nowhere (the store
    refuses them at create, so this is a stored spec from elsewhere)."""
    exprs = ((spec.get("Placement") or {}).get("Constraints")) or []
    try:
        return parse_constraints(exprs)
    except ValueError:
        return [Constraint("node.id", EQ, "")]


def available(node: dict) -> bool:
    """swarmkit's ReadyFilter: the node takes new tasks."""
    return node["Status"]["State"] == "ready" and node["Spec"].get("Availability", "active") == "active"


# swarmkit's filters in its order: (check, explanation for n nodes)
_FILTERS: list[tuple[Callable[[dict, list[Constraint]], bool], Callable[[int], str]]] = [
    (lambda node, _: available(node),
     lambda n: "1 node not available for new tasks" if n == 1 else f"{n} nodes not available for new tasks"),
    (lambda node, constraints: node_matches(constraints, node),
     lambda n: ("scheduling constraints not satisfied on 1 node" if n == 1
                else f"scheduling constraints not satisfied on {n} nodes")),
]


def candidates(nodes: list[dict], spec: dict) -> tuple[list[dict], str]:
    """The nodes that may run a task of ``spec``, and why the others may not
    (swarmkit's pipeline explanation: the most frequent failure first)."""
    constraints = task_constraints(spec)
    fit, failures = [], [0] * len(_FILTERS)
    for node in nodes:
        for number, (check, _) in enumerate(_FILTERS):
            if not check(node, constraints):
                failures[number] += 1
                break
        else:
            fit.append(node)
    ranked = sorted(((number, count) for number, count in enumerate(failures) if count), key=lambda p: -p[1])
    return fit, "; ".join(_FILTERS[number][1](count) for number, count in ranked)


def _busy(task: dict) -> bool:
    """A task that holds its node: desired to run and not ended."""
    return live(task) and RANK[task["Status"]["State"]] <= RANK["running"]


def schedule(state: ClusterState, at: str) -> list[dict]:
    """``task.assign`` / ``task.pending`` commands for the unscheduled tasks."""
    nodes = sorted(state.nodes.values(), key=lambda n: (n.get("Description", {}).get("Hostname", ""), n["ID"]))
    per_service: dict[tuple[str, str], int] = {}
    total: dict[str, int] = {}
    waiting = []
    for task in state.tasks.values():
        node_id = task.get("NodeID", "")
        if node_id and _busy(task) and task["Status"]["State"] not in ("new", "pending"):
            per_service[task["ServiceID"], node_id] = per_service.get((task["ServiceID"], node_id), 0) + 1
            total[node_id] = total.get(node_id, 0) + 1
        # a task desired "ready" waits for its restart delay or an old task first
        if task["Status"]["State"] in ("new", "pending") and task["DesiredState"] == "running" \
                and task["ServiceID"] in state.services:
            waiting.append(task)
    commands = []
    for task in sorted(waiting, key=lambda t: (t["ServiceID"], t.get("Slot", 0), t["CreatedAt"], t["ID"])):
        service_id = task["ServiceID"]
        pinned = task.get("NodeID", "")
        pool = [n for n in nodes if n["ID"] == pinned] if pinned else nodes
        fit, why = candidates(pool, task["Spec"])
        if not fit:
            err = f"no suitable node ({why})" if why else "no suitable node"
            if task["Status"]["State"] != "pending" or task["Status"].get("Err") != err:
                commands.append({"op": "task.pending", "id": task["ID"], "at": at, "err": err})
            continue
        chosen = min(fit, key=lambda n: (per_service.get((service_id, n["ID"]), 0), total.get(n["ID"], 0)))
        per_service[service_id, chosen["ID"]] = per_service.get((service_id, chosen["ID"]), 0) + 1
        total[chosen["ID"]] = total.get(chosen["ID"], 0) + 1
        message = ("scheduler confirmed task can run on preassigned node" if pinned
                   else "scheduler assigned task to node")
        commands.append({"op": "task.assign", "id": task["ID"], "at": at, "node": chosen["ID"], "message": message})
    return commands

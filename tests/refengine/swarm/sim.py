"""A small cluster simulator for the reconcile tests: a store, a leader that
proposes what :func:`reconcile` returns, and agents that move the tasks of
their node as refengine's would, on a clock the test advances."""

from __future__ import annotations

import copy
import json
from typing import Callable

from reference_runtime.swarm.orchestrator import reconcile
from reference_runtime.swarm.state import RANK, ClusterState, StoreError, apply, live, restore, rfc3339, snapshot

START = 1_800_000_000.0
IMAGE = "busybox:cft"


def spec(name: str, replicas: int | None = 1, *, env: list[str] | None = None, **extra) -> dict:
    """A service spec as docker's CLI sends it (only what the tests need)."""
    container = {"Image": IMAGE, "Args": ["sleep", "600"]}
    if env:
        container["Env"] = env
    out = {"Name": name, "Labels": {}, "TaskTemplate": {"ContainerSpec": container, "ForceUpdate": 0},
           "Mode": {"Global": {}} if replicas is None else {"Replicated": {"Replicas": replicas}}}
    for key, value in extra.items():
        if key in ("RestartPolicy", "Placement"):
            out["TaskTemplate"][key] = value
        else:
            out[key] = value
    return out


class Sim:
    """One cluster: ``nodes`` Ready+Active nodes (the first a manager)."""

    def __init__(self, nodes: int = 3, *, state: ClusterState | None = None, now: float = START,
                 first_id: int = 0) -> None:
        self.now = now
        self.ids = first_id
        self.refused: list[tuple[dict, str]] = []
        self.proposed: list[dict] = []
        self.log: list[tuple[dict, int]] = []  # everything committed, refused commands too
        #: task -> the state its container reaches: "running" or "failed" (at start)
        self.outcome: Callable[[dict], str] = lambda task: "running"
        self.batched = False
        self.state = state if state is not None else ClusterState()
        if state is None:
            self.propose({"op": "cluster.init", "id": "cluster", "at": self.at,
                          "tokens": {"Worker": "SWMTKN-1-w", "Manager": "SWMTKN-1-m"}, "tls": {}})
            for number in range(1, nodes + 1):
                self.add_node(f"node{number}", role="manager" if number == 1 else "worker")

    # -- plumbing ----
    @property
    def at(self) -> str:
        return rfc3339(self.now)

    def new_id(self) -> str:
        self.ids += 1
        return f"t{self.ids:04d}"

    def propose(self, command: dict):
        """Commit one command as Raft would: JSON on the wire, the next index."""
        command = json.loads(json.dumps(command))
        index = (self.log[-1][1] if self.log else self.state.index) + 1
        self.log.append((command, index))
        try:
            return apply(self.state, command, index)
        except StoreError as exc:
            self.refused.append((command, str(exc)))
            return None

    def lead(self) -> list[dict]:
        """One leader round: reconcile and propose all."""
        commands = reconcile(self.state, self.now, self.new_id)
        self.proposed += commands
        if self.batched and len(commands) > 1:  # as one atomic batch, as a daemon may propose them
            self.propose({"op": "batch", "commands": commands})
        else:
            for command in commands:
                self.propose(command)
        return commands

    def agents(self) -> None:
        """Every node's agent reports what its containers did."""
        for task in sorted(self.state.tasks.values(), key=lambda t: t["ID"]):
            node = self.state.nodes.get(task.get("NodeID", ""))
            if node is None or node["Status"]["State"] != "ready":
                continue
            state = task["Status"]["State"]
            if task["DesiredState"] == "running" and RANK["assigned"] <= RANK[state] < RANK["running"]:
                self.report(task["ID"], self.outcome(task))
            elif not live(task) and RANK[state] <= RANK["running"] and state not in ("new", "pending"):
                self.report(task["ID"], "shutdown")

    def report(self, task_id: str, state: str, exit_code: int = 0) -> None:
        messages = {"running": "started", "failed": "started", "shutdown": "shutdown", "complete": "finished"}
        status = {"Timestamp": self.at, "State": state, "Message": messages.get(state, state)}
        if state == "failed":
            status["Err"] = "task: non-zero exit (1)"
            exit_code = exit_code or 1
        status["ContainerStatus"] = {"ContainerID": "c" + task_id, "PID": 0 if state != "running" else 42,
                                     "ExitCode": exit_code}
        self.propose({"op": "task.status", "id": task_id, "status": status})

    def step(self, seconds: float = 0.25) -> None:
        self.lead()
        self.agents()
        self.now += seconds

    def run(self, seconds: float, *, every: float = 0.25, check: Callable[["Sim"], None] | None = None) -> None:
        end = self.now + seconds
        while self.now < end:
            self.step(every)
            if check:
                check(self)

    def until(self, done: Callable[["Sim"], bool], limit: float = 120.0, *, every: float = 0.25,
              check: Callable[["Sim"], None] | None = None) -> float:
        start = self.now
        while not done(self):
            assert self.now - start < limit, f"no convergence in {limit} s"
            self.step(every)
            if check:
                check(self)
        return self.now - start

    def leader_change(self) -> "Sim":
        """A new leader: the same committed store (through a JSON snapshot), no memory."""
        data = json.loads(json.dumps(snapshot(self.state)))
        fresh = Sim(state=restore(data), now=self.now, first_id=self.ids + 1000)
        fresh.outcome = self.outcome
        return fresh

    # -- cluster operations, as the CLI asks them ----
    def add_node(self, hostname: str, *, role: str = "worker", labels: dict | None = None) -> str:
        node_id = f"n-{hostname}"
        self.propose({"op": "node.add", "id": node_id, "at": self.at, "role": role, "addr": "10.0.0.1",
                      "labels": labels or {},
                      "description": {"Hostname": hostname, "Platform": {"Architecture": "x86_64", "OS": "linux"}}})
        return node_id

    def set_node(self, node_id: str, **spec) -> None:
        node = self.state.nodes[node_id]
        self.propose({"op": "node.update", "id": node_id, "version": node["Version"]["Index"], "at": self.at,
                      "spec": {**node["Spec"], **spec}})

    def node_down(self, node_id: str) -> None:
        self.propose({"op": "node.status", "id": node_id, "at": self.at, "state": "down"})

    def create(self, service_spec: dict) -> str:
        service_id = f"s-{service_spec['Name']}"
        assert self.propose({"op": "service.create", "id": service_id, "at": self.at, "spec": service_spec})
        return service_id

    def update(self, service_id: str, change: Callable[[dict], None] | None = None, *, rollback: bool = False):
        service = self.state.services[service_id]
        new = copy.deepcopy(service["Spec"])
        if change:
            change(new)
        return self.propose({"op": "service.update", "id": service_id, "version": service["Version"]["Index"],
                             "at": self.at, "spec": new, "rollback": rollback})

    def scale(self, service_id: str, replicas: int) -> None:
        self.update(service_id, lambda s: s["Mode"]["Replicated"].update(Replicas=replicas))

    # -- views ----
    def service(self, service_id: str) -> dict:
        return self.state.services[service_id]

    def tasks(self, service_id: str) -> list[dict]:
        return [t for t in self.state.tasks.values() if t["ServiceID"] == service_id]

    def running(self, service_id: str) -> list[dict]:
        return [t for t in self.tasks(service_id)
                if t["Status"]["State"] == "running" and t["DesiredState"] == "running"]

    def converged(self, service_id: str, count: int) -> bool:
        """``count`` running tasks and none about to be (the suite's wait_running)."""
        every = self.tasks(service_id)
        pending = [t for t in every if t["DesiredState"] == "running" and t["Status"]["State"] != "running"]
        return len(self.running(service_id)) == count and not pending

    def env(self, task: dict) -> list[str]:
        return task["Spec"]["ContainerSpec"].get("Env", [])

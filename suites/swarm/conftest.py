"""Shared helpers of the swarm suite: docker's documentation addresses, the
tasks of a service as the manager reports them, and services that are removed
after each check.

The checks run on the real multi-node cluster of ``--cluster docker``
(:mod:`conformance.cluster`); without it they are skipped. The cluster lives
for the session: a check that changes membership, roles or availability
leaves it as it found it (:meth:`DockerCluster.restore`, run after every
check here, also when one fails).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime

import pytest

from conformance.cluster import DockerCluster, Node, parse_time, replacement_violation  # noqa: F401
from conformance.engine import EngineCallFailed
from conformance.suite_support import ENGINE_DOCS

SWARM = f"{ENGINE_DOCS}/swarm"
COMMANDLINE = f"{ENGINE_DOCS}/reference/commandline"
SWARM_INIT = f"{COMMANDLINE}/swarm_init/"
SWARM_JOIN = f"{COMMANDLINE}/swarm_join/"
SWARM_JOIN_TOKEN = f"{COMMANDLINE}/swarm_join-token/"
SWARM_LEAVE = f"{COMMANDLINE}/swarm_leave/"
NODE_LS = f"{COMMANDLINE}/node_ls/"
NODE_PROMOTE = f"{COMMANDLINE}/node_promote/"
NODE_DEMOTE = f"{COMMANDLINE}/node_demote/"
SERVICE_CREATE = f"{COMMANDLINE}/service_create/"
SERVICE_LS = f"{COMMANDLINE}/service_ls/"
SERVICE_SCALE = f"{COMMANDLINE}/service_scale/"
NODE_RM = f"{COMMANDLINE}/node_rm/"
ROLLING_UPDATE = f"{SWARM}/swarm-tutorial/rolling-update/"
SCALE_TUTORIAL = f"{SWARM}/swarm-tutorial/scale-service/"
DRAIN_TUTORIAL = f"{SWARM}/swarm-tutorial/drain-node/"
TASK_STATES = f"{SWARM}/how-swarm-mode-works/swarm-task-states/"
GLOBAL_SERVICES = f"{SWARM}/how-swarm-mode-works/services/#replicated-and-global-services"
SERVICE_UPDATE = f"{COMMANDLINE}/service_update/"
SERVICE_ROLLBACK = f"{COMMANDLINE}/service_rollback/"
SERVICE_LOGS = f"{COMMANDLINE}/service_logs/"
SERVICE_PS = f"{COMMANDLINE}/service_ps/"
NODE_UPDATE = f"{COMMANDLINE}/node_update/"
RAFT = f"{SWARM}/raft/"
ADMIN_GUIDE = f"{SWARM}/admin_guide/"
QUORUM = f"{ADMIN_GUIDE}#maintain-the-quorum-of-managers"
LOST_QUORUM = f"{ADMIN_GUIDE}#recover-from-losing-the-quorum"
MANAGE_NODES = f"{SWARM}/manage-nodes/"
SERVICES_GUIDE = f"{SWARM}/services/"

#: A main process that idles and ends at SIGTERM at once.
IDLE = ["sh", "-c", "trap 'exit 0' TERM; sleep 600 & wait"]

#: Bounded waits (seconds): tasks of a few busybox containers converge in a
#: few seconds here; a failed task is restarted after the default 5 s delay.
CONVERGE_TIMEOUT = 60.0
NODE_TIMEOUT = 60.0


@dataclass(frozen=True)
class Task:
    """One task of a service, from the manager's ``inspect``."""

    id: str
    slot: int | None
    node_id: str
    state: str
    desired: str
    container_id: str
    #: when the task reached its current state (the node's clock: every node is this host)
    timestamp: datetime | None = None
    error: str = ""

    @property
    def running(self) -> bool:
        return self.state == "running" and self.desired == "running"


def tasks(cluster: DockerCluster, service: str, via: Node | None = None) -> list[Task]:
    """Every task of ``service`` the manager (or the manager ``via``) knows, history included."""
    manager = via or cluster.manager
    ids = manager.docker("service", "ps", "-q", "--no-trunc", service, check=True).stdout.split()
    if not ids:
        return []
    inspected = manager.docker("inspect", "--type", "task", *ids)
    if not inspected.ok:  # a task removed between the two calls: ask again next time
        return []
    return [Task(t["ID"], t.get("Slot"), t.get("NodeID", ""), t["Status"]["State"], t["DesiredState"],
                 t["Status"].get("ContainerStatus", {}).get("ContainerID", ""),
                 parse_time(t["Status"].get("Timestamp", "")), t["Status"].get("Err", ""))
            for t in json.loads(inspected.stdout)]


def running_tasks(cluster: DockerCluster, service: str, via: Node | None = None) -> list[Task]:
    return [t for t in tasks(cluster, service, via) if t.running]


def wait_running(cluster: DockerCluster, service: str, count: int, *, what: str = "",
                 via: Node | None = None, timeout: float = CONVERGE_TIMEOUT) -> list[Task]:
    """Wait until exactly ``count`` tasks of ``service`` run (and no other is about to)."""
    def converged():
        every = tasks(cluster, service, via)
        running = [t for t in every if t.running]
        pending = [t for t in every if t.desired == "running" and not t.running]
        return running if len(running) == count and not pending else None
    return cluster.wait(converged, timeout, what or f"{count} running tasks of {service}")


def node_ids(cluster: DockerCluster) -> dict[str, Node]:
    """Swarm node ID -> node, for the nodes now in the swarm."""
    return {node.swarm_node_id(): node for node in cluster.nodes}


def needs_nodes(cluster: DockerCluster, count: int) -> None:
    if len(cluster.nodes) < count:
        pytest.skip(f"needs a cluster of {count} nodes (--cluster-nodes {count})")


class Services:
    """Services a check creates on the manager; removed, with their containers on
    every node, by :meth:`cleanup`."""

    def __init__(self, cluster: DockerCluster, image: str):
        self.cluster, self.image = cluster, image
        self.names: list[str] = []
        self.prefix = f"cft-{secrets.token_hex(3)}-s"

    def create(self, *flags: str, command: list[str] = IDLE, via: Node | None = None) -> str:
        """``service create --detach FLAGS IMAGE COMMAND`` on the manager (or the manager
        ``via``); returns the service's name. ``--no-resolve-image``: the offline
        image is in no registry, only on every node."""
        name = self.next_name()
        (via or self.cluster.manager).docker("service", "create", "--detach", "--no-resolve-image", "--name", name,
                                             *flags, self.image, *command, check=True)
        return name

    def next_name(self) -> str:
        """A name for a service about to be created by the check itself (removed afterwards too)."""
        name = f"{self.prefix}{len(self.names) + 1}"
        self.names.append(name)
        return name

    def inspect(self, name: str, via: Node | None = None) -> dict:
        return json.loads((via or self.cluster.manager).docker("service", "inspect", name, check=True).stdout)[0]

    def update_state(self, name: str, via: Node | None = None) -> str:
        """``UpdateStatus.State`` of the service ("" before any update)."""
        return (self.inspect(name, via).get("UpdateStatus") or {}).get("State", "")

    def cleanup(self) -> None:
        if not self.names or self.cluster.disturbed:  # a disturbed cluster is rebuilt: nothing of it survives
            self.names.clear()
            return
        self.cluster.manager.docker("service", "rm", *self.names)
        names = set(self.names)

        def gone():
            for node in self.cluster.nodes:
                listed = node.docker("ps", "-a", "--format", '{{.Label "com.docker.swarm.service.name"}}')
                if not listed.ok or names & set(listed.stdout.split()):
                    return False
            return True
        try:
            self.cluster.wait(gone, CONVERGE_TIMEOUT, f"the containers of {', '.join(sorted(names))} to go")
        except AssertionError as exc:
            raise EngineCallFailed(str(exc)) from None
        self.names.clear()


@pytest.fixture
def swarm(cluster: DockerCluster) -> DockerCluster:
    """The session's cluster, put back as it was started after the check."""
    yield cluster
    cluster.restore()


@pytest.fixture
def services(swarm: DockerCluster) -> Services:
    """Services made by the check, removed afterwards (before the cluster is restored)."""
    made = Services(swarm, swarm.images["base"].ref)
    yield made
    made.cleanup()

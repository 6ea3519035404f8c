"""The replicated cluster store: docker-API-shaped objects and the one
deterministic function, :func:`apply`, that changes them.

Every manager holds a :class:`ClusterState` and applies the Raft log's
committed commands to it in order, so all copies stay equal. Objects are kept
exactly as ``docker inspect`` prints them (Engine API v1.41 ``/swarm``,
``/nodes``, ``/services``, ``/tasks``), plus private bookkeeping whose keys
start with ``_`` (stripped by :func:`public`). ``Version.Index`` of an object
is the Raft index of the command that last changed it.

``apply`` never reads the clock or a random source: IDs and timestamps (RFC
3339 UTC with nanoseconds, docker's form) come in the command, chosen by the
proposer. A command that is invalid raises :class:`StoreError` (docker's
daemon text) and changes nothing; a ``batch`` is all or nothing.

>>> s = ClusterState()
>>> apply(s, {"op": "service.create", "id": "s1", "at": "2026-11-28T17:00:00.000000000Z",
...           "spec": {"Name": "web", "TaskTemplate": {}, "Mode": {"Replicated": {"Replicas": 1}}}}, 3)
's1'
>>> s.services["s1"]["Version"], s.services["s1"]["Spec"]["Name"]
({'Index': 3}, 'web')

Commands (``at`` is the proposer's time, RFC 3339; ``version`` is the
``Version.Index`` the caller read: a stale one is "update out of sequence"):

=====================  =========================================================
op                     other keys
=====================  =========================================================
``cluster.init``       id, at, tokens {Worker, Manager}, tls {TrustRoot,
                       CertIssuerSubject, CertIssuerPublicKey}, spec? (merged
                       over the defaults), default_addr_pool?, subnet_size?,
                       data_path_port?
``cluster.update``     version, at, spec? (whole Spec), tokens? {Worker?,
                       Manager?} (rotation: the new secrets)
``node.add``           id, at, role (worker|manager), addr, description
                       (docker's Description), availability? (active),
                       labels?, manager_addr? (managers: ManagerStatus.Addr)
``node.update``        id, version, at, spec {Name?, Labels, Role,
                       Availability}; demoting the last manager is refused
``node.status``        id, at, state (ready|down|unknown|disconnected),
                       addr?, message?, description? (the agent's report
                       of its node); not version-guarded (when a node was
                       last heard from is the leader's, not replicated)
``node.manager``       id, at, status {Leader, Reachability, Addr} | None
``node.remove``        id, at, force?; its unfinished tasks become orphaned,
                       its routing-mesh addresses (``_lb``) free
``service.create``     id, at, spec
``service.update``     id, version, at, spec (the whole new Spec); or
                       ``rollback: true`` (spec ignored) to swap Spec and
                       PreviousSpec ("manually requested rollback")
``service.remove``     id, at; its tasks get desired ``remove``
``service.progress``   id, at, spec_version, seq (the ``_update.seq`` read, or
                       None), update (the new ``_update``), status?
                       (UpdateStatus), rollback? (Spec <- PreviousSpec): the
                       updater's own bookkeeping, guarded so a stale
                       proposal fails; ``Version`` moves only when
                       UpdateStatus or Spec does, as in docker
``task.create``        id, at, service, slot? (replicated) | node? (global),
                       desired? (running|ready), expect_live (IDs of the
                       tasks of that slot, or of that service on that node,
                       whose desired state is at most running: anything else
                       refuses the create, so no slot ever gets two new
                       tasks), private? (``_`` keys to keep on the task)
``task.desired``       id, at, desired: forward only; a task already there or
                       beyond is left as is (idempotent)
``task.assign``        id, at, node, message: a ``new``/``pending`` task with
                       no other node only
``task.pending``       id, at, err: a ``new``/``pending`` task stays pending
``task.status``        id, status {State, Timestamp, Message, Err?,
                       ContainerStatus?, PortStatus?}: the agent's report,
                       ignored when it would move the state backwards or
                       the task is gone
``task.remove``        id (a task that is gone already is fine)
``network.create``     id, at, network (docker's object without ID/Version)
``network.remove``     id
``network.lb``         id, node: the node's own address on the network for the
                       routing mesh (kept as ``_lb``), allocated here
``batch``              commands: [command, ...], applied atomically
=====================  =========================================================

``apply`` returns the ID of the object it created or changed (a list for a
batch). :func:`snapshot` / :func:`restore` turn a state into JSON and back, for
a manager that catches up and for tests; :func:`public` is an object as
``inspect`` shows it, :func:`service_status` a service's REPLICAS counts.

Agents: run a task only once its ``DesiredState`` is ``running`` (``ready``
means "wait": a restart delay, or an old task still stopping).
"""

from __future__ import annotations

import copy
import datetime
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from ..engine.state import rfc3339 as _rfc3339_ns
from .errors import SwarmError
from .networks import (NetworkError, attachments, in_use, lb_address, resolve_ports, task_targets,
                       virtual_ips)

#: docker's task states, in order (swarmkit api/types.proto TaskState).
TASK_STATES = ("new", "pending", "assigned", "accepted", "preparing", "ready", "starting", "running", "complete",
               "shutdown", "failed", "rejected", "remove", "orphaned")
RANK = {name: rank for rank, name in enumerate(TASK_STATES)}
NS = 1_000_000_000

KINDS = ("nodes", "services", "tasks", "networks")


class StoreError(SwarmError):
    """A command the store refuses; ``str()`` is the daemon's text,
    ``rpc error: code = <code> desc = <desc>``."""

    def __init__(self, code: str, desc: str) -> None:
        super().__init__(f"rpc error: code = {code} desc = {desc}")
        self.code, self.desc = code, desc

    def __reduce__(self):
        return type(self), (self.code, self.desc)


def out_of_sequence() -> StoreError:
    return StoreError("Unknown", "update out of sequence")


def not_found(kind: str, object_id: str) -> StoreError:
    return StoreError("NotFound", f"{kind} {object_id} not found")


@dataclass
class ClusterState:
    """One manager's copy of the store (docker-API objects by ID)."""

    cluster: dict | None = None
    nodes: dict[str, dict] = field(default_factory=dict)
    services: dict[str, dict] = field(default_factory=dict)
    tasks: dict[str, dict] = field(default_factory=dict)
    networks: dict[str, dict] = field(default_factory=dict)
    index: int = 0  # the Raft index of the last command applied


# -- time ---------------------------------------------------------------------
def rfc3339(seconds: float) -> str:
    """``seconds`` since the epoch as docker prints times.

    >>> rfc3339(1.5)
    '1970-01-01T00:00:01.500000000Z'
    """
    whole = int(seconds // 1)  # in two parts: a float holds no 19-digit nanosecond count
    return _rfc3339_ns(whole * NS + round((seconds - whole) * NS))


def rfc3339_now() -> str:
    """The current time as docker prints times: for proposers (``apply`` itself
    never reads the clock)."""
    return _rfc3339_ns()


def parse_time(text: str) -> float:
    """Seconds since the epoch of an RFC 3339 UTC time (docker's form, any
    number of fraction digits).

    >>> parse_time('1970-01-01T00:00:01.500000000Z')
    1.5
    """
    body = text.rstrip("Z")
    whole, _, fraction = body.partition(".")
    when = datetime.datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return when.timestamp() + (int(fraction[:9].ljust(9, "0")) / NS if fraction else 0.0)


# -- queries shared by the reconcile modules -------------------------------------
def live(task: dict) -> bool:
    """Desired to run (``ready`` or ``running``): the orchestrator still owns it."""
    return RANK[task.get("DesiredState", "running")] <= RANK["running"]


def slot_key(task: dict) -> int | str:
    """A task's slot: its number (replicated) or its node (global)."""
    return task.get("Slot") or task.get("NodeID", "")


def tasks_of(state: ClusterState, service_id: str) -> list[dict]:
    """The tasks of a service, oldest first (stable: creation time, then ID)."""
    return sorted((t for t in state.tasks.values() if t["ServiceID"] == service_id),
                  key=lambda t: (t["CreatedAt"], t["ID"]))


def spec_version(service: dict) -> int:
    return service["_spec_version"]


def service_status(state: ClusterState, service_id: str) -> dict:
    """docker's ServiceStatus (``service ls`` REPLICAS), counted as swarmkit's
    ListServiceStatuses does: tasks observed running; the replicas, or for a
    global service the tasks desired running."""
    service = state.services.get(service_id)
    replicated = (service or {}).get("Spec", {}).get("Mode", {}).get("Replicated")
    status = {"RunningTasks": 0, "DesiredTasks": int(replicated.get("Replicas", 1)) if replicated else 0,
              "CompletedTasks": 0}
    for task in state.tasks.values():
        if task["ServiceID"] != service_id:
            continue
        status["RunningTasks"] += task["Status"]["State"] == "running"
        if service is not None and not replicated:
            status["DesiredTasks"] += task["DesiredState"] == "running"
    return status


def public(obj: dict) -> dict:
    """``obj`` as the API shows it: without private (``_``) keys, at any depth."""
    if isinstance(obj, dict):
        return {k: public(v) for k, v in obj.items() if not k.startswith("_")}
    if isinstance(obj, list):
        return [public(v) for v in obj]
    return obj


# -- snapshot -------------------------------------------------------------------
def snapshot(state: ClusterState) -> dict:
    """A JSON-able copy of the whole store, private bookkeeping included."""
    return copy.deepcopy({"index": state.index, "cluster": state.cluster,
                          **{kind: getattr(state, kind) for kind in KINDS}})


def restore(data: dict) -> ClusterState:
    """The store of a :func:`snapshot`."""
    data = copy.deepcopy(data)
    return ClusterState(cluster=data.get("cluster"), index=int(data.get("index", 0)),
                        **{kind: data.get(kind, {}) for kind in KINDS})


# -- apply ----------------------------------------------------------------------
class _Tx:
    """Changes of one command (or batch) kept aside until all of it is valid."""

    def __init__(self, state: ClusterState, index: int) -> None:
        self.state, self.index = state, index
        self.cluster: dict | None = None
        self.changed: dict[str, dict[str, dict | None]] = {kind: {} for kind in KINDS}

    def get(self, kind: str, object_id: str) -> dict | None:
        """A private copy of the object, to change and :meth:`put` back."""
        if object_id in self.changed[kind]:
            return self.changed[kind][object_id]
        found = getattr(self.state, kind).get(object_id)
        if found is not None:
            found = copy.deepcopy(found)
            self.changed[kind][object_id] = found
        return found

    def need(self, kind: str, object_id: str) -> dict:
        """:meth:`get`, or NotFound in swarmkit's words ("node ID not found")."""
        found = self.get(kind, object_id)
        if found is None:
            raise not_found(kind[:-1], object_id)
        return found

    def view(self, kind: str) -> list[dict]:
        """Every object, read only (no copies: never change them)."""
        store = getattr(self.state, kind)
        ids = set(store) | set(self.changed[kind])
        found = (self.changed[kind][i] if i in self.changed[kind] else store[i] for i in sorted(ids))
        return [obj for obj in found if obj is not None]

    def put(self, kind: str, obj: dict, at: str | None) -> None:
        obj["Version"] = {"Index": self.index}
        if at is not None:
            obj["UpdatedAt"] = at
        self.changed[kind][obj["ID"]] = obj

    def delete(self, kind: str, object_id: str) -> None:
        self.changed[kind][object_id] = None

    def get_cluster(self) -> dict:
        if self.cluster is None:
            if self.state.cluster is None:
                raise StoreError("FailedPrecondition", "This node is not a swarm manager. Use \"docker swarm init\" "
                                 "or \"docker swarm join\" to connect this node to swarm and try again.")
            self.cluster = copy.deepcopy(self.state.cluster)
        return self.cluster

    def commit(self) -> None:
        if self.cluster is not None:
            self.state.cluster = self.cluster
        for kind, objects in self.changed.items():
            store = getattr(self.state, kind)
            for object_id, obj in objects.items():
                if obj is None:
                    store.pop(object_id, None)
                else:
                    store[object_id] = obj
        self.state.index = max(self.state.index, self.index)


def apply(state: ClusterState, command: dict, index: int) -> Any:
    """Apply one committed command at Raft ``index``; see the module docstring.

    Raises :class:`StoreError` (and changes nothing) when the command is invalid.
    """
    tx = _Tx(state, index)
    result = _dispatch(tx, command)
    tx.commit()
    return result


def _dispatch(tx: _Tx, command: dict) -> Any:
    op = command.get("op")
    handler = _HANDLERS.get(op)
    if handler is None:
        raise StoreError("InvalidArgument", f"unknown store command {op!r}")
    try:
        return handler(tx, command)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # a malformed command from a buggy proposer
        raise StoreError("InvalidArgument", f"malformed {op} command: {exc!r}") from None


def _batch(tx: _Tx, c: dict) -> list:
    return [_dispatch(tx, sub) for sub in c["commands"]]


def _check_version(obj: dict, c: dict) -> None:
    if int(c["version"]) != obj["Version"]["Index"]:
        raise out_of_sequence()


# -- cluster ----
def _default_cluster_spec() -> dict:
    return {"Name": "default", "Labels": {},
            "Orchestration": {"TaskHistoryRetentionLimit": 5},
            "Raft": {"SnapshotInterval": 10000, "KeepOldSnapshots": 0, "LogEntriesForSlowFollowers": 500,
                     "ElectionTick": 10, "HeartbeatTick": 1},
            "Dispatcher": {"HeartbeatPeriod": 5 * NS},
            "CAConfig": {"NodeCertExpiry": 7776000 * NS},
            "TaskDefaults": {},
            "EncryptionConfig": {"AutoLockManagers": False}}


def _cluster_init(tx: _Tx, c: dict) -> str:
    if tx.state.cluster is not None:
        raise StoreError("AlreadyExists", "This node is already part of a swarm. Use \"docker swarm leave\" "
                         "to leave this swarm and join another one.")
    spec = _default_cluster_spec()
    for key, value in (c.get("spec") or {}).items():
        spec[key] = {**spec[key], **value} if isinstance(spec.get(key), dict) and isinstance(value, dict) else value
    tx.cluster = {"ID": c["id"], "Version": {"Index": tx.index}, "CreatedAt": c["at"], "UpdatedAt": c["at"],
                  "Spec": spec, "TLSInfo": dict(c.get("tls") or {}), "RootRotationInProgress": False,
                  "DefaultAddrPool": list(c.get("default_addr_pool") or ["10.0.0.0/8"]),
                  "SubnetSize": int(c.get("subnet_size") or 24), "DataPathPort": int(c.get("data_path_port") or 4789),
                  "JoinTokens": {"Worker": c["tokens"]["Worker"], "Manager": c["tokens"]["Manager"]}}
    return c["id"]


def _cluster_update(tx: _Tx, c: dict) -> str:
    cluster = tx.get_cluster()
    _check_version(cluster, c)
    if c.get("spec") is not None:
        spec = _typed(c["spec"], dict, "swarm spec") or {}
        for key in ("Orchestration", "Raft", "Dispatcher", "CAConfig", "TaskDefaults", "EncryptionConfig"):
            _typed(spec.get(key), dict, f"swarm spec {key}")
        orchestration = spec.get("Orchestration", {})  # read as the reaper reads it
        limit = orchestration.get("TaskHistoryRetentionLimit", 0) if isinstance(orchestration, dict) else None
        if not isinstance(limit, int) or isinstance(limit, bool):
            raise StoreError("InvalidArgument", f"invalid Orchestration: {orchestration!r}")
        cluster["Spec"] = copy.deepcopy(spec)
    for role, token in (c.get("tokens") or {}).items():
        if role not in ("Worker", "Manager"):
            raise StoreError("InvalidArgument", f"unknown join token role {role!r}")
        cluster["JoinTokens"][role] = token
    cluster["Version"] = {"Index": tx.index}
    cluster["UpdatedAt"] = c["at"]
    return cluster["ID"]


# -- nodes ----
def _node_add(tx: _Tx, c: dict) -> str:
    tx.get_cluster()
    if tx.get("nodes", c["id"]) is not None:
        raise StoreError("AlreadyExists", f"node {c['id']} already exists")
    role = c.get("role", "worker")
    node = {"ID": c["id"], "Version": {}, "CreatedAt": c["at"], "UpdatedAt": c["at"],
            "Spec": {"Labels": dict(c.get("labels") or {}), "Role": role,
                     "Availability": c.get("availability", "active")},
            "Description": copy.deepcopy(c.get("description") or {}),
            "Status": {"State": "ready", "Addr": c.get("addr", "")}}
    if role == "manager":
        node["ManagerStatus"] = {"Reachability": "reachable", "Addr": c.get("manager_addr", "")}
    tx.put("nodes", node, c["at"])
    return node["ID"]


def _managers(tx: _Tx) -> list[dict]:
    return [n for n in tx.view("nodes") if n["Spec"]["Role"] == "manager"]


def _node_update(tx: _Tx, c: dict) -> str:
    node = tx.need("nodes", c["id"])
    _check_version(node, c)
    spec = copy.deepcopy(c["spec"])
    _typed(spec, dict, "node spec")
    _typed(spec.get("Labels"), dict, "node labels")
    _typed(spec.get("Name"), str, "node name")
    if spec.get("Role") not in ("worker", "manager"):
        raise StoreError("InvalidArgument", f"invalid role {spec.get('Role')!r}")
    if spec.get("Availability") not in ("active", "pause", "drain"):
        raise StoreError("InvalidArgument", f"invalid availability {spec.get('Availability')!r}")
    if node["Spec"]["Role"] == "manager" and spec["Role"] == "worker" and \
            [n["ID"] for n in _managers(tx)] == [node["ID"]]:
        raise StoreError("FailedPrecondition", "attempting to demote the last manager of the swarm")
    spec.setdefault("Labels", {})
    node["Spec"] = spec
    tx.put("nodes", node, c["at"])
    return node["ID"]


def _node_status(tx: _Tx, c: dict) -> str:
    node = tx.need("nodes", c["id"])
    if c["state"] not in ("ready", "down", "unknown", "disconnected"):
        raise StoreError("InvalidArgument", f"invalid node state {c['state']!r}")
    status = {"State": c["state"], "Addr": c.get("addr", node["Status"].get("Addr", ""))}
    if c.get("message"):
        status["Message"] = c["message"]
    node["Status"] = status
    if c.get("description"):  # what the node's agent reports of itself (hostname, platform, engine)
        node["Description"] = copy.deepcopy(c["description"])
    tx.put("nodes", node, c["at"])
    return node["ID"]


def _node_manager(tx: _Tx, c: dict) -> str:
    node = tx.need("nodes", c["id"])
    if c.get("status") is None:
        node.pop("ManagerStatus", None)
    else:
        status = {k: c["status"][k] for k in ("Leader", "Reachability", "Addr") if k in c["status"]}
        if not status.get("Leader"):
            status.pop("Leader", None)  # docker omits Leader: false
        node["ManagerStatus"] = status
        if status.get("Leader"):  # one leader at a time: the others lose the mark
            for seen in _managers(tx):
                if seen["ID"] != node["ID"] and seen.get("ManagerStatus", {}).get("Leader"):
                    other = tx.get("nodes", seen["ID"])
                    other["ManagerStatus"].pop("Leader")
                    tx.put("nodes", other, c["at"])
    tx.put("nodes", node, c["at"])
    return node["ID"]


def _node_remove(tx: _Tx, c: dict) -> str:
    node = tx.need("nodes", c["id"])
    if node["Spec"]["Role"] == "manager":
        raise StoreError("FailedPrecondition", f"node {node['ID']} is a cluster manager and is a member of the "
                         "raft cluster. It must be demoted to worker before removal")
    if not c.get("force") and node["Status"]["State"] == "ready":
        raise StoreError("FailedPrecondition", f"node {node['ID']} is not down and can't be removed")
    for seen in tx.view("tasks"):
        if seen.get("NodeID") == node["ID"] and RANK[seen["Status"]["State"]] < RANK["complete"]:
            task = tx.get("tasks", seen["ID"])
            task["Status"] = {"Timestamp": c["at"], "State": "orphaned",
                              "Message": "Task belonged to a node that has been deleted"}
            tx.put("tasks", task, c["at"])
    for seen in tx.view("networks"):
        if node["ID"] in (seen.get("_lb") or {}):
            # its routing-mesh address is free again: a node joins with a new ID each time,
            # so addresses kept for removed ones would fill the network (no task address left)
            network = tx.get("networks", seen["ID"])
            del network["_lb"][node["ID"]]
            tx.put("networks", network, None)
    tx.delete("nodes", node["ID"])
    return node["ID"]


# -- services ----
def _mode(spec: dict) -> str:
    mode = spec.get("Mode") or {}
    if not isinstance(mode, dict):
        raise StoreError("InvalidArgument", "Unrecognized service mode")
    if "Global" in mode:
        _typed(mode["Global"], dict, "Mode.Global")
        return "Global"
    if "Replicated" in mode:
        replicas = (_typed(mode["Replicated"], dict, "Mode.Replicated") or {}).get("Replicas", 1)
        if not isinstance(replicas, int) or isinstance(replicas, bool):
            raise StoreError("InvalidArgument", f"invalid Replicas: {replicas!r}")
        if replicas < 0:
            raise StoreError("InvalidArgument", "Number of replicas must be non-negative")
        if replicas > MAX_REPLICAS:
            raise StoreError("InvalidArgument", f"Number of replicas must be at most {MAX_REPLICAS}")
        return "Replicated"
    raise StoreError("InvalidArgument", "Unrecognized service mode")


#: The most replicas a service may have. docker sets no limit; here every task is a
#: Raft entry replayed at each restart and a container on some node, and the leader
#: would propose a whole scale-up in one round, so ``--replicas 100000`` would stall
#: the swarm and fill the disk: it is refused instead.
MAX_REPLICAS = 10_000


def _typed(value: Any, kind: type | tuple, where: str) -> Any:
    """``value`` if it is None, "" or of ``kind`` (never a bool for a number); StoreError otherwise."""
    if value is None or value == "" or (isinstance(value, kind) and not isinstance(value, bool)):
        return None if value == "" else value
    raise StoreError("InvalidArgument", f"invalid {where}: {value!r}")


def _check_shape(spec: Any) -> None:
    """The parts of a service spec that the orchestrator, updater and scheduler
    compute with have the types they expect: a malformed spec that got into the
    log would break the reconcile of every service, at every replay of the log."""
    if not isinstance(spec, dict):
        raise StoreError("InvalidArgument", "a service spec must be an object")
    _typed(spec.get("Name"), str, "service name")
    _typed(spec.get("Labels"), dict, "Labels")
    template = _typed(spec.get("TaskTemplate"), dict, "TaskTemplate") or {}
    for key in ("ContainerSpec", "Placement", "RestartPolicy", "Resources", "LogDriver"):
        _typed(template.get(key), dict, f"TaskTemplate.{key}")
    for expr in _typed((template.get("Placement") or {}).get("Constraints"), list, "constraints") or []:
        _typed(expr, str, "constraint")
    for item in _typed(template.get("Networks"), list, "TaskTemplate.Networks") or []:
        _typed(item, dict, "network attachment")
    policy = template.get("RestartPolicy") or {}
    if policy.get("Condition") not in (None, "", "none", "on-failure", "any"):
        raise StoreError("InvalidArgument", f"invalid restart condition {policy['Condition']!r}")
    for key in ("Delay", "MaxAttempts", "Window"):
        if (_typed(policy.get(key), int, f"RestartPolicy.{key}") or 0) < 0:
            raise StoreError("InvalidArgument", f"RestartPolicy.{key} cannot be negative")
    for config in ("UpdateConfig", "RollbackConfig"):
        given = _typed(spec.get(config), dict, config) or {}
        for key in ("Parallelism", "Delay", "Monitor"):
            if (_typed(given.get(key), int, f"{config}.{key}") or 0) < 0:
                raise StoreError("InvalidArgument", f"{config}.{key} cannot be negative")
        _typed(given.get("MaxFailureRatio"), (int, float), f"{config}.MaxFailureRatio")
        # dockerd's words (daemon/cluster/convert/service.go)
        if given.get("FailureAction") not in (None, "", "pause", "continue", "rollback"):
            raise StoreError("InvalidArgument", f"unrecognized update failure action {given['FailureAction']}")
        if given.get("Order") not in (None, "", "stop-first", "start-first"):
            raise StoreError("InvalidArgument", f"unrecognized update order {given['Order']}")
    endpoint = _typed(spec.get("EndpointSpec"), dict, "EndpointSpec") or {}
    for port in _typed(endpoint.get("Ports"), list, "EndpointSpec.Ports") or []:
        _typed(port, dict, "published port")


#: swarmkit's isValidDNSName: a service's name is a DNS name and part of its containers' names.
_DNS_NAME = re.compile(r"[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*")


def _check_spec(spec: dict) -> None:
    _check_shape(spec)
    if not spec.get("Name"):
        raise StoreError("InvalidArgument", "meta: name must be provided")
    if not _DNS_NAME.fullmatch(spec["Name"]):
        raise StoreError("InvalidArgument", "name must be valid as a DNS name component")
    if len(spec["Name"]) > 63:
        raise StoreError("InvalidArgument", "name must be 63 characters or fewer")
    _mode(spec)
    placement = (spec.get("TaskTemplate") or {}).get("Placement") or {}
    for expr in placement.get("Constraints") or []:
        if "==" not in expr and "!=" not in expr:
            raise StoreError("InvalidArgument", "constraint expected one operator from ==, !=")


def _endpoint(tx: _Tx, service: dict) -> None:
    """``service["Endpoint"]`` for its current spec: the spec, its published ports and
    its virtual IPs (chosen here, in the command, so every manager picks the same)."""
    try:
        vips = virtual_ips(service, tx.view("networks"), tx.view("tasks"), tx.view("services"))
        ports = resolve_ports(service, tx.view("services"), tx.view("nodes"))
    except NetworkError as exc:
        raise StoreError(exc.code, exc.desc) from None
    endpoint = {k: v for k, v in (service.get("Endpoint") or {}).items() if k not in ("VirtualIPs", "Ports")}
    endpoint["Spec"] = copy.deepcopy(service["Spec"].get("EndpointSpec") or {})
    if ports:
        endpoint["Ports"] = ports
    if vips:
        endpoint["VirtualIPs"] = vips
    service["Endpoint"] = endpoint


def _service_create(tx: _Tx, c: dict) -> str:
    spec = copy.deepcopy(c["spec"])
    spec.setdefault("Mode", {"Replicated": {"Replicas": 1}})
    spec.setdefault("TaskTemplate", {})
    _check_spec(spec)
    if any(s["Spec"]["Name"] == spec["Name"] for s in tx.view("services")):
        raise StoreError("AlreadyExists", f"name conflicts with an existing object: service {spec['Name']} "
                         "already exists")
    if tx.get("services", c["id"]) is not None:
        raise StoreError("AlreadyExists", f"service {c['id']} already exists")
    service = {"ID": c["id"], "Version": {}, "CreatedAt": c["at"], "UpdatedAt": c["at"], "Spec": spec,
               "_spec_version": tx.index}
    _endpoint(tx, service)
    tx.put("services", service, c["at"])
    return service["ID"]


def _service_update(tx: _Tx, c: dict) -> str:
    service = tx.need("services", c["id"])
    _check_version(service, c)
    if c.get("rollback"):
        if "PreviousSpec" not in service:
            raise StoreError("FailedPrecondition", f"service {service['ID']} does not have a previous spec")
        service["Spec"], service["PreviousSpec"] = service["PreviousSpec"], service["Spec"]
        service["_spec_version"], service["_previous_spec_version"] = \
            service["_previous_spec_version"], service["_spec_version"]
        service["UpdateStatus"] = {"State": "rollback_started", "StartedAt": c["at"],
                                   "Message": "manually requested rollback"}
    else:
        spec = copy.deepcopy(c["spec"])
        spec.setdefault("TaskTemplate", {})
        _check_spec(spec)
        if _mode(spec) != _mode(service["Spec"]):
            raise StoreError("Unimplemented", "service mode change is not allowed")
        if spec["Name"] != service["Spec"]["Name"]:
            raise StoreError("Unimplemented", "renaming services is not supported")
        service["PreviousSpec"], service["Spec"] = service["Spec"], spec
        service["_previous_spec_version"], service["_spec_version"] = service["_spec_version"], tx.index
        service.pop("UpdateStatus", None)
    service.pop("_update", None)  # a new goal: the updater starts over
    _endpoint(tx, service)
    tx.put("services", service, c["at"])
    return service["ID"]


def _service_remove(tx: _Tx, c: dict) -> str:
    service = tx.need("services", c["id"])
    for seen in tx.view("tasks"):
        if seen["ServiceID"] == service["ID"] and RANK[seen["DesiredState"]] < RANK["remove"]:
            task = tx.get("tasks", seen["ID"])
            task["DesiredState"] = "remove"
            tx.put("tasks", task, c["at"])
    tx.delete("services", service["ID"])
    return service["ID"]


def _service_progress(tx: _Tx, c: dict) -> str:
    service = tx.need("services", c["id"])
    shown = public(service)
    if service["_spec_version"] != c["spec_version"] or \
            (service.get("_update") or {}).get("seq") != c["seq"]:
        raise out_of_sequence()
    update = copy.deepcopy(c["update"])
    update["seq"] = (c["seq"] or 0) + 1
    if c.get("rollback"):
        if "PreviousSpec" not in service:
            raise StoreError("FailedPrecondition", "cannot roll back service because no previous spec is available")
        service["Spec"] = service.pop("PreviousSpec")
        service["_spec_version"] = service.pop("_previous_spec_version")
        _endpoint(tx, service)
    service["_update"] = update
    if c.get("status") is not None:
        service["UpdateStatus"] = copy.deepcopy(c["status"])
    if public(service) == shown:
        # bookkeeping only: docker's Version moves when what inspect shows does, so a
        # user's read-modify-write (scale, update) does not race the updater's steps
        tx.changed["services"][service["ID"]] = service
    else:
        tx.put("services", service, c["at"])
    return service["ID"]


# -- tasks ----
def _task_create(tx: _Tx, c: dict) -> str:
    service = tx.need("services", c["service"])
    if tx.get("tasks", c["id"]) is not None:
        raise StoreError("AlreadyExists", f"task {c['id']} already exists")
    slot, node_id = int(c.get("slot") or 0), c.get("node") or ""
    if not slot and not node_id:
        raise StoreError("InvalidArgument", "a task needs a slot or a node")
    same = [t["ID"] for t in tx.view("tasks") if t["ServiceID"] == service["ID"] and live(t)
            and (t.get("Slot") == slot if slot else t.get("NodeID") == node_id)]
    if sorted(same) != sorted(c.get("expect_live") or []):
        raise out_of_sequence()  # another proposal filled this slot first
    desired = c.get("desired", "running")
    if desired not in ("ready", "running"):
        raise StoreError("InvalidArgument", f"invalid desired state {desired!r}")
    task = {"ID": c["id"], "Version": {}, "CreatedAt": c["at"], "UpdatedAt": c["at"], "Labels": {},
            "Spec": copy.deepcopy(service["Spec"]["TaskTemplate"]), "ServiceID": service["ID"]}
    if slot:
        task["Slot"] = slot
    if node_id:
        task["NodeID"] = node_id
    try:  # the addresses on the task's overlay networks, chosen here so every manager picks the same
        attached = attachments(task_targets(service, tx.view("networks")), tx.view("networks"),
                               tx.view("tasks"), tx.view("services"))
    except NetworkError as exc:
        raise StoreError(exc.code, exc.desc) from None
    if attached:
        task["NetworksAttachments"] = attached
    task["Status"] = {"Timestamp": c["at"], "State": "new", "Message": "created"}
    task["DesiredState"] = desired
    task["_spec_version"] = service["_spec_version"]
    for key, value in (c.get("private") or {}).items():
        if key.startswith("_"):
            task[key] = copy.deepcopy(value)
    tx.put("tasks", task, c["at"])
    return task["ID"]


def _task_desired(tx: _Tx, c: dict) -> str:
    task = tx.need("tasks", c["id"])
    if c["desired"] not in RANK:
        raise StoreError("InvalidArgument", f"invalid desired state {c['desired']!r}")
    if RANK[c["desired"]] > RANK[task["DesiredState"]]:  # never back in time
        task["DesiredState"] = c["desired"]
        tx.put("tasks", task, c["at"])
    return task["ID"]


def _unscheduled(task: dict) -> bool:
    return task["Status"]["State"] in ("new", "pending")


def _task_assign(tx: _Tx, c: dict) -> str:
    task = tx.need("tasks", c["id"])
    tx.need("nodes", c["node"])
    if not _unscheduled(task) or task.get("NodeID", c["node"]) != c["node"]:
        raise out_of_sequence()
    task["NodeID"] = c["node"]
    task["Status"] = {"Timestamp": c["at"], "State": "assigned", "Message": c["message"]}
    tx.put("tasks", task, c["at"])
    return task["ID"]


def _task_pending(tx: _Tx, c: dict) -> str:
    task = tx.need("tasks", c["id"])
    if not _unscheduled(task):
        raise out_of_sequence()
    task["Status"] = {"Timestamp": c["at"], "State": "pending", "Message": "pending task scheduling"}
    if c.get("err"):
        task["Status"]["Err"] = c["err"]
    tx.put("tasks", task, c["at"])
    return task["ID"]


def _task_status(tx: _Tx, c: dict) -> str | None:
    task = tx.get("tasks", c["id"])
    if task is None:
        return None  # a late report on a task the reaper removed: nothing to keep
    status = copy.deepcopy(c["status"])
    if status["State"] not in RANK:
        raise StoreError("InvalidArgument", f"invalid task state {status['State']!r}")
    if RANK[status["State"]] < RANK[task["Status"]["State"]]:
        return task["ID"]  # a late report: the task is further along already
    # when it came up, and when it ended: the updater's monitor and batch delay read them
    if status["State"] == "running" and "_running_at" not in task:
        task["_running_at"] = status["Timestamp"]
    if RANK[status["State"]] > RANK["running"] and "_ended_at" not in task:
        task["_ended_at"] = status["Timestamp"]
    task["Status"] = status
    tx.put("tasks", task, status.get("Timestamp"))
    return task["ID"]


def _task_remove(tx: _Tx, c: dict) -> str:
    if tx.get("tasks", c["id"]) is not None:
        tx.delete("tasks", c["id"])
    return c["id"]


# -- networks ----
def _network_create(tx: _Tx, c: dict) -> str:
    network = copy.deepcopy(c["network"])
    name = network.get("Spec", {}).get("Name", "")
    if any(n.get("Spec", {}).get("Name") == name for n in tx.view("networks")):
        raise StoreError("AlreadyExists", "name conflicts with an existing object")
    network.update({"ID": c["id"], "CreatedAt": c["at"]})
    tx.put("networks", network, c["at"])
    return c["id"]


def _network_lb(tx: _Tx, c: dict) -> str:
    network = tx.need("networks", c["id"])
    tx.need("nodes", c["node"])
    held = network.setdefault("_lb", {})
    if c["node"] not in held:
        try:
            held[c["node"]] = lb_address(network, c["node"], tx.view("tasks"), tx.view("services"))
        except NetworkError as exc:
            raise StoreError(exc.code, exc.desc) from None
        tx.put("networks", network, None)
    return c["id"]


def _network_remove(tx: _Tx, c: dict) -> str:
    network = tx.get("networks", c["id"])
    if network is None:
        raise not_found("network", c["id"])
    why = in_use(network, tx.view("services"), tx.view("tasks"))
    if why:
        raise StoreError("FailedPrecondition", why)
    tx.delete("networks", c["id"])
    return c["id"]


_HANDLERS: dict[str, Callable[[_Tx, dict], Any]] = {
    "batch": _batch,
    "cluster.init": _cluster_init, "cluster.update": _cluster_update,
    "node.add": _node_add, "node.update": _node_update, "node.status": _node_status,
    "node.manager": _node_manager, "node.remove": _node_remove,
    "service.create": _service_create, "service.update": _service_update, "service.remove": _service_remove,
    "service.progress": _service_progress,
    "task.create": _task_create, "task.desired": _task_desired, "task.assign": _task_assign,
    "task.pending": _task_pending, "task.status": _task_status, "task.remove": _task_remove,
    "network.create": _network_create, "network.remove": _network_remove, "network.lb": _network_lb,
}

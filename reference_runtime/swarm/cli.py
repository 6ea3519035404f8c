"""``refengine swarm|node|service ...``: docker's swarm commands, talking to this
node's swarmd over ``<root>/swarm/swarmd.sock`` (:mod:`.wire`'s framed JSON RPC).

Flags, outputs and exit statuses are docker CLI v20.10's: a bad flag exits 125
(``FLAG_ERROR``); an error of the daemon prints ``Error response from daemon:
MESSAGE`` and exits 1, like the client's other errors. The flags' parsing and the
specs they make are in :mod:`.svcflags`, the outputs in :mod:`.render`; this
module calls the daemon and prints.

>>> main(["service", "ls", "--bogus"], "/nonexistent")  # doctest: +SKIP
125
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from typing import Any, Callable, Iterator

from ..errors import RefError
from . import render
from .errors import RpcError, SwarmError
from .svcflags import (SERVICE_CREATE, SERVICE_UPDATE, FlagError, Flags, Opt, SpecError, Table, check_rollback_alone,
                       duration, go_int, go_uint, parse, service_spec, update_spec)

FLAG_ERROR = 125

NOT_MANAGER = ('This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this '
               'node to swarm and try again.')
NOT_IN_SWARM = "This node is not part of a swarm"

#: Bounded waits for the daemon (seconds): a join waits for the managers to answer and
#: issue a certificate; everything else is a store read or one Raft proposal.
CALL_TIMEOUT = 30.0
JOIN_TIMEOUT = 60.0
#: How often ``--detach=false`` looks at the service's tasks (docker: 200 ms).
POLL = 0.2
#: swarmkit's default UpdateConfig.Monitor: how long a converged service must stay so.
DEFAULT_MONITOR = 5.0


class Failure(RefError):
    """A command failed; the message is printed as it is (already in docker's words)."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def daemon_error(exc: SwarmError) -> str:
    """The client's wording of a daemon's error."""
    return f"Error response from daemon: {getattr(exc, 'message', None) or exc}"


def _not_found(exc: SwarmError) -> bool:
    code = getattr(exc, "code", "")
    message = (getattr(exc, "message", None) or str(exc)).lower()
    return code == "NotFound" or "not found" in message or message.startswith("no such")


class Daemon:
    """This node's swarmd, called over its unix socket."""

    def __init__(self, root_path: str) -> None:
        self.root_path = root_path
        self.socket = os.path.join(root_path, "swarm", "swarmd.sock")

    def present(self) -> bool:
        return os.path.exists(self.socket)

    def call(self, method: str, params: dict | None = None, *, timeout: float = CALL_TIMEOUT,
             absent: str = NOT_MANAGER) -> Any:
        """The result of ``method``; SwarmError (RpcError for the daemon's own answer)."""
        if not self.present():
            raise RpcError("Unavailable", absent)
        # the wire (ssl, asyncio) loads only for a call: `refengine info` outside a swarm needs none of it
        from .framing import call_unix

        try:
            return call_unix(self.socket, method, params or {}, timeout)
        except (ConnectionRefusedError, FileNotFoundError):  # a socket left by a daemon that is gone
            raise RpcError("Unavailable", absent) from None

    def stream(self, method: str, params: dict) -> Iterator[dict]:
        if not self.present():
            raise RpcError("Unavailable", NOT_MANAGER)
        from .framing import stream_unix

        return stream_unix(self.socket, method, params)

    def start(self) -> None:
        """Start this root's swarmd unless it runs (``swarm init``/``join``)."""
        from .swarmd import ensure_running  # the daemon's module: only the two commands that start it load it

        ensure_running(self.root_path)


class Context:
    """What a command needs: the daemon, the output streams and the clock."""

    def __init__(self, root_path: str, out=None, err=None, clock: Callable[[], float] | None = None) -> None:
        self.daemon = Daemon(root_path)
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.clock = clock or (lambda: time.time())

    def print(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    # -- lookups shared by several commands ------------------------------------------------

    def self_id(self) -> str:
        return self.daemon.call("info").get("NodeID", "")

    def node_names(self) -> dict[str, str]:
        """Node ID -> name, as docker's IDResolver: the spec's name, else the hostname."""
        names = {}
        for node in self.daemon.call("node.ls", {"filters": {}}) or []:
            name = (node.get("Spec") or {}).get("Name") or (node.get("Description") or {}).get("Hostname") or ""
            names[node.get("ID", "")] = name or node.get("ID", "")
        return names

    def service_names(self) -> dict[str, str]:
        return {s.get("ID", ""): (s.get("Spec") or {}).get("Name", "")
                for s in self.daemon.call("service.ls", {"filters": {}}) or []}


def _filters(entries: list[str]) -> dict[str, list[str]]:
    """``--filter key=value`` (repeatable) as the wire's filters: key -> values."""
    result: dict[str, list[str]] = {}
    for entry in entries:
        key, eq, value = entry.partition("=")
        if not eq:
            raise FlagError(f'invalid argument "{entry}" for "-f, --filter" flag: '
                            "bad format of filter (expected name=value)")
        result.setdefault(key.strip().lower(), []).append(value.strip())
    return result


def _filter_opt() -> Opt:
    return Opt("filter", "f", "list")


def _args(flags: Flags, command: str, usage: str, short: str, *, exactly: int | None = None,
          at_least: int | None = None, none: bool = False) -> list[str]:
    """cobra's argument checks (cli.ExactArgs, RequiresMinArgs, NoArgs): errors exit 1."""
    args = flags.args
    name = f"refengine {command}"
    tail = f"See '{name} --help'.\n\nUsage:  {name} {usage}\n\n{short}"
    if none and args:
        raise Failure(f'"{name}" accepts no arguments.\n{tail}')
    if exactly is not None and len(args) != exactly:
        raise Failure(f'"{name}" requires exactly {exactly} argument{"s" if exactly != 1 else ""}.\n{tail}')
    if at_least is not None and len(args) < at_least:
        raise Failure(f'"{name}" requires at least {at_least} argument{"s" if at_least != 1 else ""}.\n{tail}')
    return args


def _inspect_output(ctx: Context, template: str | None, docs: list[dict]) -> None:
    """docker's inspect output: a JSON array (4-space indent) or each document through the template."""
    if template:
        template = template.replace("\\t", "\t").replace("\\n", "\n")
        ctx.print("".join(render.render(template, d) + "\n" for d in docs))
    else:
        ctx.print(json.dumps(docs, indent=4) + "\n")


# -- swarm ---------------------------------------------------------------------------------

_AVAILABILITIES = ("active", "pause", "drain")


def _availability(flags: Flags) -> str:
    value = flags["availability"].lower()
    if "availability" in flags.changed and value not in _AVAILABILITIES:
        raise Failure(f'invalid availability "{flags["availability"]}", only active, pause and drain are supported')
    return value


_SWARM_SPEC_FLAGS = (
    Opt("task-history-limit", convert=go_int, default=5), Opt("dispatcher-heartbeat", convert=duration),
    Opt("cert-expiry", convert=duration), Opt("max-snapshots", convert=go_uint),
    Opt("snapshot-interval", convert=go_uint), Opt("autolock", kind="bool", default=False),
)


def _merge_swarm_spec(spec: dict, flags: Flags) -> dict:
    """mergeSwarmSpec: the swarm spec with the given ``swarm update`` flags."""
    spec = json.loads(json.dumps(spec or {}))
    if "task-history-limit" in flags.changed:
        spec.setdefault("Orchestration", {})["TaskHistoryRetentionLimit"] = flags["task-history-limit"]
    if "dispatcher-heartbeat" in flags.changed:
        spec.setdefault("Dispatcher", {})["HeartbeatPeriod"] = flags["dispatcher-heartbeat"]
    if "max-snapshots" in flags.changed:
        spec.setdefault("Raft", {})["KeepOldSnapshots"] = flags["max-snapshots"]
    if "snapshot-interval" in flags.changed:
        spec.setdefault("Raft", {})["SnapshotInterval"] = flags["snapshot-interval"]
    if "autolock" in flags.changed:
        spec.setdefault("EncryptionConfig", {})["AutoLockManagers"] = flags["autolock"]
    if "cert-expiry" in flags.changed:
        spec.setdefault("CAConfig", {})["NodeCertExpiry"] = flags["cert-expiry"]
    return spec


def swarm_init(ctx: Context, argv: list[str]) -> int:
    flags = parse(Table((
        Opt("listen-addr", default="0.0.0.0:2377"), Opt("advertise-addr", default=""),
        Opt("data-path-addr", default=""), Opt("data-path-port", convert=go_uint, default=0),
        Opt("force-new-cluster", kind="bool", default=False), Opt("availability", default="active"),
        Opt("default-addr-pool", kind="list"), Opt("default-addr-pool-mask-length", convert=go_uint, default=24),
    ) + _SWARM_SPEC_FLAGS), argv)
    _args(flags, "swarm init", "[OPTIONS]", "Initialize a swarm", none=True)
    params: dict[str, Any] = {"advertise_addr": flags["advertise-addr"], "listen_addr": flags["listen-addr"],
                              "force_new_cluster": flags["force-new-cluster"], "availability": _availability(flags)}
    if flags["default-addr-pool"]:
        params["default_addr_pool"] = flags["default-addr-pool"]
    ctx.daemon.start()
    try:
        node_id = ctx.daemon.call("swarm.init", params, timeout=JOIN_TIMEOUT)["node_id"]
    except RpcError as exc:
        message = exc.message
        if "could not choose an IP address to advertise" in message or "could not find the system's IP" in message:
            raise Failure(daemon_error(exc) + " - specify one with --advertise-addr") from None
        raise
    if flags.given(*(o.name for o in _SWARM_SPEC_FLAGS)):  # docker sends them in the init request's spec
        current = ctx.daemon.call("swarm.inspect")
        ctx.daemon.call("swarm.update", {"spec": _merge_swarm_spec(current.get("Spec") or {}, flags),
                                         "rotate_worker_token": False, "rotate_manager_token": False})
    token = ctx.daemon.call("swarm.join_token", {"role": "worker", "rotate": False})
    ctx.print(render.init_message(node_id, token["token"], token["addr"]))
    return 0


def swarm_join(ctx: Context, argv: list[str]) -> int:
    flags = parse(Table((
        Opt("listen-addr", default="0.0.0.0:2377"), Opt("advertise-addr", default=""),
        Opt("data-path-addr", default=""), Opt("token", default=""), Opt("availability", default="active"),
    )), argv)
    [remote] = _args(flags, "swarm join", "[OPTIONS] HOST:PORT", "Join a swarm as a node and/or manager", exactly=1)
    params = {"remote": remote, "token": flags["token"], "advertise_addr": flags["advertise-addr"],
              "listen_addr": flags["listen-addr"], "availability": _availability(flags)}
    ctx.daemon.start()
    ctx.daemon.call("swarm.join", params, timeout=JOIN_TIMEOUT)
    role = "manager" if ctx.daemon.call("info").get("ControlAvailable") else "worker"
    ctx.print(f"This node joined a swarm as a {role}.\n")
    return 0


def swarm_leave(ctx: Context, argv: list[str]) -> int:
    flags = parse(Table((Opt("force", "f", "bool", default=False),)), argv)
    _args(flags, "swarm leave", "[OPTIONS]", "Leave the swarm", none=True)
    ctx.daemon.call("swarm.leave", {"force": flags["force"]}, timeout=JOIN_TIMEOUT, absent=NOT_IN_SWARM)
    ctx.print("Node left the swarm.\n")
    return 0


def swarm_join_token(ctx: Context, argv: list[str]) -> int:
    flags = parse(Table((Opt("rotate", kind="bool", default=False), Opt("quiet", "q", "bool", default=False))), argv)
    [role] = _args(flags, "swarm join-token", "[OPTIONS] (worker|manager)", "Manage join tokens", exactly=1)
    if role not in ("worker", "manager"):
        raise Failure(f"unknown role {role}")
    if flags["rotate"]:
        ctx.daemon.call("swarm.join_token", {"role": role, "rotate": True})
        if not flags["quiet"]:
            ctx.print(f"Successfully rotated {role} join token.\n\n")
    token = ctx.daemon.call("swarm.join_token", {"role": role, "rotate": False})
    if flags["quiet"]:
        ctx.print(token["token"] + "\n")
    else:
        ctx.print(render.join_instructions(role, token["token"], token["addr"]))
    return 0


def swarm_update(ctx: Context, argv: list[str]) -> int:
    flags = parse(Table(_SWARM_SPEC_FLAGS), argv)
    _args(flags, "swarm update", "[OPTIONS]", "Update the swarm", none=True)
    if not flags.changed:
        ctx.print(_usage("swarm update", "[OPTIONS]", "Update the swarm", _SWARM_SPEC_FLAGS))
        return 0
    current = ctx.daemon.call("swarm.inspect")
    ctx.daemon.call("swarm.update", {"spec": _merge_swarm_spec(current.get("Spec") or {}, flags),
                                     "rotate_worker_token": False, "rotate_manager_token": False})
    ctx.print("Swarm updated.\n")
    return 0


# -- node ----------------------------------------------------------------------------------


def _node_ref(ctx: Context, ref: str) -> str:
    """node.Reference: ``self`` is this node's ID."""
    if ref != "self":
        return ref
    node_id = ctx.self_id()
    if not node_id:
        ctx.daemon.call("node.ls", {"filters": {}})  # the daemon's own error when not a manager
        raise Failure("node ID not found in /info")
    return node_id


def node_ls(ctx: Context, argv: list[str]) -> int:
    flags = parse(Table((Opt("quiet", "q", "bool", default=False), Opt("format", default=""), _filter_opt())), argv)
    _args(flags, "node ls", "[OPTIONS]", "List nodes in the swarm", none=True)
    nodes = ctx.daemon.call("node.ls", {"filters": _filters(flags["filter"])}) or []
    self_id = ctx.self_id() if nodes and not flags["quiet"] else ""
    ctx.print(render.node_list(nodes, self_id, flags["format"] or "table", flags["quiet"]))
    return 0


def node_inspect(ctx: Context, argv: list[str]) -> int:
    flags = parse(Table((Opt("format", "f", default=""), Opt("pretty", kind="bool", default=False))), argv)
    refs = _args(flags, "node inspect", "[OPTIONS] self|NODE [NODE...]",
                 "Display detailed information on one or more nodes", at_least=1)
    template = "pretty" if flags["pretty"] else flags["format"]
    if template.startswith("pretty") and template != "pretty":
        raise Failure("Cannot supply extra formatting options to the pretty template")
    docs, errors = [], []
    for ref in refs:
        try:
            docs.append(ctx.daemon.call("node.inspect", {"ref": _node_ref(ctx, ref)}))
        except RpcError as exc:
            errors.append(f"Error: No such node: {ref}" if _not_found(exc) else daemon_error(exc))
    if template == "pretty":
        ctx.print("".join(render.node_pretty(d) for d in docs))
    else:
        _inspect_output(ctx, template, docs)
    if errors:
        raise Failure("\n".join(errors))
    return 0


def _update_nodes(ctx: Context, refs: list[str], merge: Callable[[dict], bool], success: Callable[[str], str]) -> None:
    """updateNodes: inspect, merge (False: nothing to change), update, report; stops at an error."""
    for ref in refs:
        node = ctx.daemon.call("node.inspect", {"ref": ref})
        if not merge(node):
            continue
        ctx.daemon.call("node.update", {"ref": node["ID"], "version": (node.get("Version") or {}).get("Index", 0),
                                        "spec": node["Spec"]})
        ctx.print(success(ref))


def node_update(ctx: Context, argv: list[str]) -> int:
    flags = parse(Table((Opt("role", default=""), Opt("availability", default=""),
                         Opt("label-add", kind="list"), Opt("label-rm", kind="list"))), argv)
    [ref] = _args(flags, "node update", "[OPTIONS] NODE", "Update a node", exactly=1)

    def merge(node: dict) -> bool:
        spec = node.setdefault("Spec", {})
        if "role" in flags.changed:
            spec["Role"] = flags["role"]
        if "availability" in flags.changed:
            spec["Availability"] = flags["availability"]
        labels = spec.get("Labels") or {}
        for entry in flags["label-add"]:
            key, _, value = entry.partition("=")
            labels[key] = value
        for key in flags["label-rm"]:
            if key not in labels:
                raise Failure(f"key {key} doesn't exist in node's labels")
            del labels[key]
        spec["Labels"] = labels
        return True

    _update_nodes(ctx, [ref], merge, lambda r: f"{r}\n")
    return 0


def _node_role(role: str) -> Callable[[Context, list[str]], int]:
    verb = "promote" if role == "manager" else "demote"

    def command(ctx: Context, argv: list[str]) -> int:
        flags = parse(Table(()), argv)
        short = ("Promote one or more nodes to manager in the swarm" if role == "manager" else
                 "Demote one or more nodes from manager in the swarm")
        refs = _args(flags, f"node {verb}", "NODE [NODE...]", short, at_least=1)

        def merge(node: dict) -> bool:
            if (node.get("Spec") or {}).get("Role") == role:
                ctx.print(f"Node {node['ID']} is already a {role}.\n")
                return False
            node["Spec"]["Role"] = role
            return True

        def success(ref: str) -> str:
            return (f"Node {ref} promoted to a manager in the swarm.\n" if role == "manager" else
                    f"Manager {ref} demoted in the swarm.\n")

        _update_nodes(ctx, refs, merge, success)
        return 0

    return command


def _remove_each(ctx: Context, method: str, refs: list[str], **params) -> int:
    """docker's ``rm`` of several objects: each in turn, its reference printed once removed;
    the errors together at the end (exit 1)."""
    errors = []
    for ref in refs:
        try:
            ctx.daemon.call(method, {"ref": ref, **params})
        except SwarmError as exc:
            errors.append(daemon_error(exc))
            continue
        ctx.print(f"{ref}\n")
    if errors:
        raise Failure("\n".join(errors))
    return 0


def node_rm(ctx: Context, argv: list[str]) -> int:
    flags = parse(Table((Opt("force", "f", "bool", default=False),)), argv)
    refs = _args(flags, "node rm", "[OPTIONS] NODE [NODE...]", "Remove one or more nodes from the swarm", at_least=1)
    return _remove_each(ctx, "node.rm", refs, force=flags["force"])


_PS_FLAGS = (Opt("quiet", "q", "bool", default=False), Opt("no-trunc", kind="bool", default=False),
             Opt("no-resolve", kind="bool", default=False), Opt("format", default=""), _filter_opt())


def _print_tasks(ctx: Context, flags: Flags, tasks: list[dict], *, trunc: bool) -> None:
    resolve = not flags["no-resolve"]
    services = ctx.service_names() if resolve and tasks else {}
    nodes = ctx.node_names() if resolve and tasks else {}
    ctx.print(render.task_list(tasks, services, nodes, source=flags["format"] or "table", quiet=flags["quiet"],
                               trunc=trunc, now=ctx.clock()))


def node_ps(ctx: Context, argv: list[str]) -> int:
    flags = parse(Table(_PS_FLAGS), argv)
    refs = flags.args or ["self"]
    errors, tasks = [], []
    for ref in refs:
        try:
            node = ctx.daemon.call("node.inspect", {"ref": _node_ref(ctx, ref)})
            filters = _filters(flags["filter"])
            filters["node"] = [node["ID"]]
            tasks += ctx.daemon.call("task.ls", {"filters": filters}) or []
        except SwarmError as exc:
            errors.append(daemon_error(exc))
    if not errors or tasks:
        _print_tasks(ctx, flags, tasks, trunc=not flags["no-trunc"])
    if errors:
        raise Failure("\n".join(errors))
    return 0


# -- service -------------------------------------------------------------------------------


def _find_service(ctx: Context, ref: str) -> dict:
    try:
        return ctx.daemon.call("service.inspect", {"ref": ref})
    except RpcError as exc:
        if _not_found(exc):
            raise Failure(f"Error: no such service: {ref}") from None
        raise


def service_create(ctx: Context, argv: list[str]) -> int:
    flags = parse(SERVICE_CREATE, argv)
    _args(flags, "service create", "[OPTIONS] IMAGE [COMMAND] [ARG...]", "Create a new service", at_least=1)
    spec = service_spec(flags)
    # --with-registry-auth and --no-resolve-image: no registry is asked here (images are local)
    response = ctx.daemon.call("service.create", {"spec": spec})
    for warning in response.get("Warnings") or []:
        ctx.err.write(f"{warning}\n")
    ctx.print(f"{response['ID']}\n")
    if not flags["detach"]:
        wait_converged(ctx, response["ID"], flags["quiet"])
    return 0


def service_ls(ctx: Context, argv: list[str]) -> int:
    flags = parse(Table((Opt("quiet", "q", "bool", default=False), Opt("format", default=""), _filter_opt())), argv)
    _args(flags, "service ls", "[OPTIONS]", "List services", none=True)
    services = ctx.daemon.call("service.ls", {"filters": _filters(flags["filter"])}) or []
    if not flags["quiet"] and any(s.get("ServiceStatus") is None for s in services):
        ids = [s["ID"] for s in services]
        tasks = ctx.daemon.call("task.ls", {"filters": {"service": ids}}) if ids else []
        services = render.service_status(services, tasks or [], ctx.daemon.call("node.ls", {"filters": {}}) or [])
    ctx.print(render.service_list(services, flags["format"] or "table", flags["quiet"]))
    return 0


def resolve_services(services: list[dict], refs: list[str]) -> tuple[list[str], list[str]]:
    """service ps's createFilter: each ref as an ID, a name, then an ID prefix.
    Returns (service IDs, "no such service" messages); Failure for an ambiguous prefix."""
    ids, missing = [], []
    for ref in refs:
        by_id = [s for s in services if s.get("ID") == ref]
        by_name = [s for s in services if (s.get("Spec") or {}).get("Name") == ref]
        if by_id or by_name:
            ids.append((by_id or by_name)[0]["ID"])
            continue
        prefixed = [s for s in services if s.get("ID", "").startswith(ref)]
        if len(prefixed) > 1:
            raise Failure(f"multiple services found with provided prefix: {ref}")
        if prefixed:
            ids.append(prefixed[0]["ID"])
        else:
            missing.append(f"no such service: {ref}")
    return ids, missing


def service_ps(ctx: Context, argv: list[str]) -> int:
    flags = parse(Table(_PS_FLAGS), argv)
    refs = _args(flags, "service ps", "[OPTIONS] SERVICE [SERVICE...]", "List the tasks of one or more services",
                 at_least=1)
    ids, missing = resolve_services(ctx.daemon.call("service.ls", {"filters": {}}) or [], refs)
    if not ids:
        raise Failure("\n".join(missing))
    filters = _filters(flags["filter"])
    filters["service"] = ids
    if "node" in filters:
        filters["node"] = [_node_ref(ctx, n) for n in filters["node"]]
    # service ps -q prints whole IDs (docker sets --no-trunc with -q here, not in node ps)
    _print_tasks(ctx, flags, ctx.daemon.call("task.ls", {"filters": filters}) or [],
                 trunc=not (flags["no-trunc"] or flags["quiet"]))
    if missing:
        raise Failure("\n".join(missing))
    return 0


def service_inspect(ctx: Context, argv: list[str]) -> int:
    flags = parse(Table((Opt("format", "f", default=""), Opt("pretty", kind="bool", default=False))), argv)
    refs = _args(flags, "service inspect", "[OPTIONS] SERVICE [SERVICE...]",
                 "Display detailed information on one or more services", at_least=1)
    if flags["pretty"] and flags["format"]:
        raise Failure("--format is incompatible with human friendly format")
    template = "pretty" if flags["pretty"] else flags["format"]
    if template.startswith("pretty") and template != "pretty":
        raise Failure("Cannot supply extra formatting options to the pretty template")
    docs, errors = [], []
    for ref in refs:
        try:
            docs.append(_find_service(ctx, ref))
        except Failure as exc:
            errors.append(str(exc))
        except RpcError as exc:
            errors.append(daemon_error(exc))
    if template == "pretty":
        # network targets stay as the spec names them: refengine's swarm has no network API to resolve IDs
        ctx.print("".join(render.service_pretty(d, ctx.clock()) for d in docs))
    else:
        _inspect_output(ctx, template, docs)
    if errors:
        raise Failure("\n".join(errors))
    return 0


def _send_update(ctx: Context, service: dict, spec: dict, rollback: str | None) -> None:
    response = ctx.daemon.call("service.update", {"ref": service["ID"],
                                                  "version": (service.get("Version") or {}).get("Index", 0),
                                                  "spec": spec, "rollback": rollback}) or {}
    for warning in response.get("Warnings") or []:
        ctx.err.write(f"{warning}\n")


def service_update(ctx: Context, argv: list[str]) -> int:
    flags = parse(SERVICE_UPDATE, argv)
    [ref] = _args(flags, "service update", "[OPTIONS] SERVICE", "Update a service", exactly=1)
    service = _find_service(ctx, ref)
    check_rollback_alone(flags)
    if flags["rollback"]:  # the daemon rolls back (API >= 1.28): the spec is sent unchanged
        _send_update(ctx, service, service["Spec"], "previous")
    else:
        _send_update(ctx, service, update_spec(service["Spec"], flags), None)
    ctx.print(f"{ref}\n")
    if not flags["detach"]:
        wait_converged(ctx, service["ID"], flags["quiet"])
    return 0


def service_rollback(ctx: Context, argv: list[str]) -> int:
    flags = parse(Table((Opt("quiet", "q", "bool", default=False), Opt("detach", "d", "bool", default=False))), argv)
    [ref] = _args(flags, "service rollback", "[OPTIONS] SERVICE", "Revert changes to a service's configuration",
                  exactly=1)
    service = _find_service(ctx, ref)
    _send_update(ctx, service, service["Spec"], "previous")
    ctx.print(f"{ref}\n")
    if not flags["detach"]:
        wait_converged(ctx, service["ID"], flags["quiet"])
    return 0


def service_scale(ctx: Context, argv: list[str]) -> int:
    flags = parse(Table((Opt("detach", "d", "bool", default=False),)), argv)
    usage, short = "SERVICE=REPLICAS [SERVICE=REPLICAS...]", "Scale one or multiple replicated services"
    args = _args(flags, "service scale", usage, short, at_least=1)
    for arg in args:
        if "=" not in arg:
            raise Failure(f"Invalid scale specifier '{arg}'.\nSee 'refengine service scale --help'.\n\n"
                          f"Usage:  refengine service scale {usage}\n\n{short}")
    errors, scaled = [], []
    for arg in args:
        name, _, count = arg.partition("=")
        try:
            replicas = go_uint(count)
        except ValueError as exc:
            errors.append(f"{name}: invalid replicas value {count}: {exc}")
            continue
        try:
            service = ctx.daemon.call("service.inspect", {"ref": name})
            spec = json.loads(json.dumps(service["Spec"]))
            mode = spec.get("Mode") or {}
            # only the replica count changes: the daemon sees no new task spec, so no rolling update
            if mode.get("Replicated") is not None:
                mode["Replicated"]["Replicas"] = replicas
            elif mode.get("ReplicatedJob") is not None:
                mode["ReplicatedJob"]["TotalCompletions"] = replicas
            else:
                raise Failure("scale can only be used with replicated or replicated-job mode")
            _send_update(ctx, service, spec, None)
        except Failure as exc:
            errors.append(f"{name}: {exc}")
            continue
        except SwarmError as exc:
            errors.append(f"{name}: {daemon_error(exc)}")
            continue
        ctx.print(f"{name} scaled to {replicas}\n")
        scaled.append(service["ID"])
    if not flags["detach"]:
        for service_id in scaled:
            try:
                wait_converged(ctx, service_id, False)
            except (Failure, SwarmError) as exc:
                errors.append(f"{service_id}: {exc}")
    if errors:
        raise Failure("\n".join(errors))
    return 0


def service_rm(ctx: Context, argv: list[str]) -> int:
    flags = parse(Table(()), argv)
    refs = _args(flags, "service rm", "SERVICE [SERVICE...]", "Remove one or more services", at_least=1)
    return _remove_each(ctx, "service.rm", refs)


def service_logs(ctx: Context, argv: list[str]) -> int:
    flags = parse(Table((
        Opt("no-resolve", kind="bool", default=False), Opt("no-trunc", kind="bool", default=False),
        Opt("raw", kind="bool", default=False), Opt("no-task-ids", kind="bool", default=False),
        Opt("follow", "f", "bool", default=False), Opt("since", default=""),
        Opt("timestamps", "t", "bool", default=False), Opt("details", kind="bool", default=False),
        Opt("tail", "n", default="all"),
    )), argv)
    [target] = _args(flags, "service logs", "[OPTIONS] SERVICE|TASK", "Fetch the logs of a service or task",
                     exactly=1)
    try:
        service = ctx.daemon.call("service.inspect", {"ref": target})
        tty = bool((((service.get("Spec") or {}).get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("TTY"))
        replicas = ((service["Spec"].get("Mode") or {}).get("Replicated") or {}).get("Replicas")
        padding = len(str(replicas)) if replicas is not None else 1
    except RpcError as exc:
        if not _not_found(exc):
            raise
        try:
            task = ctx.daemon.call("task.inspect", {"ref": target})
        except RpcError as exc2:
            if _not_found(exc2):
                raise Failure(f"no such task or service: {target}") from None
            raise
        tty = bool(((task.get("Spec") or {}).get("ContainerSpec") or {}).get("TTY"))
        padding = len(str(task.get("Slot") or 0))
    if tty and not flags["raw"]:
        raise Failure("tty service logs only supported with --raw")
    params = {"ref": target, "follow": flags["follow"], "tail": flags["tail"], "timestamps": flags["timestamps"],
              "since": flags["since"], "details": flags["details"]}
    prefixes: dict[tuple[str, str, str], str] = {}
    names: dict[str, dict[str, str]] = {}

    def prefix(entry: dict) -> str:
        key = (entry.get("task_id", ""), entry.get("node_id", ""), entry.get("service_id", ""))
        if key not in prefixes:
            if not names:
                names["nodes"] = {} if flags["no-resolve"] else ctx.node_names()
                names["services"] = {} if flags["no-resolve"] else ctx.service_names()
            task = ctx.daemon.call("task.inspect", {"ref": key[0]})
            prefixes[key] = render.log_prefix(names["services"].get(key[2], key[2]), task,
                                              names["nodes"].get(key[1], key[1]), no_trunc=flags["no-trunc"],
                                              no_task_ids=flags["no-task-ids"], padding=padding)
        return prefixes[key]

    for entry in ctx.daemon.stream("service.logs", params):
        line = entry.get("line", "")
        line = line if line.endswith("\n") else line + "\n"
        stamp = f"{_log_time(entry.get('time'))} " if flags["timestamps"] else ""
        text = stamp + line if flags["raw"] or tty else stamp + prefix(entry) + line
        stream = ctx.err if entry.get("stream") == "stderr" else ctx.out
        stream.write(text)
        stream.flush()
    return 0


def _log_time(value: Any) -> str:
    """A log entry's time as docker prints it (RFC 3339 with nanoseconds)."""
    if isinstance(value, (int, float)):
        import datetime as dt

        moment = dt.datetime.fromtimestamp(value, dt.timezone.utc)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}000Z"
    return str(value or "")


# -- --detach=false ------------------------------------------------------------------------


def wait_converged(ctx: Context, service_id: str, quiet: bool) -> None:
    """docker's waitOnService (progress.ServiceProgress) without its progress bars:
    wait until the service's tasks converge and stay so for the update monitor
    period; an update that pauses or rolls back ends the wait with docker's error."""
    def say(line: str) -> None:
        if not quiet:
            ctx.print(line + "\n")

    converged_at: float | None = None
    last: tuple[int, int] | None = None
    rollback = False
    try:
        while True:
            service = ctx.daemon.call("service.inspect", {"ref": service_id})
            monitor = ((service.get("Spec") or {}).get("UpdateConfig") or {}).get("Monitor") or 0
            monitor_s = monitor / 1e9 if monitor else DEFAULT_MONITOR
            state = (service.get("UpdateStatus") or {}).get("State", "")
            message = (service.get("UpdateStatus") or {}).get("Message", "")
            if state == "paused":
                raise Failure(f"service update paused: {message}")
            if state == "rollback_paused":
                raise Failure(f"service rollback paused: {message}")
            if state == "rollback_started" and not rollback:
                rollback = True
                if message:
                    say(f"rollback: {message}")
            if converged_at is not None and ctx.clock() - converged_at >= monitor_s:
                say("verify: Service converged")
                if state == "rollback_completed" and message:
                    say(f"rollback: {message}")
                return
            tasks = ctx.daemon.call("task.ls", {"filters": {"service": [service_id]}}) or []
            nodes = ctx.daemon.call("node.ls", {"filters": {}}) or []
            up = {n.get("ID", "") for n in nodes if (n.get("Status") or {}).get("State") != "down"}
            done, running, desired = render.converged(service, tasks, up)
            done = done and state not in ("updating", "rollback_started")
            if (running, desired) != last:
                last = (running, desired)
                say(f"overall progress: {running} out of {desired} tasks")
            if done:
                if converged_at is None:
                    converged_at = ctx.clock()
                    say(f"verify: Waiting {math.ceil(monitor_s)} seconds to verify that tasks are stable...")
            elif converged_at is not None:
                say("verify: Detected task failure")
                converged_at = None
            time.sleep(POLL)
    except KeyboardInterrupt:
        if converged_at is None:
            say("Operation continuing in background.")
            say(f"Use `docker service ps {service_id}` to check progress.")


# -- inspect --type and info, for refengine's own commands -----------------------------------------


def swarm_document(root_path: str, kind: str, ref: str) -> dict | None:
    """``inspect --type node|service|task REF``: the object, or None when this node
    knows none (not in a swarm, not a manager, or no such object)."""
    daemon = Daemon(root_path)
    if not daemon.present():
        return None
    try:
        return daemon.call(f"{kind}.inspect", {"ref": ref})
    except (SwarmError, OSError, ImportError):
        return None


def info_section(root_path: str) -> dict:
    """docker info's ``Swarm`` section: the daemon's, or docker's inactive shape."""
    inactive = {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": False, "Error": "",
                "RemoteManagers": None}
    daemon = Daemon(root_path)
    if not daemon.present():
        return inactive
    try:
        return daemon.call("info", timeout=10.0)
    except (SwarmError, OSError, ImportError):
        return inactive


# -- dispatch ------------------------------------------------------------------------------

COMMANDS: dict[str, dict[str, Callable[[Context, list[str]], int]]] = {
    "swarm": {"init": swarm_init, "join": swarm_join, "leave": swarm_leave, "join-token": swarm_join_token,
              "update": swarm_update},
    "node": {"ls": node_ls, "list": node_ls, "inspect": node_inspect, "update": node_update,
             "promote": _node_role("manager"), "demote": _node_role("worker"), "rm": node_rm, "remove": node_rm,
             "ps": node_ps},
    "service": {"create": service_create, "ls": service_ls, "list": service_ls, "ps": service_ps,
                "inspect": service_inspect, "update": service_update, "rollback": service_rollback,
                "scale": service_scale, "rm": service_rm, "remove": service_rm, "logs": service_logs},
}


def _usage(command: str, usage: str, short: str, opts: tuple[Opt, ...] = ()) -> str:
    lines = [f"\nUsage:  refengine {command} {usage}\n\n{short}\n"]
    if opts:
        lines.append("\nOptions:\n" + "".join(f"      {o.label}\n" for o in opts))
    return "".join(lines)


def _group_help(group: str) -> str:
    return (f"\nUsage:  refengine {group} COMMAND\n\nCommands:\n"
            + "".join(f"  {name}\n" for name in COMMANDS[group]) + "\n")


def main(argv: list[str], root_path: str, *, out=None, err=None) -> int:
    """``argv``: the group (``swarm``, ``node`` or ``service``) and what follows it.
    Returns the exit status; every error is reported on stderr, never raised."""
    ctx = Context(root_path, out, err)
    group, rest = argv[0], argv[1:]
    if not rest or rest[0] in ("-h", "--help", "help"):
        ctx.print(_group_help(group))
        return 0
    name = rest[0]
    command = COMMANDS[group].get(name)
    if command is None:
        ctx.err.write(f"refengine: '{group} {name}' is not a refengine command.\n"
                      f"See 'refengine {group} --help'\n")
        return 1
    try:
        return command(ctx, rest[1:])
    except FlagError as exc:
        if str(exc) in ("unknown flag: --help", "unknown shorthand flag: 'h' in -h"):
            ctx.print(f"\nUsage:  refengine {group} {name} [OPTIONS]\n")
            return 0
        ctx.err.write(f"{exc}\nSee 'refengine {group} {name} --help'.\n")
        return FLAG_ERROR
    except (Failure, SpecError) as exc:
        ctx.err.write(f"{exc}\n")
        return getattr(exc, "status", 1)
    except SwarmError as exc:
        ctx.err.write(daemon_error(exc) + "\n")
        return 1
    except OSError as exc:
        ctx.err.write(f"refengine: {exc.strerror or exc}\n")
        return 1
    except ImportError as exc:  # a part of swarm mode missing from this installation
        ctx.err.write(f"refengine: swarm mode is unavailable: {exc}\n")
        return 1
    except KeyboardInterrupt:
        return 130

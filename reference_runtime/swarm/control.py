"""The control API: what ``refengine swarm|node|service`` ask of the swarm,
executed by the Raft leader (:class:`Control`), and the two calls that make a
node a member (:func:`bootstrap` for ``swarm init``, :func:`join`).

Reads answer from the leader's copy of the store; writes become store
commands (:mod:`.state`) proposed through Raft and return when applied. Names
and ID prefixes are resolved as docker resolves them (exact ID, then exact
name, then a unique ID prefix). Errors carry docker's daemon texts.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import platform
import socket
from . import netcontrol
from .errors import RpcError
from .ids import new_id
from .networks import ingress_network
from .nodefiles import NodeConfig, split_addr
from .state import public, rfc3339_now, service_status

DEFAULT_LISTEN = "0.0.0.0:2377"

LEAVE_LAST = ("You are attempting to leave the swarm on a node that is participating as a manager. Removing the "
              "last manager erases all current state of the swarm. Use `--force` to ignore this message. ")
LEAVE_QUORUM = ("You are attempting to leave the swarm on a node that is participating as a manager. Removing this "
                "node leaves {left} managers out of {total}. Without a Raft quorum your swarm will be inaccessible. "
                "The only way to restore a swarm that has lost consensus is to reinitialize it with "
                "`--force-new-cluster`. Use `--force` to suppress this message.")


def _error(code: str, message: str) -> RpcError:
    return RpcError(code, message)


def _with_port(addr: str, port: str) -> str:
    """``addr`` with ``port`` unless it has one.

    >>> _with_port("10.0.0.1", "2377"), _with_port("10.0.0.1:2400", "2377")
    ('10.0.0.1:2377', '10.0.0.1:2400')
    """
    return addr if ":" in addr else f"{addr}:{port}"


def _route_addr(remote_host: str) -> str:
    """The local address the kernel would use to reach ``remote_host`` (docker's
    default advertise address when a node joins without ``--advertise-addr``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((remote_host, 9))
        return s.getsockname()[0]


def _default_advertise() -> str:
    """The address of the default route's interface (swarm init without
    ``--advertise-addr``); docker refuses when it cannot tell."""
    try:
        return _route_addr("192.0.2.1")  # TEST-NET-1: only the route is looked up, nothing is sent
    except OSError:
        raise _error("InvalidArgument", "could not choose an IP address to advertise since this system does not "
                                        "have a default route; please specify one with --advertise-addr") from None


def _check_listen(params: dict) -> None:
    """Refuse a listen address this node cannot bind, as docker does, before anything
    is made or registered: otherwise the node is left half-joined (its certificate and
    node.json saved, its server down) and every later join says it is in a swarm."""
    listen = _with_port(params.get("listen_addr") or DEFAULT_LISTEN, "2377")
    host, port = split_addr(listen)
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio's server binds
            probe.bind(address)
    except OSError as e:
        raise _error("InvalidArgument", f"failed to listen on remote API address: listen tcp {listen}: bind: "
                                        f"{(e.strerror or str(e)).lower()}") from None


def _check_advertise(params: dict) -> None:
    """Refuse an ``--advertise-addr`` that is no IP address (other nodes dial it), before
    anything is made or registered. docker also takes an interface name; refengine does not.

    >>> _check_advertise({"advertise_addr": "10.0.0.2:2377"}), _check_advertise({})
    (None, None)
    """
    given = params.get("advertise_addr")
    if not given:
        return
    if given.startswith("["):  # [v6]:port
        host = given[1:given.find("]")]
    else:
        host = given.rpartition(":")[0] if given.count(":") == 1 else given
    try:
        unspecified = ipaddress.ip_address(host).is_unspecified
    except ValueError:
        unspecified = True
    if unspecified:
        raise _error("InvalidArgument", f"advertise address must be a non-zero IP address, not {given!r} "
                                        "(refengine takes no interface name)")


def _addresses(params: dict, remote_host: str | None) -> tuple[str, str]:
    listen = params.get("listen_addr") or DEFAULT_LISTEN
    listen = _with_port(listen, "2377")
    port = listen.rpartition(":")[2]
    advertise = params.get("advertise_addr") or (_route_addr(remote_host) if remote_host else _default_advertise())
    return _with_port(advertise, port), listen


def describe(hostname: str) -> dict:
    from ..engine.version import VERSION

    return {"Hostname": hostname, "Platform": {"Architecture": platform.machine(), "OS": "linux"},
            "Resources": {"NanoCPUs": (os.cpu_count() or 1) * 1_000_000_000,
                          "MemoryBytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")},
            "Engine": {"EngineVersion": VERSION, "Plugins": [{"Type": "Log", "Name": "json-file"},
                                                             {"Type": "Network", "Name": "bridge"},
                                                             {"Type": "Network", "Name": "host"},
                                                             {"Type": "Network", "Name": "null"},
                                                             {"Type": "Volume", "Name": "local"}]}}


def _tls_info(ca_pem: bytes) -> dict:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_pem_x509_certificate(ca_pem)
    key = cert.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    return {"TrustRoot": ca_pem.decode(), "CertIssuerSubject": base64.b64encode(cert.subject.public_bytes()).decode(),
            "CertIssuerPublicKey": base64.b64encode(key).decode()}


# -- becoming a member ---------------------------------------------------------------


async def bootstrap(daemon: "swarmd.Swarmd", params: dict) -> NodeConfig:
    """``swarm init``: a CA, this node's manager certificate, a one-member Raft log."""
    from . import ca
    from .raft.core import RaftCore
    from .raft.storage import FileStorage

    _check_listen(params)
    _check_advertise(params)
    advertise, listen = _addresses(params, None)
    node_id, cluster_id = new_id(), new_id()
    root = ca.RootCA.create()
    root.save(daemon.files.certs)
    key_pem, csr_pem = ca.make_key_and_csr()
    ca.save_node_certificate(daemon.files.certs, root.issue(csr_pem, node_id, "manager", cluster_id), key_pem)
    storage = FileStorage(daemon.files.raft)
    try:
        RaftCore.bootstrap(storage, node_id, advertise)
    finally:
        storage.close()
    config = NodeConfig(node_id, cluster_id, "manager", advertise, listen, socket.gethostname(), [advertise])
    daemon.files.save(config)
    daemon.init_params = params
    return config


async def join(daemon: "swarmd.Swarmd", params: dict) -> NodeConfig:
    """``swarm join``: check the remote's CA against the token, get a certificate
    for the token's role from the leader."""
    from . import ca
    from .token import parse_token

    token = params.get("token") or ""
    parse_token(token)  # a malformed token: docker's "invalid join token"
    remote = params.get("remote") or ""
    host, port = split_addr(remote)
    _check_listen(params)
    _check_advertise(params)
    ca_pem = await ca.fetch_root_ca(host, port, token)
    key_pem, csr_pem = ca.make_key_and_csr()
    reply = None
    for _ in range(3):  # a manager that is not the leader names the leader
        try:
            reply = await ca.request_certificate(host, port, token, csr_pem, ca_pem)
            break
        except RpcError as exc:
            if exc.code != "NotLeader" or ":" not in exc.message:
                raise
            host, port = split_addr(exc.message)
    if reply is None:
        raise _error("Unavailable", "could not reach the swarm's leader")
    advertise, listen = _addresses(params, host)
    daemon.files.ensure()
    daemon.files.write_cert(ca.ROOT_CERT, ca_pem)
    ca.save_node_certificate(daemon.files.certs, reply["certificate"].encode(), key_pem)
    config = NodeConfig(reply["node_id"], reply["cluster_id"], reply["role"], advertise, listen,
                        socket.gethostname(), reply.get("managers") or [f"{host}:{port}"])
    daemon.files.save(config)
    daemon.init_params = params
    return config


# -- the leader's side -------------------------------------------------------------------


class Control:
    def __init__(self, daemon: "swarmd.Swarmd"):
        self.d = daemon

    @property
    def store(self):
        return self.d.store

    async def propose(self, command: dict):
        from .state import StoreError

        try:
            return await self.d.propose(command)
        except StoreError as exc:
            raise _error(exc.code, str(exc)) from None

    # -- init and joins ------------------------------------------------------------
    async def initialise(self, params: dict) -> None:
        """The first entries of a new swarm: the cluster object and this node."""
        from . import ca
        from .token import format_token, new_secret

        import asyncio

        for _ in range(200):
            if self.d.raft.is_leader:
                break
            await asyncio.sleep(0.05)
        ca_pem = self.d.files.read_cert(ca.ROOT_CERT)
        config = self.d.config
        cluster = {"op": "cluster.init", "id": config.cluster_id, "at": rfc3339_now(),
                   "tokens": {"Worker": format_token(ca_pem, new_secret()),
                              "Manager": format_token(ca_pem, new_secret())},
                   "tls": _tls_info(ca_pem)}
        if params.get("default_addr_pool"):
            cluster["default_addr_pool"] = list(params["default_addr_pool"])
        node = {"op": "node.add", "id": config.node_id, "at": rfc3339_now(), "role": "manager",
                "addr": config.advertise_addr.rpartition(":")[0], "description": describe(config.hostname),
                "availability": params.get("availability") or "active", "manager_addr": config.advertise_addr}
        # docker's ingress network, made with the swarm: the routing mesh's own
        ingress = {"op": "network.create", "id": new_id(), "at": rfc3339_now(), "network": ingress_network()}
        await self.propose({"op": "batch", "commands": [cluster, node, ingress]})

    async def issue(self, csr_pem: bytes, role: str) -> dict:
        from . import ca

        root = ca.RootCA.load(self.d.files.certs)
        node_id = new_id()
        cert = root.issue(csr_pem, node_id, role, self.d.config.cluster_id)
        await self.propose({"op": "node.add", "id": node_id, "at": rfc3339_now(), "role": role, "addr": "",
                            "description": {"Hostname": "", "Platform": {}, "Resources": {}, "Engine": {}}})
        return {"node_id": node_id, "certificate": cert.decode(), "role": role,
                "cluster_id": self.d.config.cluster_id, "managers": list(self.d.raft.members.values())}

    async def renew(self, node_id: str, csr: str) -> dict:
        from . import ca

        node = self.store.nodes.get(node_id)
        if node is None:
            raise _error("NotFound", f"node {node_id} not found")
        role = node["Spec"].get("Role", "worker")
        try:
            cert = ca.RootCA.load(self.d.files.certs).issue(csr.encode(), node_id, role, self.d.config.cluster_id)
        except (ca.CertificateError, UnicodeEncodeError) as exc:  # the node's CSR, not this CA, is at fault
            raise _error("InvalidArgument", str(exc)) from None
        return {"cert": cert.decode(), "role": role}

    def leave_refusal(self) -> str:
        managers = len(self.d.raft.members) if self.d.raft is not None else 1
        if managers <= 1:
            return LEAVE_LAST
        return LEAVE_QUORUM.format(left=managers - 1, total=managers)

    # -- dispatch --------------------------------------------------------------------
    async def execute(self, method: str, params: dict):
        handler = getattr(self, "m_" + method.replace(".", "_"), None)
        if handler is None:
            raise _error("Unimplemented", f"unknown method {method}")
        if self.store.cluster is None:
            raise _error("Unavailable", "the swarm is still starting")
        return await handler(params)

    # -- views -------------------------------------------------------------------------
    def node_view(self, node: dict) -> dict:
        view = public(node)
        view.pop("ManagerStatus", None)
        raft = self.d.raft
        if raft is not None and node["ID"] in raft.members:
            leader = node["ID"] == raft.leader_id
            view["ManagerStatus"] = {"Leader": True} if leader else {}
            view["ManagerStatus"].update({
                "Reachability": "reachable" if leader or self.d.reachable(node["ID"]) else "unreachable",
                "Addr": raft.members[node["ID"]]})
        return view

    def service_view(self, service: dict, *, status: bool = False) -> dict:
        view = public(service)
        if status:
            view["ServiceStatus"] = service_status(self.store, service["ID"])
        return view

    # -- resolution (docker's order: full ID, name, unique ID prefix) ------------------
    def _resolve(self, kind: str, ref: str, name_of) -> dict:
        objects = getattr(self.store, kind)
        singular = kind[:-1]
        if not isinstance(ref, str):
            raise _error("InvalidArgument", f"{singular} ID or name must be a string, not {ref!r}")
        if not ref:
            raise _error("InvalidArgument", f"{singular} ID or name must not be empty")
        if ref in objects:
            return objects[ref]
        named = [o for o in objects.values() if name_of(o) == ref]
        if len(named) == 1:
            return named[0]
        prefixed = [o for i, o in objects.items() if i.startswith(ref)]
        if len(prefixed) == 1:
            return prefixed[0]
        if len(named) > 1 or len(prefixed) > 1:
            raise _error("FailedPrecondition", f"{singular} {ref} is ambiguous ({len(named) or len(prefixed)} "
                                               f"matches found)")
        raise _error("NotFound", f"{singular} {ref} not found")

    def node(self, ref: str) -> dict:
        if ref == "self":
            ref = self.d.config.node_id
        return self._resolve("nodes", ref, lambda n: n.get("Description", {}).get("Hostname"))

    def service(self, ref: str) -> dict:
        return self._resolve("services", ref, lambda s: s["Spec"].get("Name"))

    def task(self, ref: str) -> dict:
        return self._resolve("tasks", ref, lambda t: None)

    # -- swarm -------------------------------------------------------------------------
    async def m_swarm_inspect(self, params: dict) -> dict:
        return public(self.store.cluster)

    async def m_swarm_update(self, params: dict) -> dict:
        from . import ca
        from .token import format_token, new_secret

        cluster = self.store.cluster
        command = {"op": "cluster.update", "version": params.get("version", cluster["Version"]["Index"]),
                   "at": rfc3339_now()}
        if params.get("spec") is not None:
            command["spec"] = params["spec"]
        ca_pem = self.d.files.read_cert(ca.ROOT_CERT)
        tokens = {}
        if params.get("rotate_worker_token"):
            tokens["Worker"] = format_token(ca_pem, new_secret())
        if params.get("rotate_manager_token"):
            tokens["Manager"] = format_token(ca_pem, new_secret())
        if tokens:
            command["tokens"] = tokens
        await self.propose(command)
        return {}

    async def m_swarm_join_token(self, params: dict) -> dict:
        role = params.get("role")
        if role not in ("worker", "manager"):
            raise _error("InvalidArgument", "unknown role " + str(role))
        if params.get("rotate"):
            await self.m_swarm_update({f"rotate_{role}_token": True})
        token = self.store.cluster["JoinTokens"]["Worker" if role == "worker" else "Manager"]
        return {"token": token, "addr": self.d.config.advertise_addr}

    # -- nodes -------------------------------------------------------------------------
    async def m_node_ls(self, params: dict) -> list:
        filters = _filters(params)
        views = [self.node_view(n) for n in self.store.nodes.values()]
        return [v for v in views if _node_matches(v, filters)]

    async def m_node_inspect(self, params: dict) -> dict:
        return self.node_view(self.node(params.get("ref", "")))

    async def m_node_update(self, params: dict) -> dict:
        node = self.node(params.get("ref", ""))
        spec = params.get("spec")
        if not isinstance(spec, dict):
            raise _error("InvalidArgument", "node update needs a spec")
        version = params.get("version", node["Version"]["Index"])
        await self.propose({"op": "node.update", "id": node["ID"], "version": version, "at": rfc3339_now(),
                            "spec": spec})
        return {}

    async def m_node_rm(self, params: dict) -> dict:
        node = self.node(params.get("ref", ""))
        force = bool(params.get("force"))
        raft = self.d.raft
        if node["ID"] in raft.members or node["Spec"].get("Role") == "manager":
            raise _error("FailedPrecondition",
                         f"rpc error: code = FailedPrecondition desc = node {node['ID']} is a cluster manager and is "
                         "a member of the raft cluster. It must be demoted to worker before removal")
        if not force and node["Status"]["State"] != "down":
            raise _error("FailedPrecondition", f"rpc error: code = FailedPrecondition desc = node {node['ID']} "
                                               "is not down and can't be removed")
        await self.propose({"op": "node.remove", "id": node["ID"], "at": rfc3339_now(), "force": force})
        return {}

    async def m_node_demote_self(self, params: dict) -> dict:
        node = self.store.nodes.get(params.get("node_id", ""))
        if node is not None and node["Spec"].get("Role") == "manager":
            spec = dict(node["Spec"], Role="worker")
            await self.propose({"op": "node.update", "id": node["ID"], "version": node["Version"]["Index"],
                                "at": rfc3339_now(), "spec": spec})
        return {}

    # -- services ------------------------------------------------------------------------
    async def m_service_create(self, params: dict) -> dict:
        spec = params.get("spec")
        if not isinstance(spec, dict):
            raise _error("InvalidArgument", "service create needs a spec")
        if not spec.get("Name"):
            from ..engine.spec import random_name

            spec = dict(spec, Name=random_name(os.urandom(4).hex()))  # it reads hex digits
        service_id = new_id()
        await self.propose({"op": "service.create", "id": service_id, "at": rfc3339_now(), "spec": spec})
        return {"ID": service_id, "Warnings": None}

    async def m_service_ls(self, params: dict) -> list:
        filters = _filters(params)
        views = [self.service_view(s, status=True) for s in self.store.services.values()]
        return [v for v in views if _service_matches(v, filters)]

    async def m_service_inspect(self, params: dict) -> dict:
        return self.service_view(self.service(params.get("ref", "")))

    async def m_service_update(self, params: dict) -> dict:
        service = self.service(params.get("ref", ""))
        version = params.get("version", service["Version"]["Index"])
        command = {"op": "service.update", "id": service["ID"], "version": version, "at": rfc3339_now()}
        if params.get("rollback"):
            if not service.get("PreviousSpec"):
                raise _error("FailedPrecondition", f"service {service['ID']} does not have a previous spec")
            command["rollback"] = True
        else:
            if not isinstance(params.get("spec"), dict):
                raise _error("InvalidArgument", "service update needs a spec")
            command["spec"] = params["spec"]
        await self.propose(command)
        return {"Warnings": None}

    async def m_service_rm(self, params: dict) -> dict:
        service = self.service(params.get("ref", ""))
        await self.propose({"op": "service.remove", "id": service["ID"], "at": rfc3339_now()})
        return {}

    # -- tasks -----------------------------------------------------------------------------
    async def m_task_ls(self, params: dict) -> list:
        filters = _filters(params)
        services = None
        if filters.get("service"):
            services = set()
            for ref in filters["service"]:
                services.add(self.service(ref)["ID"])
        nodes = None
        if filters.get("node"):
            nodes = {self.node(ref)["ID"] for ref in filters["node"]}
        found = []
        for task in self.store.tasks.values():
            if services is not None and task["ServiceID"] not in services:
                continue
            if nodes is not None and task.get("NodeID") not in nodes:
                continue
            if filters.get("desired-state") and task["DesiredState"] not in filters["desired-state"]:
                continue
            if filters.get("id") and not any(task["ID"].startswith(p) for p in filters["id"]):
                continue
            found.append(public(task))
        found.sort(key=lambda t: (t["ServiceID"], t.get("Slot") or 0, t.get("NodeID", ""), t["CreatedAt"]))
        return found

    async def m_task_inspect(self, params: dict) -> dict:
        return public(self.task(params.get("ref", "")))

    # -- overlay networks (netcontrol.py) -----------------------------------------------------
    async def m_network_create(self, params: dict) -> dict:
        return await netcontrol.create(self, params)

    async def m_network_ls(self, params: dict) -> list:
        return await netcontrol.ls(self, params)

    async def m_network_inspect(self, params: dict) -> dict:
        return await netcontrol.inspect(self, params)

    async def m_network_rm(self, params: dict) -> dict:
        return await netcontrol.rm(self, params)


def _filters(params: dict) -> dict[str, list[str]]:
    """The ``filters`` of a list call: docker's ``{name: [value, ...]}``.

    >>> _filters({"filters": {"name": ["web"]}}), _filters({})
    ({'name': ['web']}, {})
    """
    filters = params.get("filters") or {}
    if not isinstance(filters, dict) or not all(
            isinstance(values, list) and all(isinstance(v, str) for v in values) for values in filters.values()):
        raise _error("InvalidArgument", f"filters must map names to lists of strings, not {filters!r}")
    return filters


def _labels_match(labels: dict, wanted: list[str]) -> bool:
    for item in wanted:
        key, sep, value = item.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True


def _node_matches(view: dict, filters: dict) -> bool:
    """docker's node filters: id (prefix), name (hostname), role, membership, label, node.label."""
    if filters.get("id") and not any(view["ID"].startswith(p) for p in filters["id"]):
        return False
    if filters.get("name") and view.get("Description", {}).get("Hostname") not in filters["name"]:
        return False
    if filters.get("role") and view["Spec"].get("Role") not in filters["role"]:
        return False
    if filters.get("membership") and view["Spec"].get("Membership", "accepted") not in filters["membership"]:
        return False
    if filters.get("node.label") and not _labels_match(view["Spec"].get("Labels") or {}, filters["node.label"]):
        return False
    return True


def _service_matches(view: dict, filters: dict) -> bool:
    """docker's service filters: id (prefix), name (prefix, as swarmkit), label, mode."""
    if filters.get("id") and not any(view["ID"].startswith(p) for p in filters["id"]):
        return False
    if filters.get("name") and not any(view["Spec"]["Name"].startswith(p) for p in filters["name"]):
        return False
    if filters.get("label") and not _labels_match(view["Spec"].get("Labels") or {}, filters["label"]):
        return False
    if filters.get("mode"):
        mode = "replicated" if "Replicated" in view["Spec"].get("Mode", {}) else "global"
        if mode not in filters["mode"]:
            return False
    return True


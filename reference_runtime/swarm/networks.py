"""Overlay networks of the swarm: the store's network objects, their subnets
and VXLAN IDs, the addresses of tasks on them, and the view a node's agent
needs of them (pure; the control methods are :mod:`.netcontrol`'s, the CLI's
side :mod:`.netcli`'s, the node's data path :mod:`.overlaynode`'s).

A network lives in the store in the swarm API's shape (``/networks`` of a
manager: ``Spec.Name``, ``Spec.DriverConfiguration``, ``Spec.IPAMOptions``,
``DriverState`` with ``com.docker.network.driver.overlay.vxlanid_list``) and
``network inspect`` shows docker's network document made from it
(:func:`document`). Subnets are /24s of docker's default address pool
10.0.0.0/8 from 10.0.1.0/24 on (docker keeps 10.0.0.0/24 for ``ingress``),
skipping those the proposing manager routes; the VXLAN ID of the network
in the N-th /24 is 4096 + N, as docker's first overlay gets 4097.

Task addresses are allocated by :func:`attachments` inside the store's
``task.create`` (deterministic: every manager computes the same), the lowest
free address after the gateway, and kept in the task's
``NetworksAttachments`` as docker does. A task holds its address until its
status is final.

A service in ``vip`` mode (the default) gets a virtual IP on each of its
networks (:func:`virtual_ips`, also chosen inside the store's commands), and
its name resolves to it; the node of each task balances the connections to it
(:mod:`.overlaynode`).

What this does not do (docker does): encrypted overlays, the ingress network, the caller's ``--subnet`` and
``--gateway``, and more than one network per task on the data path.

>>> net = new_network("front", {"attachable": True}, "10.0.1.0/24", 4097)
>>> net["Spec"]["Name"], net["Spec"]["IPAMOptions"]["Configs"], vni_of(net)
('front', [{'Subnet': '10.0.1.0/24', 'Gateway': '10.0.1.1'}], 4097)
>>> store = [dict(net, ID="n1")]
>>> attachments([{"Target": "front"}], store, [])[0]["Addresses"]
['10.0.1.2/24']
>>> held = {"ID": "t1", "Status": {"State": "running"},
...         "NetworksAttachments": attachments([{"Target": "n1"}], store, [])}
>>> attachments([{"Target": "front"}], store, [held])[0]["Addresses"]
['10.0.1.3/24']
"""

from __future__ import annotations

import copy
import ipaddress

from .errors import RpcError, SwarmError


class NetworkError(SwarmError):
    """A network operation the store refuses: ``code`` and swarmkit's ``desc``;
    the store turns it into its own error."""

    def __init__(self, code: str, desc: str) -> None:
        super().__init__(desc)
        self.code, self.desc = code, desc

DRIVER = "overlay"
POOL = ipaddress.ip_network("10.0.0.0/8")
SUBNET_PREFIX = 24
VXLAN_BASE = 4096
VXLAN_OPTION = "com.docker.network.driver.overlay.vxlanid_list"
#: Task states after which a task's address is free again.
FINAL = frozenset({"complete", "shutdown", "failed", "rejected", "remove", "orphaned"})


# -- pure: objects, subnets, addresses ------------------------------------------------
def new_network(name: str, options: dict, subnet: str, vni: int) -> dict:
    """The store object of a new overlay network (without ID, Version, CreatedAt)."""
    net = ipaddress.ip_network(subnet)
    gateway = str(net.network_address + 1)
    ipam = {"Driver": {"Name": "default"}, "Configs": [{"Subnet": str(net), "Gateway": gateway}]}
    spec = {"Name": name, "Labels": dict(options.get("labels") or {}),
            "DriverConfiguration": {"Name": DRIVER, "Options": dict(options.get("options") or {})},
            "IPAMOptions": ipam, "Scope": "swarm"}
    if options.get("attachable"):
        spec["Attachable"] = True
    if options.get("internal"):
        spec["Internal"] = True
    if options.get("ingress"):
        spec["Ingress"] = True
    return {"Spec": spec, "DriverState": {"Name": DRIVER, "Options": {VXLAN_OPTION: str(vni)}},
            "IPAMOptions": copy.deepcopy(ipam)}


def subnet_of(network: dict) -> ipaddress.IPv4Network:
    return ipaddress.ip_network(network["IPAMOptions"]["Configs"][0]["Subnet"])


def vni_of(network: dict) -> int:
    return int(network["DriverState"]["Options"][VXLAN_OPTION])


def next_subnet(taken: list[ipaddress.IPv4Network], avoid: list[ipaddress.IPv4Network]) -> tuple[str, int]:
    """The first free /24 of the pool from 10.0.1.0/24, and its VXLAN ID.

    >>> next_subnet([ipaddress.ip_network("10.0.1.0/24")], [ipaddress.ip_network("10.0.2.0/23")])
    ('10.0.4.0/24', 4100)
    """
    for index, candidate in enumerate(POOL.subnets(new_prefix=SUBNET_PREFIX)):
        if index == 0:
            continue
        if any(candidate.overlaps(t) for t in taken) or any(candidate.overlaps(a) and a.prefixlen > 0 for a in avoid):
            continue
        return str(candidate), VXLAN_BASE + index
    raise RpcError("ResourceExhausted", "could not find an available, non-overlapping IPv4 address pool among "
                                          "the defaults to assign to the network")


def find(networks: list[dict], ref: str) -> dict | None:
    """A network by ID, name or unique ID prefix (docker's order)."""
    for net in networks:
        if net["ID"] == ref:
            return net
    named = [n for n in networks if n["Spec"]["Name"] == ref]
    if len(named) == 1:
        return named[0]
    prefixed = [n for n in networks if ref and n["ID"].startswith(ref)]
    return prefixed[0] if len(prefixed) == 1 else None


def _held(task: dict) -> bool:
    return task.get("Status", {}).get("State") not in FINAL


def endpoint_mode(spec: dict) -> str:
    """A service spec's endpoint mode: ``vip`` unless it says ``dnsrr`` (docker's default)."""
    return str((spec.get("EndpointSpec") or {}).get("Mode") or "vip").lower()


def _used(net: dict, tasks: list[dict], services: list[dict]) -> set:
    """The addresses of ``net`` taken: its gateway, live tasks', services' virtual IPs and
    the nodes' routing-mesh addresses."""
    used = {subnet_of(net).network_address + 1}
    for task in tasks:
        if not _held(task):
            continue
        for attachment in task.get("NetworksAttachments") or []:
            if attachment["Network"]["ID"] == net["ID"]:
                used.update(ipaddress.ip_interface(a).ip for a in attachment["Addresses"])
    for service in services:
        for vip in (service.get("Endpoint") or {}).get("VirtualIPs") or []:
            if vip.get("NetworkID") == net["ID"]:
                used.add(ipaddress.ip_interface(vip["Addr"]).ip)
    used.update(ipaddress.ip_interface(a).ip for a in (net.get("_lb") or {}).values())
    return used


def _free(net: dict, used: set) -> str:
    subnet = subnet_of(net)
    free = next((h for h in subnet.hosts() if h not in used), None)
    if free is None:
        raise NetworkError("ResourceExhausted", f"could not allocate an address on network {net['Spec']['Name']}")
    return f"{free}/{subnet.prefixlen}"


def attachments(targets: list[dict] | None, networks: list[dict], tasks: list[dict],
                services: list[dict] = ()) -> list[dict]:
    """``NetworksAttachments`` of a new task on ``targets`` (TaskTemplate.Networks):
    each network with the lowest address no live task and no service's virtual IP
    holds. NetworkError for a network that does not exist or is full."""
    found = []
    for target in targets or []:
        net = find(networks, target.get("Target", ""))
        if net is None:
            raise NetworkError("NotFound", f"network {target.get('Target', '')} not found")
        shown = {k: v for k, v in net.items() if not k.startswith("_")}
        found.append({"Network": copy.deepcopy(shown), "Addresses": [_free(net, _used(net, tasks, services))]})
    return found


def virtual_ips(service: dict, networks: list[dict], tasks: list[dict], services: list[dict]) -> list[dict]:
    """``Endpoint.VirtualIPs`` of ``service`` for its current spec: in ``vip`` mode one
    address on each of its networks, the one it has if it had one there (an update keeps
    a service's address), else the lowest free one; none in ``dnsrr`` mode.

    >>> net = dict(new_network("front", {}, "10.0.1.0/24", 4097), ID="n1")
    >>> web = {"ID": "s1", "Spec": {"TaskTemplate": {"Networks": [{"Target": "front"}]}}}
    >>> virtual_ips(web, [net], [], [web])
    [{'NetworkID': 'n1', 'Addr': '10.0.1.2/24'}]
    >>> web["Endpoint"] = {"VirtualIPs": [{"NetworkID": "n1", "Addr": "10.0.1.7/24"}]}
    >>> virtual_ips(web, [net], [], [web])
    [{'NetworkID': 'n1', 'Addr': '10.0.1.7/24'}]
    >>> virtual_ips(dict(web, Spec=dict(web["Spec"], EndpointSpec={"Mode": "dnsrr"})), [net], [], [web])
    []
    """
    if endpoint_mode(service["Spec"]) != "vip":
        return []
    had = {v["NetworkID"]: v["Addr"] for v in (service.get("Endpoint") or {}).get("VirtualIPs") or []}
    others = [s for s in services if s["ID"] != service["ID"]]
    chosen: list[dict] = []
    for target in (service["Spec"].get("TaskTemplate") or {}).get("Networks") or []:
        net = find(networks, target.get("Target", ""))
        if net is None:
            raise NetworkError("NotFound", f"network {target.get('Target', '')} not found")
        if any(v["NetworkID"] == net["ID"] for v in chosen):
            continue
        if net["ID"] in had:
            addr = had[net["ID"]]
        else:
            taken = _used(net, tasks, others) | {ipaddress.ip_interface(v["Addr"]).ip for v in chosen}
            addr = _free(net, taken)
        chosen.append({"NetworkID": net["ID"], "Addr": addr})
    return chosen


def in_use(network: dict, services: list[dict], tasks: list[dict]) -> str:
    """Why ``network`` cannot be removed ("" when it can), in swarmkit's words."""
    def uses(targets) -> bool:
        return any(find([network], t.get("Target", "")) is not None for t in targets or [])
    for service in services:
        if uses(service["Spec"].get("TaskTemplate", {}).get("Networks")):
            return f"network {network['ID']} is in use by service {service['ID']}"
        if network["Spec"].get("Ingress") and ingress_ports(service) and \
                not (service["Spec"].get("TaskTemplate") or {}).get("Networks"):
            # its published ports reach its tasks on ingress (task_targets), also while none
            # runs: without it they would silently be published nowhere (swarmkit's words)
            return f"ingress network cannot be removed because service {service['ID']} depends on it"
    for task in tasks:
        if _held(task) and any(a["Network"]["ID"] == network["ID"] for a in task.get("NetworksAttachments") or []):
            return f"network {network['ID']} is in use by task {task['ID']}"
    return ""


def document(network: dict) -> dict:
    """``docker network inspect`` on a manager for a swarm network."""
    spec = network["Spec"]
    configs = network.get("IPAMOptions", spec.get("IPAMOptions", {})).get("Configs") or []
    return {"Name": spec["Name"], "Id": network["ID"], "Created": network.get("CreatedAt", ""), "Scope": "swarm",
            "Driver": DRIVER, "EnableIPv6": False,
            "IPAM": {"Driver": "default", "Options": None,
                     "Config": [{"Subnet": c["Subnet"], "Gateway": c["Gateway"]} for c in configs]},
            "Internal": bool(spec.get("Internal")), "Attachable": bool(spec.get("Attachable")),
            "Ingress": bool(spec.get("Ingress")),
            "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Containers": None,
            "Options": dict(network.get("DriverState", {}).get("Options") or {}),
            "Labels": dict(spec.get("Labels") or {})}


# -- the routing mesh ---------------------------------------------------------------
INGRESS = "ingress"
#: The service label choosing per-request balancing of its published ports (HTTP):
#: ``refengine.mesh.balance=request`` (:mod:`.meshproxy`); else per connection.
MESH_LABEL = "refengine.mesh.balance"
#: docker's ingress network: the first /24 of the pool, the first VXLAN ID
INGRESS_SUBNET, INGRESS_VNI = "10.0.0.0/24", 4096
#: where swarm picks a published port a service did not name (swarmkit's dynamic range)
PORT_RANGE = range(30000, 32768)
#: The nodes' own ports (managers, gossip, VXLAN, and 53: refengine's embedded DNS
#: listens on each bridge's gateway, an address of the node, where docker's is inside
#: the container): a published port is taken on every address of every node, so one of
#: these would capture the swarm's own traffic, or every container's DNS queries.
RESERVED_PORTS = {"tcp": (53, 2377, 7946), "udp": (53, 4789, 7946)}


def ingress_network() -> dict:
    return new_network(INGRESS, {"ingress": True}, INGRESS_SUBNET, INGRESS_VNI)


def ingress_ports(service: dict) -> list[dict]:
    """The resolved ports (``Endpoint.Ports``) the routing mesh publishes for ``service``."""
    return [p for p in (service.get("Endpoint") or {}).get("Ports") or []
            if p.get("PublishMode", "ingress") == "ingress" and p.get("PublishedPort")]


def resolve_ports(service: dict, services: list[dict], nodes: list[dict] = ()) -> list[dict]:
    """``Endpoint.Ports`` for the spec's ``EndpointSpec.Ports``: an ingress port keeps the
    published port it names, or the one it had, or gets the lowest free one of
    30000-32767; one published port (and protocol) belongs to one service, none is one
    of the nodes' own (RESERVED_PORTS, the managers' ports of ``nodes``).

    >>> web = {"ID": "s1", "Spec": {"Name": "web", "EndpointSpec": {"Ports": [{"TargetPort": 8080}]}}}
    >>> resolve_ports(web, [])
    [{'Protocol': 'tcp', 'TargetPort': 8080, 'PublishedPort': 30000, 'PublishMode': 'ingress'}]
    >>> api = {"ID": "s2", "Spec": {"Name": "api", "EndpointSpec": {"Ports": [{"TargetPort": 80, "PublishedPort": 30000}]}}}
    >>> resolve_ports(api, [dict(web, Endpoint={"Ports": resolve_ports(web, [])})])
    Traceback (most recent call last):
    ...
    reference_runtime.swarm.networks.NetworkError: port '30000' is already in use by service 'web' (s1) as an ingress port
    """
    taken = {(p.get("Protocol", "tcp"), p["PublishedPort"]): s for s in services if s["ID"] != service["ID"]
             for p in ingress_ports(s)}
    had = {(p.get("Protocol", "tcp"), p.get("TargetPort")): p.get("PublishedPort")
           for p in ingress_ports(service)}
    reserved = {(protocol, port) for protocol, ports in RESERVED_PORTS.items() for port in ports}
    # a manager listening elsewhere than 2377 (--listen-addr) is as much the swarm's own
    reserved |= {("tcp", int(addr.rpartition(":")[2])) for addr in
                 ((n.get("ManagerStatus") or {}).get("Addr") or "" for n in nodes) if addr.rpartition(":")[2].isdigit()}
    resolved: list[dict] = []
    mine: set = set()  # kept as it grows: a spec may name tens of thousands of ports
    for port in ((service["Spec"].get("EndpointSpec") or {}).get("Ports") or []):
        protocol, mode = port.get("Protocol") or "tcp", port.get("PublishMode") or "ingress"
        target, published = port.get("TargetPort"), port.get("PublishedPort") or 0
        # not a bool (an int to Python): "true" would reach every node's nat rules as
        # "ADDR:True", and one iptables-restore carries the whole mesh
        if not isinstance(target, int) or not 0 < target < 65536 or not isinstance(published, int) \
                or isinstance(target, bool) or isinstance(published, bool) \
                or not 0 <= published < 65536 or protocol not in ("tcp", "udp", "sctp") \
                or mode not in ("ingress", "host"):
            raise NetworkError("InvalidArgument", f"invalid port {port}")
        if mode == "ingress":
            if not published:
                published = had.get((protocol, target)) or 0
                if not published or (protocol, published) in taken or (protocol, published) in mine:
                    published = next((n for n in PORT_RANGE if (protocol, n) not in taken
                                      and (protocol, n) not in mine and (protocol, n) not in reserved), 0)
                    if not published:
                        raise NetworkError("ResourceExhausted", "no free port in the dynamic range 30000-32767")
            elif (protocol, published) in reserved:
                raise NetworkError("InvalidArgument", f"port '{published}' is the swarm's own "
                                   f"({protocol}): publishing it would capture the nodes' own traffic")
            elif (protocol, published) in taken:
                other = taken[(protocol, published)]
                raise NetworkError("InvalidArgument", f"port '{published}' is already in use by service "
                                   f"'{other['Spec']['Name']}' ({other['ID']}) as an ingress port")
            elif (protocol, published) in mine:
                raise NetworkError("InvalidArgument", f"duplicate published port provided: {published}")
        resolved.append({"Protocol": protocol, "TargetPort": target, "PublishedPort": published,
                         "PublishMode": mode})
        mine.add((protocol, published))
    return resolved


def mesh_network(service: dict, networks: list[dict]) -> dict | None:
    """The network on which the routing mesh reaches the service's tasks: the first of
    the service's networks (the one a task's container is wired to), else ``ingress``."""
    targets = (service["Spec"].get("TaskTemplate") or {}).get("Networks") or []
    if targets:
        return find(networks, targets[0].get("Target", ""))
    return next((n for n in networks if n["Spec"].get("Ingress")), None)


def task_targets(service: dict, networks: list[dict]) -> list[dict]:
    """The networks a new task of ``service`` is attached to: the service's, or
    ``ingress`` alone for a service that publishes ports on no network of its own."""
    targets = (service["Spec"].get("TaskTemplate") or {}).get("Networks") or []
    if not targets and ingress_ports(service):
        ingress = mesh_network(service, networks)
        if ingress is not None:
            return [{"Target": ingress["ID"]}]
    return targets


def lb_commands(nodes: dict, services: dict, networks: dict) -> list[dict]:
    """The leader's commands giving every node an address of its own on each network the
    routing mesh uses (the source of its connections to tasks on other nodes, so their
    replies come back through it); ``network.lb`` allocates it."""
    commands = []
    for service in sorted(services.values(), key=lambda s: s["ID"]):
        net = mesh_network(service, list(networks.values())) if ingress_ports(service) else None
        if net is None:
            continue
        for node_id in sorted(nodes):
            command = {"op": "network.lb", "id": net["ID"], "node": node_id}
            if node_id not in (net.get("_lb") or {}) and command not in commands:
                commands.append(command)
    return commands


def lb_address(net: dict, node_id: str, tasks: list[dict], services: list[dict]) -> str:
    """The lowest free address of ``net`` for ``node_id``'s routing mesh."""
    return _free(net, _used(net, tasks, services))


def mesh_view(node_id: str, services: dict, tasks: dict, networks: dict) -> list[dict]:
    """The published ports every node serves: each ingress port of a service with the
    addresses of its running tasks on the mesh network (``ADDR:TARGET``), and the
    node's own address on that network.

    >>> net = dict(new_network("front", {}, "10.0.1.0/24", 4097), ID="n1", _lb={"a": "10.0.1.9/24"})
    >>> web = {"ID": "s1", "Spec": {"Name": "web", "TaskTemplate": {"Networks": [{"Target": "n1"}]}},
    ...        "Endpoint": {"Ports": [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080,
    ...                                "PublishMode": "ingress"}]}}
    >>> task = {"ID": "t1", "ServiceID": "s1", "DesiredState": "running", "Status": {"State": "running"},
    ...         "NetworksAttachments": [{"Network": {"ID": "n1"}, "Addresses": ["10.0.1.3/24"]}]}
    >>> mesh_view("a", {"s1": web}, {"t1": task}, {"n1": net})
    [{'protocol': 'tcp', 'port': 8080, 'network': 'n1', 'source': '10.0.1.9', 'backends': ['10.0.1.3:80'], 'balance': 'connection'}]
    """
    found = []
    for service_id, service in sorted(services.items()):
        ports = ingress_ports(service)
        net = mesh_network(service, list(networks.values())) if ports else None
        if net is None:
            continue
        source = (net.get("_lb") or {}).get(node_id)
        # per connection (the kernel's nat rules), or per request for HTTP (meshproxy)
        balance = "request" if (service["Spec"].get("Labels") or {}).get(MESH_LABEL) == "request" else "connection"
        addresses = []
        for task in sorted(tasks.values(), key=lambda t: t["ID"]):
            if task.get("ServiceID") != service_id or task.get("DesiredState") != "running" \
                    or task.get("Status", {}).get("State") != "running":
                continue  # a task on its way out leaves the rotation before its container stops
            addresses += [str(ipaddress.ip_interface(a).ip) for attachment in task.get("NetworksAttachments") or []
                          if attachment["Network"]["ID"] == net["ID"] for a in attachment["Addresses"]]
        for port in ports:
            found.append({"protocol": port["Protocol"], "port": port["PublishedPort"], "network": net["ID"],
                          "source": str(ipaddress.ip_interface(source).ip) if source else "",
                          "backends": [f"{a}:{port['TargetPort']}" for a in addresses],
                          "balance": balance})
    return found


def node_overlay(nodes: dict, services: dict, tasks: dict, store_networks: dict, node_id: str) -> dict:
    """What the agent of ``node_id`` needs for its overlays (sent with each heartbeat
    reply, :mod:`.overlaynode`): its own address, the other ready nodes' addresses,
    and for each network a live task of the node is on, the network, its DNS names
    and its virtual IPs. A service's running tasks' addresses are ``tasks.NAME``;
    ``NAME`` is the service's virtual IP in ``vip`` mode, the tasks' addresses in
    ``dnsrr`` mode (docker's embedded DNS); ``vips`` maps each virtual IP to the
    addresses it balances between (none while no task runs).

    >>> net = dict(new_network("front", {}, "10.0.1.0/24", 4097), ID="n1")
    >>> running = {"State": "running"}
    >>> tasks = {t: {"ID": t, "NodeID": n, "ServiceID": "s1", "DesiredState": "running", "Status": running,
    ...              "NetworksAttachments": [{"Network": net, "Addresses": [a]}]}
    ...          for t, n, a in (("t1", "a", "10.0.1.3/24"), ("t2", "b", "10.0.1.4/24"))}
    >>> nodes = {n: {"Status": {"State": "ready", "Addr": ip}}
    ...          for n, ip in (("a", "10.217.0.11"), ("b", "10.217.0.12"))}
    >>> web = {"Spec": {"Name": "web", "EndpointSpec": {"Mode": "dnsrr"}}}
    >>> view = node_overlay(nodes, {"s1": web}, tasks, {"n1": net}, "a")
    >>> view["addr"], view["peers"], view["networks"][0]["names"], view["networks"][0]["vips"]
    ('10.217.0.11', ['10.217.0.12'], {'tasks.web': ['10.0.1.3', '10.0.1.4'], 'web': ['10.0.1.3', '10.0.1.4']}, {})
    >>> web = {"Spec": {"Name": "web"}, "Endpoint": {"VirtualIPs": [{"NetworkID": "n1", "Addr": "10.0.1.2/24"}]}}
    >>> entry = node_overlay(nodes, {"s1": web}, tasks, {"n1": net}, "a")["networks"][0]
    >>> entry["names"], entry["vips"]
    ({'tasks.web': ['10.0.1.3', '10.0.1.4'], 'web': ['10.0.1.2']}, {'10.0.1.2': ['10.0.1.3', '10.0.1.4']})
    """
    me = nodes.get(node_id, {}).get("Status", {})
    peers = sorted(n["Status"]["Addr"] for i, n in nodes.items()
                   if i != node_id and n["Status"].get("State") == "ready" and n["Status"].get("Addr"))
    mesh = mesh_view(node_id, services, tasks, store_networks)
    wanted = sorted({a["Network"]["ID"] for t in tasks.values() if t.get("NodeID") == node_id and _held(t)
                     for a in t.get("NetworksAttachments") or []} | {m["network"] for m in mesh})
    views = []
    for network_id in wanted:
        network = store_networks.get(network_id)
        if network is None:
            continue
        backends: dict[str, list[str]] = {}
        for task in sorted(tasks.values(), key=lambda t: t["ID"]):
            if task.get("Status", {}).get("State") != "running" or task.get("DesiredState") != "running":
                continue
            for attachment in task.get("NetworksAttachments") or []:
                if task.get("ServiceID", "") in services and attachment["Network"]["ID"] == network_id:
                    backends.setdefault(task["ServiceID"], []).extend(
                        str(ipaddress.ip_interface(a).ip) for a in attachment["Addresses"])
        names: dict[str, list[str]] = {}
        vips: dict[str, list[str]] = {}
        for service_id, service in sorted(services.items()):
            name, ips = service["Spec"]["Name"], backends.get(service_id, [])
            vip = next((str(ipaddress.ip_interface(v["Addr"]).ip)
                        for v in (service.get("Endpoint") or {}).get("VirtualIPs") or []
                        if v.get("NetworkID") == network_id), None)
            if vip is not None:
                names[name], vips[vip] = [vip], ips
            elif ips:
                names[name] = ips
            if ips:
                names[f"tasks.{name}"] = ips
        views.append({"network": {k: v for k, v in network.items() if not k.startswith("_")},
                      "names": dict(sorted(names.items())), "vips": vips,
                      "lb": (network.get("_lb") or {}).get(node_id, "")})
    return {"addr": me.get("Addr", ""), "peers": peers, "networks": views, "mesh": mesh}


__all__ = ["new_network", "attachments", "virtual_ips", "endpoint_mode", "in_use", "document", "next_subnet"]

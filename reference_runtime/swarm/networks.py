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

What this does not do (docker does): VIP endpoints (``--endpoint-mode vip``
is stored but gets no virtual IP; its name still resolves to every task),
encrypted overlays, the ingress network, the caller's ``--subnet`` and
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


def attachments(targets: list[dict] | None, networks: list[dict], tasks: list[dict]) -> list[dict]:
    """``NetworksAttachments`` of a new task on ``targets`` (TaskTemplate.Networks):
    each network with the lowest address no live task holds. NetworkError for a
    network that does not exist or is full."""
    found = []
    for target in targets or []:
        net = find(networks, target.get("Target", ""))
        if net is None:
            raise NetworkError("NotFound", f"network {target.get('Target', '')} not found")
        subnet = subnet_of(net)
        used = {subnet.network_address + 1}
        for task in tasks:
            if not _held(task):
                continue
            for attachment in task.get("NetworksAttachments") or []:
                if attachment["Network"]["ID"] == net["ID"]:
                    used.update(ipaddress.ip_interface(a).ip for a in attachment["Addresses"])
        free = next((h for h in subnet.hosts() if h not in used), None)
        if free is None:
            raise NetworkError("ResourceExhausted", f"could not allocate an address on network {net['Spec']['Name']}")
        shown = {k: v for k, v in net.items() if not k.startswith("_")}
        found.append({"Network": copy.deepcopy(shown), "Addresses": [f"{free}/{subnet.prefixlen}"]})
    return found


def in_use(network: dict, services: list[dict], tasks: list[dict]) -> str:
    """Why ``network`` cannot be removed ("" when it can), in swarmkit's words."""
    def uses(targets) -> bool:
        return any(find([network], t.get("Target", "")) is not None for t in targets or [])
    for service in services:
        if uses(service["Spec"].get("TaskTemplate", {}).get("Networks")):
            return f"network {network['ID']} is in use by service {service['ID']}"
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
            "Internal": bool(spec.get("Internal")), "Attachable": bool(spec.get("Attachable")), "Ingress": False,
            "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Containers": None,
            "Options": dict(network.get("DriverState", {}).get("Options") or {}),
            "Labels": dict(spec.get("Labels") or {})}


def node_overlay(nodes: dict, services: dict, tasks: dict, store_networks: dict, node_id: str) -> dict:
    """What the agent of ``node_id`` needs for its overlays (sent with each heartbeat
    reply, :mod:`.overlaynode`): its own address, the other ready nodes' addresses,
    and for each network a live task of the node is on, the network and the running
    tasks' addresses of each of its services (DNS round robin).

    >>> net = dict(new_network("front", {}, "10.0.1.0/24", 4097), ID="n1")
    >>> running = {"State": "running"}
    >>> tasks = {t: {"ID": t, "NodeID": n, "ServiceID": "s1", "DesiredState": "running", "Status": running,
    ...              "NetworksAttachments": [{"Network": net, "Addresses": [a]}]}
    ...          for t, n, a in (("t1", "a", "10.0.1.2/24"), ("t2", "b", "10.0.1.3/24"))}
    >>> nodes = {n: {"Status": {"State": "ready", "Addr": ip}}
    ...          for n, ip in (("a", "10.217.0.11"), ("b", "10.217.0.12"))}
    >>> view = node_overlay(nodes, {"s1": {"Spec": {"Name": "web"}}}, tasks, {"n1": net}, "a")
    >>> view["addr"], view["peers"], view["networks"][0]["names"]
    ('10.217.0.11', ['10.217.0.12'], {'web': ['10.0.1.2', '10.0.1.3']})
    """
    me = nodes.get(node_id, {}).get("Status", {})
    peers = sorted(n["Status"]["Addr"] for i, n in nodes.items()
                   if i != node_id and n["Status"].get("State") == "ready" and n["Status"].get("Addr"))
    wanted = sorted({a["Network"]["ID"] for t in tasks.values() if t.get("NodeID") == node_id and _held(t)
                     for a in t.get("NetworksAttachments") or []})
    views = []
    for network_id in wanted:
        network = store_networks.get(network_id)
        if network is None:
            continue
        names: dict[str, list[str]] = {}
        for task in sorted(tasks.values(), key=lambda t: t["ID"]):
            if task.get("Status", {}).get("State") != "running" or task.get("DesiredState") != "running":
                continue
            service = services.get(task.get("ServiceID", ""))
            for attachment in task.get("NetworksAttachments") or []:
                if service is not None and attachment["Network"]["ID"] == network_id:
                    names.setdefault(service["Spec"]["Name"], []).extend(
                        str(ipaddress.ip_interface(a).ip) for a in attachment["Addresses"])
        views.append({"network": {k: v for k, v in network.items() if not k.startswith("_")}, "names": names})
    return {"addr": me.get("Addr", ""), "peers": peers, "networks": views}


__all__ = ["new_network", "attachments", "in_use", "document", "next_subnet"]

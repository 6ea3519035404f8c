"""``network create|ls|inspect|rm|prune|connect|disconnect``: docker's network
commands on refengine's bridge networks (reference_runtime/net). Errors exit 1
with one line, as docker's CLI does for these commands."""

from __future__ import annotations

import os
import sys

from ..errors import ContainerError
from ..net import endpoints, netstore
from ..net.netstore import NetworkStore
from . import jsonio
from .exits import UsageError
from .flags import Parsed
from .state import Root

#: docker's predefined networks beside the default bridge: listed, never stored.
PSEUDO = {"host": "host", "none": "null"}


def _pseudo_doc(name: str) -> dict:
    return {"Name": name, "Id": _pseudo_id(name), "Created": "0001-01-01T00:00:00Z", "Scope": "local",
            "Driver": PSEUDO[name], "EnableIPv6": False, "IPAM": {"Driver": "default", "Options": None, "Config": []},
            "Internal": False, "Attachable": False, "Ingress": False, "ConfigFrom": {"Network": ""},
            "ConfigOnly": False, "Containers": {}, "Options": {}, "Labels": {}}


def _pseudo_id(name: str) -> str:
    import hashlib

    return hashlib.sha256(f"refengine-{name}".encode()).hexdigest()


def _find(store: NetworkStore, ref: str) -> dict:
    for name in PSEUDO:
        if ref in (name, _pseudo_id(name)):
            return _pseudo_doc(name)
    return store.find(ref)


def _document(store: NetworkStore, net: dict) -> dict:
    """``network inspect``: the stored network with its live endpoints as Containers."""
    if net["Name"] in PSEUDO and "Bridge" not in net:
        return net
    doc = {k: v for k, v in net.items() if k != "Bridge"}
    doc["Options"] = {**net["Options"], "com.docker.network.bridge.name": net["Bridge"]}
    doc["Containers"] = {cid: {"Name": ep["Name"], "EndpointID": ep["EndpointID"], "MacAddress": ep["MacAddress"],
                               "IPv4Address": ep["IPv4Address"], "IPv6Address": ep["IPv6Address"]}
                         for cid, ep in sorted(store.endpoints(net["Id"]).items())}
    return doc


def _options(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ContainerError(f"invalid key/value pair format in driver options: {item}")
        out[key] = value
    return out


def cmd_network_create(root: Root, p: Parsed) -> int:
    driver = p.opts.get("driver") or "bridge"
    if driver == "overlay":  # a swarm network: the managers' store keeps it
        from ..swarm import netcli

        return netcli.cli_create(root.path, p.args[0], {
            "attachable": bool(p.opts.get("attachable")), "internal": bool(p.opts.get("internal")),
            "labels": dict(item.partition("=")[::2] for item in p.opts.get("label") or []),
            "options": _options(p.opts.get("opt") or [])})
    if driver != "bridge":
        raise ContainerError(f'plugin "{driver}" not found')
    subnets, gateways = p.opts.get("subnet") or [], p.opts.get("gateway") or []
    if len(subnets) > 1 or len(gateways) > 1:
        raise ContainerError("refengine networks have one IPv4 subnet: give --subnet and --gateway at most once")
    if gateways and not subnets:
        raise ContainerError("every ip-range or gateway must have a corresponding subnet")
    if p.opts.get("ipv6"):
        raise ContainerError("IPv6 networks are not supported by refengine")
    options = _options(p.opts.get("opt") or [])
    if options.get("com.docker.network.bridge.enable_icc", "true") not in ("true", "false"):
        raise ContainerError("invalid value for com.docker.network.bridge.enable_icc: true or false")
    if netstore.MTU_OPTION in options and not (options[netstore.MTU_OPTION].isascii()  # "²" is no int
                                                and options[netstore.MTU_OPTION].strip().lstrip("-").isdigit()):
        value = options[netstore.MTU_OPTION]  # dockerd's words: it parses the value with Go's strconv.Atoi
        raise ContainerError(f'failed to parse {netstore.MTU_OPTION} value: {value} '
                             f'(strconv.Atoi: parsing "{value}": invalid syntax)')
    if "com.docker.network.bridge.default_bridge" in options:
        # The store knows the default bridge by this option: a second one would take its place.
        raise ContainerError("com.docker.network.bridge.default_bridge is reserved for the default bridge network")
    for item in p.opts.get("label") or []:
        if not item.partition("=")[0]:
            raise UsageError(f'invalid argument "{item}" for "--label" flag: invalid label \'{item}\': empty name')
    labels = dict(item.partition("=")[::2] for item in p.opts.get("label") or [])
    name = p.args[0]
    if name in netstore.PREDEFINED:
        raise ContainerError(f"network with name {name} already exists")
    if not (name[:1].isascii() and name[:1].isalnum() and all(c.isascii() and (c.isalnum() or c in "_.-") for c in name)):
        raise ContainerError(f'invalid name "{name}": only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed')
    root.ensure()
    store = NetworkStore(root.path)
    with store.lock():
        net = store.create(name, subnet=subnets[0] if subnets else "", gateway=gateways[0] if gateways else "",
                           internal=bool(p.opts.get("internal")), options=options, labels=labels)
        try:
            endpoints.refresh(store)
        except BaseException:
            _delete(store, net)
            raise
    root.event("network", "create", net["Id"], {"name": name, "type": "bridge"})
    sys.stdout.write(net["Id"] + "\n")
    return 0


def _delete(store: NetworkStore, net: dict) -> None:
    """A network's server, bridge and files; the firewall follows. Under the lock."""
    from ..net import dns, links

    d = store.dir(net["Id"])
    dns.stop(os.path.join(d, "dns.pid"), os.path.join(d, "dns.json"))
    links.delete_link(net["Bridge"])
    store.delete(net["Id"])
    endpoints.refresh(store)


def cmd_network_rm(root: Root, p: Parsed) -> int:
    store = NetworkStore(root.path)
    failed = False
    for ref in p.args:
        swarm_error = _swarm_rm(root, ref)
        if swarm_error is not None:  # a swarm network: the managers remove it
            if swarm_error:
                sys.stderr.write(swarm_error + "\n")
                failed = True
            else:
                sys.stdout.write(ref + "\n")
            continue
        try:
            with store.lock():
                net = _find(store, ref)
                if net["Name"] in netstore.PREDEFINED:
                    raise ContainerError(f"{net['Name']} is a pre-defined network and cannot be removed")
                if store.endpoints(net["Id"]):
                    raise ContainerError(f"error while removing network: network {net['Name']} id {net['Id']} "
                                         f"has active endpoints")
                _delete(store, net)
            root.event("network", "destroy", net["Id"], {"name": net["Name"], "type": "bridge"})
            sys.stdout.write(ref + "\n")
        except ContainerError as exc:
            if p.opts.get("force") and "not found" in str(exc):
                continue
            sys.stderr.write(f"refengine: {exc}\n")
            failed = True
    return 1 if failed else 0


def _swarm_rm(root: Root, ref: str) -> str | None:
    """``network rm`` of a swarm network (None when ``ref`` is none)."""
    if store_has(root, ref):
        return None
    from ..swarm import netcli

    return netcli.cli_rm(root.path, ref)


def store_has(root: Root, ref: str) -> bool:
    """Whether ``ref`` names a local network (they come first, as docker's local ones), other
    than the bridge that carries a swarm network on this node."""
    try:
        net = _find(NetworkStore(root.path), ref)
    except ContainerError:
        return False
    return netstore.OVERLAY_LABEL not in (net.get("Labels") or {})


def _swarm_docs(root: Root) -> list[dict]:
    """The swarm's networks when this node is a manager ([] otherwise)."""
    if not os.path.exists(os.path.join(root.path, "swarm", "swarmd.sock")):
        return []
    from ..swarm import netcli

    return netcli.swarm_documents(root.path)


def prune_networks(root: Root) -> list[str]:
    """Every user network without a running container, then what crashes left: stale
    endpoints (a SIGKILLed supervisor), bridges and rules of no network of this root."""
    from ..net import links

    store = NetworkStore(root.path)
    removed = []
    with store.lock():
        for net in store.all():
            if store.is_user(net) and not store.endpoints(net["Id"]):
                _delete(store, net)
                removed.append(net["Name"])
        from ..net.cleanup import remove_orphans

        remove_orphans()  # and those of roots deleted without a prune
        known = {net["Bridge"] for net in store.all()}
        for ifname in links.interfaces(f"rf{store.tag}"):
            if ifname not in known:
                links.delete_link(ifname)
        endpoints.refresh(store, force=True)
    return removed


def cmd_network_prune(root: Root, p: Parsed) -> int:
    removed = prune_networks(root)
    if removed:
        sys.stdout.write("Deleted Networks:\n" + "".join(n + "\n" for n in removed))
    return 0


def _all_docs(store: NetworkStore) -> list[dict]:
    with store.lock():
        nets = store.all()
        if not any(not store.is_user(n) for n in nets):
            nets.append(store.ensure_default())
    return [*(_document(store, n) for n in nets), *(_pseudo_doc(n) for n in PSEUDO)]


def _all_docs_with_swarm(root: Root, store: NetworkStore) -> list[dict]:
    """The local networks and, on a manager, the swarm's, each swarm network in place
    of the bridge that carries it on this node."""
    swarm = _swarm_docs(root)
    shown = {d["Id"] for d in swarm}
    local = [d for d in _all_docs(store) if d["Labels"].get(netstore.OVERLAY_LABEL) not in shown]
    # on a worker, as docker lists an overlay a task of the node is on
    local = [{**d, "Id": d["Labels"][netstore.OVERLAY_LABEL], "Driver": "overlay", "Scope": "swarm"}
             if netstore.OVERLAY_LABEL in d["Labels"] else d for d in local]
    return [*local, *swarm]


def _matches(doc: dict, filters: list[str]) -> bool:
    for item in filters:
        key, _, value = item.partition("=")
        if key == "name" and value not in doc["Name"]:
            return False
        if key == "id" and not doc["Id"].startswith(value):
            return False
        if key == "driver" and doc["Driver"] != value:
            return False
        if key == "label":
            k, sep, v = value.partition("=")
            if k not in doc["Labels"] or (sep and doc["Labels"][k] != v):
                return False
        if key == "type":
            builtin = doc["Name"] in netstore.PREDEFINED
            if value not in ("custom", "builtin"):
                raise ContainerError(f"invalid filter: 'type'='{value}'")
            if builtin != (value == "builtin"):
                return False
        if key not in ("name", "id", "driver", "label", "type", "scope", "dangling"):
            raise ContainerError(f"Invalid filter '{key}'")
    return True


def cmd_network_ls(root: Root, p: Parsed) -> int:
    root.ensure()
    store = NetworkStore(root.path)
    docs = sorted((d for d in _all_docs_with_swarm(root, store) if _matches(d, p.opts.get("filter") or [])), key=lambda d: d["Name"])
    no_trunc = p.opts.get("no_trunc")
    if p.opts.get("quiet"):
        sys.stdout.write("".join((d["Id"] if no_trunc else d["Id"][:12]) + "\n" for d in docs))
        return 0
    from .format import format_rows

    rows = [{"ID": d["Id"] if no_trunc else d["Id"][:12], "Name": d["Name"], "Driver": d["Driver"], "Scope": d["Scope"],
             "IPv6": str(d["EnableIPv6"]).lower(), "Internal": str(d["Internal"]).lower(), "CreatedAt": d["Created"],
             "Labels": ",".join(f"{k}={v}" for k, v in d["Labels"].items())} for d in docs]
    headers = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv6": "IPV6",
               "Internal": "INTERNAL", "CreatedAt": "CREATED AT", "Labels": "LABELS"}
    template = p.opts.get("format") or "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
    sys.stdout.write("".join(line + "\n" for line in format_rows(template, rows, headers)))
    return 0


def network_document(root: Root, ref: str) -> dict:
    """``network inspect REF``'s document (``inspect --type network`` too); ContainerError if none."""
    store = NetworkStore(root.path)
    if not store_has(root, ref):
        swarm = _swarm_doc(root, ref)
        if swarm is not None:
            return swarm
    return _document(store, _find(store, ref))


def _swarm_doc(root: Root, ref: str) -> dict | None:
    if not os.path.exists(os.path.join(root.path, "swarm", "swarmd.sock")):
        return None
    from ..swarm import netcli

    return netcli.find_document(root.path, ref)


def cmd_network_inspect(root: Root, p: Parsed) -> int:
    from .format import documents

    store = NetworkStore(root.path)
    docs, failed = [], False
    for ref in p.args:
        try:
            docs.append(network_document(root, ref))
        except ContainerError as exc:
            sys.stderr.write(f"Error: No such network: {ref}\n" if "not found" in str(exc) else f"refengine: {exc}\n")
            failed = True
    sys.stdout.write(documents(p.opts.get("format"), docs))
    return 1 if failed else 0


def _rewrite_config(root: Root, cid: str, change) -> dict:
    with root.lock(cid):
        config = root.read_config(cid)
        change(config)
        jsonio.write_atomic(os.path.join(root.container_dir(cid), "config.json"), config)
    return config


def cmd_network_connect(root: Root, p: Parsed) -> int:
    from .runtime import reconcile

    store = NetworkStore(root.path)
    net = _find(store, p.args[0])
    if net["Name"] in PSEUDO:
        raise ContainerError(f"container cannot be disconnected from host network or connected to host network"
                             if net["Name"] == "host" else "container cannot be connected to network none")
    cid = root.find(p.args[1])
    config = root.read_config(cid)
    mode = config["HostConfig"]["NetworkMode"]
    if mode in ("none", "host") or mode.startswith("container:"):
        raise ContainerError(f"container sharing network namespace with another container or host cannot be "
                             f"connected to any other network")
    name = net["Name"]
    if name in dict(endpoints.networks_of(config)):
        raise ContainerError(f"endpoint with name {config['Name'].lstrip('/')} already exists in network {name}")
    settings: dict = {"Aliases": list(p.opts.get("alias") or []) or None}
    # Checked here for a stopped container too (docker's updateNetworkConfig): stored, a bad
    # value would fail every later start of the container.
    if not store.is_user(net) and p.opts.get("ip"):
        raise ContainerError("user specified IP address is supported on user defined networks only")
    if not store.is_user(net) and p.opts.get("alias"):
        raise ContainerError("network-scoped alias is supported only for containers in user defined networks")
    if p.opts.get("ip"):
        import ipaddress

        try:
            ipaddress.IPv4Address(p.opts["ip"])
        except ValueError:
            raise ContainerError(f"invalid IPv4 address: {p.opts['ip']}") from None
        settings["IPAMConfig"] = {"IPv4Address": p.opts["ip"]}
    state = reconcile(root, cid, root.read_state(cid))
    if state["Running"] and state["Pid"]:
        endpoints.connect_running(root.path, config, state, net, settings)

    def add(cfg: dict) -> None:
        cfg.setdefault("NetworkingConfig", {}).setdefault("EndpointsConfig", {})[name] = settings

    _rewrite_config(root, cid, add)
    root.event("network", "connect", net["Id"], {"container": cid, "name": name, "type": "bridge"})
    return 0


def cmd_network_disconnect(root: Root, p: Parsed) -> int:
    from .runtime import reconcile

    store = NetworkStore(root.path)
    net = _find(store, p.args[0])
    cid = root.find(p.args[1])
    config = root.read_config(cid)
    name = net["Name"]
    if name not in dict(endpoints.networks_of(config)):
        raise ContainerError(f"container {cid[:12]} is not connected to network {name}")
    state = reconcile(root, cid, root.read_state(cid))
    if state["Running"] and state["Pid"]:
        endpoints.disconnect_running(root.path, config, state, net)

    def drop(cfg: dict) -> None:
        eps = cfg.setdefault("NetworkingConfig", {}).setdefault("EndpointsConfig", {})
        eps.pop(name, None)
        mode = cfg["HostConfig"]["NetworkMode"]
        if mode == name or (mode == "default" and name == "bridge"):
            cfg["HostConfig"]["NetworkMode"] = next(iter(eps), "none") if eps else "none"

    _rewrite_config(root, cid, drop)
    root.event("network", "disconnect", net["Id"], {"container": cid, "name": name, "type": "bridge"})
    return 0

"""A container on bridge networks, at each start: its host ports reserved, an
address on each network, a veth pair into its namespace, its /etc/hosts, the
networks' DNS records and the root's packet-filter rules; all undone when
the container stops.

The supervisor calls :meth:`Attachment.prepare` before clone (a host port
taken fails the start with 125 before anything runs), :meth:`connect` once
the container's namespace exists (the container waits for it), and
:meth:`disconnect` after the container exited. ``network connect`` and
``disconnect`` of a running container use :func:`connect_running` and
:func:`disconnect_running`. Every change of endpoints happens under the
root's network lock and ends with :func:`refresh`, which rewrites what is
derived from the live endpoints: the DNS records and the firewall.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import socket

from ..engine import jsonio
from ..engine.etcfiles import read_or_empty
from ..errors import ContainerError
from . import ipam, netstore, ports
from .netstore import NetworkStore, gateway, icc, subnet_of

HOSTS_HEAD = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n"
              "ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")


def networks_of(config: dict) -> list[tuple[str, dict]]:
    """(network name, endpoint settings) of every bridge network the container is on,
    its NetworkMode's first; none for ``none``, ``host`` and ``container:``."""
    mode = config["HostConfig"]["NetworkMode"]
    if mode in ("none", "host") or mode.startswith("container:"):
        return []
    wanted = dict((config.get("NetworkingConfig") or {}).get("EndpointsConfig") or {})
    first = "bridge" if mode == "default" else mode
    out = [(first, wanted.pop(first, {}) or {})]
    out.extend((name, settings or {}) for name, settings in wanted.items())
    return out


def hosts_text(hostname: str, addresses: list[str], links: list[tuple[str, list[str]]]) -> str:
    """/etc/hosts of a container on bridge networks: docker's loopback block, the linked
    containers, then the container's hostname on each of its addresses. Pure.

    >>> hosts_text("web", ["10.0.0.2"], [("10.0.0.3", ["db", "f00", "db-1"])]).splitlines()[-2:]
    ['10.0.0.3\\tdb f00 db-1', '10.0.0.2\\tweb']
    """
    lines = [f"{ip}\t{' '.join(names)}\n" for ip, names in links]
    lines += [f"{ip}\t{hostname}\n" for ip in addresses]
    return HOSTS_HEAD + "".join(lines)


def rewrite_in_place(path: str, text: str) -> None:
    """Replace a bind-mounted file's content keeping its inode (a rename would leave the
    container's mount on the old file): how docker updates /etc/hosts of a running container."""
    with open(path, "r+") as f:
        f.write(text)
        f.truncate()


def _veth_name(cid: str, nid: str) -> str:
    return "ve" + hashlib.sha256(f"{cid}/{nid}".encode()).hexdigest()[:11]


def _port_error(name: str, cid: str, proto: str, host_ip: str, port: str, exc: OSError) -> ContainerError:
    return ContainerError(
        f"driver failed programming external connectivity on endpoint {name} ({cid[:12]}): Error starting "
        f"userland proxy: listen {proto}4 {host_ip or '0.0.0.0'}:{port}: bind: {os.strerror(exc.errno).lower()}")


class Attachment:
    """One start's networking of one container."""

    def __init__(self, root_path: str, config: dict, wanted: list[tuple[str, dict]]):
        self.store = NetworkStore(root_path)
        self.root_path = root_path
        self.config = config
        self.cid = config["Id"]
        self.wanted = wanted
        self.sockets: list[socket.socket] = []
        self.ports: dict[str, list[dict]] = {}

    @classmethod
    def prepare(cls, root_path: str, config: dict) -> "Attachment | None":
        """Reserve the host ports (held open by the supervisor while the container runs, so
        neither another container nor a host process can take them); None when the
        container is on no bridge network."""
        wanted = networks_of(config)
        if not wanted:
            return None
        self = cls(root_path, config, wanted)
        try:
            self._reserve_ports()
        except BaseException:
            self.close()
            raise
        return self

    def _reserve_ports(self) -> None:
        name = self.config["Name"].lstrip("/")
        for key, binds in sorted((self.config["HostConfig"].get("PortBindings") or {}).items()):
            _, proto = ports.key(key)
            for b in binds or []:
                host_ip = b.get("HostIp") or "0.0.0.0"
                kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
                s = socket.socket(socket.AF_INET, kind)
                self.sockets.append(s)
                try:
                    s.bind((host_ip, int(b.get("HostPort") or 0)))
                except OSError as exc:
                    raise _port_error(name, self.cid, proto, b.get("HostIp", ""), b.get("HostPort") or "0", exc) from None
                self.ports.setdefault(key, []).append({"HostIp": host_ip, "HostPort": str(s.getsockname()[1])})

    def close(self) -> None:
        for s in self.sockets:
            s.close()
        self.sockets = []

    def connect(self, pid: int, pid_start: int) -> None:
        """Give the container process ``pid`` its interfaces (eth0, eth1, ...), in the order of
        its networks, and everything that depends on them."""
        with self.store.lock():
            addresses = []
            for index, (name, settings) in enumerate(self.wanted):
                net = self.store.find(name)
                ep = _attach(self.store, net, self.config, settings, pid, pid_start, f"eth{index}",
                             self.ports if index == 0 else {})
                addresses.append(ep["IPv4Address"].split("/")[0])
            _write_hosts(self.store, self.config, addresses)
            refresh(self.store)

    def disconnect(self) -> None:
        """After the container exited: its endpoints leave every network (the veth pairs
        died with its namespace), and the ports are released."""
        try:
            with self.store.lock():
                for net in self.store.all():
                    eps = self.store.endpoints(net["Id"], live=False)
                    if self.cid in eps:
                        del eps[self.cid]
                        self.store.write_endpoints(net["Id"], eps)
                refresh(self.store)
        finally:
            self.close()


def _attach(store: NetworkStore, net: dict, config: dict, settings: dict, pid: int, pid_start: int,
            ifname: str, published: dict) -> dict:
    """Allocate an address on ``net``, plug the veth, record the endpoint. Under the lock."""
    from . import netd

    nid, cid = net["Id"], config["Id"]
    subnet, gw = subnet_of(net), gateway(net)
    eps = store.endpoints(nid)  # only live ones: a dead container's address is free again
    eps.pop(cid, None)
    wanted_ip = ((settings.get("IPAMConfig") or {}).get("IPv4Address")) or ""
    try:
        ip = ipam.allocate(subnet, gw, [e["IPv4Address"].split("/")[0] for e in eps.values()], wanted_ip)
    except ipam.IPAMError as exc:
        raise ContainerError(str(exc)) from None
    netd.call(store.root_path, "ensure_bridge", ifname=net["Bridge"], gateway=gw, prefixlen=subnet.prefixlen)
    mac = ipam.mac_for(ip)
    netd.call(store.root_path, "plug", pid=pid, bridge=net["Bridge"], host_if=_veth_name(cid, nid), ifname=ifname,
              address=ip, prefixlen=subnet.prefixlen, mac=mac,
              gateway="" if net["Internal"] or ifname != "eth0" else gw,
              # only when set: a resident helper of an older refengine knows no mtu
              **({"mtu": netstore.mtu(net)} if netstore.mtu(net) else {}))
    ep = {"Name": config["Name"].lstrip("/"), "EndpointID": hashlib.sha256(f"{cid}{nid}{pid}".encode()).hexdigest(),
          "MacAddress": mac, "IPv4Address": f"{ip}/{subnet.prefixlen}", "IPv6Address": "",
          "Aliases": list(settings.get("Aliases") or []), "Ifname": ifname, "Pid": pid, "PidStart": pid_start,
          "Dns": list(config["HostConfig"].get("Dns") or []), "Ports": published}
    eps[cid] = ep
    store.write_endpoints(nid, eps)
    return ep


def _write_hosts(store: NetworkStore, config: dict, addresses: list[str]) -> None:
    """The container's /etc/hosts from its live endpoints and its ``--link``s."""
    linked = []
    for link in config["HostConfig"].get("Links") or []:
        other, _, alias = link.partition(":")
        other_name = other.lstrip("/")
        found = [(cid, ep) for net in store.all() for cid, ep in store.endpoints(net["Id"]).items()
                 if ep["Name"] == other_name]
        if not found:  # docker refuses the start too
            raise ContainerError(f"Cannot link to a non running container: {other} AS {alias}")
        cid, ep = found[0]
        names = [alias.rsplit("/", 1)[-1], cid[:12], other_name]
        linked.append((ep["IPv4Address"].split("/")[0], list(dict.fromkeys(names))))
    path = os.path.join(store.root_path, "containers", config["Id"], "hosts")
    rewrite_in_place(path, hosts_text(config["Config"]["Hostname"], addresses, linked))


def current_addresses(store: NetworkStore, cid: str) -> list[str]:
    out = []
    for net in store.all():
        ep = store.endpoints(net["Id"]).get(cid)
        if ep:
            out.append((ep["Ifname"], ep["IPv4Address"].split("/")[0]))
    return [ip for _, ip in sorted(out)]


def connect_running(root_path: str, config: dict, state: dict, net: dict, settings: dict) -> None:
    """``network connect`` of a running container: the next ethN, hosts and DNS updated."""
    store = NetworkStore(root_path)
    with store.lock():
        taken = {ep["Ifname"] for n in store.all() for c, ep in store.endpoints(n["Id"]).items() if c == config["Id"]}
        if config["Id"] in store.endpoints(net["Id"]):
            raise ContainerError(f"endpoint with name {config['Name'].lstrip('/')} already exists in network {net['Name']}")
        index = 0
        while f"eth{index}" in taken:
            index += 1
        _attach(store, net, config, settings, state["Pid"], state["PidStart"], f"eth{index}", {})
        _write_hosts(store, config, current_addresses(store, config["Id"]))
        refresh(store)


def disconnect_running(root_path: str, config: dict, state: dict, net: dict) -> None:
    """``network disconnect`` of a running container: its interface on ``net`` removed."""
    from . import netd

    store = NetworkStore(root_path)
    with store.lock():
        eps = store.endpoints(net["Id"], live=False)
        ep = eps.pop(config["Id"], None)
        if ep is None:
            raise ContainerError(f"container {config['Id'][:12]} is not connected to network {net['Name']}")
        netd.call(root_path, "unplug", pid=state["Pid"], ifname=ep["Ifname"])
        store.write_endpoints(net["Id"], eps)
        _write_hosts(store, config, current_addresses(store, config["Id"]))
        refresh(store)


# -- what is derived from the live endpoints -------------------------------------------


def host_nameservers() -> list[str]:
    text = read_or_empty("/etc/resolv.conf")
    return [line.split()[1] for line in text.splitlines() if line.startswith("nameserver") and len(line.split()) > 1]


def dns_records(net: dict, eps: dict) -> dict:
    """The embedded DNS server's records of a user network (see dns.py). Pure."""
    names: dict[str, list[str]] = {}
    clients = {}
    for cid, ep in sorted(eps.items()):
        ip = ep["IPv4Address"].split("/")[0]
        for name in dict.fromkeys([ep["Name"], cid[:12], *ep["Aliases"]]):
            names.setdefault(name.lower(), []).append(ip)
        if ep.get("Dns"):
            clients[ip] = ep["Dns"]
    return {"internal": bool(net["Internal"]), "upstream": host_nameservers(), "clients": clients, "names": names,
            "subnets": [str(subnet_of(net))]}


def refresh(store: NetworkStore, *, force: bool = False) -> None:
    """Rewrite what depends on the live endpoints: stale endpoints dropped, every user
    network's DNS records (its server started if needed), the firewall. Under the lock.

    The firewall is loaded only when its rules differ from the last ones loaded since
    boot (most starts publish nothing and change no rule: two iptables runs saved);
    ``force`` loads them anyway, for ``network prune`` to repair rules someone flushed."""
    from . import firewall

    networks, published = [], []
    for net in store.all():
        nid = net["Id"]
        all_eps = store.endpoints(nid, live=False)
        eps = store.endpoints(nid)
        if eps.keys() != all_eps.keys():
            store.write_endpoints(nid, eps)
        networks.append({"bridge": net["Bridge"], "subnet": str(subnet_of(net)), "internal": bool(net["Internal"]),
                         "icc": icc(net)})
        for ep in eps.values():
            for key, binds in (ep.get("Ports") or {}).items():
                port, proto = ports.key(key)
                for b in binds:
                    published.append({"proto": proto, "host_ip": b["HostIp"], "host_port": int(b["HostPort"]),
                                      "container_ip": ep["IPv4Address"].split("/")[0], "container_port": port,
                                      "bridge": net["Bridge"]})
        if store.is_user(net):
            _refresh_dns(store, net, eps)
    text = firewall.ruleset(store.tag, networks, published)
    applied = os.path.join(store.path, "firewall.applied")
    stamp = _boot_id() + "\n" + text
    if force or read_or_empty(applied) != stamp:
        firewall.apply(store.tag, text)
        _write(applied, stamp)


def _boot_id() -> str:
    return read_or_empty("/proc/sys/kernel/random/boot_id").strip()


def _write(path: str, text: str) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


#: Names a swarm agent adds to a network that backs an overlay: the tasks of its services on
#: every node (reference_runtime/swarm/overlaynode.py), ``{"names": {NAME: [IP, ...]}}``.
SWARM_NAMES = "swarm-names.json"


def merge_names(records: dict, extra_text: str) -> dict:
    """``records`` with the names of an agent's names file; a name the file has gets the
    file's addresses only, since the managers know every node's tasks and which name is a
    virtual IP (a task's container also has its service's name as an alias); an
    unreadable file adds none. Pure.

    >>> merge_names({"names": {"a": ["10.0.1.2"], "web": ["10.0.1.3"]}}, '{"names": {"web": ["10.0.1.9"]}}')
    {'names': {'a': ['10.0.1.2'], 'web': ['10.0.1.9']}}
    """
    try:
        extra = json.loads(extra_text)["names"] if extra_text else {}
    except (ValueError, KeyError, TypeError):
        return records
    names = {k: list(v) for k, v in records["names"].items()}
    for name, ips in extra.items() if isinstance(extra, dict) else ():
        if isinstance(ips, list):
            names[str(name).lower()] = list(dict.fromkeys(ip for ip in ips if isinstance(ip, str)))
    return {**records, "names": names}


def refresh_dns(store: NetworkStore, net: dict) -> None:
    """One network's DNS records again (its names file changed). Under the lock."""
    _refresh_dns(store, net, store.endpoints(net["Id"]))


def _refresh_dns(store: NetworkStore, net: dict, eps: dict) -> None:
    from . import dns

    d = store.dir(net["Id"])
    records = os.path.join(d, "dns.json")
    wanted = merge_names(dns_records(net, eps), read_or_empty(os.path.join(d, SWARM_NAMES)))
    if read_or_empty(records) != jsonio.dumps(wanted):  # every start refreshes every network: most are unchanged
        jsonio.write_atomic(records, wanted)
    pidfile = os.path.join(d, "dns.pid")
    if eps and not dns.running(pidfile, records):
        from . import netd

        netd.call(store.root_path, "ensure_bridge", ifname=net["Bridge"], gateway=gateway(net),
                  prefixlen=subnet_of(net).prefixlen)
        dns.spawn(records, gateway(net), pidfile, os.path.join(d, "dns.log"))


def published_ports(store: NetworkStore, cid: str) -> dict:
    for net in store.all():
        ep = store.endpoints(net["Id"]).get(cid)
        if ep and ep.get("Ports"):
            return ep["Ports"]
    return {}


def subnet_contains(net: dict, ip: str) -> bool:
    return ipaddress.ip_address(ip) in subnet_of(net)


def network_settings(root_path: str, config: dict, state: dict) -> dict:
    """``NetworkSettings`` of a container on bridge networks, for ``inspect``: an endpoint
    per network (addresses only while it runs, as docker shows them), the published
    ports, and the default bridge's endpoint repeated at the top level."""
    store = NetworkStore(root_path)
    running = bool(state.get("Running")) and bool(state.get("Pid"))
    networks, ports_doc, top = {}, {}, {}
    exposed = config["Config"].get("ExposedPorts") or {}
    for index, (name, settings) in enumerate(networks_of(config)):
        try:
            net = store.find(name, create_default=False)
        except ContainerError:
            net = None
        ep = store.endpoints(net["Id"]).get(config["Id"]) if net and running else None
        ip, _, prefix = (ep["IPv4Address"] if ep else "/").partition("/")
        doc = {"IPAMConfig": settings.get("IPAMConfig"), "Links": None, "Aliases": settings.get("Aliases"),
               "NetworkID": net["Id"] if net else "", "EndpointID": ep["EndpointID"] if ep else "",
               "Gateway": gateway(net) if ep and not net["Internal"] else "", "IPAddress": ip,
               "IPPrefixLen": int(prefix or 0), "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
               "MacAddress": ep["MacAddress"] if ep else "", "DriverOpts": None}
        networks[name] = doc
        if index == 0:
            if ep:
                ports_doc = {key: None for key in exposed}
                ports_doc.update(ep.get("Ports") or {})
            if name == "bridge":
                top = {k: doc[k] for k in ("EndpointID", "Gateway", "IPAddress", "IPPrefixLen", "MacAddress")}
                top["Bridge"] = net["Bridge"] if net else ""
    return {"Networks": networks, "Ports": ports_doc, **top}


def forget(root_path: str, cid: str) -> None:
    """Drop every endpoint of a removed container (its supervisor was killed before it could)
    and rewrite what depended on them; nothing to do in the usual case."""
    store = NetworkStore(root_path)
    if not any(cid in store.endpoints(net["Id"], live=False) for net in store.all()):
        return
    with store.lock():
        for net in store.all():
            eps = store.endpoints(net["Id"], live=False)
            if eps.pop(cid, None) is not None:
                store.write_endpoints(net["Id"], eps)
        refresh(store)

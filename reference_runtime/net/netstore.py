"""Where a state root keeps its networks and their live endpoints.

::

    ROOT/networks/
      lock                      flock: one writer of any network or endpoint at a time
      <id>/network.json         the network (docker's ``network inspect`` shape, no Containers)
      <id>/endpoints.json       container id -> endpoint, for containers running now
      <id>/dns.json             the embedded DNS server's records (user networks; see dns.py)
      <id>/dns.pid, dns.log     that server's pid file and log

An endpoint names the container process it belongs to (pid and start time):
one whose process is gone is stale and is dropped by the next change or by
``network prune``, so a SIGKILLed supervisor leaves nothing that a later
command does not clean (the veth pair died with the container's namespace).
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import shutil

from ..engine import jsonio
from ..engine.state import Lock, alive, rfc3339
from ..errors import ContainerError
from . import ipam

DEFAULT_NAME = "bridge"
#: Held while a subnet is chosen and its bridge made, by every root on this host.
HOST_LOCK = "/run/refengine-ipam.lock"
#: Which root each tag is (see :func:`register`); /run: kernel objects do not outlive a boot either.
REGISTRY = "/run/refengine-roots"
#: Names docker reserves for its predefined networks.
PREDEFINED = ("bridge", "host", "none")
#: The label of a bridge network that carries a swarm overlay network on this node
#: (reference_runtime/swarm/overlaynode.py): the overlay's ID.
OVERLAY_LABEL = "com.docker.swarm.network.id"


def root_tag(root_path: str) -> str:
    """Six hex digits naming a state root in kernel objects (bridges, chains)
    so that two roots on one host never share one."""
    return hashlib.sha256(os.path.realpath(root_path).encode()).hexdigest()[:6]


class NetworkStore:
    """The networks of one state root."""

    def __init__(self, root_path: str):
        self.root_path = root_path
        self.path = os.path.join(root_path, "networks")
        self.tag = root_tag(root_path)

    def lock(self) -> Lock:
        os.makedirs(self.path, mode=0o711, exist_ok=True)
        return Lock(os.path.join(self.path, "lock"))

    def dir(self, nid: str) -> str:
        return os.path.join(self.path, nid)

    def bridge_name(self, nid: str) -> str:
        """``rf`` + root tag + the network id's first 7 digits: 15 characters, the kernel's limit."""
        return f"rf{self.tag}{nid[:7]}"

    # -- networks ------------------------------------------------------------
    def ids(self) -> list[str]:
        try:
            return sorted(e for e in os.listdir(self.path) if len(e) == 64)
        except FileNotFoundError:
            return []

    def read(self, nid: str) -> dict:
        try:
            net = jsonio.read(os.path.join(self.dir(nid), "network.json"))
        except FileNotFoundError:
            raise ContainerError(f"network {nid} not found") from None
        net["Bridge"] = self.bridge_name(nid)  # from this root's tag: a copied root never shares a bridge
        return net

    def all(self) -> list[dict]:
        out = []
        for nid in self.ids():
            try:
                out.append(self.read(nid))
            except (ContainerError, ValueError):
                continue  # being created or removed
        return out

    def find(self, ref: str, *, create_default: bool = True) -> dict:
        """A network by name, full id or unique id prefix (docker's lookup order); the
        default bridge is made on first use unless ``create_default`` is false."""
        networks = self.all()
        for net in networks:
            if net["Name"] == ref or net["Id"] == ref:
                return net
        if ref == DEFAULT_NAME and create_default:
            return self.ensure_default()
        matches = [n for n in networks if ref and n["Id"].startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        raise ContainerError(f"network {ref} not found")

    def create(self, name: str, *, subnet: str = "", gateway: str = "", internal: bool = False,
               options: dict | None = None, labels: dict | None = None) -> dict:
        """A new bridge network and its bridge; caller holds :meth:`lock`.

        Its subnet overlaps no other network of this root and none of the host's routes,
        also when given with ``--subnet`` (docker checks only its own networks; a subnet
        over the host's LAN would cut the host off it). Choosing a subnet and making the
        bridge that claims it happen under a host-wide lock: two roots (or engines of
        ours) choosing at once would otherwise both take the first free pool."""
        if name in PREDEFINED and name != DEFAULT_NAME or any(n["Name"] == name for n in self.all()):
            raise ContainerError(f"network with name {name} already exists")
        from . import links

        others = [subnet_of(n) for n in self.all()]
        with Lock(HOST_LOCK):
            remove_orphans()  # what deleted roots left: their subnets are free again
            register(self.root_path, self.tag)
            routes = [r for r in links.host_routes() if r.prefixlen > 0]
            try:
                if subnet:
                    chosen = ipam.parse_subnet(subnet)
                    if any(o.overlaps(chosen) for o in others):
                        raise ContainerError("Pool overlaps with other one on this address space")
                    clash = [r for r in routes if r.overlaps(chosen)]
                    if clash:
                        raise ContainerError(f"subnet {chosen} overlaps the host's route to {clash[0]}: "
                                             f"choose a subnet no route of this host covers")
                else:
                    chosen = ipam.choose_subnet([*routes, *others])
                gw = ipam.gateway_of(chosen, gateway)
            except ipam.IPAMError as exc:
                raise ContainerError(str(exc)) from None
            net = self._write_new(name, chosen, gw, internal, options, labels)
            try:
                links.ensure_bridge(net["Bridge"], gw, chosen.prefixlen)
            except BaseException:
                self.delete(net["Id"])
                raise
        return net

    def _write_new(self, name: str, chosen: ipaddress.IPv4Network, gw: str, internal: bool,
                   options: dict | None, labels: dict | None) -> dict:
        nid = hashlib.sha256(os.urandom(32)).hexdigest()
        net = {"Name": name, "Id": nid, "Created": rfc3339(), "Scope": "local", "Driver": "bridge",
               "EnableIPv6": False, "IPAM": {"Driver": "default", "Options": {},
                                             "Config": [{"Subnet": str(chosen), "Gateway": gw}]},
               "Internal": internal, "Attachable": False, "Ingress": False, "ConfigFrom": {"Network": ""},
               "ConfigOnly": False, "Options": dict(options or {}), "Labels": dict(labels or {}),
               "Bridge": self.bridge_name(nid)}
        os.makedirs(self.dir(nid), mode=0o711)
        try:
            jsonio.write_atomic(os.path.join(self.dir(nid), "endpoints.json"), {})
            jsonio.write_atomic(os.path.join(self.dir(nid), "network.json"), net)
        except BaseException:  # a full disk: no directory without network.json, which nothing removes
            self.delete(nid)
            raise
        return net

    def ensure_default(self) -> dict:
        """The default bridge network, made on first use (docker makes it at daemon start)."""
        for net in self.all():
            if net["Options"].get("com.docker.network.bridge.default_bridge") == "true":
                return net
        return self.create(DEFAULT_NAME, options={"com.docker.network.bridge.default_bridge": "true",
                                    "com.docker.network.bridge.enable_icc": "true",
                                    "com.docker.network.bridge.enable_ip_masquerade": "true"})

    def delete(self, nid: str) -> None:
        shutil.rmtree(self.dir(nid), ignore_errors=True)

    # -- endpoints -----------------------------------------------------------
    def endpoints(self, nid: str, *, live: bool = True) -> dict:
        """container id -> endpoint; with ``live``, only those whose container process runs."""
        path = os.path.join(self.dir(nid), "endpoints.json")
        try:
            eps = jsonio.read(path)
        except FileNotFoundError:
            return {}
        except ValueError:
            raise ContainerError(f"{path} is damaged (not JSON); remove it to forget the network's endpoints") from None
        if live:
            eps = {cid: ep for cid, ep in eps.items() if alive(ep["Pid"], ep["PidStart"])}
        return eps

    def write_endpoints(self, nid: str, eps: dict) -> None:
        jsonio.write_atomic(os.path.join(self.dir(nid), "endpoints.json"), eps)

    def is_user(self, net: dict) -> bool:
        """A user-defined network: the ones with an embedded DNS server (docker's rule)."""
        return net["Options"].get("com.docker.network.bridge.default_bridge") != "true"


def register(root_path: str, tag: str) -> None:
    """Note on the host which root a tag belongs to, so that the bridges and rules of a
    root deleted without ``network prune`` (a test's temporary root, a wiped directory)
    can be found and removed (:func:`cleanup.remove_orphans`)."""
    os.makedirs(REGISTRY, mode=0o700, exist_ok=True)
    path = os.path.join(REGISTRY, tag)
    real = os.path.realpath(root_path)
    try:
        with open(path) as f:
            if f.read() == real:
                return
    except FileNotFoundError:
        pass
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(real)
    os.replace(tmp, path)


def registered() -> dict[str, str]:
    """tag -> root path of every root that made networks on this host since boot."""
    out = {}
    try:
        names = os.listdir(REGISTRY)
    except FileNotFoundError:
        return out
    for tag in names:
        if len(tag) == 6:
            try:
                with open(os.path.join(REGISTRY, tag)) as f:
                    out[tag] = f.read()
            except FileNotFoundError:
                continue
    return out


#: docker's option for the MTU of a network's interfaces (an overlay's VXLAN needs 1450).
MTU_OPTION = "com.docker.network.driver.mtu"


def mtu(net: dict) -> int:
    """The MTU a network gives its containers' interfaces; 0: the kernel's default."""
    value = str(net["Options"].get(MTU_OPTION, "")).strip()
    # ASCII digits only: "²" is a digit to str.isdigit() but not to int()
    return int(value) if value.isascii() and value.lstrip("-").isdigit() and int(value) > 0 else 0


def icc(net: dict) -> bool:
    return net["Options"].get("com.docker.network.bridge.enable_icc", "true") != "false"


def subnet_of(net: dict) -> ipaddress.IPv4Network:
    return ipaddress.ip_network(net["IPAM"]["Config"][0]["Subnet"])


def gateway(net: dict) -> str:
    return net["IPAM"]["Config"][0]["Gateway"]


def remove_orphans() -> list[str]:
    """Remove the bridges and rules of every registered root whose networks are gone
    (the directory was deleted without ``network prune``); returns their tags. Their DNS
    servers end by themselves once their records file is gone."""
    from . import firewall, links

    removed = []
    for tag, root_path in sorted(registered().items()):
        if os.path.isdir(os.path.join(root_path, "networks")):
            continue
        for bridge in links.interfaces(f"rf{tag}"):
            links.delete_link(bridge)
        firewall.remove(tag)
        try:
            os.unlink(os.path.join(REGISTRY, tag))
        except FileNotFoundError:
            pass
        removed.append(tag)
    return removed

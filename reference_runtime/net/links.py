"""The kernel side of bridge networking, through pyroute2 (netlink): bridges,
veth pairs into a container's network namespace, its address and route.

Thin on purpose: what to create is decided by the caller (endpoints.py);
these functions only make it so, and tolerate what a crash left behind
(an existing bridge is reused, a missing one is not an error to delete).
pyroute2 costs ~0.1-0.2 s to import, so it is imported here only, and
only a container on a bridge network loads this module.
"""

from __future__ import annotations

import ipaddress
import subprocess

from ..errors import ContainerError


def _iproute(netns: str | None = None):
    from pyroute2 import IPRoute

    return IPRoute(netns=netns) if netns else IPRoute()


def _sysctl(path: str, value: str) -> None:
    try:
        with open(path) as f:
            if f.read().strip() == value:
                return
        with open(path, "w") as f:
            f.write(value)
    except OSError as exc:
        raise ContainerError(f"cannot set {path} to {value}: {exc.strerror}") from None


def ensure_bridge(ifname: str, gateway: str, prefixlen: int) -> None:
    """The bridge ``ifname`` up with the gateway address; loopback traffic may be NATed
    onto it (route_localnet: 127.0.0.1:PORT reaches a published port) and the host
    forwards (docker sets both)."""
    from pyroute2 import NetlinkError

    with _iproute() as ip:
        found = ip.link_lookup(ifname=ifname)
        if not found:
            try:
                ip.link("add", ifname=ifname, kind="bridge")
            except NetlinkError as exc:
                if exc.code != 17:  # EEXIST: a concurrent start made it
                    raise ContainerError(f"cannot create bridge {ifname}: {exc}") from None
            found = ip.link_lookup(ifname=ifname)
        index = found[0]
        have = {a.get_attr("IFA_ADDRESS") for a in ip.get_addr(index=index, family=2)}
        if gateway not in have:
            try:
                ip.addr("add", index=index, address=gateway, prefixlen=prefixlen)
            except NetlinkError as exc:
                if exc.code != 17:
                    raise ContainerError(f"cannot address bridge {ifname}: {exc}") from None
        ip.link("set", index=index, state="up")
    _sysctl(f"/proc/sys/net/ipv4/conf/{ifname}/route_localnet", "1")
    _sysctl("/proc/sys/net/ipv4/ip_forward", "1")


def delete_link(ifname: str) -> None:
    from pyroute2 import NetlinkError

    with _iproute() as ip:
        try:
            ip.link("del", ifname=ifname)
        except NetlinkError as exc:
            if exc.code != 19:  # ENODEV: already gone
                raise ContainerError(f"cannot delete {ifname}: {exc}") from None


def plug(pid: int, bridge: str, host_if: str, ifname: str, address: str, prefixlen: int, mac: str,
         gateway: str, mtu: int = 0) -> None:
    """A veth pair: ``host_if`` on ``bridge``, its peer ``ifname`` in the network namespace
    of ``pid`` with ``address``/``prefixlen`` and ``mac``, and a default route via
    ``gateway`` unless it is empty; both ends with ``mtu`` unless it is 0 (the kernel's
    1500). The pair dies with the namespace."""
    from pyroute2 import NetlinkError

    try:
        with _iproute() as ip:
            try:
                ip.link("del", ifname=host_if)  # a leftover of a crashed start of this container
            except NetlinkError:
                pass
            ip.link("add", ifname=host_if, kind="veth", peer={"ifname": ifname, "net_ns_pid": pid})
            index = ip.link_lookup(ifname=host_if)[0]
            if mtu:
                ip.link("set", index=index, mtu=mtu)
            ip.link("set", index=index, master=ip.link_lookup(ifname=bridge)[0], state="up")
            # Hairpin: a container reaching its own published port through a host address gets
            # its packets back on the port they came from (docker sets it without userland proxy).
            # Netlink, not /sys/class/net: sysfs shows the namespace it was mounted in, which
            # is not this one when refengine runs in a namespace entered with nsenter (a swarm node).
            ip.brport("set", index=index, mode=1)
        with _iproute(f"/proc/{pid}/ns/net") as ns:
            index = ns.link_lookup(ifname=ifname)[0]
            ns.link("set", index=index, address=mac, **({"mtu": mtu} if mtu else {}))
            ns.addr("add", index=index, address=address, prefixlen=prefixlen)
            ns.link("set", index=index, state="up")
            if gateway:
                ns.route("add", dst="0.0.0.0/0", gateway=gateway)
    except (NetlinkError, OSError, IndexError) as exc:
        raise ContainerError(f"failed to set up the network of the container: {exc}") from None


def unplug(pid: int, ifname: str) -> None:
    """Take ``ifname`` out of the namespace of ``pid`` (its host end goes with it)."""
    from pyroute2 import NetlinkError

    try:
        with _iproute(f"/proc/{pid}/ns/net") as ns:
            found = ns.link_lookup(ifname=ifname)
            if found:
                ns.link("del", index=found[0])
    except (NetlinkError, OSError) as exc:
        raise ContainerError(f"failed to disconnect {ifname}: {exc}") from None


def interfaces(prefix: str) -> list[str]:
    """The host's interfaces whose names start with ``prefix``."""
    with _iproute() as ip:
        names = [link.get_attr("IFLA_IFNAME") for link in ip.get_links()]
    return sorted(n for n in names if n and n.startswith(prefix))


def host_routes() -> list[ipaddress.IPv4Network]:
    """Every IPv4 destination the host routes (a new network's subnet must overlap none)."""
    out = subprocess.run(["ip", "-o", "-4", "route", "show", "table", "all"], capture_output=True, text=True,
                         timeout=10).stdout
    routes = []
    for line in out.splitlines():
        words = line.split()
        dest = words[1] if len(words) > 1 and words[0] in ("local", "broadcast", "unreachable", "blackhole",
                                                           "prohibit", "throw", "unicast") else words[0]
        if dest != "default":
            try:
                routes.append(ipaddress.ip_network(dest, strict=False))
            except ValueError:
                continue
    return routes

"""Address management of bridge networks, pure: which subnet a new network
gets, which address a new endpoint gets, and its MAC address.

docker's rules (libnetwork ipamutils and bridge driver): the default pools
are 172.17-31.0.0/16 then 192.168.0.0/16 cut in /20s; a network takes the
first pool overlapping none of the host's routes and no other network; the
gateway is the first address; endpoints get the lowest free address; the
MAC is 02:42 followed by the IPv4 address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Net = ipaddress.IPv4Network

#: docker's default address pools, in the order it tries them.
DEFAULT_POOLS: tuple[Net, ...] = (
    *(ipaddress.ip_network(f"172.{n}.0.0/16") for n in range(17, 32)),
    *ipaddress.ip_network("192.168.0.0/16").subnets(new_prefix=20),
)


#: Ranges no bridge network may use (RFC 6890): the host's own, or not unicast at all.
SPECIAL: tuple[Net, ...] = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "240.0.0.0/4"))


class IPAMError(ValueError):
    """No subnet or address left, or an address the network cannot give."""


def choose_subnet(taken: Iterable[Net], pools: Iterable[Net] = DEFAULT_POOLS) -> Net:
    """The first pool that overlaps nothing in ``taken`` (host routes and other networks).

    >>> str(choose_subnet([ipaddress.ip_network("172.17.0.0/16")]))
    '172.18.0.0/16'
    >>> str(choose_subnet([ipaddress.ip_network("172.0.0.0/8")]))
    '192.168.0.0/20'
    """
    taken = list(taken)
    for pool in pools:
        if not any(pool.overlaps(t) for t in taken):
            return pool
    raise IPAMError("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network")


def parse_subnet(text: str) -> Net:
    """``--subnet`` as docker takes it: an IPv4 network in CIDR form, host bits zero.

    >>> parse_subnet("10.1.2.0/24")
    IPv4Network('10.1.2.0/24')
    >>> parse_subnet("10.1.2.3/24")
    Traceback (most recent call last):
    ...
    reference_runtime.net.ipam.IPAMError: invalid subnet 10.1.2.3/24: it has host bits set (10.1.2.0/24)
    """
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise IPAMError(f"invalid CIDR address: {text}") from None
    if not isinstance(net, ipaddress.IPv4Network):
        raise IPAMError(f"invalid subnet {text}: only IPv4 networks are supported")
    if "/" in text and net.network_address != ipaddress.ip_interface(text).ip:
        raise IPAMError(f"invalid subnet {text}: it has host bits set ({net})")
    if net.prefixlen > 30:
        raise IPAMError(f"invalid subnet {text}: too small for a gateway and one container")
    # No route the host needs for itself: 0/8 ("this network"), loopback, link-local, multicast
    # (a container cannot take one: its start fails) and 240/4 with the broadcast address.
    if any(net.overlaps(special) for special in SPECIAL):
        raise IPAMError(f"invalid subnet {text}: it overlaps the special-purpose range "
                        f"{next(sp for sp in SPECIAL if net.overlaps(sp))}")
    return net


def gateway_of(subnet: Net, wanted: str = "") -> str:
    """``--gateway`` when given (inside the subnet, a host address), else the first address.

    >>> gateway_of(ipaddress.ip_network("10.1.2.0/24"))
    '10.1.2.1'
    """
    if not wanted:
        return str(subnet.network_address + 1)
    _host_of(subnet, wanted, f"invalid gateway address {wanted}", f"no matching subnet for gateway {wanted}")
    return wanted


def _host_of(subnet: Net, text: str, invalid: str, outside: str) -> ipaddress.IPv4Address:
    """``text`` as an address of a host in ``subnet`` (not its network or broadcast address)."""
    try:
        ip = ipaddress.IPv4Address(text)
    except ValueError:
        raise IPAMError(invalid) from None
    if ip not in subnet or ip in (subnet.network_address, subnet.broadcast_address):
        raise IPAMError(outside)
    return ip


def allocate(subnet: Net, gateway: str, used: Iterable[str], wanted: str = "") -> str:
    """The endpoint's address: ``wanted`` (``--ip``) if free and inside, else the lowest free one.

    >>> net = ipaddress.ip_network("10.1.2.0/29")
    >>> allocate(net, "10.1.2.1", ["10.1.2.2"])
    '10.1.2.3'
    >>> allocate(net, "10.1.2.1", [], "10.1.2.6")
    '10.1.2.6'
    >>> allocate(net, "10.1.2.1", ["10.1.2.6"], "10.1.2.6")
    Traceback (most recent call last):
    ...
    reference_runtime.net.ipam.IPAMError: Address already in use: 10.1.2.6
    """
    busy = {gateway, *used}
    if wanted:
        _host_of(subnet, wanted, f"invalid IPv4 address: {wanted}",
                 f"no available IPv4 address on this network's address pools: {wanted} is not in {subnet}")
        if wanted in busy:
            raise IPAMError(f"Address already in use: {wanted}")
        return wanted
    for ip in subnet.hosts():
        if str(ip) not in busy:
            return str(ip)
    raise IPAMError(f"no available IPv4 addresses on this network's address pools: {subnet}")


def mac_for(ip: str) -> str:
    """docker's MAC for an address: 02:42 and the four bytes of the IPv4 address.

    >>> mac_for("172.17.0.2")
    '02:42:ac:11:00:02'
    """
    return "02:42:" + ":".join(f"{b:02x}" for b in ipaddress.IPv4Address(ip).packed)

"""What the host routes, for choosing subnets that cannot collide with it: the
network suite's user networks and the network bench's. Traffic to a subnet the
host already routes elsewhere would leave this machine."""

from __future__ import annotations

import ipaddress
import subprocess

#: Route types whose destination is the second word of ``ip -o route`` output.
_TYPED = ("local", "broadcast", "unreachable", "blackhole", "prohibit", "throw", "unicast", "anycast", "multicast")


def host_routes() -> list[ipaddress.IPv4Network]:
    """Every IPv4 destination the host routes, in any table."""
    out = subprocess.run(["ip", "-o", "-4", "route", "show", "table", "all"], capture_output=True, text=True,
                         timeout=10, check=True).stdout
    routes = []
    for line in out.splitlines():
        words = line.split()
        dest = words[1] if len(words) > 1 and words[0] in _TYPED else words[0]
        if dest != "default":
            routes.append(ipaddress.ip_network(dest, strict=False))
    return routes


def free_subnets(pool: ipaddress.IPv4Network, prefix: int = 24) -> list[ipaddress.IPv4Network]:
    """The /``prefix`` subnets of ``pool`` that overlap none of the host's routes, in order."""
    taken = host_routes()
    return [s for s in pool.subnets(new_prefix=prefix) if not any(s.overlaps(r) for r in taken)]

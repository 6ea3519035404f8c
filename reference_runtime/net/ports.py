"""Published ports, pure: ``-p``/``--publish`` and ``--expose`` as docker's
client parses them (go-connections nat.ParsePortSpec), into the
``HostConfig.PortBindings`` / ``Config.ExposedPorts`` shapes, and the
``-P`` rule (every exposed port on a random host port).
"""

from __future__ import annotations

import ipaddress

PROTOCOLS = ("tcp", "udp", "sctp")


class PortSpecError(ValueError):
    """A ``-p``/``--expose`` value docker's client refuses."""


def _port_range(text: str, what: str) -> tuple[int, int]:
    start, sep, end = text.partition("-")
    # ASCII digits only, as Go's strconv: int() and isdigit() also take "٨٠" (Arabic-Indic 80);
    # and "8080-" is no range (docker: "Invalid containerPort: 8080-").
    if not all(part.isascii() and part.isdigit() for part in (start, *([end] if sep else []))):
        raise PortSpecError(f"invalid {what} port: {text}")
    lo, hi = int(start), int(end or start)
    if not 0 < lo <= hi <= 65535:
        raise PortSpecError(f"invalid {what} port: {text}")
    return lo, hi


def parse_publish(spec: str) -> list[tuple[str, dict]]:
    """One ``-p`` value as ("PORT/PROTO", {"HostIp", "HostPort"}) pairs.

    >>> parse_publish("8080:80")
    [('80/tcp', {'HostIp': '', 'HostPort': '8080'})]
    >>> parse_publish("127.0.0.1::53/udp")
    [('53/udp', {'HostIp': '127.0.0.1', 'HostPort': ''})]
    >>> parse_publish("8000-8001:80-81")
    [('80/tcp', {'HostIp': '', 'HostPort': '8000'}), ('81/tcp', {'HostIp': '', 'HostPort': '8001'})]
    >>> parse_publish("80/icmp")
    Traceback (most recent call last):
    ...
    reference_runtime.net.ports.PortSpecError: invalid proto: icmp
    """
    rest, _, proto = spec.partition("/")
    proto = proto or "tcp"
    if proto not in PROTOCOLS:
        raise PortSpecError(f"invalid proto: {proto}")
    host_ip = host_port = ""
    if rest.startswith("["):  # [IPv6]:host:container
        raise PortSpecError(f"invalid IP address in {spec}: IPv6 host addresses are not supported")
    parts = rest.split(":")
    if len(parts) == 1:
        container = parts[0]
    elif len(parts) == 2:
        host_port, container = parts
    elif len(parts) == 3:
        host_ip, host_port, container = parts
        try:
            ipaddress.IPv4Address(host_ip)
        except ValueError:
            raise PortSpecError(f"invalid IP address: {host_ip}") from None
    else:
        raise PortSpecError(f"invalid port format for --publish: {spec}")
    if not container:
        raise PortSpecError(f"no port specified: {spec}<empty>")
    c_lo, c_hi = _port_range(container, "containerPort")
    pairs = []
    if host_port:
        h_lo, h_hi = _port_range(host_port, "hostPort")
        if h_hi - h_lo != c_hi - c_lo and h_lo != h_hi:
            raise PortSpecError(f"invalid ranges specified for container and host Ports: {container} and {host_port}")
    for i, port in enumerate(range(c_lo, c_hi + 1)):
        hp = "" if not host_port else str(h_lo + i if h_hi != h_lo else h_lo)
        pairs.append((f"{port}/{proto}", {"HostIp": host_ip, "HostPort": hp}))
    return pairs


def parse_expose(spec: str) -> list[str]:
    """One ``--expose`` value (``PORT[-END][/PROTO]``) as "PORT/PROTO" keys.

    >>> parse_expose("7000-7001/udp")
    ['7000/udp', '7001/udp']
    """
    ports, _, proto = spec.partition("/")
    proto = proto or "tcp"
    if proto not in PROTOCOLS:
        raise PortSpecError(f"invalid proto: {proto}")
    lo, hi = _port_range(ports, "")
    return [f"{p}/{proto}" for p in range(lo, hi + 1)]


def bindings(publish: list[str], publish_all: bool, exposed: list[str]) -> dict[str, list[dict]]:
    """``HostConfig.PortBindings``: every ``-p`` value, and with ``-P`` every exposed
    port not published already, on a random host port.

    >>> bindings(["8080:80"], True, ["80/tcp", "443/tcp"])
    {'80/tcp': [{'HostIp': '', 'HostPort': '8080'}], '443/tcp': [{'HostIp': '', 'HostPort': ''}]}
    """
    out: dict[str, list[dict]] = {}
    for spec in publish:
        for key, binding in parse_publish(spec):
            out.setdefault(key, []).append(binding)
    if publish_all:
        for key in exposed:
            out.setdefault(key, [{"HostIp": "", "HostPort": ""}])
    return out


def key(port: str) -> tuple[int, str]:
    """"80/tcp" -> (80, "tcp")."""
    number, _, proto = port.partition("/")
    return int(number), proto or "tcp"


def column(exposed: list[str], published: dict[str, list[dict]]) -> str:
    """``ps``'s PORTS: each published binding as ``IP:HOST->PORT/PROTO``, each exposed port
    without one as ``PORT/PROTO``, by port number.

    >>> column(["443/tcp"], {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]})
    '0.0.0.0:8080->80/tcp, 443/tcp'
    """
    items = []
    for port in sorted({*exposed, *published}, key=key):
        binds = published.get(port) or []
        items += [f"{b['HostIp']}:{b['HostPort']}->{port}" for b in binds] or [port]
    return ", ".join(items)

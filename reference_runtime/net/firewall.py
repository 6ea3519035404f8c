"""The packet filter and NAT rules of one refengine state root's bridge networks.

Docker's bridge driver with ``userland-proxy=false``: published ports are DNAT
rules, not proxy processes. Every root owns four chains named by its tag
(several roots can live on one host) and reaches them by one jump each::

    nat     PREROUTING  -m addrtype --dst-type LOCAL -> REF<tag>-PRE   (DNAT of published ports)
    nat     OUTPUT      -m addrtype --dst-type LOCAL -> REF<tag>-PRE   (the same, from the host)
    nat     POSTROUTING                              -> REF<tag>-POST  (MASQUERADE)
    filter  FORWARD     (inserted at 1)              -> REF<tag>-FWD   (isolation)
    filter  INPUT       (inserted at 1)              -> REF<tag>-IN    (no way to the host's loopback)

The engine regenerates all of a root's rules from its state on every change
(:func:`ruleset`, pure) and loads them in one atomic ``iptables-restore``
(:func:`apply`), so there is no per-rule delete and a crash leaves nothing that
the next regeneration does not rewrite. The caller sets ``route_localnet`` on
each bridge (for 127.0.0.1 -> published port) and reserves the host ports.
"""

from __future__ import annotations

import ipaddress
import re
import subprocess

from ..errors import ContainerError

_TAG = re.compile(r"[0-9A-Fa-f]{6}")
_IFNAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}")  # no leading "-": iptables would read an option
_COMMENT = "-m comment --comment refengine"


def _chains(tag: str) -> dict[str, str]:
    if not isinstance(tag, str) or not _TAG.fullmatch(tag):
        raise ContainerError(f"invalid firewall tag {tag!r}: 6 hex characters expected")
    return {"PRE": f"REF{tag}-PRE", "POST": f"REF{tag}-POST", "FWD": f"REF{tag}-FWD", "IN": f"REF{tag}-IN"}


def _jumps(tag: str) -> dict[str, list[str]]:
    """The jumps into our chains, spelled exactly as ``iptables-save`` prints them."""
    c = _chains(tag)
    return {"nat": [f"-A PREROUTING -m addrtype --dst-type LOCAL -j {c['PRE']}",
                    f"-A OUTPUT -m addrtype --dst-type LOCAL -j {c['PRE']}",
                    f"-A POSTROUTING -j {c['POST']}"],
            "filter": [f"-A FORWARD -j {c['FWD']}", f"-A INPUT -j {c['IN']}"]}


def _ifname(value: object) -> str:
    if not isinstance(value, str) or not _IFNAME.fullmatch(value):
        raise ContainerError(f"invalid bridge name {value!r}")
    return value


def _port(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ContainerError(f"invalid port {value!r}: 1-65535 expected")
    return value


def _ip(parse, value: object, what: str):
    try:
        if isinstance(value, str):  # ipaddress would take an int as well
            return parse(value)
        raise ValueError("IPv4 expected")
    except ValueError as exc:  # ipaddress's errors are ValueErrors, with a one-line message
        raise ContainerError(f"invalid {what} {value!r}: {exc}") from None


#: Bridges of other roots and engines (iptables' ``+`` matches any suffix): traffic from our
#: networks into them is left to their own rules (docker: docker0, br-*; podman: podman*,
#: cni-podman*; other refengine roots: rf*), which drop what they did not publish.
FOREIGN_BRIDGES = ("rf+", "docker0", "br-+", "podman+", "cni-podman+")


def ruleset(tag: str, networks: list[dict], published: list[dict]) -> str:
    """The ``iptables-restore --noflush`` text that makes the root's chains hold
    exactly the rules of these networks and published ports (without the jumps:
    :func:`apply` adds the missing ones).

    >>> "-j DNAT --to-destination 10.213.4.2:80" in ruleset("0a1b2c",
    ...     [{"bridge": "rf0", "subnet": "10.213.4.0/24", "internal": False, "icc": True}],
    ...     [{"proto": "tcp", "host_ip": "", "host_port": 8080, "container_ip": "10.213.4.2",
    ...       "container_port": 80, "bridge": "rf0"}])
    True
    """
    c = _chains(tag)
    nets: dict[str, tuple[ipaddress.IPv4Network, bool, bool]] = {}
    for n in networks:
        br = _ifname(n.get("bridge"))
        if br in nets:
            raise ContainerError(f"bridge {br} listed twice")
        subnet = _ip(ipaddress.IPv4Network, n.get("subnet"), "subnet")
        nets[br] = (subnet, bool(n.get("internal", False)), bool(n.get("icc", True)))
    pre: list[str] = []
    bound: list[tuple[str, ipaddress.IPv4Address, int]] = []
    for p in published:
        proto, br = p.get("proto"), _ifname(p.get("bridge"))
        if proto not in ("tcp", "udp"):
            raise ContainerError(f"invalid protocol {proto!r}: tcp or udp expected")
        if br not in nets:
            raise ContainerError(f"published port on unknown bridge {br}")
        host_port, cport = _port(p.get("host_port")), _port(p.get("container_port"))
        cip = _ip(ipaddress.IPv4Address, p.get("container_ip"), "container address")
        if cip not in nets[br][0]:
            raise ContainerError(f"container address {cip} is outside {br}'s subnet {nets[br][0]}")
        host = _ip(ipaddress.IPv4Address, p.get("host_ip") or "0.0.0.0", "host address")
        if nets[br][1]:
            continue  # docker publishes nothing on an internal network: it has no way out
        # One port on 0.0.0.0 and on any address collide, as in docker's allocator.
        if any((pr, hp) == (proto, host_port) and (h == host or h.is_unspecified or host.is_unspecified)
               for pr, h, hp in bound):
            raise ContainerError(f"Bind for {host}:{host_port} failed: port is already allocated")
        bound.append((proto, host, host_port))
        dest = "" if host.is_unspecified else f"-d {host}/32 "
        pre.append(f"-A {c['PRE']} {dest}-p {proto} -m {proto} --dport {host_port} {_COMMENT} "
                   f"-j DNAT --to-destination {cip}:{cport}")
    post, into, out, local = [], [], [], []
    for br, (subnet, internal, icc) in nets.items():
        # route_localnet (set on each bridge for 127.0.0.1:PORT) also lets the host accept a
        # container's packet addressed to 127.0.0.0/8 (one crafted with CAP_NET_RAW, a default
        # capability): the host's loopback-only services would be open to every container
        # (CVE-2020-8558). Replies to the host's own 127.0.0.1:PORT connections are ESTABLISHED.
        local.append(f"-A {c['IN']} -d 127.0.0.0/8 -i {br} -m conntrack ! --ctstate RELATED,ESTABLISHED "
                     f"{_COMMENT} -j DROP")
        if not internal:
            post.append(f"-A {c['POST']} -s {subnet} ! -o {br} {_COMMENT} -j MASQUERADE")
        post.append(f"-A {c['POST']} -s 127.0.0.0/8 -o {br} {_COMMENT} -j MASQUERADE")
        post.append(f"-A {c['POST']} -s {subnet} -o {br} -m conntrack --ctstate DNAT {_COMMENT} -j MASQUERADE")
        # Order: FWD is one chain for all bridges and ACCEPT ends the walk, so
        # every packet INTO one of our bridges is settled first by that
        # bridge's block, which ends in a DROP (replies, then its own bridge
        # per icc, then published ports, then nothing else). Only then may a
        # packet LEAVE a bridge: placed earlier, "-i A ! -o A -j ACCEPT" would
        # let A's containers into bridge B before B's DROP (no isolation).
        # icc precedes the DNAT accept, so with icc off a hairpin to a
        # neighbour's published port is dropped too, as docker does.
        into.append(f"-A {c['FWD']} -o {br} -m conntrack --ctstate RELATED,ESTABLISHED {_COMMENT} -j ACCEPT")
        into.append(f"-A {c['FWD']} -i {br} -o {br} {_COMMENT} -j {'ACCEPT' if icc else 'DROP'}")
        if internal:
            into.append(f"-A {c['FWD']} ! -i {br} -o {br} {_COMMENT} -j DROP")
            out.append(f"-A {c['FWD']} -i {br} ! -o {br} {_COMMENT} -j DROP")
        else:
            into.append(f"-A {c['FWD']} -o {br} -m conntrack --ctstate DNAT {_COMMENT} -j ACCEPT")
            into.append(f"-A {c['FWD']} -o {br} {_COMMENT} -j DROP")
            # Out, but not into another engine's (or root's) bridge: our ACCEPT may sit above
            # docker's and podman's own isolation rules in FORWARD. DNAT'd connections to
            # their published ports are theirs to accept (conntrack DNAT state) and go on.
            for other in FOREIGN_BRIDGES:
                out.append(f"-A {c['FWD']} -i {br} -o {other} -m conntrack ! --ctstate DNAT {_COMMENT} -j RETURN")
            out.append(f"-A {c['FWD']} -i {br} ! -o {br} {_COMMENT} -j ACCEPT")
    return "\n".join(["*nat", f":{c['PRE']} - [0:0]", f":{c['POST']} - [0:0]", *pre, *post, "COMMIT",
                      "*filter", f":{c['FWD']} - [0:0]", f":{c['IN']} - [0:0]", *into, *out, *local, "COMMIT", ""])


def _iptables(argv: list[str], stdin: str | None = None) -> str:
    """Run one iptables tool; its failure becomes a one-line ContainerError."""
    try:
        r = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise ContainerError(f"{argv[0]} not found: bridge networking needs iptables") from None
    except subprocess.TimeoutExpired:
        raise ContainerError(f"{argv[0]} did not finish within 60s") from None
    if r.returncode != 0:
        lines = [ln.strip() for ln in r.stderr.splitlines() if ln.strip()]
        raise ContainerError(lines[0] if lines else f"{argv[0]} exited {r.returncode}")
    return r.stdout


def _saved() -> dict[str, list[str]]:
    """The rule and chain lines of each table, as one ``iptables-save`` prints
    them (the nft variant has no ``-w``: its commits are atomic, no lock)."""
    tables: dict[str, list[str]] = {}
    current: list[str] = []
    for line in _iptables(["iptables-save"]).splitlines():
        if line.startswith("*"):
            current = tables.setdefault(line[1:], [])
        elif line.startswith(("-A ", ":")):
            current.append(line)
    return tables


def apply(tag: str, text: str) -> None:
    """Load ``text`` (from :func:`ruleset`) and add the jumps that are missing,
    in one ``iptables-save`` and one atomic ``iptables-restore``."""
    load(text, _jumps(tag))


def load(text: str, jumps: dict[str, list[str]]) -> None:
    """Load ``text`` (``iptables-restore --noflush`` input declaring its own chains, so
    they hold exactly its rules) and add those of ``jumps`` into them that are missing
    (``-A FORWARD``/``-A INPUT`` ones at the top; ``-I CHAIN 1`` as given)."""
    saved = _saved()
    out, table = [], ""
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif line == "COMMIT":
            for jump in jumps.get(table, []):
                if re.sub(r"^-I (\S+) 1 ", r"-A \1 ", jump) not in saved.get(table, []):
                    # FORWARD's policy is DROP under dockerd: ours must run before it; INPUT's
                    # DROP before any ACCEPT of the host's own.
                    out.append(re.sub(r"^-A (FORWARD|INPUT) ", r"-I \1 1 ", jump))
        out.append(line)
    _iptables(["iptables-restore", "-w", "--noflush"], "\n".join(out) + "\n")


def remove(tag: str) -> None:
    """Delete every jump into the root's chains and the chains, whichever of
    them are left (a crash may have left some)."""
    ours = set(_chains(tag).values())
    out = []
    for table, lines in _saved().items():
        mine = [ln for ln in lines if ln.split()[0] == "-A" and ln.split()[1] not in ours
                and any(ln.endswith(f"-j {ch}") or f"-j {ch} " in ln for ch in ours)]
        chains = [ln[1:].split()[0] for ln in lines if ln.startswith(":") and ln[1:].split()[0] in ours]
        if mine or chains:
            out += [f"*{table}", *("-D" + ln[2:] for ln in mine)]
            out += [f"-F {ch}\n-X {ch}" for ch in chains] + ["COMMIT"]
    if out:
        _iptables(["iptables-restore", "-w", "--noflush"], "\n".join(out) + "\n")


def present(tag: str) -> bool:
    """Whether any chain of the tag, or any rule naming one, is left."""
    names = _chains(tag).values()
    return any(any(n in ln for n in names) for lines in _saved().values() for ln in lines)


def ensure_forwarding() -> None:
    """Let the host route between bridges and the outside, as dockerd does at start."""
    path = "/proc/sys/net/ipv4/ip_forward"
    try:
        with open(path) as f:
            if f.read().strip() != "0":
                return
        with open(path, "w") as f:
            f.write("1\n")
    except OSError as exc:
        raise ContainerError(f"cannot enable IPv4 forwarding: {exc.strerror}") from None

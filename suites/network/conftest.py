"""Shared helpers of the network suite: docker's documentation addresses,
networks on subnets that cannot collide with the host's routes, containers
that serve or idle, and the one guard every client call goes through.

Safety (issue 11): traffic goes only to loopback and to addresses of
containers this run created, and only after :func:`guard` has checked, from
the engine's ``inspect``, that the address belongs to a network the check
created or to the engine's default bridge, and that the host routes it to a
local bridge. Every client call is bounded by a timeout.
"""

from __future__ import annotations

import ipaddress
import json
import random
import re
import select
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conformance.engine import CommandResult, Engine, EngineCallFailed
from conformance.hostnet import free_subnets
from conformance.suite_support import DOCS
from conformance.testinfra_backend import container_host  # noqa: F401  (the fixture, for every check here)

NETWORKING = f"{DOCS}/engine/network/"
PUBLISHED_PORTS = f"{NETWORKING}#published-ports"
DNS_SERVICES = f"{NETWORKING}#dns-services"
IP_ADDRESS = f"{NETWORKING}#ip-address-and-hostname"
CONTAINER_NETWORKS = f"{NETWORKING}#container-networks"
BRIDGE = f"{NETWORKING}drivers/bridge/"
USER_BRIDGE_DIFFERENCES = f"{BRIDGE}#differences-between-user-defined-bridges-and-the-default-bridge"
BRIDGE_OPTIONS = f"{BRIDGE}#options"
NONE = f"{NETWORKING}drivers/none/"
HOST = f"{NETWORKING}drivers/host/"
LINKS = f"{NETWORKING}links/"
CLI = f"{DOCS}/reference/cli/docker"
RUN = f"{CLI}/container/run/"
RUN_NETWORK = f"{RUN}#network"
RUN_PUBLISH = f"{RUN}#publish"
RUN_EXIT_STATUS = f"{RUN}#exit-status"
RUN_HOSTNAME = f"{RUN}#hostname"
PORT = f"{CLI}/container/port/"
NETWORK_CREATE = f"{CLI}/network/create/"
NETWORK_CONNECT = f"{CLI}/network/connect/"
NETWORK_DISCONNECT = f"{CLI}/network/disconnect/"
NETWORK_INSPECT = f"{CLI}/network/inspect/"
NETWORK_RM = f"{CLI}/network/rm/"

#: A main process that idles and ends at SIGTERM at once.
IDLE = ["sh", "-c", "trap 'exit 0' TERM; sleep 600 & wait"]

#: Where the suite's user networks live: a /16 no engine picks by default
#: (docker: 172.17-31/16 and 192.168/16, podman: 10.88/16 and 10.89/16).
SUBNET_POOL = ipaddress.ip_network("10.213.0.0/16")

#: Bounded waits (seconds).
CLIENT_TIMEOUT = 3
SERVE_TIMEOUT = 20.0


@pytest.fixture
def image(test_image) -> str:
    """The plain busybox test image."""
    return test_image.base


# -- networks ---------------------------------------------------------------------


@dataclass
class Network:
    """A user-defined network a check created; removed by ``engine.cleanup``."""

    name: str
    subnet: ipaddress.IPv4Network


def free_subnet() -> ipaddress.IPv4Network:
    """A /24 of :data:`SUBNET_POOL` that overlaps none of the host's routes;
    random, so parallel workers rarely pick the same one (a collision is
    refused by the engine and retried by :func:`create_network`)."""
    candidates = free_subnets(SUBNET_POOL)
    if not candidates:
        raise EngineCallFailed(f"no free /24 left in {SUBNET_POOL}: the host routes all of it")
    return random.choice(candidates)


def create_network(engine: Engine, *options: str, subnet: ipaddress.IPv4Network | None = None) -> Network:
    """``network create --subnet S [OPTIONS] NAME`` on a subnet free on this host."""
    name = engine.new_name("net")
    for _ in range(3):
        chosen = subnet or free_subnet()
        result = engine.cli("network", "create", "--label", engine.label, "--subnet", str(chosen), *options, name)
        if result.ok:
            return Network(name, chosen)
        if subnet or not re.search(r"overlap|in use|already used", result.stderr, re.I):
            break
    raise EngineCallFailed(f"{engine.name}: could not create a network\n{result}")


@pytest.fixture
def network(engine) -> Network:
    """A fresh user-defined bridge network."""
    return create_network(engine)


# -- containers -------------------------------------------------------------------


def start(engine: Engine, image: str, *options: str, command: list[str] | None = None, name: str | None = None) -> str:
    """``run -d [OPTIONS] IMAGE COMMAND`` (idle by default), running on return."""
    name = name or engine.new_name()
    engine.cli("run", "-d", "--name", name, "--label", engine.label, *options, image, *(command or IDLE), check=True)
    engine.wait_running(name)
    return name


def http_server(port: int, token: str) -> list[str]:
    """busybox httpd in the foreground on ``port``, serving ``token`` at /."""
    return ["sh", "-c", f"mkdir -p /www && echo {token} > /www/index.html && exec httpd -f -p {port} -h /www"]


def serve(engine: Engine, image: str, *options: str, port: int = 8080, token: str | None = None,
          name: str | None = None) -> tuple[str, str]:
    """A container serving HTTP on ``port``; returns (name, token), once its
    own loopback answers."""
    name = name or engine.new_name()
    token = token or f"token-{name}"
    start(engine, image, *options, command=http_server(port, token), name=name)
    engine.wait_for(lambda: token in http_get(engine, name, "127.0.0.1", port).stdout,
                    timeout=SERVE_TIMEOUT, interval=0.2, what=f"httpd in {name} to answer on port {port}")
    return name, token


def endpoints(engine: Engine, name: str) -> dict:
    """``NetworkSettings.Networks`` of a container: network name -> endpoint."""
    return engine.inspect(name, kind="container")["NetworkSettings"].get("Networks") or {}


def address(engine: Engine, name: str, network: str | None = None) -> str:
    """The container's IPv4 address on ``network`` (on its only network when None)."""
    nets = endpoints(engine, name)
    if network is None:
        assert len(nets) == 1, f"{engine.name}: {name} is on {sorted(nets)}, expected exactly one network"
        network = next(iter(nets))
    assert network in nets, f"{engine.name}: inspect of {name} lists networks {sorted(nets)}, not {network}"
    ip = nets[network].get("IPAddress", "")
    assert ip, f"{engine.name}: inspect of {name} shows no IPAddress on {network}: {nets[network]}"
    return ip


def default_bridge_subnet(engine: Engine, name: str) -> ipaddress.IPv4Network:
    """The subnet of the default bridge, from the endpoint of a container of ours on it."""
    nets = endpoints(engine, name)
    assert len(nets) == 1, f"{engine.name}: {name}, started without --network, is on {sorted(nets)}"
    ep = next(iter(nets.values()))
    return ipaddress.ip_network(f"{ep['IPAddress']}/{ep['IPPrefixLen']}", strict=False)


# -- the traffic guard --------------------------------------------------------------


@dataclass
class Guard:
    """The addresses a check may send traffic to: loopback, and addresses in
    subnets it created or the default bridge's, routed by the host to a local
    bridge. :meth:`allow` registers a subnet, :meth:`check` refuses anything
    else (a refusal is a bug of the check, never the engine's failure)."""

    subnets: list[ipaddress.IPv4Network] = field(default_factory=list)

    def allow(self, subnet: ipaddress.IPv4Network | Network) -> None:
        self.subnets.append(subnet.subnet if isinstance(subnet, Network) else subnet)

    def check(self, ip: str) -> str:
        addr = ipaddress.ip_address(ip)
        if addr.is_loopback:
            return ip
        if not any(addr in s for s in self.subnets):
            raise RuntimeError(f"refusing to send traffic to {ip}: not in a network this check created ({self.subnets})")
        if ip in host_addresses():  # the host's own end of a bridge: delivered locally
            return ip
        route = subprocess.run(["ip", "-o", "route", "get", ip], capture_output=True, text=True, timeout=10).stdout
        dev = re.search(r"\bdev (\S+)", route)
        if not dev or not Path(f"/sys/class/net/{dev.group(1)}/bridge").is_dir():
            raise RuntimeError(f"refusing to send traffic to {ip}: the host routes it to no local bridge ({route.strip()!r})")
        return ip


@pytest.fixture
def guard() -> Guard:
    return Guard()


def host_addresses() -> set[str]:
    """The IPv4 addresses assigned on this host (not in any container)."""
    out = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True, timeout=10, check=True).stdout
    return {line.split()[3].split("/")[0] for line in out.splitlines()}


def http_get(engine: Engine, container: str, target: str, port: int) -> CommandResult:
    """GET http://TARGET:PORT/ from inside ``container`` with busybox ``nc``
    (busybox-static's ``wget`` crashes in these images), bounded twice: the
    connect by ``-w``, the whole exchange by ``timeout``."""
    request = f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w {CLIENT_TIMEOUT} {target} {port}"
    return engine.cli("exec", container, "timeout", str(CLIENT_TIMEOUT + 5), "sh", "-c", request,
                      timeout=CLIENT_TIMEOUT + 30)


def fetch(engine: Engine, container: str, ip: str, port: int, guard: Guard) -> str:
    """The response to GET http://IP:PORT/ from inside ``container`` ('' when it fails);
    ``ip`` must pass the guard."""
    guard.check(ip)
    result = http_get(engine, container, ip, port)
    return result.stdout if result.ok else ""


def host_fetch(ip: str, port: int, guard: Guard, timeout: float = CLIENT_TIMEOUT) -> str:
    """GET http://IP:PORT/ from the host; '' when the connection fails."""
    guard.check(ip)
    try:
        with socket.create_connection((ip, port), timeout=timeout) as conn:
            conn.settimeout(timeout)
            conn.sendall(f"GET / HTTP/1.0\r\nHost: {ip}\r\n\r\n".encode())
            chunks = []
            while chunk := conn.recv(65536):
                chunks.append(chunk)
    except OSError:
        return ""
    return b"".join(chunks).decode(errors="replace")


def free_host_port() -> int:
    """A TCP port no socket on the host holds right now."""
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


def lookup(engine: Engine, container: str, name: str, guard: Guard) -> set[str]:
    """The IPv4 addresses busybox ``nslookup -type=a NAME SERVER`` prints in the
    container, asking only the engine's resolver (:func:`engine_resolver`): busybox
    would try every nameserver of resolv.conf, which on podman lists the host's
    too; an empty set when the name does not resolve."""
    server = engine_resolver(engine, container, guard)
    result = engine.cli("exec", container, "timeout", "8", "nslookup", "-type=a", name, server, timeout=30)
    answers = result.stdout.split("answer:", 1)[1] if "answer:" in result.stdout else ""
    return set(re.findall(r"^Address: (\d+\.\d+\.\d+\.\d+)$", answers, re.M))


def nameservers(engine: Engine, container: str) -> list[str]:
    text = engine.cli("exec", container, "cat", "/etc/resolv.conf", check=True).stdout
    return re.findall(r"^\s*nameserver\s+(\S+)", text, re.M)


def engine_resolver(engine: Engine, container: str, guard: Guard) -> str:
    """The first nameserver of the container's resolv.conf, the engine's own
    (docker's 127.0.0.11, podman's aardvark-dns on the network's gateway), once
    the guard has checked it is not outside this machine."""
    servers = nameservers(engine, container)
    assert servers, f"{engine.name}: {container} has no nameserver in /etc/resolv.conf"
    return guard.check(servers[0])


def host_nameservers() -> list[str]:
    """The nameservers of the host's resolv.conf that a container can use: docker
    copies the file to the default bridge's containers without loopback ones."""
    text = Path("/etc/resolv.conf").read_text()
    usable = [ns for ns in re.findall(r"^\s*nameserver\s+(\S+)", text, re.M)
              if not ipaddress.ip_address(ns.split("%")[0]).is_loopback]
    # With none left, docker documents Google's public resolvers instead.
    return usable or ["8.8.8.8", "8.8.4.4"]


def first_line(proc: subprocess.Popen, timeout: float = 20.0) -> str:
    """The first line a helper started with ``stdout=PIPE, stderr=PIPE, text=True``
    prints, stripped; a helper silent for TIMEOUT seconds is killed and the
    check fails with what it wrote to stderr (a bounded wait, never a hang)."""
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if ready:
        return proc.stdout.readline().strip()
    proc.kill()
    _, err = proc.communicate(timeout=10)
    raise AssertionError(f"{proc.args[:3]}...: printed nothing in {timeout:.0f}s; stderr: {err[-2000:]!r}")


def container_pid(engine: Engine, name: str) -> int:
    pid = engine.inspect(name, kind="container")["State"]["Pid"]
    assert pid > 0, f"{engine.name}: inspect of running {name} shows State.Pid {pid}"
    return pid


def netns_python(pid: int, code: str, *args: str) -> list[str]:
    """argv running Python ``code`` on the host inside the network namespace
    of ``pid`` (the interpreter and its files are the host's; only the
    network is the container's)."""
    return ["nsenter", f"--net=/proc/{pid}/ns/net", sys.executable, "-c", code, *args]


def in_netns(pid: int, code: str, *args: str, timeout: float = 20) -> subprocess.CompletedProcess:
    """:func:`netns_python`, run to its end within ``timeout``."""
    return subprocess.run(netns_python(pid, code, *args), capture_output=True, text=True, timeout=timeout)


def inspect_network(engine: Engine, name: str) -> dict:
    data = json.loads(engine.cli("network", "inspect", name, check=True).stdout)
    return data[0] if isinstance(data, list) else data


def gateway(engine: Engine, name: str, network: str | None = None) -> str:
    """The container's gateway on ``network`` (its only one when None): the
    host's own address on that bridge; '' when it has none (an --internal
    network may give none)."""
    nets = endpoints(engine, name)
    ep = nets[network] if network else next(iter(nets.values()))
    return ep.get("Gateway", "")

"""Network round trips: request/response over one TCP connection between two
containers on one user network, and from the host through a published port
(``-p 127.0.0.1::PORT``), refengine vs docker vs podman.

Both ends are the host's Python run inside the containers' network namespaces
(``nsenter --net``), so every engine is measured with the same client and
server and only the engine's data path differs: veth pairs and a bridge
between containers; NAT (refengine, podman) or docker's userland proxy
through a published port. Traffic stays on this host: the network is a
/24 of 10.215.0.0/16 that no host route covers.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..hostnet import free_subnets
from .core import Case, Unavailable
from .start import IMAGE, CliSubject

ROUND_TRIPS = 4000
MESSAGE = b"x" * 64
PORT = 7000
POOL = ipaddress.ip_network("10.215.0.0/16")

#: An echo server: every 64-byte request answered at once, connections served one by one.
ECHO = r"""
import socket, sys
s = socket.create_server(("0.0.0.0", int(sys.argv[1])))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
print("ready", flush=True)
while True:
    conn, _ = s.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data)
"""

#: A client: N request/response round trips over one connection; prints round trips/s.
CLIENT = r"""
import socket, sys, time
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
c = socket.create_connection((host, port), timeout=10)
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
msg = b"x" * 64
t = time.perf_counter()
for _ in range(n):
    c.sendall(msg)
    got = 0
    while got < len(msg):
        got += len(c.recv(65536))
print(n / (time.perf_counter() - t))
"""


def _free_subnet() -> str:
    free = free_subnets(POOL)
    if not free:
        raise Unavailable(f"no free /24 in {POOL}")
    return str(free[0])


class NetworkPair:
    """One engine's server and client containers on a user network of their own."""

    def __init__(self, engine: str, env: dict[str, str] | None = None):
        self.subject = CliSubject(engine, [], env)
        self.name = f"bench-net-{os.getpid()}-{engine}"
        self.containers: list[str] = []
        self.echo: subprocess.Popen | None = None
        self.server_ip = ""
        self.host_port = 0
        self.client_pid = 0
        self.ready = False

    def _cli(self, *args: str, check: bool = True) -> str:
        result = subprocess.run([*self.subject.argv, *args], env=self.subject.env, capture_output=True, text=True,
                                cwd=self.subject.cwd, timeout=120)
        if check and result.returncode != 0:
            raise Unavailable(f"{self.subject.engine} {' '.join(args[:2])} failed: {result.stderr.strip()[-200:]}")
        return result.stdout.strip()

    def _start(self, *options: str) -> dict:
        name = f"{self.name}-{len(self.containers)}"
        self._cli("run", "-d", "--name", name, "--network", self.name, *options, IMAGE, "sleep", "3600")
        self.containers.append(name)
        doc = json.loads(self._cli("inspect", name))
        return doc[0] if isinstance(doc, list) else doc

    def setup(self) -> None:
        self.subject.prepare()
        self._cli("network", "create", "--subnet", _free_subnet(), self.name)
        server = self._start("-p", f"127.0.0.1::{PORT}")
        self.server_ip = server["NetworkSettings"]["Networks"][self.name]["IPAddress"]
        self.host_port = int(self._cli("port", self.containers[0], f"{PORT}/tcp").splitlines()[0].rsplit(":", 1)[1])
        self.echo = subprocess.Popen(
            ["nsenter", f"--net=/proc/{server['State']['Pid']}/ns/net", sys.executable, "-c", ECHO, str(PORT)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if self.echo.stdout.readline().strip() != "ready":
            raise Unavailable(f"{self.subject.engine}: the echo server did not start: {self.echo.stderr.read()[-200:]}")
        self.client_pid = self._start()["State"]["Pid"]
        self.ready = True

    def between_containers(self) -> float:
        if not self.ready:
            self.setup()
        out = subprocess.run(["nsenter", f"--net=/proc/{self.client_pid}/ns/net", sys.executable, "-c", CLIENT,
                              self.server_ip, str(PORT), str(ROUND_TRIPS)], capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise Unavailable(f"{self.subject.engine}: the client failed: {out.stderr.strip()[-200:]}")
        return float(out.stdout)

    def published_port(self) -> float:
        if not self.ready:
            self.setup()
        with socket.create_connection(("127.0.0.1", self.host_port), timeout=10) as c:
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            start = time.perf_counter()
            for _ in range(ROUND_TRIPS):
                c.sendall(MESSAGE)
                got = 0
                while got < len(MESSAGE):
                    chunk = c.recv(65536)
                    if not chunk:
                        raise Unavailable(f"{self.subject.engine}: the published port closed the connection")
                    got += len(chunk)
            return ROUND_TRIPS / (time.perf_counter() - start)

    def teardown(self) -> None:
        if self.echo is not None:
            self.echo.kill()
            self.echo.wait(timeout=10)
        for name in self.containers:
            self._cli("rm", "-f", name, check=False)
        self._cli("network", "rm", self.name, check=False)


def cases(options) -> list[Case]:
    ref_root = Path(tempfile.mkdtemp(prefix="bench-refengine-net-"))
    pairs = {
        "refengine": NetworkPair("refengine", {"REFENGINE_ROOT": str(ref_root)}),
        "docker": NetworkPair("docker"),
        "podman": NetworkPair("podman"),
    }

    def teardown() -> None:
        for pair in pairs.values():
            pair.teardown()
        if (ref_root / "networks").is_dir():
            from reference_runtime.net.cleanup import remove_all

            remove_all(str(ref_root))  # the throwaway root's default bridge and rules
        import shutil

        shutil.rmtree(ref_root, ignore_errors=True)

    return [
        Case(name="network: round trips between two containers on a user network", unit="round trips/s",
             higher_is_better=True, subjects={n: p.between_containers for n, p in pairs.items()}, baseline="docker",
             description=f"{ROUND_TRIPS} request/response round trips of 64 bytes over one TCP connection"),
        Case(name="network: round trips through a published port (127.0.0.1)", unit="round trips/s",
             higher_is_better=True, subjects={n: p.published_port for n, p in pairs.items()}, baseline="docker",
             teardown=teardown,
             description=f"{ROUND_TRIPS} round trips from the host to 127.0.0.1:HOST_PORT (-p 127.0.0.1::{PORT})"),
    ]

"""Published ports: ``-p HOST:CONTAINER``, ``-p CONTAINER`` with ``port``,
``-P`` with EXPOSE, ``/udp``, a loopback-only binding, the same host port
twice, a host port already in use, hairpin NAT, and a published port reached
from another network. Host-side clients connect to loopback, or to the
host's own address on a bridge the check made or the engine's default bridge."""

from __future__ import annotations

import re
import socket
import subprocess

import pytest

from .conftest import (CLIENT_TIMEOUT, PORT, PUBLISHED_PORTS, RUN_EXIT_STATUS, RUN_PUBLISH, container_pid, create_network,
                       default_bridge_subnet, fetch, first_line, free_host_port, gateway, host_fetch, netns_python, serve, start)

pytestmark = pytest.mark.requires("published-ports")


def port_lines(engine, name: str, *spec: str) -> set[str]:
    result = engine.cli("port", name, *spec, check=True)
    return {line.strip() for line in result.stdout.splitlines() if line.strip()}


def host_port(engine, name: str, spec: str) -> int:
    """The IPv4 host port ``port NAME SPEC`` reports (``0.0.0.0:N``)."""
    lines = port_lines(engine, name, spec)
    ports = {int(m.group(1)) for line in lines if (m := re.fullmatch(r"0\.0\.0\.0:(\d+)", line))}
    assert len(ports) == 1, f"{engine.name}: port {name} {spec} printed {sorted(lines)}; expected one 0.0.0.0:PORT line"
    return ports.pop()


@pytest.mark.spec(RUN_PUBLISH, "-p HOST:CONTAINER maps the container's port to the host's port on all of the host's addresses")
def test_publish_host_port(engine, image, guard):
    port = free_host_port()
    name, token = serve(engine, image, "-p", f"{port}:8080")
    assert "0.0.0.0:" + str(port) in port_lines(engine, name, "8080/tcp"), (
        f"{engine.name}: port {name} 8080/tcp prints {port_lines(engine, name, '8080/tcp')}; expected 0.0.0.0:{port}")
    got = engine.wait_for(lambda: host_fetch("127.0.0.1", port, guard), timeout=10, what=f"127.0.0.1:{port} to answer")
    assert token in got, f"{engine.name}: 127.0.0.1:{port} answered {got[:200]!r}, not the container's httpd"


@pytest.mark.spec(PORT, "-p CONTAINER publishes the port on a random host port, which docker port reports")
def test_publish_container_port_gets_a_random_host_port(engine, image, guard):
    name, token = serve(engine, image, "-p", "8080")
    port = host_port(engine, name, "8080/tcp")
    got = engine.wait_for(lambda: host_fetch("127.0.0.1", port, guard), timeout=10, what=f"127.0.0.1:{port} to answer")
    assert token in got, f"{engine.name}: the reported host port {port} answered {got[:200]!r}"


@pytest.mark.requires("build")
@pytest.mark.spec(RUN_PUBLISH, "-P (--publish-all) publishes every port the image EXPOSEs on a random host port")
def test_publish_all_publishes_exposed_ports(engine, image, guard, tmp_path):
    (tmp_path / "Dockerfile").write_text(f"FROM {image}\nEXPOSE 8080\n")
    tag = engine.track_image(f"localhost/{engine.new_name('img', track=False)}:exposed")
    engine.cli("build", "-t", tag, str(tmp_path), timeout=300, check=True)
    name, token = serve(engine, tag, "-P")
    port = host_port(engine, name, "8080/tcp")
    got = engine.wait_for(lambda: host_fetch("127.0.0.1", port, guard), timeout=10, what=f"127.0.0.1:{port} to answer")
    assert token in got, f"{engine.name}: the -P port {port} for EXPOSE 8080 answered {got[:200]!r}"


#: A UDP echo server for one datagram, run in a container's network namespace.
UDP_ECHO = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 9999))
print("ready", flush=True)
s.settimeout(20)
data, peer = s.recvfrom(512)
s.sendto(b"echo:" + data, peer)
"""


@pytest.mark.spec(RUN_PUBLISH, "-p HOST:CONTAINER/udp publishes a UDP port")
def test_publish_udp(engine, image):
    port = free_host_port()
    name = start(engine, image, "-p", f"{port}:9999/udp")
    assert f"0.0.0.0:{port}" in port_lines(engine, name, "9999/udp"), (
        f"{engine.name}: port {name} 9999/udp prints {port_lines(engine, name, '9999/udp')}; expected 0.0.0.0:{port}")
    server = subprocess.Popen(netns_python(container_pid(engine, name), UDP_ECHO),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert first_line(server) == "ready", "the UDP echo server did not start"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.settimeout(CLIENT_TIMEOUT)
            reply = b""
            for _ in range(3):  # UDP: the first datagram may race the proxy's setup
                client.sendto(b"ping", ("127.0.0.1", port))
                try:
                    reply = client.recv(512)
                    break
                except OSError:
                    continue
        assert reply == b"echo:ping", f"{engine.name}: no UDP echo through 127.0.0.1:{port}/udp (got {reply!r})"
    finally:
        server.kill()
        server.wait(timeout=10)


@pytest.mark.requires("bridge-network")
@pytest.mark.spec(PUBLISHED_PORTS, "-p 127.0.0.1:HOST:CONTAINER publishes the port on the host's loopback only: "
                  "other host addresses do not answer")
def test_publish_on_loopback_only(engine, image, guard):
    port = free_host_port()
    name, token = serve(engine, image, "-p", f"127.0.0.1:{port}:8080")
    assert port_lines(engine, name, "8080/tcp") == {f"127.0.0.1:{port}"}, (
        f"{engine.name}: port {name} 8080/tcp prints {port_lines(engine, name, '8080/tcp')}; expected 127.0.0.1:{port}")
    got = engine.wait_for(lambda: host_fetch("127.0.0.1", port, guard), timeout=10, what=f"127.0.0.1:{port} to answer")
    assert token in got, f"{engine.name}: 127.0.0.1:{port} answered {got[:200]!r}"
    guard.allow(default_bridge_subnet(engine, name))
    other = gateway(engine, name)  # the host's own address on the default bridge
    assert host_fetch(other, port, guard) == "", f"{engine.name}: the port published on 127.0.0.1 answers on {other}:{port}"


@pytest.mark.spec(RUN_EXIT_STATUS, "125: the error is with the engine itself; a host port that another container "
                  "already publishes cannot be published again")
def test_same_host_port_twice_exits_125(engine, image):
    port = free_host_port()
    serve(engine, image, "-p", f"{port}:8080")
    second = engine.cli("run", "-d", "--name", engine.new_name(), "--label", engine.label, "-p", f"{port}:8080", image, "sleep", "60")
    assert second.returncode == 125, (
        f"{engine.name}: a second container publishing host port {port} exited {second.returncode}; docker exits 125\n{second}")
    assert str(port) in second.stderr, f"{engine.name}: the error does not name the port {port}\n{second}"


@pytest.mark.spec(RUN_EXIT_STATUS, "125: the error is with the engine itself; a host port already in use on the host "
                  "cannot be published")
def test_host_port_in_use_exits_125(engine, image):
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = engine.cli("run", "-d", "--name", engine.new_name(), "--label", engine.label, "-p", f"{port}:8080", image, "sleep", "60")
    assert result.returncode == 125, (
        f"{engine.name}: publishing host port {port}, which a host process holds, exited {result.returncode}; docker exits 125\n{result}")
    assert "address already in use" in result.stderr, f"{engine.name}: the error does not say the address is in use\n{result}"


@pytest.mark.requires("bridge-network")
@pytest.mark.spec(PUBLISHED_PORTS, "a published port is reachable through the host's addresses, also from the "
                  "container itself (hairpin NAT)")
def test_hairpin_to_own_published_port(engine, image, guard):
    port = free_host_port()
    name, token = serve(engine, image, "-p", f"{port}:8080")
    guard.allow(default_bridge_subnet(engine, name))
    got = fetch(engine, name, gateway(engine, name), port, guard)
    assert token in got, f"{engine.name}: the container did not reach its own published port through {gateway(engine, name)}:{port}"


@pytest.mark.requires("user-networks")
@pytest.mark.spec(PUBLISHED_PORTS, "a published port is reachable through the host's addresses from containers "
                  "on other networks")
def test_published_port_reached_from_another_network(engine, image, guard):
    first, second = create_network(engine), create_network(engine)
    guard.allow(first); guard.allow(second)
    port = free_host_port()
    serve_name, token = serve(engine, image, "--network", first.name, "-p", f"{port}:8080")
    client = start(engine, image, "--network", second.name)
    via = gateway(engine, client, second.name)
    got = fetch(engine, client, via, port, guard)
    assert token in got, f"{engine.name}: a container on {second.name} did not reach the port published by {serve_name} at {via}:{port}"

"""``--network none`` and ``--network host``: a container with only a loopback
device, and one that shares the host's network stack (``-p`` is then ignored)."""

from __future__ import annotations

import os
import socket

import pytest

from .conftest import HOST, NONE, RUN_NETWORK, free_host_port, host_addresses, host_fetch, http_server, start


@pytest.mark.spec(NONE, "with --network none, only the loopback device is created in the container")
def test_none_has_only_loopback_and_no_route(engine, image, container_host):
    name = start(engine, image, "--network", "none")
    host = container_host(name)
    names = host.interface.names()
    assert names == ["lo"], f"{engine.name}: a --network none container has the interfaces {names}; docker creates only lo"
    assert "127.0.0.1" in host.interface("lo").addresses, f"{engine.name}: lo has {host.interface('lo').addresses}, no 127.0.0.1"
    routes = host.run("ip -4 route; ip -6 route 2>/dev/null | grep -v '^fe80\\|^ff00\\|^::1\\|^$' || true")
    assert routes.rc == 0 and routes.stdout.strip() == "", (
        f"{engine.name}: a --network none container has routes {routes.stdout!r} (rc {routes.rc}); docker gives it none")


@pytest.mark.spec(NONE, "with --network none the container is completely isolated: no interface but lo, no address")
def test_none_shows_no_address_in_inspect(engine, image):
    name = start(engine, image, "--network", "none")
    settings = engine.inspect(name, kind="container")["NetworkSettings"]
    addresses = [ep.get("IPAddress") for ep in (settings.get("Networks") or {}).values() if ep.get("IPAddress")]
    assert not addresses and not settings.get("IPAddress"), (
        f"{engine.name}: inspect of a --network none container shows addresses {addresses or settings.get('IPAddress')}")


@pytest.mark.requires("host-network")
@pytest.mark.spec(RUN_NETWORK, "--network host: the container shares the host's network stack and all of the host's "
                  "interfaces; the container's hostname matches the hostname on the host system")
def test_host_network_shares_interfaces_and_hostname(engine, image, container_host):
    name = start(engine, image, "--network", "host")
    host = container_host(name)
    # The namespace itself, not the address lists: parallel checks add and remove bridges meanwhile.
    inside = host.check_output("readlink /proc/1/ns/net")
    assert inside == os.readlink("/proc/self/ns/net"), (
        f"{engine.name}: PID 1 of a --network host container is in {inside}; the host's network namespace is "
        f"{os.readlink('/proc/self/ns/net')}")
    seen = {line.split()[3].split("/")[0] for line in host.check_output("ip -o -4 addr show").splitlines()}
    assert "127.0.0.1" in seen and seen & (host_addresses() - {"127.0.0.1"}), (
        f"{engine.name}: a --network host container sees the addresses {sorted(seen)}; the host has "
        f"{sorted(host_addresses())}")
    hostname = host.check_output("hostname")
    assert hostname == socket.gethostname(), (
        f"{engine.name}: a --network host container is named {hostname!r}; the host is {socket.gethostname()!r}")


@pytest.mark.requires("host-network", "published-ports")
@pytest.mark.spec(HOST, "in host mode port mapping does not take effect: -p, --publish, -P and --publish-all are "
                  "ignored, producing a warning; a service binds the host's ports directly")
def test_host_network_ignores_published_ports(engine, image, guard):
    published, listened = free_host_port(), free_host_port()
    name = engine.new_name()
    result = engine.cli("run", "-d", "--name", name, "--label", engine.label, "--network", "host",
                        "-p", f"{published}:8080", image, *http_server(listened, "host-mode"))
    assert result.ok, f"{engine.name}: run --network host -p {published}:8080 failed; docker ignores -p with a warning\n{result}"
    engine.wait_running(name)
    engine.wait_for(lambda: "host-mode" in host_fetch("127.0.0.1", listened, guard), timeout=20,
                    what=f"httpd of a --network host container on the host's 127.0.0.1:{listened}")
    ports = engine.cli("port", name).stdout.strip()
    assert ports == "", f"{engine.name}: port lists {ports!r} for a --network host container; -p is ignored in host mode"
    assert host_fetch("127.0.0.1", published, guard) == "", (
        f"{engine.name}: the host's port {published} answers although -p is ignored in host mode")
    assert "Published ports are discarded when using host network mode" in result.stderr, (
        f"{engine.name}: run --network host -p did not warn 'Published ports are discarded when using host network "
        f"mode' as docker does\n{result}")

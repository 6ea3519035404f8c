"""The default bridge network: an address from the bridge's subnet with the
bridge as gateway, reached by address but not by name; ``--link`` adds a
name; ``--network container:NAME`` shares another container's stack."""

from __future__ import annotations

import ipaddress

import pytest

from .conftest import (BRIDGE, CONTAINER_NETWORKS, DNS_SERVICES, LINKS, USER_BRIDGE_DIFFERENCES, address, default_bridge_subnet,
                       endpoints, fetch, host_addresses, host_nameservers, http_get, nameservers, serve, start)


@pytest.mark.requires("bridge-network")
@pytest.mark.spec(BRIDGE, "containers started without --network attach to the default bridge network: an address "
                  "from the bridge's subnet, with the bridge on the host as the gateway")
def test_default_bridge_address_and_gateway(engine, image, container_host):
    name = start(engine, image)
    ep = next(iter(endpoints(engine, name).values()))
    ip, gateway = address(engine, name), ep.get("Gateway", "")
    subnet = default_bridge_subnet(engine, name)
    host = container_host(name)
    assert ip in host.interface("eth0").addresses, (
        f"{engine.name}: inspect shows IPAddress {ip}, eth0 in the container has {host.interface('eth0').addresses}")
    assert gateway and ipaddress.ip_address(gateway) in subnet, (
        f"{engine.name}: the gateway {gateway!r} of a default-bridge container is not in its subnet {subnet}")
    assert gateway in host_addresses(), (
        f"{engine.name}: the gateway {gateway} is not an address of the host; docker's gateway is the host's bridge")
    routes = host.check_output("ip -4 route")
    assert f"default via {gateway} dev eth0" in routes, (
        f"{engine.name}: the container's routes do not go through the bridge {gateway}:\n{routes}")


@pytest.mark.requires("bridge-network")
@pytest.mark.spec(USER_BRIDGE_DIFFERENCES, "containers on the default bridge network can only access each other by IP "
                  "addresses, unless you use the --link option")
def test_default_bridge_reaches_by_address_not_by_name(engine, image, guard, container_host):
    server, token = serve(engine, image)
    client = start(engine, image)
    guard.allow(default_bridge_subnet(engine, server))
    ip = address(engine, server)
    assert token in fetch(engine, client, ip, 8080, guard), (
        f"{engine.name}: a container on the default bridge did not reach {server} at {ip}:8080")
    # Not by name: no /etc/hosts entry names the peer, and no resolver of the
    # engine's serves the default bridge (test_default_bridge_gets_the_hosts_resolvers);
    # no DNS query is made: it would leave for the host's resolvers.
    hosts = container_host(client).file("/etc/hosts").content_string
    named = [line for line in hosts.splitlines() if server in line.split()[1:]]
    assert not named, f"{engine.name}: /etc/hosts on the default bridge names {server}: {named}; docker adds no names there"


@pytest.mark.requires("bridge-network")
@pytest.mark.spec(DNS_SERVICES, "containers on the default bridge network receive a copy of the host's "
                  "/etc/resolv.conf (the embedded DNS server serves custom networks only)")
def test_default_bridge_gets_the_hosts_resolvers(engine, image):
    name = start(engine, image)
    got = nameservers(engine, name)
    assert got == host_nameservers(), f"{engine.name}: resolv.conf on the default bridge lists {got}; the host's are {host_nameservers()}"


@pytest.mark.requires("bridge-network", "link")
@pytest.mark.spec(LINKS, "--link NAME:ALIAS lets the recipient reach the source by its name and the alias, "
                  "through an entry in the recipient's /etc/hosts")
def test_link_adds_a_name(engine, image, container_host):
    server, token = serve(engine, image)
    client = start(engine, image, "--link", f"{server}:webalias")
    ip = address(engine, server)
    hosts = container_host(client).file("/etc/hosts").content_string
    entries = [line.split() for line in hosts.splitlines() if line.split()[:1] == [ip]]
    assert entries and {"webalias", server} <= set(entries[0][1:]), (
        f"{engine.name}: /etc/hosts of the linked container has no entry `{ip} webalias {server}`:\n{hosts}")
    for name in ("webalias", server):
        got = http_get(engine, client, name, 8080)  # resolved by /etc/hosts, checked above
        assert token in got.stdout, f"{engine.name}: the linked name {name} did not reach {server}\n{got}"


@pytest.mark.spec(CONTAINER_NETWORKS, "--network container:NAME shares the other container's network stack: "
                  "the same addresses, and processes reach each other's ports on localhost (127.0.0.1)")
def test_container_network_shares_the_namespace(engine, image, container_host):
    server, token = serve(engine, image)
    joined = start(engine, image, "--network", f"container:{server}")
    listing = "ip -o addr show | awk '{print $2, $4}' | sort"
    theirs, ours = container_host(server).check_output(listing), container_host(joined).check_output(listing)
    assert ours == theirs, f"{engine.name}: container:{server} sees the addresses\n{ours}\nbut {server} has\n{theirs}"
    got = http_get(engine, joined, "127.0.0.1", 8080)
    assert token in got.stdout, f"{engine.name}: localhost:8080 in container:{server} did not reach its httpd\n{got}"

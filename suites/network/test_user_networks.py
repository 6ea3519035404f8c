"""User-defined bridge networks (``network create``): names and aliases
resolved by the engine's DNS, static addresses within ``--subnet``,
``--internal``, isolation between networks, ``connect``/``disconnect`` at run
time, ``network inspect`` endpoints, ``network rm`` of a network in use,
duplicate names.

No DNS query here asks for a name the engine should not know: on a user
network the embedded DNS forwards unknown names to the host's resolvers,
which are outside this machine.
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import (BRIDGE, BRIDGE_OPTIONS, NETWORK_CONNECT, NETWORK_CREATE, NETWORK_DISCONNECT, NETWORK_INSPECT,
                       NETWORK_RM, USER_BRIDGE_DIFFERENCES, address, create_network, fetch, free_host_port, free_subnet,
                       gateway, http_get, inspect_network, lookup, serve, start)

pytestmark = pytest.mark.requires("user-networks")


@pytest.mark.requires("embedded-dns")
@pytest.mark.spec(USER_BRIDGE_DIFFERENCES, "user-defined bridges provide automatic DNS resolution between containers: "
                  "containers on the same network resolve each other by name")
def test_containers_resolve_each_other_by_name(engine, image, network, guard):
    guard.allow(network)
    server, token = serve(engine, image, "--network", network.name)
    client = start(engine, image, "--network", network.name)
    ip = address(engine, server, network.name)
    assert lookup(engine, client, server, guard) == {ip}, (
        f"{engine.name}: {server} resolves to {lookup(engine, client, server, guard)} on {network.name}; its address is {ip}")
    got = http_get(engine, client, server, 8080)
    assert token in got.stdout, f"{engine.name}: http://{server}:8080/ by name did not reach it\n{got}"


@pytest.mark.requires("embedded-dns")
@pytest.mark.spec(NETWORK_CONNECT, "--network-alias adds a network-scoped alias for the container: "
                  "other containers on the network resolve the alias to it")
def test_network_alias_resolves(engine, image, network, guard):
    guard.allow(network)
    server = start(engine, image, "--network", network.name, "--network-alias", "web-alias")
    client = start(engine, image, "--network", network.name)
    ip = address(engine, server, network.name)
    got = lookup(engine, client, "web-alias", guard)
    assert got == {ip}, f"{engine.name}: the alias web-alias resolves to {got}; {server} has {ip}"


@pytest.mark.requires("embedded-dns")
@pytest.mark.spec(NETWORK_CONNECT, "several containers can share a --network-alias on one network: the alias "
                  "resolves to every one of them")
def test_shared_alias_answers_every_container(engine, image, network, guard):
    guard.allow(network)
    members = [start(engine, image, "--network", network.name, "--network-alias", "pool") for _ in range(3)]
    client = start(engine, image, "--network", network.name)
    expected = {address(engine, m, network.name) for m in members}
    got = lookup(engine, client, "pool", guard)
    assert got == expected, f"{engine.name}: the shared alias pool resolves to {sorted(got)}; its members have {sorted(expected)}"


@pytest.mark.spec(NETWORK_CONNECT, "--ip assigns a static address from the network's --subnet")
def test_static_ip_within_the_subnet(engine, image, network, container_host):
    wanted = str(network.subnet.network_address + 77)
    name = start(engine, image, "--network", network.name, "--ip", wanted)
    assert address(engine, name, network.name) == wanted, (
        f"{engine.name}: --ip {wanted} gave the address {address(engine, name, network.name)}")
    assert wanted in container_host(name).interface("eth0").addresses, (
        f"{engine.name}: eth0 has {container_host(name).interface('eth0').addresses}, not --ip {wanted}")


@pytest.mark.spec(NETWORK_CREATE, "a network's containers get addresses from its --subnet")
def test_addresses_come_from_the_subnet(engine, image, network):
    name = start(engine, image, "--network", network.name)
    ip = ipaddress.ip_address(address(engine, name, network.name))
    assert ip in network.subnet, f"{engine.name}: a container on {network.name} ({network.subnet}) got the address {ip}"


def _host_drops_bridged_traffic() -> str:
    """Why this host drops traffic between two containers of one bridge before any
    engine's rule can accept it ('' when it does not): dockerd sets the FORWARD
    policy to DROP, and with br_netfilter bridged frames pass FORWARD too; an
    engine that adds no FORWARD accept for an --internal network (netavark 1.4)
    then finds its containers cut off from each other."""
    nf_call = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
    if not nf_call.exists() or nf_call.read_text().strip() != "1" or not shutil.which("iptables"):
        return ""
    rules = subprocess.run(["iptables", "-S", "FORWARD"], capture_output=True, text=True, timeout=10).stdout
    if "-P FORWARD DROP" not in rules.splitlines():
        return ""
    return "iptables FORWARD policy DROP with net.bridge.bridge-nf-call-iptables=1"


@pytest.mark.requires("published-ports")
@pytest.mark.spec(NETWORK_CREATE, "--internal restricts external access to the network: its containers reach each "
                  "other, not what lies outside it (here: a port published on the host, which a container on an "
                  "ordinary network reaches)")
def test_internal_network_has_no_access_out(engine, image, guard):
    internal, ordinary = create_network(engine, "--internal"), create_network(engine)
    guard.allow(internal); guard.allow(ordinary)
    port = free_host_port()
    outside, outside_token = serve(engine, image, "--network", ordinary.name, "-p", f"{port}:8080")
    server, token = serve(engine, image, "--network", internal.name)
    client = start(engine, image, "--network", internal.name)
    if token not in fetch(engine, client, address(engine, server, internal.name), 8080, guard):
        dropped = _host_drops_bridged_traffic()
        if dropped:
            pytest.skip(f"{engine.name}: containers on one --internal network do not reach each other, and this host "
                        f"drops bridged traffic by itself ({dropped}): what the --internal network blocks cannot be "
                        f"observed here")
        raise AssertionError(f"{engine.name}: containers on one --internal network do not reach each other")
    control = start(engine, image, "--network", ordinary.name)
    via = gateway(engine, control, ordinary.name)
    assert outside_token in fetch(engine, control, via, port, guard), (
        f"{engine.name}: a container on an ordinary network did not reach the host's published port {via}:{port}")
    targets = [gateway(engine, client, internal.name), via] if gateway(engine, client, internal.name) else [via]
    for target in targets:
        got = fetch(engine, client, target, port, guard)
        assert got == "", (f"{engine.name}: a container on an --internal network reached the host's published "
                           f"port {target}:{port}: {got[:200]!r}")


@pytest.mark.spec(BRIDGE, "containers on different bridge networks cannot communicate directly with each other")
def test_user_networks_are_isolated_from_each_other(engine, image, guard):
    first, second = create_network(engine), create_network(engine)
    guard.allow(first); guard.allow(second)
    server, token = serve(engine, image, "--network", first.name)
    neighbour = start(engine, image, "--network", first.name)
    stranger = start(engine, image, "--network", second.name)
    ip = address(engine, server, first.name)
    assert token in fetch(engine, neighbour, ip, 8080, guard), f"{engine.name}: a container on {first.name} did not reach {ip}"
    got = fetch(engine, stranger, ip, 8080, guard)
    assert got == "", f"{engine.name}: a container on another network reached {ip}:8080 on {first.name}: {got[:200]!r}"


@pytest.mark.spec(NETWORK_CONNECT, "network connect attaches a running container to a network: a new interface with "
                  "an address on it")
@pytest.mark.spec(NETWORK_DISCONNECT, "network disconnect detaches a container from a network: the interface goes")
def test_connect_and_disconnect_at_run_time(engine, image, container_host):
    first, second = create_network(engine), create_network(engine)
    name = start(engine, image, "--network", first.name)
    host = container_host(name)
    before = host.interface.names()
    engine.cli("network", "connect", second.name, name, check=True)
    ip = address(engine, name, second.name)
    assert ipaddress.ip_address(ip) in second.subnet, f"{engine.name}: connect gave {ip}, outside {second.subnet}"
    added = [n for n in host.interface.names() if n not in before]
    assert len(added) == 1 and ip in host.interface(added[0]).addresses, (
        f"{engine.name}: after network connect the container has the new interfaces {added} "
        f"({[host.interface(n).addresses for n in added]}); expected one with {ip}")
    engine.cli("network", "disconnect", second.name, name, check=True)
    after = host.interface.names()
    assert after == before, f"{engine.name}: after network disconnect the interfaces are {after}; before connect {before}"
    networks = engine.inspect(name, kind="container")["NetworkSettings"]["Networks"]
    assert set(networks) == {first.name}, f"{engine.name}: after disconnect inspect lists the networks {sorted(networks)}"


@pytest.mark.spec(NETWORK_INSPECT, "network inspect shows the containers connected to the network, with their addresses")
def test_network_inspect_lists_the_endpoints(engine, image, network):
    names = [start(engine, image, "--network", network.name) for _ in range(2)]
    listed = inspect_network(engine, network.name).get("Containers")
    assert isinstance(listed, dict), f"{engine.name}: network inspect has no Containers map: {inspect_network(engine, network.name)}"
    seen = {ep.get("Name"): ep.get("IPv4Address", "") for ep in listed.values()}
    expected = {n: f"{address(engine, n, network.name)}/{network.subnet.prefixlen}" for n in names}
    assert seen == expected, f"{engine.name}: network inspect lists the endpoints {seen}; expected {expected}"


@pytest.mark.spec(NETWORK_RM, "to remove a network, first disconnect any containers connected to it: "
                  "network rm refuses a network in use (docker 20.10 exits 1 with 'network NAME id ID has active "
                  "endpoints': observed, the reference documents neither)")
def test_network_rm_refuses_while_in_use(engine, image, network):
    name = start(engine, image, "--network", network.name)
    refused = engine.cli("network", "rm", network.name)
    assert engine.cli("network", "inspect", network.name).ok, (
        f"{engine.name}: network rm removed a network a running container is on\n{refused}")
    assert refused.returncode == 1, (
        f"{engine.name}: network rm of a network in use exited {refused.returncode}; docker 20.10 exits 1\n{refused}")
    assert "has active endpoints" in refused.stderr, (
        f"{engine.name}: the refusal does not say the network has active endpoints\n{refused}")
    engine.cli("rm", "-f", name, check=True)
    removed = engine.cli("network", "rm", network.name)
    assert removed.ok, f"{engine.name}: network rm of the network once its container is gone failed\n{removed}"


@pytest.mark.spec(NETWORK_CREATE, "network names must be unique: creating a network with the name of an existing one "
                  "fails (docker 20.10 exits 1 with 'network with name NAME already exists': observed, the reference "
                  "documents neither)")
def test_duplicate_network_name_is_refused(engine, network):
    again = engine.cli("network", "create", "--label", engine.label, "--subnet", str(free_subnet()), network.name)
    if again.ok:  # a second network under the same name: remove it by its ID, not by the shared name
        engine.cli("network", "rm", again.stdout.strip())
    assert not again.ok, f"{engine.name}: a second network named {network.name} was created\n{again}"
    assert again.returncode == 1, (
        f"{engine.name}: network create of an existing name exited {again.returncode}; docker 20.10 exits 1\n{again}")
    assert f"network with name {network.name} already exists" in again.stderr, (
        f"{engine.name}: the refusal does not say the name exists\n{again}")


@pytest.mark.requires("icc-off")
@pytest.mark.spec(BRIDGE_OPTIONS, "com.docker.network.bridge.enable_icc=false disables inter-container connectivity "
                  "on the bridge")
def test_icc_off_isolates_containers_on_one_network(engine, image, guard):
    closed, ordinary = create_network(engine, "-o", "com.docker.network.bridge.enable_icc=false"), create_network(engine)
    guard.allow(closed); guard.allow(ordinary)
    server, token = serve(engine, image, "--network", closed.name)
    client = start(engine, image, "--network", closed.name)
    for name in (server, client):  # the control path: the same two containers on an ordinary network as well
        engine.cli("network", "connect", ordinary.name, name, check=True)
    control = address(engine, server, ordinary.name)
    assert token in fetch(engine, client, control, 8080, guard), (
        f"{engine.name}: the client did not reach its neighbour's server at {control}:8080 on an ordinary network")
    got = fetch(engine, client, address(engine, server, closed.name), 8080, guard)
    assert got == "", f"{engine.name}: with enable_icc=false a container still reached its neighbour: {got[:200]!r}"

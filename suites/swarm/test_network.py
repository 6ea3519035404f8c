"""Overlay networks of a swarm: create and list, tasks that reach each other
across nodes, the service name in the embedded DNS (DNS round robin with
``--endpoint-mode dnsrr``; the virtual IP of the default ``vip`` mode needs
IPVS: capability ``swarm-vip``), isolation of services on other networks, and
removal of a network in use.

A check's overlay networks come from the ``overlays`` fixture, removed after
the check's services (also when the check fails).
"""

from __future__ import annotations

import ipaddress
import json
import re
import secrets

import pytest

from conformance.cluster import DockerCluster
from conformance.suite_support import DOCS

from .conftest import (COMMANDLINE, CONVERGE_TIMEOUT, SERVICE_CREATE, SWARM, Services, needs_nodes, node_ids, tasks,
                       wait_running)

NETWORK_CREATE = f"{COMMANDLINE}/network_create/"
NETWORK_RM = f"{COMMANDLINE}/network_rm/"
OVERLAY = f"{DOCS}/network/overlay/"
NETWORKING_SERVICES = f"{SWARM}/networking/"
DNSRR = f"{NETWORKING_SERVICES}#configure-service-discovery"
ENDPOINT_MODE = f"{SERVICE_CREATE}#endpoint-mode"
OVERLAY_TUTORIAL = f"{DOCS}/network/network-tutorial-overlay/"

#: A task that serves its own hostname (its container's short ID) on :8080, busybox httpd.
HTTPD = ["sh", "-c", "mkdir -p /w && hostname > /w/index.html && trap 'exit 0' TERM; "
                     "httpd -f -p 8080 -h /w & wait"]
HTTP_PORT = 8080
#: Bounded waits (seconds) for the data path and the DNS records of new tasks:
#: docker spreads both by gossip, in a second or two here.
PROPAGATION_TIMEOUT = 30.0


class Overlays:
    """Overlay networks a check creates on the manager; removed by :meth:`cleanup`."""

    def __init__(self, cluster: DockerCluster):
        self.cluster = cluster
        self.names: list[str] = []
        self.prefix = f"cft-{secrets.token_hex(3)}-n"

    def create(self, *flags: str) -> str:
        name = f"{self.prefix}{len(self.names) + 1}"
        self.names.append(name)
        self.cluster.manager.docker("network", "create", "--driver", "overlay", *flags, name, check=True)
        return name

    def inspect(self, name: str) -> dict:
        return json.loads(self.cluster.manager.docker("network", "inspect", name, check=True).stdout)[0]

    def cleanup(self) -> None:
        if not self.names or self.cluster.disturbed:
            self.names.clear()
            return
        left = list(self.names)

        def removed():  # the manager lets a network go once no task of a removed service holds it
            for name in list(left):
                if self.cluster.manager.docker("network", "rm", name).ok or not self.cluster.manager.docker(
                        "network", "inspect", name).ok:
                    left.remove(name)
            return not left
        self.cluster.wait(removed, CONVERGE_TIMEOUT, f"the networks {', '.join(left)} to be removed")
        self.names.clear()


@pytest.fixture
def overlays(swarm: DockerCluster, services: Services) -> Overlays:
    """Overlay networks made by the check; the check's services go first, then these."""
    made = Overlays(swarm)
    yield made
    services.cleanup()
    made.cleanup()


def addresses(cluster: DockerCluster, service: str, network: str) -> dict[str, str]:
    """Running task ID -> its address (no prefix length) on ``network``, from
    ``inspect --type task`` (``NetworksAttachments``)."""
    running = {t.id for t in tasks(cluster, service) if t.running}
    if not running:
        return {}
    inspected = json.loads(cluster.manager.docker("inspect", "--type", "task", *running, check=True).stdout)
    found = {}
    for task in inspected:
        for attachment in task.get("NetworksAttachments") or []:
            if attachment["Network"]["Spec"]["Name"] == network:
                [address] = attachment["Addresses"]
                found[task["ID"]] = str(ipaddress.ip_interface(address).ip)
    return found


def in_task(cluster: DockerCluster, task, *argv: str, timeout: float = 30.0):
    """Run ``argv`` in the container of ``task`` on the node that runs it."""
    return node_ids(cluster)[task.node_id].docker("exec", task.container_id, *argv, timeout=timeout)


def nslookup(cluster: DockerCluster, task, name: str) -> set[str]:
    """The IPv4 addresses busybox's ``nslookup NAME`` prints in ``task`` (empty when
    the name does not resolve)."""
    result = in_task(cluster, task, "nslookup", "-type=a", name)
    answers = result.stdout.split("\n\n", 1)[1] if "\n\n" in result.stdout else ""
    return {m.group(1) for m in re.finditer(r"^Address(?: \d+)?:\s*(\d+\.\d+\.\d+\.\d+)\s*$", answers, re.M)}


def fetch(cluster: DockerCluster, task, host: str) -> str:
    """The body of ``GET /`` on HOST:8080 from ``task`` ("" on failure), by busybox
    ``nc``: the static busybox's ``wget`` dies of SIGSEGV here."""
    result = in_task(cluster, task, "sh", "-c", f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {host} {HTTP_PORT}")
    head, _, body = result.stdout.replace("\r\n", "\n").partition("\n\n")
    return body.strip() if result.ok and head.startswith("HTTP/1.") else ""


def spread_service(swarm, services, network: str, *flags: str) -> tuple[str, list]:
    """An httpd service of one task per node on ``network``, endpoint mode dnsrr."""
    needs_nodes(swarm, 2)
    count = len(swarm.nodes)
    name = services.create("--replicas", str(count), "--network", network, "--endpoint-mode", "dnsrr",
                           "--replicas-max-per-node", "1", *flags, command=HTTPD)
    return name, wait_running(swarm, name, count)


@pytest.mark.spec(NETWORK_CREATE, "network create --driver overlay makes a swarm-scoped network; --attachable "
                                  "lets standalone containers attach to it")
@pytest.mark.spec(OVERLAY, "overlay networks are created on a manager node of a swarm")
def test_overlay_network_is_listed_with_swarm_scope(swarm, overlays):
    name = overlays.create("--attachable")
    listed = swarm.manager.docker("network", "ls", "--filter", f"name={name}", "--format",
                                  "{{.Name}}\t{{.Driver}}\t{{.Scope}}", check=True).stdout.splitlines()
    assert listed == [f"{name}\toverlay\tswarm"]
    network = overlays.inspect(name)
    assert (network["Name"], network["Driver"], network["Scope"], network["Attachable"]) == \
        (name, "overlay", "swarm", True)
    [config] = network["IPAM"]["Config"]
    assert ipaddress.ip_network(config["Subnet"]).subnet_of(ipaddress.ip_network("10.0.0.0/8")), \
        f"the subnet {config['Subnet']} is not from the default address pool 10.0.0.0/8"


@pytest.mark.requires("swarm-overlay")
@pytest.mark.spec(OVERLAY, "the overlay network driver creates a distributed network among multiple Docker "
                           "daemon hosts, letting the containers of services connected to it communicate")
@pytest.mark.spec(OVERLAY_TUTORIAL, "containers on different hosts reach each other over the overlay network")
def test_tasks_on_different_nodes_reach_each_other_on_the_overlay(swarm, overlays, services):
    network = overlays.create()
    subnet = ipaddress.ip_network(overlays.inspect(network)["IPAM"]["Config"][0]["Subnet"])
    name, running = spread_service(swarm, services, network)
    assert len({t.node_id for t in running}) == len(running), f"the tasks share a node: {running}"
    ips = addresses(swarm, name, network)
    assert set(ips) == {t.id for t in running}, f"tasks without an address on {network}: {ips}"
    assert len(set(ips.values())) == len(ips), f"two tasks share an address: {ips}"
    assert all(ipaddress.ip_address(ip) in subnet for ip in ips.values()), f"{ips} not all in {subnet}"
    for task, peer in zip(running, running[1:] + running[:1]):
        assert peer.node_id != task.node_id
        served = swarm.wait(lambda: fetch(swarm, task, ips[peer.id]), PROPAGATION_TIMEOUT,
                            f"task {task.id[:12]} to reach {ips[peer.id]} (task {peer.id[:12]} on another node)")
        assert served == peer.container_id[:12], f"{ips[peer.id]} answered as {served!r}, not {peer.container_id[:12]}"


@pytest.mark.requires("swarm-overlay")
@pytest.mark.spec(DNSRR, "dnsrr (DNS round-robin): DNS queries for the service return a list of IP addresses, "
                         "one per running task")
@pytest.mark.spec(ENDPOINT_MODE, "--endpoint-mode dnsrr: DNS round robin across the tasks, without a virtual IP")
def test_dnsrr_service_name_resolves_to_every_running_task(swarm, overlays, services):
    network = overlays.create()
    name, running = spread_service(swarm, services, network)
    ips = set(addresses(swarm, name, network).values())
    assert services.inspect(name)["Endpoint"].get("VirtualIPs") is None, "a dnsrr service got a virtual IP"
    for task in running:
        swarm.wait(lambda: nslookup(swarm, task, name) == ips, PROPAGATION_TIMEOUT,
                   f"{name} to resolve to {sorted(ips)} in task {task.id[:12]} "
                   f"(last: {sorted(nslookup(swarm, task, name))})")


@pytest.mark.requires("swarm-overlay")
@pytest.mark.spec(NETWORKING_SERVICES, "services on the same overlay network reach each other by service name")
def test_another_service_on_the_network_reaches_the_service_by_name(swarm, overlays, services):
    network = overlays.create()
    name, running = spread_service(swarm, services, network)
    servers = {t.container_id[:12] for t in running}
    client = services.create("--replicas", "1", "--network", network, "--endpoint-mode", "dnsrr")
    [task] = wait_running(swarm, client, 1)
    served = swarm.wait(lambda: fetch(swarm, task, name), PROPAGATION_TIMEOUT,
                        f"a task of {client} to reach {name} by name")
    assert served in servers, f"{name} answered as {served!r}, none of its tasks {sorted(servers)}"


@pytest.mark.requires("swarm-overlay")
@pytest.mark.spec(NETWORKING_SERVICES, "a service's tasks are reachable, by address and by the service's name, "
                                      "from the services connected to the same overlay network")
@pytest.mark.spec(DNSRR, "service discovery gives the service's addresses on the overlay networks it is attached to")
def test_a_service_on_another_network_does_not_resolve_the_name(swarm, overlays, services):
    network, elsewhere = overlays.create(), overlays.create()
    name, running = spread_service(swarm, services, network)
    ips = set(addresses(swarm, name, network).values())
    outsider = services.create("--replicas", "1", "--network", elsewhere, "--endpoint-mode", "dnsrr")
    [task] = wait_running(swarm, outsider, 1)
    # the name is known on its own network first, so its absence elsewhere is not a delay
    swarm.wait(lambda: nslookup(swarm, running[0], name) == ips, PROPAGATION_TIMEOUT, f"{name} to resolve")
    assert nslookup(swarm, task, name) == set(), f"{name} resolved on {elsewhere}, which it is not on"
    assert not fetch(swarm, task, sorted(ips)[0]), f"a task on {elsewhere} reached {name}'s task on {network}"


@pytest.mark.requires("swarm-overlay")
@pytest.mark.requires("swarm-vip")
@pytest.mark.spec(ENDPOINT_MODE, "--endpoint-mode vip (the default): the service gets a virtual IP")
@pytest.mark.spec(DNSRR, "the service name resolves to the virtual IP, which load-balances between the "
                         "service's healthy tasks; tasks.SERVICE resolves to every task")
def test_vip_service_name_resolves_to_one_virtual_ip_that_balances(swarm, overlays, services):
    network = overlays.create()
    needs_nodes(swarm, 2)
    count = len(swarm.nodes)
    name = services.create("--replicas", str(count), "--network", network, "--replicas-max-per-node", "1",
                           command=HTTPD)
    running = wait_running(swarm, name, count)
    network_id = overlays.inspect(network)["Id"]
    vips = [str(ipaddress.ip_interface(v["Addr"]).ip) for v in services.inspect(name)["Endpoint"]["VirtualIPs"]
            if v["NetworkID"] == network_id]
    assert len(vips) == 1, f"not one virtual IP on {network}: {vips}"
    ips = set(addresses(swarm, name, network).values())
    assert vips[0] not in ips
    task = running[0]
    swarm.wait(lambda: nslookup(swarm, task, name) == set(vips), PROPAGATION_TIMEOUT, f"{name} -> {vips[0]}")
    swarm.wait(lambda: nslookup(swarm, task, f"tasks.{name}") == ips, PROPAGATION_TIMEOUT, f"tasks.{name}")
    served = {fetch(swarm, task, vips[0]) for _ in range(6 * count)}
    assert len(served - {""}) > 1, f"the virtual IP sent every request to {served}"


@pytest.mark.spec(NETWORK_RM, "a network in use cannot be removed: network rm refuses it")
def test_network_rm_of_a_network_in_use_is_refused(swarm, overlays, services):
    network = overlays.create()
    name = services.create("--replicas", "1", "--network", network, "--endpoint-mode", "dnsrr")
    wait_running(swarm, name, 1)
    network_id, service_id = overlays.inspect(network)["Id"], services.inspect(name)["ID"]
    refused = swarm.manager.docker("network", "rm", network)
    assert not refused.ok, f"network rm of a network in use succeeded:\n{refused}"
    # docker 20.10: the manager's gRPC status, as the daemon passes it on
    assert refused.stderr.strip() == (f"Error response from daemon: rpc error: code = FailedPrecondition "
                                      f"desc = network {network_id} is in use by service {service_id}"), refused.stderr
    assert overlays.inspect(network)["Id"] == network_id

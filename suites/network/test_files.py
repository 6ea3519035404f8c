"""``/etc/hosts``, ``/etc/hostname`` and ``/etc/resolv.conf`` as the engine
writes them, and ``/etc/hosts`` rewritten on ``network connect`` and
``disconnect``."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import (DNS_SERVICES, IP_ADDRESS, NETWORK_CONNECT, NETWORK_DISCONNECT, RUN_HOSTNAME, address, create_network,
                       start)


def hosts_entries(text: str) -> list[tuple[str, list[str]]]:
    """(address, names) of every line of a hosts file, comments dropped."""
    entries = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) >= 2:
            entries.append((words[0], words[1:]))
    return entries


def host_custom_entries() -> list[tuple[str, list[str]]]:
    """Entries of the host's /etc/hosts beyond the loopback names every hosts file has."""
    standard = {"localhost", "ip6-localhost", "ip6-loopback", "ip6-localnet", "ip6-mcastprefix", "ip6-allnodes",
                "ip6-allrouters", "localhost.localdomain"}
    return [(ip, [n for n in names if n not in standard]) for ip, names in hosts_entries(Path("/etc/hosts").read_text())
            if set(names) - standard]


@pytest.mark.spec(IP_ADDRESS, "a container's hostname defaults to its ID (the first 12 characters), in /etc/hostname "
                  "and as the container's hostname")
def test_hostname_defaults_to_the_short_id(engine, image, container_host):
    name = start(engine, image)
    data = engine.inspect(name, kind="container")
    short = data["Id"][:12]
    host = container_host(name)
    assert data["Config"]["Hostname"] == short, f"{engine.name}: inspect shows Config.Hostname {data['Config']['Hostname']!r}; ID {data['Id']}"
    assert host.file("/etc/hostname").content_string.strip() == short, (
        f"{engine.name}: /etc/hostname holds {host.file('/etc/hostname').content_string!r}; the short ID is {short}")
    assert host.check_output("hostname") == short, f"{engine.name}: hostname prints {host.check_output('hostname')!r}, not {short}"


@pytest.mark.requires("user-networks")
@pytest.mark.spec(RUN_HOSTNAME, "--hostname sets the container's hostname, in /etc/hostname and in /etc/hosts "
                  "mapped to the container's address")
def test_hostname_and_hosts_entry(engine, image, network, container_host):
    name = start(engine, image, "--network", network.name, "--hostname", "web-host")
    host = container_host(name)
    assert host.file("/etc/hostname").content_string.strip() == "web-host", (
        f"{engine.name}: /etc/hostname holds {host.file('/etc/hostname').content_string!r} with --hostname web-host")
    ip = address(engine, name, network.name)
    entries = hosts_entries(host.file("/etc/hosts").content_string)
    assert any(addr == ip and "web-host" in names for addr, names in entries), (
        f"{engine.name}: /etc/hosts does not map web-host to {ip}: {entries}")
    assert any(addr == "127.0.0.1" and "localhost" in names for addr, names in entries), (
        f"{engine.name}: /etc/hosts does not map localhost to 127.0.0.1: {entries}")


@pytest.mark.spec(DNS_SERVICES, "custom hosts defined in /etc/hosts on the host machine are not inherited by containers")
def test_hosts_of_the_host_are_not_inherited(engine, image, container_host):
    custom = host_custom_entries()
    if not custom:
        pytest.skip("the host's /etc/hosts has no entry beyond the standard loopback names: nothing could be inherited")
    name = start(engine, image)
    hosts = container_host(name).file("/etc/hosts").content_string
    inherited = [(ip, names) for ip, names in custom if any(
        addr == ip and set(names) & set(theirs) for addr, theirs in hosts_entries(hosts))]
    assert not inherited, f"{engine.name}: the container's /etc/hosts holds the host's entries {inherited}:\n{hosts}"


@pytest.mark.requires("user-networks")
@pytest.mark.spec(NETWORK_CONNECT, "network connect gives the container an address on the network, which its "
                  "/etc/hosts maps to its hostname")
@pytest.mark.spec(NETWORK_DISCONNECT, "network disconnect takes the container off the network: its address there "
                  "leaves /etc/hosts, its other networks' entries stay")
def test_hosts_rewritten_on_connect_and_disconnect(engine, image, container_host):
    first, second = create_network(engine), create_network(engine)
    name = start(engine, image, "--network", first.name, "--hostname", "moving")
    host = container_host(name)
    first_ip = address(engine, name, first.name)
    engine.cli("network", "connect", second.name, name, check=True)
    second_ip = address(engine, name, second.name)
    connected = hosts_entries(host.file("/etc/hosts").content_string)
    assert (second_ip, "moving") in [(a, n) for a, names in connected for n in names], (
        f"{engine.name}: after network connect /etc/hosts does not map moving to {second_ip}: {connected}")
    engine.cli("network", "disconnect", second.name, name, check=True)
    left = [(a, n) for a, names in hosts_entries(host.file("/etc/hosts").content_string) for n in names]
    assert second_ip not in [a for a, _ in left], f"{engine.name}: after network disconnect /etc/hosts still holds {second_ip}: {left}"
    assert (first_ip, "moving") in left, (
        f"{engine.name}: after disconnecting {second.name}, /etc/hosts lost moving -> {first_ip} on {first.name}: {left}")

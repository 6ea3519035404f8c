"""The engine's DNS: only on user-defined networks, read from resolv.conf
(docker's is 127.0.0.11, podman's aardvark-dns listens on the gateway), no
forwarding out of an ``--internal`` network, and it survives malformed
queries.

Queries are only for names the engine knows, or go to a DNS responder of the
check's own running in a container of the check: a name the engine does not
know would be forwarded to the host's resolvers, outside this machine.
"""

from __future__ import annotations

import subprocess

import pytest

from .conftest import (DNS_SERVICES, RUN_NETWORK, address, container_pid, create_network, engine_resolver,
                       first_line, host_nameservers, in_netns, lookup, nameservers, netns_python, start)

pytestmark = pytest.mark.requires("user-networks", "embedded-dns")


@pytest.mark.spec(DNS_SERVICES, "containers attached to a custom network use the engine's embedded DNS server, which "
                  "forwards external lookups to the host's DNS servers")
def test_user_network_resolver_is_the_engines(engine, image, network, guard):
    guard.allow(network)
    peer = start(engine, image, "--network", network.name)
    client = start(engine, image, "--network", network.name)
    servers = nameservers(engine, client)
    assert servers and not set(servers) & set(host_nameservers()), (
        f"{engine.name}: resolv.conf on a user network lists {servers}; the embedded DNS server, not the host's "
        f"{host_nameservers()}, is the container's resolver")
    resolver = guard.check(servers[0])
    got = engine.cli("exec", client, "timeout", "8", "nslookup", "-type=a", peer, resolver, timeout=30)
    ip = address(engine, peer, network.name)
    assert f"Address: {ip}" in got.stdout, f"{engine.name}: the resolver {resolver} did not answer {peer} -> {ip}\n{got}"


#: Malformed DNS messages, then a check that the resolver still answers.
MALFORMED = r"""
import socket, struct, sys
server = sys.argv[1]
messages = [
    b"",                                                    # empty datagram
    b"\x00",                                                # shorter than a header
    struct.pack("!HHHHHH", 1, 0x0100, 1, 0, 0, 0),           # a question count, no question
    struct.pack("!HHHHHH", 2, 0x0100, 1, 0, 0, 0) + b"\x3fabc",  # a label longer than the message
    struct.pack("!HHHHHH", 3, 0x0100, 1, 0, 0, 0) + b"\xc0\x0c\x00\x01\x00\x01",  # a pointer to itself
    struct.pack("!HHHHHH", 4, 0x8180, 0, 5, 0, 0),           # a response with answers it lacks
    bytes(range(256)) * 2,                                  # noise
]
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.settimeout(1)
for message in messages:
    udp.sendto(message, (server, 53))
    try:
        udp.recv(4096)
    except OSError:
        pass
try:  # DNS over TCP, where the resolver serves it
    tcp = socket.create_connection((server, 53), timeout=3)
except ConnectionRefusedError:
    print("tcp: refused", flush=True)
else:
    tcp.sendall(b"\xff\xff" + b"\x00" * 20)                 # a length prefix far past the data
    tcp.close()
print("sent", len(messages), flush=True)
"""


@pytest.mark.spec(DNS_SERVICES, "the embedded DNS server keeps answering the containers' names after malformed queries")
def test_resolver_survives_malformed_queries(engine, image, network, guard):
    guard.allow(network)
    peer = start(engine, image, "--network", network.name)
    client = start(engine, image, "--network", network.name)
    ip = address(engine, peer, network.name)
    resolver = engine_resolver(engine, client, guard)
    sent = in_netns(container_pid(engine, client), MALFORMED, resolver, timeout=60)
    assert "sent" in sent.stdout, f"could not send the malformed queries from {client}'s namespace: {sent.stderr[-2000:]}"
    assert lookup(engine, client, peer, guard) == {ip}, (
        f"{engine.name}: after malformed queries to {resolver}, {peer} resolves to {lookup(engine, client, peer, guard)}, not {ip}")
    assert engine.state(client)["Running"], f"{engine.name}: the client container stopped"


#: A DNS responder of the check's own: answers every A query with its own
#: address and logs each question, so a forwarded query is seen.
RESPONDER = r"""
import socket, struct, sys
own = sys.argv[1]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 53))
print("ready", flush=True)
while True:
    data, peer = s.recvfrom(4096)
    if len(data) < 17:
        continue
    i, labels = 12, []
    while i < len(data) and data[i]:
        labels.append(data[i + 1:i + 1 + data[i]].decode(errors="replace"))
        i += 1 + data[i]
    print("query", ".".join(labels), flush=True)
    qtype = struct.unpack("!H", data[i + 1:i + 3])[0]
    answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(own) if qtype == 1 else b""
    header = struct.pack("!HHHHHH", struct.unpack("!H", data[:2])[0], 0x8180, 1, 1 if answer else 0, 0, 0)
    s.sendto(header + data[12:i + 5] + answer, peer)
"""


@pytest.mark.spec(RUN_NETWORK, "--internal networks have no external access: the embedded DNS server does not "
                  "forward a query out of an --internal network to the --dns server a container names "
                  "(on an ordinary network it does)")
def test_internal_network_dns_does_not_forward(engine, image, guard):
    ordinary, internal = create_network(engine), create_network(engine, "--internal")
    guard.allow(ordinary); guard.allow(internal)
    dns = start(engine, image, "--network", ordinary.name)
    dns_ip = guard.check(address(engine, dns, ordinary.name))
    responder = subprocess.Popen(netns_python(container_pid(engine, dns), RESPONDER, dns_ip),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert first_line(responder) == "ready", "the check's DNS responder did not start"
        inside = start(engine, image, "--network", internal.name, "--dns", dns_ip)
        outside = start(engine, image, "--network", ordinary.name, "--dns", dns_ip)
        assert lookup(engine, inside, "internal-probe.test", guard) == set(), (
            f"{engine.name}: a container on an --internal network resolved internal-probe.test through {dns_ip}")
        assert lookup(engine, outside, "control-probe.test", guard) == {dns_ip}, (
            f"{engine.name}: a container on an ordinary network did not resolve control-probe.test through --dns {dns_ip}")
    finally:
        responder.kill()
        log, _ = responder.communicate(timeout=10)
    assert "query internal-probe.test" not in log, (
        f"{engine.name}: the query of a container on an --internal network reached the --dns server {dns_ip}:\n{log}")

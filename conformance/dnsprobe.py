"""A name's addresses from one DNS server, for a client that resolves by itself:
the load of a dnsrr service (:mod:`conformance.locustfile_ingress`), whose
balancer is the swarm's embedded DNS, and the probe that tells when such a
service's answer is complete (:class:`conformance.meshsubject.SwarmDnsrrSubject`).

Both run inside a container's network namespace (``nsenter --net``) with the
host's files: the host's ``/etc/resolv.conf`` is not the container's, so the
name is asked of the container's own DNS server (docker's ``127.0.0.11``,
refengine's bridge gateway) directly, with dnslib, and never through the C
library's resolver (which would also reorder the answer, RFC 6724's rule 9).

As a program it is the probe::

    python -m conformance.dnsprobe NAME SERVER PORT

prints one JSON object: the answer's addresses in its order, and the stripped
body of ``GET http://ADDRESS:PORT/`` from each (null when it did not answer).
"""

from __future__ import annotations

import ipaddress
import json
import sys
import urllib.request

from dnslib import QTYPE, DNSRecord

#: One question's bound (seconds); the servers answer in milliseconds.
TIMEOUT = 2.0


class ResolveFailed(Exception):
    """The server did not answer, or not with an A record of the name."""


def addresses(reply: bytes, question: DNSRecord | None = None) -> list[str]:
    """The IPv4 addresses of a DNS reply's answer section, in its order; with the
    ``question`` it answers, a reply with another ID or question is refused (any
    datagram that reaches the client's port would do otherwise).

    >>> q = DNSRecord.question("web")
    >>> r = q.reply()
    >>> from dnslib import RR, A
    >>> for ip in ("10.0.1.4", "10.0.1.3"):
    ...     r.add_answer(RR("web", QTYPE.A, rdata=A(ip), ttl=600))
    >>> addresses(r.pack(), q)
    ['10.0.1.4', '10.0.1.3']
    >>> addresses(r.pack(), DNSRecord.question("db"))
    Traceback (most recent call last):
    ...
    conformance.dnsprobe.ResolveFailed: a DNS reply to another question
    >>> addresses(b"junk")
    Traceback (most recent call last):
    ...
    conformance.dnsprobe.ResolveFailed: unreadable DNS reply (4 bytes)
    """
    try:
        record = DNSRecord.parse(reply)
    except Exception:  # dnslib raises its own DNSError and struct errors alike
        raise ResolveFailed(f"unreadable DNS reply ({len(reply)} bytes)") from None
    if question is not None and (record.header.id != question.header.id or record.q != question.q):
        raise ResolveFailed("a DNS reply to another question")
    return [str(rr.rdata) for rr in record.rr if rr.rtype == QTYPE.A]


def server_address(server: str) -> tuple[str, int]:
    """``ADDRESS`` or ``ADDRESS:PORT`` of an IPv4 DNS server (port 53 by default).

    >>> server_address("127.0.0.11"), server_address("127.0.0.1:5353")
    (('127.0.0.11', 53), ('127.0.0.1', 5353))
    >>> server_address("127.0.0.1:")
    Traceback (most recent call last):
    ...
    ValueError: a DNS server is IPV4[:PORT], not '127.0.0.1:'
    >>> server_address("dns.example:53")
    Traceback (most recent call last):
    ...
    ValueError: a DNS server is IPV4[:PORT], not 'dns.example:53'
    """
    address, colon, port = server.partition(":")
    try:
        ipaddress.IPv4Address(address)
        number = int(port) if colon and port.isdigit() else 53 if not colon else 0
    except ValueError:
        number = 0
    if not 0 < number < 65536:
        raise ValueError(f"a DNS server is IPV4[:PORT], not {server!r}")
    return address, number


def resolve(name: str, server: str, timeout: float = TIMEOUT) -> list[str]:
    """``name``'s A records from ``server`` (:func:`server_address`), in the answer's order."""
    address, port = server_address(server)
    question = DNSRecord.question(name, "A")
    try:
        reply = question.send(address, port, timeout=timeout)
    except OSError as exc:
        raise ResolveFailed(f"{server} did not answer for {name}: {exc}") from None
    found = addresses(reply, question)
    if not found:
        raise ResolveFailed(f"{server} has no address for {name}")
    return found


def probe(name: str, server: str, port: int) -> dict:
    """What a client of ``name`` reaches now: the addresses and who answers at each."""
    try:
        found = resolve(name, server)
    except ResolveFailed as exc:
        return {"addresses": [], "answers": {}, "error": str(exc)}
    answers: dict[str, str | None] = {}
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy of the environment
    for address in found:
        try:
            with opener.open(f"http://{address}:{port}/", timeout=TIMEOUT) as response:
                answers[address] = response.read().decode(errors="replace").strip()
        except OSError:
            answers[address] = None
    return {"addresses": found, "answers": answers}


def main(argv: list[str]) -> int:
    if len(argv) != 3 or not argv[2].isdigit():
        print("usage: python -m conformance.dnsprobe NAME SERVER PORT", file=sys.stderr)
        return 2
    print(json.dumps(probe(argv[0], argv[1], int(argv[2]))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

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
body of ``GET http://ADDRESS:PORT/`` from each (null when it did not answer 200).
"""

from __future__ import annotations

import ipaddress
import json
import socket
import sys
import time

from dnslib import QTYPE, RCODE, DNSRecord

#: One question's bound (seconds); the servers answer in milliseconds.
TIMEOUT = 2.0


class ResolveFailed(Exception):
    """The server did not answer, or not with an A record of the name."""


class StrayReply(ResolveFailed):
    """A datagram that is no reply to the question asked (the client waits on)."""


def addresses(reply: bytes, question: DNSRecord) -> list[str]:
    """The IPv4 addresses of the name asked in a DNS reply's answer section, in its
    order (also those of a CNAME chain it gives). A datagram that is unreadable or
    answers another ID or question is a :class:`StrayReply` (any datagram that
    reaches the client's port would do otherwise); a truncated or failed answer
    is refused rather than taken as complete.

    >>> from dnslib import RR, A, CNAME
    >>> q = DNSRecord.question("web")
    >>> r = q.reply()
    >>> for ip in ("10.0.1.4", "10.0.1.3"):
    ...     r.add_answer(RR("web", QTYPE.A, rdata=A(ip), ttl=600))
    >>> r.add_answer(RR("db", QTYPE.A, rdata=A("6.6.6.6")))
    >>> addresses(r.pack(), q)
    ['10.0.1.4', '10.0.1.3']
    >>> addresses(r.pack(), DNSRecord.question("db"))
    Traceback (most recent call last):
    ...
    conformance.dnsprobe.StrayReply: a DNS reply to another question
    >>> addresses(b"junk", q)
    Traceback (most recent call last):
    ...
    conformance.dnsprobe.StrayReply: unreadable DNS reply (4 bytes)
    >>> chain = q.reply()
    >>> chain.add_answer(RR("web", QTYPE.CNAME, rdata=CNAME("web.svc")),
    ...                  RR("web.svc", QTYPE.A, rdata=A("10.0.1.5")))
    >>> addresses(chain.pack(), q)
    ['10.0.1.5']
    >>> r.header.tc = 1
    >>> addresses(r.pack(), q)
    Traceback (most recent call last):
    ...
    conformance.dnsprobe.ResolveFailed: a truncated answer for web.
    """
    try:
        record = DNSRecord.parse(reply)
    except Exception:  # dnslib raises its own DNSError and struct errors alike
        raise StrayReply(f"unreadable DNS reply ({len(reply)} bytes)") from None
    if not record.header.qr or record.header.id != question.header.id or record.q != question.q:
        raise StrayReply("a DNS reply to another question")
    if record.header.tc:
        raise ResolveFailed(f"a truncated answer for {question.q.qname}")
    if record.header.rcode != RCODE.NOERROR:
        raise ResolveFailed(f"{RCODE.get(record.header.rcode)} for {question.q.qname}")
    names = {question.q.qname} | {rr.rdata.label for rr in record.rr if rr.rtype == QTYPE.CNAME}
    return [str(rr.rdata) for rr in record.rr if rr.rtype == QTYPE.A and rr.rname in names]


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
    try:
        question = DNSRecord.question(name, "A")
        packet = question.pack()
    except Exception as exc:  # a label over 63 bytes, a name IDNA refuses
        raise ResolveFailed(f"cannot ask for {name!r}: {exc}") from None
    deadline = time.monotonic() + timeout
    # connected: only the server's datagrams arrive, and a closed port fails at once (ICMP)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect((address, port))
            sock.send(packet)
            while True:
                sock.settimeout(max(deadline - time.monotonic(), 0.001))
                try:
                    found = addresses(sock.recv(65535), question)
                    break
                except StrayReply:
                    continue  # not the answer: wait on until the deadline
        except OSError as exc:
            raise ResolveFailed(f"{server} did not answer for {name}: {exc}") from None
    if not found:
        raise ResolveFailed(f"{server} has no address for {name}")
    return found


def probe(name: str, server: str, port: int) -> dict:
    """What a client of ``name`` reaches now: the addresses and who answers at each."""
    try:
        found = resolve(name, server)
    except ResolveFailed as exc:
        return {"addresses": [], "answers": {}, "error": str(exc)}
    # here, not at the top: the locustfile imports this module for resolve() alone
    from .balancers import http_body

    return {"addresses": found, "answers": {a: http_body(f"http://{a}:{port}/", TIMEOUT) for a in found}}


def main(argv: list[str]) -> int:
    if len(argv) != 3 or not argv[2].isdigit():
        print("usage: python -m conformance.dnsprobe NAME SERVER PORT", file=sys.stderr)
        return 2
    print(json.dumps(probe(argv[0], argv[1], int(argv[2]))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The embedded DNS server (reference_runtime/net/dns.py) as a real process on
127.0.0.1 and a free high port, against fake upstream resolvers of our own.

Docker's behaviour: https://docs.docker.com/engine/network/#dns-services
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import struct
import threading
import time
from pathlib import Path

import pytest
from dnslib import QTYPE, RCODE, RR, A, DNSRecord

from reference_runtime.atomicfile import write_atomic
from reference_runtime.errors import ContainerError
from reference_runtime.net import dns

UPSTREAM_ADDR = "192.0.2.77"  # what every fake upstream answers


def free_port() -> int:
    # Free for both transports: the server binds UDP and TCP on the same port.
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket() as t:
                try:
                    t.bind(("127.0.0.1", port))
                    return port
                except OSError:
                    continue


def ask(port: int, name: str, qtype: str = "A", *, tcp: bool = False, src: str = "127.0.0.1",
        timeout: float = 5.0) -> DNSRecord:
    """One query to the server under test, from ``src``."""
    q = DNSRecord.question(name, qtype)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.bind((src, 0))
        s.connect(("127.0.0.1", port))
        if tcp:
            s.sendall(struct.pack("!H", len(q.pack())) + q.pack())
            data = recv_exact(s, struct.unpack("!H", recv_exact(s, 2))[0])
        else:
            s.send(q.pack())
            data = s.recv(65535)
    reply = DNSRecord.parse(data)
    assert reply.header.id == q.header.id, f"reply id {reply.header.id} != query id {q.header.id}"
    return reply


def recv_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        assert chunk, f"connection closed after {len(buf)} of {n} bytes"
        buf += chunk
    return buf


class FakeUpstream:
    """A resolver (UDP and TCP threads on one port) that answers every query with an A record
    of UPSTREAM_ADDR and remembers what it was asked."""

    def __init__(self) -> None:
        port = free_port()
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", port))
        self.tcp = socket.create_server(("127.0.0.1", port))
        self.addr, self.seen = f"127.0.0.1:{port}", []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=f, daemon=True) for f in (self._serve_udp, self._serve_tcp)]
        for t in self._threads:
            t.start()

    def _reply(self, data: bytes) -> bytes:
        q = DNSRecord.parse(data)
        self.seen.append(str(q.q.qname))
        reply = q.reply()
        reply.add_answer(RR(q.q.qname, QTYPE.A, rdata=A(UPSTREAM_ADDR), ttl=30))
        return reply.pack()

    def _serve_udp(self) -> None:
        self.udp.settimeout(0.2)
        while not self._stop.is_set():
            try:
                data, peer = self.udp.recvfrom(65535)
            except OSError:
                continue
            self.udp.sendto(self._reply(data), peer)

    def _serve_tcp(self) -> None:
        self.tcp.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(3)
                data = recv_exact(conn, struct.unpack("!H", recv_exact(conn, 2))[0])
                reply = self._reply(data)
                conn.sendall(struct.pack("!H", len(reply)) + reply)

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=2)
        self.udp.close()
        self.tcp.close()


@pytest.fixture
def upstreams():
    made: list[FakeUpstream] = []

    def make() -> FakeUpstream:
        made.append(FakeUpstream())
        return made[-1]

    yield make
    for u in made:
        u.close()


class Server:
    def __init__(self, tmp: Path, doc: dict) -> None:
        self.records, self.pidfile, self.log = tmp / "records.json", tmp / "dns.pid", tmp / "dns.log"
        self.write(doc)
        self.port = free_port()
        self.pid = dns.spawn(str(self.records), "127.0.0.1", str(self.pidfile), str(self.log), port=self.port)

    def write(self, doc: dict | bytes) -> None:
        write_atomic(self.records, doc if isinstance(doc, bytes) else json.dumps(doc).encode())

    def running(self) -> bool:
        return dns.running(str(self.pidfile), str(self.records))

    def wait_gone(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.05)
        return not self.running()


@pytest.fixture
def server(tmp_path):
    """Start a server for a records document; every one is stopped afterwards, also on failure."""
    started: list[Server] = []

    def start(doc: dict) -> Server:
        sub = tmp_path / f"net{len(started)}"
        sub.mkdir()
        started.append(Server(sub, doc))
        return started[-1]

    yield start
    for s in started:
        dns.stop(str(s.pidfile), str(s.records))
        try:  # belt and braces: the pid file may have been rewritten by a test
            os.kill(s.pid, signal.SIGKILL)
        except OSError:
            pass


NAMES = {"web": ["10.213.4.2"], "pool": ["10.213.4.3", "10.213.4.4"], "4f1c2a9b3d7e": ["10.213.4.2"]}


def addrs(reply: DNSRecord) -> list[str]:
    return [str(rr.rdata) for rr in reply.rr if rr.rtype == QTYPE.A]


def test_known_names_case_insensitive_with_or_without_dot(server):
    s = server({"internal": False, "upstream": [], "names": NAMES})
    for name in ("web", "WeB.", "4f1c2a9b3d7e"):
        r = ask(s.port, name)
        assert r.header.rcode == RCODE.NOERROR and addrs(r) == ["10.213.4.2"], f"{name}: {r}"
        assert all(rr.ttl == 600 for rr in r.rr), f"{name}: TTLs {[rr.ttl for rr in r.rr]}, docker uses 600"
    assert addrs(ask(s.port, "web", tcp=True)) == ["10.213.4.2"], "the same answer over TCP"


def test_shared_alias_returns_every_address_shuffled(server):
    s = server({"internal": False, "upstream": [], "names": NAMES})
    orders = {tuple(addrs(ask(s.port, "pool"))) for _ in range(30)}
    assert all(sorted(o) == ["10.213.4.3", "10.213.4.4"] for o in orders), f"answers: {orders}"
    assert len(orders) == 2, f"30 answers all in one order {orders}: not shuffled"


def test_answer_past_512_bytes_is_truncated_over_udp_only(server):
    many = [f"10.213.5.{i}" for i in range(1, 41)]
    s = server({"internal": False, "upstream": [], "names": {"big": many}})
    r = ask(s.port, "big")
    assert r.header.tc == 1 and not r.rr and r.q.qname == "big.", f"40 addresses over UDP: {r}"
    assert sorted(addrs(ask(s.port, "big", tcp=True))) == sorted(many), "40 addresses over TCP"


def test_aaaa_and_other_types_of_a_known_name_are_empty_noerror(server, upstreams):
    up = upstreams()
    s = server({"internal": False, "upstream": [up.addr], "names": NAMES})
    for qtype in ("AAAA", "MX", "TXT"):
        r = ask(s.port, "web", qtype)
        assert r.header.rcode == RCODE.NOERROR and not r.rr, f"{qtype} of web: {r}"
    assert up.seen == [], f"a known name was forwarded: {up.seen}"


def test_ptr_of_a_known_address(server):
    s = server({"internal": False, "upstream": [], "names": NAMES})
    r = ask(s.port, "3.4.213.10.in-addr.arpa", "PTR")
    assert [str(rr.rdata) for rr in r.rr] == ["pool."], f"PTR 10.213.4.3: {r}"
    r = ask(s.port, "2.4.213.10.in-addr.arpa", "PTR")
    assert sorted(str(rr.rdata) for rr in r.rr) == ["4f1c2a9b3d7e.", "web."], f"PTR 10.213.4.2: {r}"


def test_unknown_name_is_forwarded_in_order_with_client_id(server, upstreams):
    up = upstreams()
    dead = f"127.0.0.1:{free_port()}"  # nobody listens: refused at once, the next one is asked
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as mute:  # listens, never answers
        mute.bind(("127.0.0.1", 0))
        mute.settimeout(0.2)
        silent = f"127.0.0.1:{mute.getsockname()[1]}"
        s = server({"internal": False, "upstream": [dead, silent, up.addr], "names": NAMES})
        r = ask(s.port, "example.org", timeout=8)  # ask() checks the reply has the client's ID
        muted = []
        while True:  # what the silent one received: asked once, then the next one was
            try:
                muted.append(mute.recv(4096))
            except socket.timeout:
                break
    assert addrs(r) == [UPSTREAM_ADDR] and up.seen == ["example.org."], f"{r}; upstream saw {up.seen}"
    assert len(muted) == 1, f"the silent upstream was asked {len(muted)} times, expected once"
    r = ask(s.port, "example.net", tcp=True, timeout=8)
    assert addrs(r) == [UPSTREAM_ADDR] and up.seen[-1] == "example.net.", f"over TCP: {r}; {up.seen}"


def test_per_client_upstream_overrides(server, upstreams):
    host, own = upstreams(), upstreams()
    s = server({"internal": False, "upstream": [host.addr], "clients": {"127.0.0.2": [own.addr]},
                "names": NAMES})
    assert addrs(ask(s.port, "a.example", src="127.0.0.2")) == [UPSTREAM_ADDR]
    assert addrs(ask(s.port, "b.example", src="127.0.0.1")) == [UPSTREAM_ADDR]
    assert own.seen == ["a.example."] and host.seen == ["b.example."], \
        f"container's --dns saw {own.seen}, host resolver saw {host.seen}"


def test_no_upstream_answering_is_servfail_and_never_itself(server, upstreams):
    s = server({"internal": False, "upstream": [], "names": NAMES})
    s.write({"internal": False, "upstream": [f"127.0.0.1:{s.port}"], "names": NAMES})
    r = ask(s.port, "loop.example", timeout=8)
    assert r.header.rcode == RCODE.SERVFAIL and r.q.qname == "loop.example.", f"{r}"
    # Itself first, then a real upstream: skipped, the upstream asks once. A server that
    # forwarded to itself would recurse, each level ending at the upstream: asked again and again.
    up = upstreams()
    s.write({"internal": False, "upstream": [f"127.0.0.1:{s.port}", up.addr], "names": NAMES})
    assert addrs(ask(s.port, "loop2.example", timeout=8)) == [UPSTREAM_ADDR]
    assert up.seen == ["loop2.example."], f"the server forwarded to itself: the upstream saw {up.seen}"


def test_internal_network_never_forwards(server, upstreams):
    up = upstreams()
    s = server({"internal": True, "upstream": [up.addr], "clients": {"127.0.0.1": [up.addr]},
                "names": NAMES})
    for qtype in ("A", "AAAA", "MX"):
        r = ask(s.port, "example.org", qtype)
        assert r.header.rcode == RCODE.REFUSED and not r.rr, f"{qtype} on an internal network: {r}"
    assert ask(s.port, "9.9.9.10.in-addr.arpa", "PTR").header.rcode == RCODE.REFUSED
    assert addrs(ask(s.port, "web")) == ["10.213.4.2"], "local names still resolve"
    time.sleep(0.3)
    assert up.seen == [], f"an internal network's query reached the upstream: {up.seen}"


def test_reload_on_change_and_keep_last_good(server):
    s = server({"internal": False, "upstream": [], "names": NAMES})
    s.write({"internal": False, "upstream": [], "names": {"db": ["10.213.4.9"]}})
    assert addrs(ask(s.port, "db")) == ["10.213.4.9"], "new name after an atomic rewrite"
    assert ask(s.port, "web").header.rcode == RCODE.SERVFAIL, "removed name still answered"
    s.records.write_text('{"names": {"db": ["10.213.')  # a torn write in place
    assert addrs(ask(s.port, "db")) == ["10.213.4.9"], "last good records lost"
    with open(s.records, "w") as f:  # in place, same inode: size and mtime change
        json.dump({"internal": False, "upstream": [], "names": {"cache": ["10.213.4.8"]}}, f)
    assert addrs(ask(s.port, "cache")) == ["10.213.4.8"]


def malformed_corpus() -> list[bytes]:
    header = struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    rnd = random.Random(20261128)
    # 2000 questions, each a pointer to the one before: quadratic for a full parser.
    chain = struct.pack("!HHHHHH", 7, 0x0100, 2000, 0, 0, 0) + b"\x00\x00\x01\x00\x01" + b"".join(
        struct.pack("!HHH", 0xC000 | (12 + 5 * (i > 0) + 6 * max(i - 1, 0)), 1, 1) for i in range(1999))
    return [
        b"", b"\x00", header[:11],
        struct.pack("!HHHHHH", 0x4321, 0x0100, 0, 0, 0, 0),  # a header alone
        header,  # question count, no question
        header + b"\x3fab",  # label past the end
        header + b"\xc0\x0c\x00\x01\x00\x01",  # pointer to itself
        header + b"\x01a\xc0\x0c\x00\x01\x00\x01",  # pointer loop through a label
        header[:4] + b"\x00\x02" + header[6:] + b"\x01a\x00\x00\x01\x00\x01" + b"\xc0\x0c",  # 2nd q torn
        chain, chain[:4] + b"\x00\x01" + chain[6:],  # the chain, as 2000 questions and as 1
        header + b"\x02\xff\xfe\x00\x00\x01\x00\x01",  # a label that is not UTF-8
        struct.pack("!HHHHHH", 1, 0x8180, 1, 0, 0, 0) + b"\x01a\x00\x00\x01\x00\x01",  # a response
        struct.pack("!HHHHHH", 2, 0x7900, 1, 0, 0, 0) + b"\x01a\x00\x00\x01\x00\x01",  # opcode 15
        header + b"\x01a\x00\x00\x01\x00\x01" + b"\xff" * 3000,
    ] + [rnd.randbytes(rnd.randrange(1, 600)) for _ in range(300)]


def test_malformed_udp_then_normal_query(server):
    s = server({"internal": False, "upstream": [], "names": NAMES})
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.settimeout(1)
        u.connect(("127.0.0.1", s.port))
        for pkt in malformed_corpus():
            u.send(pkt)
        u.send(struct.pack("!HHHHHH", 0x4321, 0x0100, 0, 0, 0, 0))
        got = []
        try:
            while True:
                got.append(u.recv(65535))
        except socket.timeout:
            pass
    formerr = [g for g in got if g[:2] == b"\x43\x21"]
    assert formerr and formerr[-1][3] & 0x0F == RCODE.FORMERR, f"header alone: replies {formerr}"
    assert all(len(g) >= 12 for g in got), "a reply shorter than a header"
    assert addrs(ask(s.port, "web")) == ["10.213.4.2"], "no answer after the malformed corpus"
    assert s.running()
    assert "Traceback" not in s.log.read_text(), s.log.read_text()[-2000:]


def test_malformed_tcp_idle_clients_and_cap(server):
    s = server({"internal": False, "upstream": [], "names": NAMES})
    for pkt in malformed_corpus()[:40]:
        with socket.create_connection(("127.0.0.1", s.port), timeout=3) as c:
            c.sendall(struct.pack("!H", len(pkt)) + pkt)
    with socket.create_connection(("127.0.0.1", s.port), timeout=3) as c:
        c.sendall(b"\x01\x00abc")  # prefix says 256 bytes, 3 follow, then half-close
        c.shutdown(socket.SHUT_WR)
        assert c.recv(10) == b"", "a torn TCP message got an answer"
    silent = [socket.create_connection(("127.0.0.1", s.port), timeout=10) for _ in range(dns.TCP_MAX + 8)]
    try:
        for c in silent[dns.TCP_MAX:]:  # past the cap: closed at once, not after the deadline
            c.settimeout(2)
            assert c.recv(10) == b"", "a TCP client past the cap was sent data"
        assert addrs(ask(s.port, "web")) == ["10.213.4.2"], "UDP starved by idle TCP clients"
        silent[0].settimeout(dns.TCP_DEADLINE * 4)  # bounds the wait; the close comes at the deadline
        assert silent[0].recv(10) == b"", "an idle TCP client was sent data (or never dropped)"
    finally:
        for c in silent:
            c.close()
    deadline = time.monotonic() + 5
    while True:  # the capped slots free as the idle clients are dropped
        try:
            r = ask(s.port, "web", tcp=True, timeout=2)
            break
        except (OSError, AssertionError):
            assert time.monotonic() < deadline, "TCP never answered again after the idle clients"
            time.sleep(0.2)
    assert addrs(r) == ["10.213.4.2"]
    assert "Traceback" not in s.log.read_text(), s.log.read_text()[-2000:]


def test_exits_when_records_file_removed(server):
    s = server({"internal": False, "upstream": [], "names": NAMES})
    assert s.running()
    s.records.unlink()
    assert s.wait_gone(dns.WATCH + 3), "still running 5 s after its records file was removed"


def test_running_stop_and_pid_reuse(server, tmp_path):
    s = server({"internal": False, "upstream": [], "names": NAMES})
    assert s.running() and int(s.pidfile.read_text()) == s.pid
    assert not dns.running(str(s.pidfile), str(tmp_path / "other.json")), "another network's server"
    os.kill(s.pid, signal.SIGKILL)
    assert s.wait_gone(3), "running() true after SIGKILL"
    s.pidfile.write_text(f"{os.getpid()}\n")
    assert not s.running(), "running() true for an unrelated process"
    dns.stop(str(s.pidfile), str(s.records))  # not ours: must not signal pytest itself
    assert not s.pidfile.exists()
    t = server({"internal": False, "upstream": [], "names": NAMES})
    dns.stop(str(t.pidfile), str(t.records))
    assert not t.running() and not t.pidfile.exists(), "stop() left the server or its pid file"
    dns.stop(str(t.pidfile), str(t.records))  # again: quiet


def test_spawn_reports_bind_error(server, tmp_path):
    s = server({"internal": False, "upstream": [], "names": NAMES})
    with pytest.raises(ContainerError, match="Address already in use") as e:
        dns.spawn(str(s.records), "127.0.0.1", str(tmp_path / "x.pid"), str(tmp_path / "x.log"), port=s.port)
    assert "\n" not in str(e.value) and not (tmp_path / "x.pid").exists()
    with pytest.raises(ContainerError, match="no records file"):
        dns.spawn(str(tmp_path / "missing.json"), "127.0.0.1", str(tmp_path / "y.pid"),
                  str(tmp_path / "y.log"), port=free_port())

"""The embedded DNS server of a user-defined network (docker's embedded DNS, podman's
aardvark-dns): one process per network, UDP and TCP on the network's gateway address.

It answers container names and aliases from a records file that the engine replaces
atomically (rename) whenever endpoints change, and forwards other names to the host's
resolvers or a container's own ``--dns`` servers; an internal network never reaches out::

    {"internal": false,
     "upstream": ["192.168.1.1", "127.0.0.1:5353"],  # ip, ip:port or [ip6]:port, in order
     "clients": {"10.213.4.2": ["10.213.5.9"]},       # by source IP; overrides upstream
     "names": {"web": ["10.213.4.2"], "pool": ["10.213.4.3", "10.213.4.4"]}}

The engine uses :func:`spawn`, :func:`running` and :func:`stop`; ``python -m
reference_runtime.net.dns --records FILE --listen IP [--port 53]`` runs it in the
foreground. It exits once the records file is gone: a crashed engine leaves no server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from reference_runtime.atomicfile import write_atomic
from reference_runtime.errors import ContainerError

MODULE = "reference_runtime.net.dns"
TTL = 600  # docker's embedded DNS gives container names a TTL of 600
UPSTREAM_TIMEOUT = 2.0  # per upstream server: the container's resolver gives up after 5 s
TCP_DEADLINE = 5.0  # to send one whole message: a silent client holds a thread this long
TCP_MAX, UDP_MAX = 32, 128  # handler threads; past them connections close, datagrams drop
WATCH = 2.0  # seconds between checks that the records file still exists
READY_TIMEOUT = 3.0
FORMERR, SERVFAIL, NOTIMP, REFUSED = 1, 2, 4, 5
# An unknown name on an internal network. Docker 20.10 answers SERVFAIL (libnetwork
# resolver.go, `!r.proxyDNS`); we answer REFUSED, "refused for policy reasons" (RFC 1035):
# to glibc the same failure class as docker's (EAI_AGAIN, lookup over at once; musl waits
# out its timeout on both), while SERVFAIL stays what it means here, upstreams that do not
# answer. Not NXDOMAIN: it claims the name exists nowhere and turns EAI_AGAIN into EAI_NONAME.
INTERNAL_RCODE = REFUSED

_last_log: dict[str, float] = {}


def _log(msg: str, key: str = "") -> None:
    """One line to the log; lines sharing a key at most every 10 s, so junk floods stay small."""
    now = time.monotonic()
    if key and now - _last_log.get(key, -1e9) < 10:
        return
    _last_log[key] = now
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print(f"{stamp} dns[{os.getpid()}]: {msg}", file=sys.stderr, flush=True)


class Records:
    """The records file, re-read when its inode, size or mtime changes; the last good content
    is kept while the file is unparsable: a bad write must not make every name vanish."""

    def __init__(self, path: str) -> None:
        self.path, self._seen = path, None
        # Before the first good read nothing is known and, to be safe, nothing is forwarded.
        self.table: dict = {"internal": True, "upstream": [], "clients": {}, "names": {}, "ptr": {}}

    def current(self) -> dict:
        try:
            st = os.stat(self.path)
        except OSError:
            return self.table  # removed: the watcher ends the process soon
        if (key := (st.st_ino, st.st_size, st.st_mtime_ns)) != self._seen:
            self._seen = key  # a bad version is logged once, not once per query
            try:
                self.table = self._parse(Path(self.path).read_bytes())
            except (OSError, ValueError, TypeError, AttributeError) as e:
                _log(f"records file {self.path} unusable, keeping the last good one: {e}")
        return self.table  # swapped whole: a thread never sees half of two versions

    @staticmethod
    def _parse(data: bytes) -> dict:
        import ipaddress

        doc = json.loads(data)
        names = {str(n).lower().rstrip("."): [ipaddress.ip_address(a) for a in addrs]
                 for n, addrs in doc.get("names", {}).items()}
        ptr: dict[str, list[str]] = {}
        for name, addrs in names.items():
            for a in addrs:
                ptr.setdefault(str(a), []).append(name)
        # "subnets": the clients served (a network's own containers); absent, anyone.
        subnets = [ipaddress.ip_network(n) for n in doc["subnets"]] if "subnets" in doc else None
        return {"internal": bool(doc.get("internal", False)), "names": names, "ptr": ptr, "subnets": subnets,
                "upstream": [str(s) for s in doc.get("upstream", [])],
                "clients": {str(k): [str(s) for s in v] for k, v in doc.get("clients", {}).items()}}


def _inside(src: str, subnets: list) -> bool:
    import ipaddress

    try:
        ip = ipaddress.ip_address(src)
    except ValueError:
        return False
    return any(ip in n for n in subnets)


def _hostport(server: str) -> tuple[str, int]:
    """``1.2.3.4``, ``1.2.3.4:5353``, ``::1`` or ``[::1]:5353`` as (host, port)."""
    if server.startswith("["):
        host, _, port = server[1:].partition("]")
        return host, int(port.lstrip(":") or 53)
    host, _, port = server.partition(":") if server.count(":") == 1 else (server, "", "")
    return host, int(port or 53)


def _recv_exact(sock, n: int, deadline: float) -> bytes | None:
    buf = b""
    while len(buf) < n and (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            chunk = sock.recv(n - len(buf))
        except OSError:  # the timeout included
            return None
        if not chunk:
            return None
        buf += chunk
    return buf if len(buf) == n else None


def _ask(server: tuple[str, int], query: bytes, tcp: bool) -> bytes | None:
    """One upstream's reply to ``query``, or None; raises OSError when it is unreachable."""
    import socket

    deadline = time.monotonic() + UPSTREAM_TIMEOUT
    family = socket.AF_INET6 if ":" in server[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM) as s:
        s.settimeout(UPSTREAM_TIMEOUT)
        s.connect(server)  # UDP too: the kernel then drops datagrams from anyone else
        if tcp:
            s.sendall(len(query).to_bytes(2, "big") + query)
            head = _recv_exact(s, 2, deadline)
            return _recv_exact(s, int.from_bytes(head, "big"), deadline) if head else None
        s.send(query)
        while (left := deadline - time.monotonic()) > 0:
            s.settimeout(left)
            if (reply := s.recv(65535))[:2] == query[:2]:  # skip stale replies to older queries
                return reply
    return None


def _forward(data: bytes, servers: list[str], own: tuple[str, int], tcp: bool) -> bytes | None:
    query = os.urandom(2) + data[2:]  # our own ID upstream: the client's is guessable
    for server in servers:
        try:
            if (addr := _hostport(server)) == own:  # to ourselves: a loop until timeouts
                continue
            reply = _ask(addr, query, tcp)
        except (OSError, ValueError):
            continue
        if reply is not None and len(reply) >= 12:
            return data[:2] + reply[2:]
    return None


def _error(data: bytes, rcode: int) -> bytes | None:
    """A bare header answering ``data`` with ``rcode``; None if ``data`` is no query."""
    if len(data) < 12 or data[2] & 0x80:  # no header, or a response: answering those loops
        return None
    return data[:2] + bytes([0x80 | (data[2] & 0x79), rcode]) + bytes(8)  # keep opcode and RD


def answer(records: Records, data: bytes, src: str, own: tuple[str, int], tcp: bool) -> bytes | None:
    """The reply to the packet ``data`` from ``src``, or None to stay silent."""
    import random

    from dnslib import AAAA, PTR, QTYPE, RR, A, DNSBuffer, DNSHeader, DNSQuestion, DNSRecord

    # The header and the question only: other sections (EDNS at most) are not needed, and
    # fully parsing thousands of records chained by compression pointers costs O(n^2).
    try:
        buf = DNSBuffer(data)
        if (h := DNSHeader.parse(buf)).qr or h.q != 1:
            return _error(data, FORMERR)
        request = DNSRecord(h, [DNSQuestion.parse(buf)])
    except Exception:  # dnslib raises DNSError, BufferError, struct, Unicode, Recursion errors
        _log(f"malformed packet from {src} ({len(data)} bytes)", key="malformed")
        return _error(data, FORMERR)
    if h.opcode != 0:
        return _error(data, NOTIMP)
    table, q = records.current(), request.q
    if table.get("subnets") is not None and not _inside(src, table["subnets"]):
        # Another network's container (the gateway is a host address every network reaches)
        # learns nothing of this network's names: aardvark-dns serves its own network only.
        return _error(data, REFUSED)
    # Not authoritative (aa=0), like docker's and aardvark's answers: clients print them as such.
    name, reply = str(q.qname).lower().rstrip("."), request.reply(ra=int(not table["internal"]), aa=0)
    if name in table["names"]:  # other types than A (AAAA with no IPv6): NOERROR, no data
        kind = {QTYPE.A: (4, A), QTYPE.AAAA: (6, AAAA)}.get(q.qtype)
        addrs = [a for a in table["names"][name] if kind and a.version == kind[0]]
        for a in random.sample(addrs, len(addrs)):  # docker shuffles per answer
            reply.add_answer(RR(q.qname, q.qtype, rdata=kind[1](str(a)), ttl=TTL))
    elif q.qtype == QTYPE.PTR and name.endswith(".in-addr.arpa") and (
            ip := ".".join(reversed(name[:-13].split(".")))) in table["ptr"]:
        for n in table["ptr"][ip]:
            reply.add_answer(RR(q.qname, QTYPE.PTR, rdata=PTR(n + "."), ttl=TTL))
    elif table["internal"]:
        reply.header.rcode = INTERNAL_RCODE
    elif forwarded := _forward(data, table["clients"].get(src, table["upstream"]), own, tcp):
        return forwarded
    else:
        reply.header.rcode = SERVFAIL  # with the question: glibc ignores replies without it
    if len(packed := reply.pack()) > 512 and not tcp:  # the classic UDP limit (EDNS ignored)
        reply.rr, reply.header.tc = [], 1  # the client retries over TCP; glibc wants the question
        packed = reply.pack()
    return packed


def serve(records_path: str, listen: str, port: int, ready_fd: int | None = None) -> int:
    """Bind, then with ``ready_fd`` fork: the parent writes the server's pid (or the bind error)
    to ``ready_fd`` and exits, so the server is reparented and nobody's zombie."""
    import socket
    import threading

    records, own = Records(records_path), (listen, port)
    family = socket.AF_INET6 if ":" in listen else socket.AF_INET
    try:
        if not os.path.exists(records_path):  # it would exit at its first check anyway
            raise OSError(f"no records file {records_path}")
        udp = socket.socket(family, socket.SOCK_DGRAM)
        udp.bind(own)  # without SO_REUSEADDR: a second server on the address fails here
        tcp = socket.create_server(own, family=family, backlog=TCP_MAX)  # a burst: no SYN retries
    except OSError as e:
        _log(msg := f"dns server cannot listen on {listen}:{port}: {e.strerror or e}")
        if ready_fd is not None:
            os.write(ready_fd, f"error: {msg}\n".encode())
        return 1
    if ready_fd is not None:
        if pid := os.fork():  # while single-threaded: forking a threaded process is unsafe
            os.write(ready_fd, f"{pid}\n".encode())
            os._exit(0)
        os.close(ready_fd)

    def udp_query(data: bytes, peer: tuple) -> None:
        if (reply := answer(records, data, peer[0], own, False)) is not None:
            udp.sendto(reply, peer)

    def tcp_session(conn: socket.socket, peer: tuple) -> None:
        with conn:  # RFC 7766: several length-prefixed queries per connection
            while head := _recv_exact(conn, 2, time.monotonic() + TCP_DEADLINE):
                data = _recv_exact(conn, int.from_bytes(head, "big"), time.monotonic() + TCP_DEADLINE)
                if data is None or (reply := answer(records, data, peer[0], own, True)) is None:
                    return
                conn.sendall(len(reply).to_bytes(2, "big") + reply)

    def dispatch(receive, handle, limit: int, kind: str) -> None:
        """One thread per query or connection, at most ``limit``: a flood is dropped, not queued."""
        slots = threading.BoundedSemaphore(limit)

        def run(*args) -> None:
            try:
                handle(*args)
            except Exception as e:  # one line, never a traceback per packet
                _log(f"{kind} client {args[-1][0]}: {e!r}", key=kind + "error")
            finally:
                slots.release()

        while True:
            try:
                args = receive()
            except OSError as e:  # EMFILE, ECONNABORTED: transient; don't spin on it
                _log(f"{kind}: {e}", key=kind + "recv")
                time.sleep(0.1)
                continue
            if slots.acquire(blocking=False):
                threading.Thread(target=run, args=args, daemon=True).start()
            else:
                _log(f"too many {kind} clients, dropping {args[-1][0]}", key=kind)
                if kind == "tcp":
                    args[0].close()

    def terminate(signum, frame):
        raise SystemExit(0)  # only the main thread runs handlers: it is in the loop below

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)
    for args in ((lambda: udp.recvfrom(65535), udp_query, UDP_MAX, "udp"),
                 (tcp.accept, tcp_session, TCP_MAX, "tcp")):
        threading.Thread(target=dispatch, args=args, daemon=True).start()
    _log(f"serving {records_path} on {listen}:{port}")
    try:
        while os.path.exists(records_path):
            time.sleep(WATCH)
        _log("records file removed, exiting")
    except SystemExit:
        _log("terminated")
    os._exit(0)  # handler threads may sit in recv; nothing of theirs needs flushing


def spawn(records: str, listen: str, pidfile: str, log: str, port: int = 53) -> int:
    """Start a detached server for ``records``; return its pid once its sockets are bound.
    The engine calls ``spawn(NETDIR/dns.json, GATEWAY, NETDIR/dns.pid, NETDIR/dns.log)``
    on a user network's first container start (see endpoints.py)."""
    argv = [sys.executable, "-m", MODULE, "--records", os.path.abspath(records),
            "--listen", listen, "--port", str(port)]
    r, w = os.pipe()
    try:
        with open(log, "ab") as out:
            starter = subprocess.Popen([*argv, "--ready-fd", str(w)], stdin=subprocess.DEVNULL,
                                       stdout=out, stderr=out, pass_fds=(w,), cwd="/",
                                       start_new_session=True)
    except OSError as e:
        os.close(r)
        raise ContainerError(f"cannot start the dns server: {e}") from None
    finally:
        os.close(w)
    try:  # the starter exits right after writing the server's pid or its error to the pipe
        starter.wait(timeout=READY_TIMEOUT)
    except subprocess.TimeoutExpired:  # stuck before binding: never leave it half-started
        starter.kill()
        starter.wait()
    os.set_blocking(r, False)
    try:
        reply = os.read(r, 4096).decode(errors="replace").strip()
    except BlockingIOError:
        reply = ""
    finally:
        os.close(r)
    if not reply.isdigit():
        raise ContainerError(reply.removeprefix("error: ").splitlines()[0] if reply else
                             f"dns server on {listen}:{port} did not start (see {log})")
    write_atomic(Path(pidfile), f"{reply}\n".encode())
    return int(reply)


def running(pidfile: str, records: str) -> bool:
    """The pid file names a live server of ``records``, by its command line: pids are
    reused (and a zombie's command line is empty)."""
    try:
        pid = int(Path(pidfile).read_text().strip())
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return False
    want = os.fsencode(os.path.abspath(records))
    return MODULE.encode() in argv and (b"--records", want) in zip(argv, argv[1:])


def stop(pidfile: str, records: str) -> None:
    """SIGTERM the server, SIGKILL it after 3 s, remove the pid file; quiet if not running."""
    for sig, grace in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 2.0)):
        if not running(pidfile, records):
            break
        try:
            os.kill(int(Path(pidfile).read_text()), sig)
        except (OSError, ValueError):
            break
        deadline = time.monotonic() + grace
        while running(pidfile, records) and time.monotonic() < deadline:
            time.sleep(0.05)
    Path(pidfile).unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.split("\n")[0])
    p.add_argument("--records", required=True, help="the records file (JSON) to serve")
    p.add_argument("--listen", required=True, help="the address to bind: the network's gateway")
    p.add_argument("--port", type=int, default=53)
    p.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)  # spawn()'s readiness pipe
    a = p.parse_args(argv)
    return serve(os.path.abspath(a.records), a.listen, a.port, a.ready_fd)


if __name__ == "__main__":
    sys.exit(main())

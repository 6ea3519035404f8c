"""conformance.load: the pure helpers of LoadResult, the run's bounds, and one
real locust run against a local server; the locustfile is never imported."""

import ast
import http.server
import itertools
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from dnslib import QTYPE, RR, A
from dnslib.server import BaseResolver, DNSServer

from conformance.errors import ConformanceError
from conformance.load import (LOCUSTFILE, LoadResult, LoadSpec, Request, parse_records, parse_stats_csv, run_load,
                              unfair_shares)

CONFORMANCE = Path(__file__).resolve().parents[2] / "conformance"


def _requests():
    # user 1 on one connection (a, a), user 2 on two (b, then a), a failure at t=5
    return LoadResult([Request(1.0, 1, 1, "a", True), Request(2.0, 2, 1, "b", True), Request(3.0, 1, 1, "a", True),
                       Request(4.0, 2, 2, "a", True), Request(5.0, 2, 3, "", False, "refused"),
                       Request(6.0, 1, 1, "c", True)])


def test_counts_and_shares_count_answered_requests_only():
    result = _requests()
    assert result.counts() == {"a": 3, "b": 1, "c": 1}
    assert result.shares() == {"a": 0.6, "b": 0.2, "c": 0.2}
    assert len(result.succeeded()) == 5 and result.total == 6


def test_failures_and_windows():
    result = _requests()
    assert [r.t for r in result.failures()] == [5.0]
    assert result.failures(after=5.5) == [] and result.failures(before=5.0) == []
    assert [r.t for r in result.between(after=2.0, before=4.0).requests] == [2.0, 3.0]


def test_first_and_last_seen():
    result = _requests()
    assert result.first_seen("a") == 1.0 and result.first_seen("a", after=3.5) == 4.0
    assert result.first_seen("z") is None and result.last_seen("a") == 4.0 and result.last_seen("z") is None


def test_per_user_and_per_connection_sets():
    result = _requests()
    assert result.replicas_per_user() == {1: {"a", "c"}, 2: {"a", "b"}}
    assert result.replicas_per_connection() == {(1, 1): {"a", "c"}, (2, 1): {"b"}, (2, 2): {"a"}}
    assert result.requests_per_connection() == {(1, 1): 3, (2, 1): 1, (2, 2): 1, (2, 3): 1}
    assert result.error_kinds() == {"refused": 1}


def test_empty_result():
    result = LoadResult([])
    assert result.counts() == {} and result.shares() == {} and result.failures() == []
    assert "0 requests" in result.summary()


@pytest.mark.parametrize("counts,replicas,unfair", [
    ({"a": 1000, "b": 1000, "c": 1000}, ["a", "b", "c"], {}),
    ({"a": 1090, "b": 1000, "c": 910}, ["a", "b", "c"], {}),  # 9% off: within 10%
    ({"a": 1110, "b": 1000, "c": 890}, ["a", "b", "c"], {"a": 0.37, "c": 0.29666666666666669}),
    ({"a": 1500, "b": 1500}, ["a", "b", "c"], {"a": 0.5, "b": 0.5, "c": 0.0}),  # c never answered
    ({"a": 100, "b": 100, "x": 100}, ["a", "b"], {"a": 1 / 3, "b": 1 / 3, "x": 1 / 3}),  # x is no replica
])
def test_unfair_shares(counts, replicas, unfair):
    assert unfair_shares(counts, replicas, 0.10) == pytest.approx(unfair)


def test_parse_records_sorts_by_time_and_drops_torn_lines():
    text = ('{"t": 2.5, "user": 2, "conn": 1, "replica": "b", "ok": true, "error": ""}\n'
            '{"t": 1.5, "user": 1, "conn": 3, "replica": "", "ok": false, "error": "boom"}\n{"t": 3')
    assert parse_records(text) == [Request(1.5, 1, 3, "", False, "boom"), Request(2.5, 2, 1, "b", True, "")]


def test_parse_stats_csv_reads_the_aggregated_row_only():
    text = ("Type,Name,Request Count,Failure Count,Requests/s,50%,99%\n"
            "GET,http://x,10,0,5,2,4\n,Aggregated,3000,1,900.5,3,17\n")
    latency = parse_stats_csv(text)
    assert (latency.requests, latency.failures, latency.p50, latency.p99, latency.rps) == (3000, 1, 3.0, 17.0, 900.5)
    assert parse_stats_csv("Type,Name,Request Count,50%,99%\n,Aggregated,0,N/A,N/A\n") is None


@pytest.mark.parametrize("kwargs,message", [
    ({"targets": []}, "http:// base URLs"),
    ({"targets": ["127.0.0.1:80"]}, "http:// base URLs"),
    ({"users": 11}, "users must be 1..10"),
    ({"run_time": 21}, "run_time must be in"),
    ({"max_requests": 0}, "max_requests must be"),
    ({"mode": "pipelined"}, "mode must be one of"),
    ({"target": 1}, "target 1 is not an index"),
    ({"resolver": "dns.example"}, "load resolver: a DNS server is IPV4"),
])
def test_load_spec_is_bounded(kwargs, message):
    with pytest.raises(ConformanceError, match=message):
        LoadSpec(**{"targets": ["http://127.0.0.1:1"], **kwargs})


def test_argv_runs_in_the_namespace_asked():
    spec = LoadSpec(["http://10.0.0.1:80"], users=3, run_time=5, netns="/run/netns/n1")
    argv = spec.argv(Path("/tmp/x"))
    assert argv[:2] == ["nsenter", "--net=/run/netns/n1"]
    assert argv[argv.index("-u") + 1] == "3" and argv[argv.index("--run-time") + 1] == "5s"
    assert "nsenter" not in LoadSpec(["http://127.0.0.1:1"]).argv(Path("/tmp/x"))


def test_nothing_in_conformance_imports_the_locustfile_or_locust():
    """Importing locust gevent-patches the whole process: only the locust subprocess loads it."""
    offenders = []
    for path in sorted(CONFORMANCE.rglob("*.py")):
        if path == LOCUSTFILE:
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] + [a.name for a in node.names] if isinstance(node, ast.ImportFrom) else [])
            if any(n.split(".")[0] in ("locust", "gevent", "locustfile_ingress") or n == "locustfile_ingress"
                   for n in names):
                offenders.append(f"{path.name}:{node.lineno}")
    assert not offenders, f"these import locust, gevent or the locustfile: {offenders}"


def test_importing_the_harness_loads_no_gevent():
    code = ("import sys, pkgutil, importlib, conformance\n"
            "for m in pkgutil.walk_packages(conformance.__path__, 'conformance.'):\n"
            "    if m.name != 'conformance.locustfile_ingress':\n"
            "        importlib.import_module(m.name)\n"
            "print(sorted(n for n in sys.modules if n.split('.')[0] in ('gevent', 'locust')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]", f"gevent/locust modules after importing the harness: {done.stdout.strip()}"


class _Named(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keeps connections open unless the client says close

    def do_GET(self):
        body = self.server.name.encode() + b"\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def servers():
    started = []
    for name in ("one", "two"):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Named)
        server.daemon_threads = True
        server.name = name
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append(server)
    yield [f"http://127.0.0.1:{s.server_address[1]}" for s in started]
    for server in started:
        server.shutdown()
        server.server_close()


def test_a_real_run_records_every_request_and_stops_at_the_cap(servers, tmp_path):
    result = run_load(LoadSpec(servers, users=2, run_time=15, max_requests=200), tmp_path)
    assert 200 <= result.total <= 200 + 2, f"the cap of 200 stops the run: {result.summary()}"
    assert result.counts().keys() == {"one", "two"} and not result.failures(), result.summary()
    assert abs(result.counts()["one"] - result.counts()["two"]) <= 2, "round robin over the two entry points"
    assert set(result.requests_per_connection().values()) == {1}, "a new connection per request"
    assert result.ended - result.started < 15, "ended by the cap, not the run time"


def test_a_keep_alive_run_reuses_one_connection_per_user(servers, tmp_path):
    result = run_load(LoadSpec(servers, users=2, run_time=15, max_requests=100, mode="keepalive"), tmp_path)
    assert not result.failures(), result.summary()
    assert sorted(result.requests_per_connection()) == [(1, 1), (2, 1)], result.requests_per_connection()
    # each user stays on its entry point: user 1 on the first, user 2 on the second
    assert result.replicas_per_user() == {1: {"one"}, 2: {"two"}}


class _Turns(BaseResolver):
    """Answers every A question with the next address list in turn."""

    def __init__(self, turns):
        self.turns = itertools.cycle(turns)

    def resolve(self, request, handler):
        reply = request.reply()
        for address in next(self.turns):
            reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(address), ttl=600))
        return reply


def test_a_resolving_run_asks_the_dns_for_every_connection_and_tries_each_address(tmp_path):
    """A dnsrr client: each new connection resolves the name at the given server, and an
    address that refuses is passed over for the next in the answer."""
    servers = []
    for address, name in (("127.0.0.2", "two"), ("127.0.0.3", "three")):
        server = http.server.ThreadingHTTPServer((address, 0 if not servers else servers[0].server_address[1]), _Named)
        server.daemon_threads, server.name = True, name
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    port = servers[0].server_address[1]
    # 127.0.0.9 listens on nothing: its connections are refused
    dns = DNSServer(_Turns([["127.0.0.9", "127.0.0.2"], ["127.0.0.3"]]), address="127.0.0.1", port=0)
    dns.start_thread()
    try:
        resolver = f"127.0.0.1:{dns.server.server_address[1]}"
        result = run_load(LoadSpec([f"http://web.test:{port}"], users=2, run_time=15, max_requests=200,
                                   resolver=resolver), tmp_path)
    finally:
        dns.stop()
        for server in servers:
            server.shutdown()
            server.server_close()
    assert not result.failures(), result.summary()
    assert result.total >= 200
    assert set(result.counts()) == {"two", "three"} and abs(result.counts()["two"] - result.counts()["three"]) <= 4, \
        result.summary()


def test_doctest_collection_of_the_harness_skips_the_locustfile():
    """tox's unit environment runs ``pytest --doctest-modules conformance``: it must not import locust."""
    done = subprocess.run([sys.executable, "-m", "pytest", "--doctest-modules", str(CONFORMANCE), "--collect-only",
                           "-q", "-p", "no:xdist", "-W", "error::Warning"],
                          capture_output=True, text=True, timeout=120, cwd=CONFORMANCE.parent)
    assert done.returncode == 0, (done.stdout + done.stderr)[-2000:]
    assert "locustfile_ingress" not in done.stdout and "MonkeyPatch" not in done.stdout + done.stderr, done.stdout[-2000:]

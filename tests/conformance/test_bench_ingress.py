"""The ingress bench's pure parts: wrk's ``wrk-count`` line, the fairness
figure, the cases' layout and tables; the Lua script itself against a local
server on 127.0.0.1 (about 1 s, skipped without wrk). The balancers are
measured by ``conformance bench --only ingress`` alone."""

import http.server
import itertools
import json
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from conformance.balancer_profile import balancer_profile_by_name
from conformance.bench import format_table
from conformance.bench import ingress
from conformance.bench.core import Case, Unavailable, run_case
from conformance.bench.ingress import (MARKER, WrkOutputError, WrkRun, duration_from_env, fairness, parse_counts,
                                       parse_wrk_output, per_connection, wrk_argv)
from conformance.errors import ConformanceError


def count_line(**overrides):
    doc = {"duration_us": 2_000_000, "requests": 3000,
           "errors": {"connect": 0, "read": 2, "write": 0, "status": 5, "timeout": 1},
           "latency_us": {"p50": 1250, "p90": 2100.5, "p99": 7300, "max": 41000},
           "other_status": 5, "counts": {"r1": 1000, "r2": 998, "r3": 997}}
    doc.update(overrides)
    return MARKER + json.dumps(doc)


WRK_TEXT = """Running 2s test @ http://127.0.0.1:40000/
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.40ms  600.00us   41.00ms   73.19%
  3000 requests in 2.00s, 255.25KB read
  Non-2xx or 3xx responses: 5
Requests/sec:   1500.00
Transfer/sec:    127.62KB
"""


def test_the_count_line_gives_rate_latency_failures_and_counts():
    run = parse_wrk_output(WRK_TEXT + count_line() + "\n")
    assert run.duration_s == 2.0 and run.requests == 3000
    assert run.counts == {"r1": 1000, "r2": 998, "r3": 997}
    assert run.answered == 2995
    assert run.requests_per_s == pytest.approx(1497.5)  # 200 answers only, not wrk's Requests/sec
    assert run.latency_ms("p50") == 1.25 and run.latency_ms("p99") == 7.3
    # socket errors and the 5 non-200 answers; wrk's "status" errors are those same answers
    assert run.failed == 2 + 1 + 5
    assert run.errors == {"connect": 0, "read": 2, "write": 0, "status": 5, "timeout": 1}


def test_the_last_count_line_wins_and_missing_optional_fields_default():
    doc = json.loads(count_line()[len(MARKER):])
    del doc["other_status"]
    doc["errors"] = {}
    text = count_line(requests=1) + "\n" + MARKER + json.dumps(doc) + "\n"
    run = parse_wrk_output(text)
    assert run.requests == 3000 and run.other_status == 0 and run.failed == 0


@pytest.mark.parametrize("text, message", [
    (WRK_TEXT, "no wrk-count: line"),
    ("", "no wrk-count: line"),
    (MARKER + "{not json", "not JSON"),
    (MARKER + "[1, 2]", "not a JSON object"),
    (count_line(counts=[1, 2]), "counts must be an object"),
    (count_line(counts={"r1": -1}), "the count of 'r1' is not a count"),
    (count_line(counts={"r1": True}), "is not a count"),
    (count_line(requests="many"), "requests is not a count"),
    (count_line(duration_us=0), "duration_us must be a positive number"),
    (count_line(latency_us={"p50": 1}), "lacks 'p90'"),
    (count_line(latency_us={"p50": None, "p90": 1, "p99": 1, "max": 1}), "latency_us.p50 is not a count"),
    (count_line(errors=[]), "errors and latency_us must be objects"),
])
def test_bad_wrk_output_is_one_error_that_says_what_is_wrong(text, message):
    with pytest.raises(WrkOutputError, match=message.replace("(", r"\(")):
        parse_wrk_output(text)


def test_a_missing_key_is_named():
    doc = json.loads(count_line()[len(MARKER):])
    del doc["counts"]
    with pytest.raises(WrkOutputError, match="lacks 'counts'"):
        parse_wrk_output(MARKER + json.dumps(doc))


def test_counts_keep_every_name_as_text():
    assert parse_counts({"a": 1, "we\"ird\\": 2.0, "": 3}) == {"a": 1, 'we"ird\\': 2, "": 3}
    assert parse_counts({}) == {}


def test_fairness_is_the_largest_relative_deviation_from_an_equal_share():
    assert fairness({"a": 100, "b": 100, "c": 100}, ["a", "b", "c"]) == 0.0
    assert fairness({"a": 110, "b": 100, "c": 90}, ["a", "b", "c"]) == pytest.approx(10.0)
    # one replica got nothing: its share is 0, 100% off
    assert fairness({"a": 150, "b": 150}, ["a", "b", "c"]) == pytest.approx(100.0)
    # all to one of three: that one is 200% above its share
    assert fairness({"a": 300}, ["a", "b", "c"]) == pytest.approx(200.0)
    # an answer from a name that is no replica counts against fairness: its fair share is 0
    assert fairness({"a": 50, "b": 50, "x": 10}, ["a", "b"]) == pytest.approx(100 * (10 / 110) / 0.5)
    assert fairness({}, ["a"]) == 100.0
    assert fairness({"a": 7}, ["a"]) == 0.0
    with pytest.raises(ValueError):
        fairness({"a": 1}, [])


def test_wrk_argv_is_bounded_and_runs_in_the_namespace_asked_for():
    argv = wrk_argv("http://127.0.0.1:1/", Path("/tmp/c.lua"), 2.0)
    assert argv == ["/usr/bin/wrk", "-t2", "-c32", "-d2s", "--timeout", "2s", "-s", "/tmp/c.lua",
                    "http://127.0.0.1:1/"]
    assert wrk_argv("http://10.217.0.11:30001/", Path("/tmp/c.lua"), 10.0, "/run/netns/n")[:3] == [
        "nsenter", "--net=/run/netns/n", "/usr/bin/wrk"]


@pytest.mark.parametrize("value", ["x", "0", "-2", "601", "nan", "inf", "1e9"])
def test_a_bad_duration_is_a_clear_error(value):
    with pytest.raises(ConformanceError, match=ingress.DURATION_ENV):
        duration_from_env({ingress.DURATION_ENV: value})


def test_the_duration_defaults_and_is_whole_seconds():
    assert duration_from_env({}) == ingress.DURATION_S
    assert duration_from_env({ingress.DURATION_ENV: " "}) == ingress.DURATION_S
    assert duration_from_env({ingress.DURATION_ENV: "2.7"}) == 2.0


def test_the_per_connection_profile_drops_only_the_balance_label():
    profile = balancer_profile_by_name("refengine-mesh")
    assert "refengine.mesh.balance=request" in profile.settings["labels"]
    plain = per_connection(profile)
    assert "refengine.mesh.balance" not in plain.settings["labels"]
    assert plain.keepalive == "per-connection" and plain.settings["cluster"] == profile.settings["cluster"]
    assert profile.settings["labels"] == "refengine.mesh.balance=request"  # the original is untouched


def run_of(rate: float, p99_us: float, counts: dict) -> WrkRun:
    return WrkRun(duration_s=1.0, requests=int(rate), errors={}, latency_us={"p50": 1000, "p90": 2000,
                  "p99": p99_us, "max": p99_us}, counts=counts)


def test_later_cases_replay_the_first_cases_runs_round_by_round(tmp_path, monkeypatch):
    """One wrk run per subject and round; the other cases read the same runs in the
    same order, warmup included, and a subject that failed stays unavailable."""
    bench = ingress.IngressBench(2)
    try:
        runs = iter([run_of(100, 5000, {"a": 50, "b": 50}), run_of(200, 3000, {"a": 120, "b": 80}),
                     run_of(300, 4000, {"a": 150, "b": 150})])
        monkeypatch.setattr(bench, "run_wrk", lambda name: next(runs) if name == "haproxy" else
                            (_ for _ in ()).throw(Unavailable("nginx is not installed")))
        bench.targets["haproxy"].replicas = ["a", "b"]
        first = Case("rate", "requests/s", True, {n: bench.measure(n) for n in ("haproxy", "nginx")}, "haproxy")
        later = Case("fair", "%", False, {n: bench.replay(n, lambda run, target: fairness(run.counts, target.replicas))
                                          for n in ("haproxy", "nginx")}, "haproxy")
        p99 = Case("p99", "ms", False, {n: bench.replay(n, lambda run, target: run.latency_ms("p99"))
                                        for n in ("haproxy", "nginx")}, "haproxy")
        rate = run_case(first, rounds=2, warmup=1)
        assert rate.subjects["haproxy"].values == [200.0, 300.0]  # the warmup run is not recorded
        assert rate.subjects["nginx"].unavailable == "nginx is not installed"
        fair = run_case(later, rounds=2, warmup=1)
        assert fair.subjects["haproxy"].values == [pytest.approx(20.0), 0.0]
        assert fair.subjects["nginx"].unavailable == "nginx is not installed"
        assert run_case(p99, rounds=2, warmup=1).subjects["haproxy"].values == [3.0, 4.0]
    finally:
        bench.close()
    assert not bench.dir.exists()


def test_the_cases_share_names_baseline_and_leave_fairness_to_balancers():
    made = ingress.cases(None)
    try:
        assert [c.name.split(":")[0] for c in made] == ["ingress"] * 5
        assert all(c.baseline == "haproxy" and c.max_rounds == ingress.MAX_ROUNDS for c in made)
        assert list(made[0].subjects) == [ingress.MESH_CONNECTION, ingress.MESH_REQUEST, "haproxy", "nginx",
                                          ingress.DIRECT, ingress.CEILING]
        fair = next(c for c in made if "fairness" in c.name)
        assert list(fair.subjects) == list(ingress.BALANCERS)
        assert made[0].higher_is_better and not fair.higher_is_better
        assert made[0].teardown is not None  # the subjects stop after the one case that runs wrk
    finally:
        made[0].teardown()


def test_the_table_is_the_other_areas_table():
    case = Case("ingress: requests/s through the balancer", "requests/s", True,
                {"haproxy": lambda: 0.0, "nginx": lambda: 0.0, "direct": lambda: 0.0}, "haproxy")
    values = {"haproxy": iter([4000.0, 4200.0, 4100.0]), "nginx": iter([3000.0, 3100.0, 2900.0])}

    def subject(name):
        def once():
            if name == "direct":
                raise Unavailable("docker is not installed")
            return next(values[name])
        return once
    case.subjects = {n: subject(n) for n in case.subjects}
    lines = format_table(run_case(case, rounds=3, warmup=0))
    assert lines == [
        "ingress: requests/s through the balancer [requests/s, higher is better; ratio = median / median of haproxy]",
        "| subject | median | p10 | p90 | n | ratio |", "|---|---:|---:|---:|---:|---:|",
        "| haproxy | 4100.0 | 4000.0 | 4200.0 | 3 | 1.000 |",
        "| nginx | 3000.0 | 2900.0 | 3100.0 | 3 | 0.732 |",
        "| direct | unavailable: docker is not installed | | | | |",
    ]


# -- the Lua script in wrk itself ----------------------------------------------------------------


class _Replicas(http.server.BaseHTTPRequestHandler):
    """Answers the names in turn (one a name that needs JSON escaping), every 5th request 503."""

    protocol_version = "HTTP/1.1"
    names = itertools.cycle(["r1", "r2", 'odd "name"\\', "r1", "r2"])
    turn = itertools.count()
    lock = threading.Lock()

    def do_GET(self):
        with self.lock:
            n, name = next(self.turn), next(self.names)
        status = 503 if n % 5 == 4 else 200
        body = f"{name}\n".encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.mark.skipif(not Path(ingress.WRK).exists() or shutil.which("nsenter") is None, reason="needs wrk")
def test_the_script_counts_every_threads_answers_by_body(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Replicas)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        script = tmp_path / "count.lua"
        script.write_text(ingress.WRK_SCRIPT)
        argv = wrk_argv(f"http://127.0.0.1:{server.server_address[1]}/", script, 1)
        argv[1:3] = ["-t2", "-c4"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 0, done.stderr
    run = parse_wrk_output(done.stdout)
    assert set(run.counts) <= {"r1", "r2", 'odd "name"\\'} and run.answered > 20
    served = run.answered + run.other_status
    # the 503s are counted apart, not by body; wrk itself counts them as status errors
    assert run.other_status == run.errors["status"] and abs(run.other_status - served / 5) <= 4
    assert run.latency_us["p50"] > 0 and run.latency_us["p99"] >= run.latency_us["p50"]

"""Ingress balancing under load: requests/s, p50/p99 latency and fairness
through refengine's routing mesh (per connection and per request), haproxy
and nginx, and straight to one backend, in one run.

The client is Debian's ``wrk`` (C, epoll), not locust: on 2 cores locust
tops out far below what haproxy serves, and the direct-to-backend figures
show how much the client itself can do. Every round is one
``wrk -t2 -c32 -d10s`` run against one subject, with a Lua script of ours
(:data:`WRK_SCRIPT`) whose ``response()`` counts the 200 answers per body
(each replica answers its own name) and whose ``done()`` prints one line,
``wrk-count: {...}``: wrk's own summary (requests, duration, socket errors),
its latency percentiles and the counts, merged over wrk's threads
(``setup(thread)`` keeps each thread, ``thread:get`` reads its counts).
:func:`parse_wrk_output` reads that line; nothing else of wrk's text is used.

The subjects, each with :data:`REPLICAS` busybox ``httpd`` replicas of the
offline test image, started at their first round and kept for the run:

- ``refengine mesh, per connection``: a service published in ingress mode on
  a 3-node refengine swarm (:class:`~conformance.meshsubject.SwarmMeshSubject`),
  balanced in the kernel (nat rules) per connection;
- ``refengine mesh, per request``: a second service on the same cluster with
  ``refengine.mesh.balance=request`` (the node's HTTP proxy balances every
  request); wrk runs in the cluster's client namespace and targets node 1's
  published port; the mesh there forwards to tasks on all three nodes;
- ``haproxy`` and ``nginx``: Debian's, on 127.0.0.1, round robin over
  backend containers on the host's dockerd (:mod:`conformance.balancers`:
  the backends are reached at their addresses on docker's bridge);
- ``direct: one backend``: one such backend container, wrk at its address
  on docker's bridge. busybox ``httpd`` forks per connection and closes
  each after one answer: one backend's figure is what one replica serves,
  not what the client can do;
- ``client ceiling``: Debian's nginx on 127.0.0.1 answering every request
  itself and closing the connection after it, as the backends do: what wrk
  itself reaches here, so the figure that shows the client is not what
  limits the others.

The run's figures come from the first case's wrk runs: the latency,
fairness and failure cases read the same runs again (:class:`WrkRuns`), so
each round costs one wrk run per subject. Fairness is the largest deviation
of a replica's share of the 200 answers from 1/N, relative to 1/N, in %
(the measure suites/ingress holds to 10%, :func:`conformance.load.unfair_shares`).

Every subject is stopped after the first case (or at once when a round fails
with anything but :class:`~.core.Unavailable`). ``CONFORMANCE_BENCH_WRK_SECONDS``
sets the length of one wrk run (default :data:`DURATION_S`; short smoke runs).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import MappingProxyType
from typing import Callable

from .. import testimage
from ..balancer_profile import BalancerProfile, balancer_profile_by_name
from ..balancers import (DOCKER, HAPROXY, NGINX, Backends, HaproxySubject, NginxSubject, Subject, SubjectFailed,
                         free_port, http_body, stop_process, wait_until)
from ..cluster import ClusterFailed, DockerCluster
from ..engine import EngineCallFailed
from ..errors import ConformanceError
from .core import Case, Unavailable

WRK = "/usr/bin/wrk"
THREADS = 2
CONNECTIONS = 32
#: Seconds of one wrk run (one subject, one round).
DURATION_S = 10.0
DURATION_ENV = "CONFORMANCE_BENCH_WRK_SECONDS"
#: wrk's own per-request timeout (a request slower than this is a timeout error).
REQUEST_TIMEOUT = "2s"
#: A wrk run that has not ended this long after its duration is killed.
WRK_GRACE_S = 30.0
REPLICAS = 3
#: A round takes DURATION_S per subject: fewer rounds than the quick cases.
MAX_ROUNDS = 5
MAX_WARMUP = 1
MARKER = "wrk-count: "
#: A replica name longer than this is cut (a body is not a name to keep whole).
NAME_LIMIT = 64

#: Subject names, in the tables' order.
MESH_CONNECTION = "refengine mesh, per connection (kernel)"
MESH_REQUEST = "refengine mesh, per request (HTTP)"
HAPROXY_NAME = "haproxy"
NGINX_NAME = "nginx"
DIRECT = "direct: one backend (bridge address)"
CEILING = "client ceiling: nginx answering itself"
BASELINE = HAPROXY_NAME
#: The subjects that balance (fairness has a meaning for them only).
BALANCERS = (MESH_CONNECTION, MESH_REQUEST, HAPROXY_NAME, NGINX_NAME)

#: wrk's Lua script (LuaJIT, Lua 5.1). Each wrk thread runs ``init`` and
#: ``response`` in a Lua state of its own; ``setup`` and ``done`` run in the
#: main state, which reads the threads' globals with ``thread:get``.
WRK_SCRIPT = r"""
local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   counts = {}
   other = 0
end

function response(status, headers, body)
   if status ~= 200 then
      other = other + 1
      return
   end
   -- cut first: the trim's pattern backtracks over a long body
   local name = string.match(string.sub(body or "", 1, 4 * NAME_LIMIT), "^%s*(.-)%s*$")
   name = string.sub(name, 1, NAME_LIMIT)
   counts[name] = (counts[name] or 0) + 1
end

local function str(s)
   return '"' .. string.gsub(s, '[%c"\\\128-\255]', function(c)
      return string.format("\\u%04x", string.byte(c))
   end) .. '"'
end

local function num(v)
   if v == nil or v ~= v or v == math.huge or v == -math.huge then return "null" end
   return string.format("%.17g", v)
end

function done(summary, latency, requests)
   local merged, other_status = {}, 0
   for _, thread in ipairs(threads) do
      for name, n in pairs(thread:get("counts") or {}) do
         merged[name] = (merged[name] or 0) + n
      end
      other_status = other_status + (thread:get("other") or 0)
   end
   local names = {}
   for name, n in pairs(merged) do
      table.insert(names, str(name) .. ":" .. num(n))
   end
   local e = summary.errors
   io.write("MARKER{" ..
      '"duration_us":' .. num(summary.duration) ..
      ',"requests":' .. num(summary.requests) ..
      ',"errors":{"connect":' .. num(e.connect) .. ',"read":' .. num(e.read) .. ',"write":' .. num(e.write) ..
      ',"status":' .. num(e.status) .. ',"timeout":' .. num(e.timeout) .. '}' ..
      ',"latency_us":{"p50":' .. num(latency:percentile(50)) .. ',"p90":' .. num(latency:percentile(90)) ..
      ',"p99":' .. num(latency:percentile(99)) .. ',"max":' .. num(latency.max) .. '}' ..
      ',"other_status":' .. num(other_status) ..
      ',"counts":{' .. table.concat(names, ",") .. '}}\n')
end
""".replace("NAME_LIMIT", str(NAME_LIMIT)).replace("MARKER", MARKER)

ERROR_KINDS = ("connect", "read", "write", "status", "timeout")


class WrkOutputError(ValueError):
    """wrk's output has no readable ``wrk-count:`` line (the message says what was wrong)."""


# -- what wrk reports (pure) -------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class WrkRun:
    """One wrk run: its summary, latency percentiles (µs) and the 200 answers per replica."""

    duration_s: float
    requests: int
    errors: dict[str, int]
    latency_us: dict[str, float]
    counts: dict[str, int]
    #: responses with a status other than 200 (wrk counts >= 400 as ``errors["status"]``)
    other_status: int = 0

    @property
    def answered(self) -> int:
        """Requests answered 200 (and counted by replica)."""
        return sum(self.counts.values())

    @property
    def requests_per_s(self) -> float:
        """200 answers per second."""
        return self.answered / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def failed(self) -> int:
        """Requests that got no 200: socket errors (connect, read, write, timeout) and other statuses."""
        return sum(self.errors.get(k, 0) for k in ("connect", "read", "write", "timeout")) + self.other_status

    def latency_ms(self, key: str) -> float:
        return self.latency_us[key] / 1000.0


def _count(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise WrkOutputError(f"{what} is not a count: {value!r}")
    return int(value)


def parse_counts(doc: object) -> dict[str, int]:
    """The per-replica counts of the ``wrk-count`` document: {name: count}.

    >>> parse_counts({"r1": 10, "r2": 9.0})
    {'r1': 10, 'r2': 9}
    >>> parse_counts([1, 2])
    Traceback (most recent call last):
    ...
    conformance.bench.ingress.WrkOutputError: counts must be an object of replica names, not list
    """
    if not isinstance(doc, dict):
        raise WrkOutputError(f"counts must be an object of replica names, not {type(doc).__name__}")
    return {str(name): _count(n, f"the count of {name!r}") for name, n in doc.items()}


def parse_wrk_output(stdout: str) -> WrkRun:
    """The run :data:`WRK_SCRIPT`'s ``done()`` reported (its last ``wrk-count:`` line).

    >>> run = parse_wrk_output('Running 1s test\\nwrk-count: {"duration_us": 2000000, "requests": 30, '
    ...     '"errors": {"connect": 0, "read": 1, "write": 0, "status": 0, "timeout": 0}, '
    ...     '"latency_us": {"p50": 1500, "p90": 2000, "p99": 4000, "max": 9000}, "other_status": 0, '
    ...     '"counts": {"a": 10, "b": 10, "c": 10}}\\n')
    >>> run.requests_per_s, run.latency_ms("p99"), run.failed
    (15.0, 4.0, 1)
    """
    lines = [line for line in stdout.splitlines() if line.startswith(MARKER)]
    if not lines:
        raise WrkOutputError(f"no {MARKER.strip()} line in wrk's output (did the script run?): "
                             f"{stdout.strip()[-300:]!r}")
    try:
        doc = json.loads(lines[-1][len(MARKER):])
    except json.JSONDecodeError as exc:
        raise WrkOutputError(f"the {MARKER.strip()} line is not JSON ({exc.msg} at {exc.pos})") from None
    if not isinstance(doc, dict):
        raise WrkOutputError(f"the {MARKER.strip()} line is not a JSON object")
    try:
        errors, latency = doc["errors"], doc["latency_us"]
        if not isinstance(errors, dict) or not isinstance(latency, dict):
            raise WrkOutputError("errors and latency_us must be objects")
        duration_us = doc["duration_us"]
        if isinstance(duration_us, bool) or not isinstance(duration_us, (int, float)) or not duration_us > 0:
            raise WrkOutputError(f"duration_us must be a positive number, not {duration_us!r}")
        return WrkRun(
            duration_s=duration_us / 1e6,
            requests=_count(doc["requests"], "requests"),
            errors={k: _count(errors.get(k, 0), f"errors.{k}") for k in ERROR_KINDS},
            latency_us={k: float(_count(latency[k], f"latency_us.{k}")) for k in ("p50", "p90", "p99", "max")},
            counts=parse_counts(doc["counts"]),
            other_status=_count(doc.get("other_status", 0), "other_status"),
        )
    except KeyError as exc:
        raise WrkOutputError(f"the {MARKER.strip()} line lacks {exc.args[0]!r}") from None


def fairness(counts: dict[str, int], replicas: list[str]) -> float:
    """The largest deviation of a replica's share of ``counts`` from 1/N (N =
    ``len(replicas)``), relative to 1/N, in %. A replica that never answered has
    share 0 (100%); an answer from a name not in ``replicas`` counts as a
    replica whose fair share is 0, its deviation its share relative to 1/N.

    >>> fairness({"a": 100, "b": 100, "c": 100}, ["a", "b", "c"])
    0.0
    >>> round(fairness({"a": 130, "b": 100, "c": 70}, ["a", "b", "c"]), 6)
    30.0
    >>> fairness({"a": 150, "b": 150}, ["a", "b", "c"])
    100.0
    """
    if not replicas:
        raise ValueError("fairness needs at least one replica")
    total = sum(counts.values())
    if total == 0:
        return 100.0
    fair = 1 / len(set(replicas))
    worst = 0.0
    for name in set(replicas) | set(counts):
        share = counts.get(name, 0) / total
        expected = fair if name in replicas else 0.0
        worst = max(worst, abs(share - expected) / fair)
    return worst * 100.0


def wrk_argv(url: str, script: Path, seconds: float, netns: str | None = None) -> list[str]:
    """The command line of one run, inside ``netns`` (a namespace file) when given.

    >>> wrk_argv("http://10.0.0.1:30000/", Path("/t/c.lua"), 2, "/run/netns/x")[:3]
    ['nsenter', '--net=/run/netns/x', '/usr/bin/wrk']
    """
    argv = [WRK, f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds:g}s", "--timeout", REQUEST_TIMEOUT,
            "-s", str(script), url]
    return (["nsenter", f"--net={netns}"] if netns else []) + argv


def duration_from_env(environ: dict[str, str] | os._Environ) -> float:
    """Seconds of one wrk run: ``CONFORMANCE_BENCH_WRK_SECONDS`` or :data:`DURATION_S`.

    >>> duration_from_env({}), duration_from_env({DURATION_ENV: "2"})
    (10.0, 2.0)
    """
    text = environ.get(DURATION_ENV, "").strip()
    if not text:
        return DURATION_S
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not (1 <= seconds <= 600):
        raise ConformanceError(f"{DURATION_ENV}={text!r}: give whole seconds of one wrk run, 1 to 600")
    return float(int(seconds))


# -- the subjects ------------------------------------------------------------------------------


class Target:
    """One thing wrk is pointed at: started at its first round, stopped by :meth:`close`."""

    def __init__(self, name: str):
        self.name = name
        self.failed = ""
        self.started = False
        self.url = ""
        self.netns: str | None = None
        self.replicas: list[str] = []

    def start(self) -> None:
        """Set :attr:`url`, :attr:`netns` and :attr:`replicas` (raise SubjectFailed when it cannot)."""
        raise NotImplementedError

    def close(self) -> list[str]:
        return []

    def ensure(self) -> None:
        if self.failed:
            raise Unavailable(self.failed)
        if self.started:
            return
        self.started = True
        try:
            self.start()
        except (SubjectFailed, ClusterFailed, EngineCallFailed, ConformanceError, AssertionError) as exc:
            self.failed = f"did not start: {str(exc)[-300:]}"
            raise Unavailable(self.failed) from None


class BalancerTarget(Target):
    """A :class:`~conformance.balancers.Subject`: its first entry point."""

    def __init__(self, name: str, make: Callable[[], Subject], requires: tuple[str, ...] = ()):
        super().__init__(name)
        self.make, self.requires = make, requires
        self.subject: Subject | None = None

    def start(self) -> None:
        missing = [p for p in self.requires if not Path(p).exists()]
        if missing:
            raise SubjectFailed(f"{', '.join(missing)} not installed")
        self.subject = self.make()
        self.subject.start(REPLICAS)
        self.url = self.subject.entrypoints()[0] + "/"
        self.netns = self.subject.client_netns()
        self.replicas = sorted(self.subject.replicas())

    def close(self) -> list[str]:
        subject, self.subject = self.subject, None
        return subject.stop() if subject is not None else []


class DirectTarget(Target):
    """One backend container on the host's dockerd, no balancer in front, at its
    address on docker's bridge (as the standalone balancers reach theirs)."""

    def __init__(self, name: str, image: Callable[[], str]):
        super().__init__(name)
        self.image = image
        self.backends: Backends | None = None

    def start(self) -> None:
        self.backends = Backends(self.image(), secrets.token_hex(3))
        self.backends.run(["direct"])
        self.url = f"http://{self.backends.address['direct']}/"
        self.replicas = ["direct"]

    def close(self) -> list[str]:
        backends, self.backends = self.backends, None
        return backends.remove(list(backends.containers)) if backends is not None else []


class CeilingTarget(Target):
    """What wrk can do here: Debian's nginx answering every request itself, no
    backend, closing the connection after each answer as busybox httpd does (so
    wrk connects once per request, its heaviest pattern of this bench)."""

    CONFIG = """\
daemon off;
master_process on;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    keepalive_timeout 0;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port};
        default_type text/plain;
        location / {{ return 200 "ceiling\\n"; }}
    }}
}}
"""

    def __init__(self, name: str, directory: Path):
        super().__init__(name)
        self.dir = directory
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        if not Path(NGINX).exists():
            raise SubjectFailed(f"{NGINX} is not installed")
        self.dir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        (self.dir / "nginx.conf").write_text(self.CONFIG.format(dir=self.dir, port=port))
        with open(self.dir / "nginx.out", "wb") as log:
            self.process = subprocess.Popen([NGINX, "-p", str(self.dir), "-e", str(self.dir / "error.log"),
                                             "-c", str(self.dir / "nginx.conf")],
                                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.url, self.replicas = f"http://127.0.0.1:{port}/", ["ceiling"]

        def answers() -> bool:
            if self.process.poll() is not None:
                raise SubjectFailed(f"nginx exited {self.process.returncode}: "
                                    f"{(self.dir / 'nginx.out').read_text(errors='replace')[-300:]}")
            return http_body(self.url) == "ceiling"
        wait_until(answers, 15.0, f"nginx to answer at {self.url}")

    def close(self) -> list[str]:
        process, self.process = self.process, None
        if process is not None:
            stop_process(process, 10)
        return []


class IngressBench:
    """The subjects, their shared pieces (the image in dockerd, the cluster) and
    the wrk runs; :meth:`close` removes everything."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.dir = Path(tempfile.mkdtemp(prefix="bench-ingress-"))
        self.script = self.dir / "wrk_count.lua"
        self.script.write_text(WRK_SCRIPT)
        self._image_ref = ""
        self._image_failed = ""
        self.cluster: DockerCluster | None = None
        self._cluster_failed = ""
        self._cluster_image = ""
        self.targets: dict[str, Target] = {
            MESH_CONNECTION: BalancerTarget(MESH_CONNECTION, lambda: self.mesh(per_request=False)),
            MESH_REQUEST: BalancerTarget(MESH_REQUEST, lambda: self.mesh(per_request=True)),
            HAPROXY_NAME: BalancerTarget(HAPROXY_NAME, lambda: HaproxySubject(balancer_profile_by_name("haproxy"),
                                                                               self.image()),
                                         requires=(HAPROXY, DOCKER)),
            NGINX_NAME: BalancerTarget(NGINX_NAME, lambda: NginxSubject(balancer_profile_by_name("nginx"),
                                                                         self.image()),
                                       requires=(NGINX, DOCKER)),
            DIRECT: DirectTarget(DIRECT, self.image),
            CEILING: CeilingTarget(CEILING, self.dir / "ceiling"),
        }
        self.runs: dict[str, list[WrkRun]] = {name: [] for name in self.targets}
        self.reasons: dict[str, str] = {}

    # -- shared pieces -------------------------------------------------------------------
    def image(self) -> str:
        """The offline test image loaded into the host's dockerd (once; left in place, as
        suites/ingress leaves it: its content is fixed)."""
        if self._image_failed:
            raise SubjectFailed(self._image_failed)
        if not self._image_ref:
            if not Path(DOCKER).exists():
                self._image_failed = f"{DOCKER} is not installed"
                raise SubjectFailed(self._image_failed)
            images, archive, _ = testimage.write_archives(self.dir / "image")
            loaded = subprocess.run([DOCKER, "load", "-i", str(archive)], capture_output=True, text=True, timeout=300)
            if loaded.returncode != 0:
                self._image_failed = f"docker could not load the test image: {loaded.stderr.strip()[-300:]}"
                raise SubjectFailed(self._image_failed)
            self._image_ref = images["base"].ref
        return self._image_ref

    def mesh(self, per_request: bool) -> Subject:
        """A service on the session's refengine swarm, in the mode asked for."""
        from ..meshsubject import SwarmMeshSubject, session_cluster

        profile = balancer_profile_by_name("refengine-mesh")
        if not per_request:
            profile = per_connection(profile)
        if self._cluster_failed:
            raise SubjectFailed(self._cluster_failed)
        if self.cluster is None:
            if os.geteuid() != 0:
                self._cluster_failed = "a cluster needs root (namespaces, bridges, daemons)"
                raise SubjectFailed(self._cluster_failed)
            try:
                self.cluster = session_cluster(profile, self.dir / "cluster-image")
            except (SubjectFailed, ClusterFailed, EngineCallFailed, ConformanceError, AssertionError) as exc:
                self._cluster_failed = f"the cluster did not start: {str(exc)[-300:]}"
                raise SubjectFailed(self._cluster_failed) from None
            self._cluster_image = self.cluster.images["base"].ref
        return SwarmMeshSubject(profile, self._cluster_image, self.cluster)

    # -- rounds --------------------------------------------------------------------------
    def run_wrk(self, name: str) -> WrkRun:
        target = self.targets[name]
        target.ensure()
        if not Path(WRK).exists():
            raise Unavailable(f"{WRK} is not installed (apt-get install wrk)")
        argv = wrk_argv(target.url, self.script, self.seconds, target.netns)
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=self.seconds + WRK_GRACE_S)
        except subprocess.TimeoutExpired:
            raise Unavailable(f"wrk did not end within {self.seconds + WRK_GRACE_S:g}s") from None
        except OSError as exc:
            raise Unavailable(f"{argv[0]} did not run: {exc}") from None
        if done.returncode != 0:
            raise Unavailable(f"wrk exited {done.returncode}: {(done.stderr or done.stdout).strip()[-300:]}")
        try:
            run = parse_wrk_output(done.stdout)
        except WrkOutputError as exc:
            raise Unavailable(str(exc)) from None
        if run.answered == 0:
            raise Unavailable(f"no request was answered 200 at {target.url} ({run.failed} failed; "
                              f"{done.stdout.strip()[-200:]})")
        return run

    def measure(self, name: str) -> Callable[[], float]:
        """Case 1's round: one wrk run, recorded for the other cases; its 200 answers/s."""
        def once() -> float:
            try:
                run = self.run_wrk(name)
            except Unavailable as exc:
                self.reasons[name] = str(exc) or "unavailable"
                raise
            except BaseException:
                self.close()  # never raises: the round's own error is the one to see
                raise
            self.runs[name].append(run)
            return run.requests_per_s
        return once

    def replay(self, name: str, figure: Callable[[WrkRun, Target], float]) -> Callable[[], float]:
        """A later case's round: ``figure`` of the next recorded run (the cases run
        the same rounds, warmup included, so the i-th call reads the i-th run)."""
        calls = iter(range(10**9))

        def once() -> float:
            index = next(calls)
            runs = self.runs[name]
            if index >= len(runs):
                raise Unavailable(self.reasons.get(name, "not measured"))
            return figure(runs[index], self.targets[name])
        return once

    def close(self) -> None:
        """Stop every subject, then the cluster. Idempotent; what could not be removed
        is said on stderr (the measurements stand)."""
        for name, target in self.targets.items():
            try:
                leftovers = target.close()
            except Exception as exc:  # the others must still stop
                leftovers = [f"({type(exc).__name__}: {exc})"]
            if leftovers:
                print(f"bench ingress: {name}: could not remove {', '.join(leftovers)}", file=sys.stderr)
        cluster, self.cluster = self.cluster, None
        if cluster is not None:
            try:
                leftovers = cluster.stop()
            except Exception as exc:
                leftovers = [f"({type(exc).__name__}: {exc})"]
            if leftovers:
                print(f"bench ingress: the cluster: could not remove {', '.join(leftovers)}", file=sys.stderr)
        shutil.rmtree(self.dir, ignore_errors=True)


def per_connection(profile: BalancerProfile) -> BalancerProfile:
    """refengine's mesh profile without the per-request label: the kernel's per-connection mode."""
    labels = " ".join(label for label in str(profile.settings.get("labels", "")).split()
                      if not label.startswith("refengine.mesh.balance="))
    return dataclasses.replace(profile, name=f"{profile.name} (per connection)", keepalive="per-connection",
                               settings=MappingProxyType({**profile.settings, "labels": labels}))


def cases(options) -> list[Case]:
    seconds = duration_from_env(os.environ)
    bench = IngressBench(seconds)
    caps = {"max_rounds": MAX_ROUNDS, "max_warmup": MAX_WARMUP}
    load = (f"wrk -t{THREADS} -c{CONNECTIONS} -d{seconds:g}s, {REPLICAS} busybox httpd replicas; refengine's mesh "
            "from the cluster's client namespace to node 1's published port, the others on the host")
    names = list(bench.targets)

    def latency(key: str) -> Callable[[WrkRun, Target], float]:
        return lambda run, target: run.latency_ms(key)

    return [
        Case(name="ingress: requests/s through the balancer", unit="requests/s", higher_is_better=True,
             subjects={n: bench.measure(n) for n in names}, baseline=BASELINE, teardown=bench.close, **caps,
             description=f"{load}; 200 answers per second of one run"),
        Case(name="ingress: p50 latency", unit="ms", higher_is_better=False,
             subjects={n: bench.replay(n, latency("p50")) for n in names}, baseline=BASELINE, **caps,
             description=f"{load}; wrk's median latency of the same runs"),
        Case(name="ingress: p99 latency", unit="ms", higher_is_better=False,
             subjects={n: bench.replay(n, latency("p99")) for n in names}, baseline=BASELINE, **caps,
             description=f"{load}; wrk's 99th percentile latency of the same runs"),
        Case(name="ingress: fairness, largest deviation of a replica's share from 1/N", unit="%",
             higher_is_better=False, baseline=BASELINE, **caps,
             subjects={n: bench.replay(n, lambda run, target: fairness(run.counts, target.replicas))
                       for n in names if n in BALANCERS},
             description=f"{load}; max over replicas of |share - 1/N| / (1/N) of the 200 answers of the same runs"),
        Case(name="ingress: failed requests per run", unit="requests", higher_is_better=False,
             baseline=BASELINE, **caps,
             subjects={n: bench.replay(n, lambda run, target: float(run.failed)) for n in names},
             description=f"{load}; socket errors (connect, read, write, timeout) and answers other than 200"),
    ]

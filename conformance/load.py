"""Bounded HTTP load with locust, run as a subprocess, and what it recorded.

locust monkey-patches the whole process with gevent when imported, so it is
never imported here: :func:`start_load` runs ``python -m locust`` headless
with our locustfile (:mod:`conformance.locustfile_ingress`, configured by
environment variables), optionally inside a network namespace
(``nsenter --net=PATH``), and :class:`LoadRun` hands back a
:class:`LoadResult`: every request (time, user, connection, replica that
answered, failure) from the locustfile's JSON lines, and latency percentiles
from locust's own ``--csv`` statistics.

Every run is bounded: users (at most :data:`MAX_USERS`), spawn rate, time
(``--run-time``, at most :data:`MAX_RUN_TIME`), and a request cap the
locustfile enforces by stopping its runner. A run may go on in the
background while a check scales or kills (``run.wait()``/``run.stop()``).

>>> spec = LoadSpec(["http://127.0.0.1:8080"], users=4, max_requests=3000)   # doctest: +SKIP
>>> with start_load(spec, tmp_path) as run:                                  # doctest: +SKIP
...     result = run.wait()
>>> result.shares()                                                          # doctest: +SKIP
{'r1': 0.334, 'r2': 0.333, 'r3': 0.333}

The helpers of :class:`LoadResult` are pure and tested in
``tests/conformance/test_load.py``.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .dnsprobe import server_address
from .errors import ConformanceError

#: The locustfile locust loads (a path, never an import).
LOCUSTFILE = Path(__file__).resolve().with_name("locustfile_ingress.py")
MODES = ("close", "keepalive")
#: Bounds of any one run: the machine's 2 cores are shared.
MAX_USERS = 10
MAX_RUN_TIME = 20.0
MAX_REQUESTS = 20000
#: How long locust may take beyond --run-time to stop and write its statistics.
STOP_GRACE = 15.0


@dataclass(frozen=True)
class LoadSpec:
    """What to send: to which entry points, how many users, how long, how much."""

    #: base URLs of the subject's entry points (``http://127.0.0.1:PORT``)
    targets: list[str]
    users: int = 5
    spawn_rate: float = 10.0
    run_time: float = 10.0
    #: the run stops after this many requests (all users together)
    max_requests: int = 3000
    #: "close": a new connection per request; "keepalive": one connection per user
    mode: str = "close"
    #: None: round robin over the targets; an index: every request to that one
    target: int | None = None
    #: requests per second per user (0: each user sends as fast as answers come)
    user_rate: float = 0.0
    #: a network namespace file (/run/netns/NAME) the client runs in, or None
    netns: str | None = None
    #: a DNS server, IPV4[:PORT]: the client resolves the targets' host names there
    #: for every connection, and connects to the answer's addresses in its order
    #: (a dnsrr service, balanced by its DNS), or None (targets are addresses)
    resolver: str | None = None

    def __post_init__(self):
        if not self.targets or not all(t.startswith("http://") for t in self.targets):
            raise ConformanceError(f"load targets must be http:// base URLs, not {self.targets!r}")
        if not 1 <= self.users <= MAX_USERS:
            raise ConformanceError(f"load users must be 1..{MAX_USERS}, not {self.users}")
        if not 0 < self.run_time <= MAX_RUN_TIME:
            raise ConformanceError(f"load run_time must be in (0, {MAX_RUN_TIME:g}] seconds, not {self.run_time}")
        if not 1 <= self.max_requests <= MAX_REQUESTS:
            raise ConformanceError(f"load max_requests must be 1..{MAX_REQUESTS}, not {self.max_requests}")
        if self.mode not in MODES:
            raise ConformanceError(f"load mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.target is not None and not 0 <= self.target < len(self.targets):
            raise ConformanceError(f"load target {self.target} is not an index of {len(self.targets)} targets")
        if self.spawn_rate <= 0 or self.user_rate < 0:
            raise ConformanceError("load spawn_rate must be > 0 and user_rate >= 0")
        if self.resolver is not None:
            try:
                server_address(self.resolver)
            except ValueError as exc:
                raise ConformanceError(f"load resolver: {exc}") from None

    def environment(self, record: Path) -> dict[str, str]:
        """The locustfile's configuration (see its docstring)."""
        return {"INGRESS_TARGETS": ",".join(self.targets),
                "INGRESS_TARGET": "round-robin" if self.target is None else str(self.target),
                "INGRESS_MODE": self.mode, "INGRESS_MAX_REQUESTS": str(self.max_requests),
                "INGRESS_USER_RATE": repr(self.user_rate), "INGRESS_RECORD": str(record),
                "INGRESS_RESOLVER": self.resolver or ""}

    def argv(self, csv_prefix: Path) -> list[str]:
        prefix = ["nsenter", f"--net={self.netns}"] if self.netns else []
        return prefix + [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary",
                         "-u", str(self.users), "-r", f"{self.spawn_rate:g}", "--run-time", f"{self.run_time:g}s",
                         "--stop-timeout", "2", "--csv", str(csv_prefix), "--loglevel", "WARNING",
                         "--exit-code-on-error", "0"]


@dataclass(frozen=True)
class Request:
    """One request the locustfile recorded."""

    #: time.monotonic() when it ended (one clock for every process here)
    t: float
    user: int
    #: the user's connection number: with keep-alive, one TCP connection
    conn: int
    #: the answering replica's name (the response body, stripped); "" on failure
    replica: str
    ok: bool
    error: str = ""


@dataclass(frozen=True)
class Latency:
    """locust's aggregated statistics of the run (milliseconds, requests/s)."""

    p50: float
    p99: float
    requests: int
    failures: int
    rps: float


@dataclass(frozen=True)
class LoadResult:
    """Every request of one run, in the order they ended, and locust's latency figures.

    >>> r = LoadResult([Request(1.0, 1, 1, "a", True), Request(2.0, 2, 1, "b", True),
    ...                 Request(3.0, 1, 2, "", False, "refused"), Request(4.0, 2, 1, "a", True)])
    >>> r.counts(), r.shares()["a"], len(r.failures(after=2.5))
    ({'a': 2, 'b': 1}, 0.6666666666666666, 1)
    """

    requests: list[Request]
    latency: Latency | None = None
    #: time.monotonic() when the load process started and ended
    started: float = 0.0
    ended: float = 0.0
    #: the last lines locust wrote on stderr (for messages)
    log_tail: str = ""

    @property
    def total(self) -> int:
        return len(self.requests)

    def succeeded(self) -> list[Request]:
        return [r for r in self.requests if r.ok]

    def counts(self) -> dict[str, int]:
        """Answered requests per replica, sorted by name."""
        counts: dict[str, int] = {}
        for r in self.requests:
            if r.ok:
                counts[r.replica] = counts.get(r.replica, 0) + 1
        return dict(sorted(counts.items()))

    def shares(self) -> dict[str, float]:
        """Each replica's share of the answered requests."""
        counts = self.counts()
        total = sum(counts.values())
        return {name: n / total for name, n in counts.items()} if total else {}

    def failures(self, after: float | None = None, before: float | None = None) -> list[Request]:
        """The failed requests that ended in [after, before)."""
        return [r for r in self.requests if not r.ok and (after is None or r.t >= after)
                and (before is None or r.t < before)]

    def between(self, after: float | None = None, before: float | None = None) -> "LoadResult":
        """The requests that ended in [after, before), as a result of their own."""
        return LoadResult([r for r in self.requests if (after is None or r.t >= after)
                           and (before is None or r.t < before)], None, self.started, self.ended, self.log_tail)

    def first_seen(self, replica: str, after: float | None = None) -> float | None:
        """When ``replica`` first answered (at or after ``after``), or None if never."""
        return next((r.t for r in self.requests if r.ok and r.replica == replica
                     and (after is None or r.t >= after)), None)

    def last_seen(self, replica: str) -> float | None:
        """When ``replica`` last answered, or None if never."""
        return max((r.t for r in self.requests if r.ok and r.replica == replica), default=None)

    def replicas_per_user(self) -> dict[int, set[str]]:
        """The replicas that answered each user."""
        found: dict[int, set[str]] = {}
        for r in self.requests:
            if r.ok:
                found.setdefault(r.user, set()).add(r.replica)
        return found

    def replicas_per_connection(self) -> dict[tuple[int, int], set[str]]:
        """The replicas that answered on each (user, connection)."""
        found: dict[tuple[int, int], set[str]] = {}
        for r in self.requests:
            if r.ok:
                found.setdefault((r.user, r.conn), set()).add(r.replica)
        return found

    def requests_per_connection(self) -> dict[tuple[int, int], int]:
        """How many requests travelled on each (user, connection)."""
        found: dict[tuple[int, int], int] = {}
        for r in self.requests:
            found[(r.user, r.conn)] = found.get((r.user, r.conn), 0) + 1
        return found

    def error_kinds(self, limit: int = 3) -> dict[str, int]:
        """The most frequent failure texts with their counts (for messages)."""
        kinds: dict[str, int] = {}
        for r in self.requests:
            if not r.ok:
                kinds[r.error] = kinds.get(r.error, 0) + 1
        return dict(sorted(kinds.items(), key=lambda kv: -kv[1])[:limit])

    def summary(self) -> str:
        """One line for assertion messages."""
        failed = self.total - len(self.succeeded())
        latency = (f", p50 {self.latency.p50:g} ms, p99 {self.latency.p99:g} ms, {self.latency.rps:.0f} req/s"
                   if self.latency else "")
        return (f"{self.total} requests, {failed} failed {self.error_kinds() or ''}, per replica {self.counts()}"
                f"{latency}")


def unfair_shares(counts: dict[str, int], replicas: list[str], tolerance: float) -> dict[str, float]:
    """The replicas whose share is off 1/N by more than ``tolerance`` (relative), with
    their share; a replica of ``replicas`` that never answered has share 0, and one
    not in ``replicas`` is unfair whatever its share.

    >>> unfair_shares({"a": 100, "b": 100, "c": 100}, ["a", "b", "c"], 0.10)
    {}
    >>> unfair_shares({"a": 130, "b": 100, "c": 70}, ["a", "b", "c"], 0.10)
    {'a': 0.43333333333333335, 'c': 0.23333333333333334}
    >>> unfair_shares({"a": 150, "x": 150}, ["a", "b"], 0.10)
    {'b': 0.0, 'x': 0.5}
    """
    total = sum(counts.values())
    if not replicas or not total:
        return {name: 0.0 for name in replicas}
    fair = 1 / len(replicas)
    unfair = {}
    for name in sorted(set(replicas) | set(counts)):
        share = counts.get(name, 0) / total
        if name not in replicas or abs(share - fair) > tolerance * fair:
            unfair[name] = share
    return unfair


def parse_records(text: str) -> list[Request]:
    """The locustfile's JSON lines, in the order they ended; a torn last line is dropped.

    >>> parse_records('{"t": 2, "user": 1, "conn": 1, "replica": "a", "ok": true, "error": ""}\\n{"t": 1, "us')
    [Request(t=2, user=1, conn=1, replica='a', ok=True, error='')]
    """
    found = []
    for line in text.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        found.append(Request(doc["t"], int(doc["user"]), int(doc.get("conn", 0)), str(doc["replica"]),
                             bool(doc["ok"]), str(doc.get("error", ""))))
    return sorted(found, key=lambda r: r.t)


def parse_stats_csv(text: str) -> Latency | None:
    """The ``Aggregated`` row of locust's ``PREFIX_stats.csv``, or None.

    >>> parse_stats_csv('Type,Name,Request Count,Failure Count,Requests/s,50%,99%\\n'
    ...                 ',Aggregated,3000,2,301.5,3,12\\n')
    Latency(p50=3.0, p99=12.0, requests=3000, failures=2, rps=301.5)
    """
    for row in csv.DictReader(text.splitlines()):
        if row.get("Name") == "Aggregated":
            def number(key: str) -> float:
                value = row.get(key, "")
                return float(value) if value not in ("", "N/A") else 0.0
            if not number("Request Count"):  # the run ended before locust counted anything
                return None
            return Latency(number("50%"), number("99%"), int(number("Request Count")),
                           int(number("Failure Count")), number("Requests/s"))
    return None


@dataclass
class LoadRun:
    """A locust process running a :class:`LoadSpec`; ``wait()`` or ``stop()`` gives its result."""

    spec: LoadSpec
    process: subprocess.Popen
    record: Path
    csv_prefix: Path
    log: Path
    started: float
    result: LoadResult | None = field(default=None)

    def requests_so_far(self) -> int:
        try:
            with open(self.record, "rb") as f:
                return sum(1 for _ in f)
        except OSError:
            return 0

    def wait_flowing(self, count: int = 50, timeout: float = 15.0) -> None:
        """Return once ``count`` requests have been recorded (bounded by ``timeout``)."""
        deadline = time.monotonic() + timeout
        while self.requests_so_far() < count:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise LoadFailed(f"the load did not get {count} requests through within {timeout:g}s "
                                 f"(locust {'exited ' + str(self.process.returncode) if self.process.poll() is not None else 'still running'}): "
                                 f"{self._tail()}")
            time.sleep(0.05)

    def wait(self, timeout: float | None = None) -> LoadResult:
        """The result once locust ends by itself (run time or request cap)."""
        if self.result is None:
            limit = timeout if timeout is not None else self.spec.run_time + STOP_GRACE
            try:
                self.process.wait(timeout=limit)
            except subprocess.TimeoutExpired:
                self._kill()
                raise LoadFailed(f"locust did not end within {limit:g}s: {self._tail()}") from None
            self.result = self._collect()
        return self.result

    def stop(self) -> LoadResult:
        """End the run now (SIGTERM: locust stops its users and writes its statistics)."""
        if self.result is None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout=STOP_GRACE)
                except subprocess.TimeoutExpired:
                    self._kill()
            self.result = self._collect()
        return self.result

    def _kill(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=STOP_GRACE)

    def _tail(self, lines: int = 5) -> str:
        try:
            return " | ".join(self.log.read_text(errors="replace").strip().splitlines()[-lines:])
        except OSError:
            return ""

    def _collect(self) -> LoadResult:
        ended = time.monotonic()
        try:
            records = parse_records(self.record.read_text())
        except OSError:
            records = []
        stats = Path(f"{self.csv_prefix}_stats.csv")
        latency = parse_stats_csv(stats.read_text()) if stats.exists() else None
        if self.process.returncode not in (0, -signal.SIGTERM) and not records:
            raise LoadFailed(f"locust exited {self.process.returncode} without a request: {self._tail()}")
        return LoadResult(records, latency, self.started, ended, self._tail())

    def __enter__(self) -> "LoadRun":
        return self

    def __exit__(self, *exc) -> None:
        if self.process.poll() is None:
            self._kill()


class LoadFailed(Exception):
    """The load generator itself failed (not the subject): an error, never a check's assertion."""


def start_load(spec: LoadSpec, directory: Path) -> LoadRun:
    """Start locust on ``spec`` in the background; its files go to ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    stamp = f"{time.monotonic_ns()}"
    record, csv_prefix, log = directory / f"load-{stamp}.jsonl", directory / f"load-{stamp}", directory / f"load-{stamp}.log"
    record.touch()
    env = {**os.environ, **spec.environment(record)}
    started = time.monotonic()
    with open(log, "wb") as out:
        process = subprocess.Popen(spec.argv(csv_prefix), env=env, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, cwd=directory, start_new_session=True)
    return LoadRun(spec, process, record, csv_prefix, log, started)


def run_load(spec: LoadSpec, directory: Path) -> LoadResult:
    """Run ``spec`` to its end (run time or request cap) and return what it recorded."""
    with start_load(spec, directory) as run:
        return run.wait()

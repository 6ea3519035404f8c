"""Swarm orchestration: refengine swarm vs docker swarm, each on the same
3-node layout (:class:`~conformance.cluster.DockerCluster`,
:class:`~conformance.refcluster.RefengineCluster`), in one run.

Three cases, every time measured from the CLI call that starts the change
to the moment the manager, polled, reports its end:

- ``service create --detach --replicas 10`` until all 10 tasks run (the
  service is removed between rounds, and its containers gone on every node,
  before the next round begins);
- ``kill`` of one task's container on its node, in a service of 3 replicas,
  until its slot has a new running task (the slot changes every round);
- ``service update --detach --env-add X=n`` of 10 tasks at parallelism 2
  until ``UpdateStatus.State`` is ``completed``.

Each cluster is started at its first round (the image loaded on every node),
kept for the three cases, and stopped after the last one, or at once when a
round raises anything but :class:`~.core.Unavailable`. Every wait is bounded:
a round that times out marks its subject unavailable with what it waited for
and what it saw last.

The manager is polled through the subject's own CLI with ``service ps -q`` +
``inspect --type task`` (two calls a poll, as ``suites/swarm`` does), so a
time is late by up to one poll, and a CLI's own cost is part of its subject's
time, as it is for a user who waits with ``service ps`` (here a refengine CLI
call costs about 55 ms, docker's about 15). The subjects' own timestamps are
not used: no subject reports its own time.

Choices (the same flags are given to both, so neither's defaults matter):

- every service: the offline test image, an idle main process that ends at
  SIGTERM, ``--stop-grace-period 1s``, ``--no-resolve-image``;
- replacement: ``--restart-delay 0s``. Docker's default (5 s) is a timer that
  both implement alike; it would add the same 5 s to both medians and hide
  the orchestrators' own reaction, which is what this case is about;
- rolling update: docker's defaults except parallelism, as the design asks:
  ``--update-parallelism 2 --update-delay 0s --update-monitor 5s
  --update-failure-action pause --update-order stop-first
  --update-max-failure-ratio 0``. Both updaters watch the last batch for
  ``Monitor`` before they declare the update completed (swarmkit's
  updater.go; reference_runtime/swarm/updater.py), so about 5 s of each
  median is that window, the same for both (a shorter :data:`UPDATE_MONITOR`
  leaves mostly the replacements).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .. import testimage
from ..cluster import DOCKERD, ClusterFailed, DockerCluster, Node
from ..engine import EngineCallFailed
from ..profile import profile_by_name
from ..refcluster import RefengineCluster
from .core import Case, Unavailable

NODES = 3
REPLICAS = 10
KILL_REPLICAS = 3
#: A main process that idles and ends at SIGTERM at once.
IDLE = ("sh", "-c", "trap 'exit 0' TERM; sleep 600 & wait")
SERVICE_FLAGS = ("--stop-grace-period", "1s", "--no-resolve-image")
RESTART_FLAGS = ("--restart-delay", "0s")
UPDATE_PARALLELISM = 2
#: docker's default; both updaters wait this long after the last batch runs.
UPDATE_MONITOR = "5s"
UPDATE_FLAGS = ("--update-parallelism", str(UPDATE_PARALLELISM), "--update-delay", "0s",
                "--update-monitor", UPDATE_MONITOR, "--update-failure-action", "pause",
                "--update-order", "stop-first", "--update-max-failure-ratio", "0")

#: Bounded waits (seconds): generous for a busy 2-core machine; a round that
#: needs more is a failure, not a measurement.
CONVERGE_TIMEOUT = 120.0
GONE_TIMEOUT = 60.0
UPDATE_TIMEOUT = 180.0
CALL_TIMEOUT = 60.0
POLL_INTERVAL = 0.05

#: The states an update (or its rollback) ends in.
UPDATE_ENDED = ("completed", "paused", "rollback_completed", "rollback_paused")

#: A round takes seconds: fewer rounds than the quick cases.
MAX_ROUNDS = 10
MAX_WARMUP = 1


# -- what the manager reports (pure) ------------------------------------------------


@dataclass(frozen=True)
class Task:
    """One task of a service, from the manager's ``inspect --type task``."""

    id: str
    slot: int | None
    node_id: str
    state: str
    desired: str
    container_id: str

    @property
    def running(self) -> bool:
        return self.state == "running" and self.desired == "running"

    @property
    def pending(self) -> bool:
        """Meant to run, not running yet (or ended and not yet replaced)."""
        return self.desired == "running" and self.state != "running"


def parse_tasks(inspected: str) -> list[Task]:
    """The tasks of ``inspect --type task ID...``'s JSON.

    >>> doc = '[{"ID": "t1", "Slot": 2, "NodeID": "n1", "DesiredState": "running",'
    >>> doc += ' "Status": {"State": "running", "ContainerStatus": {"ContainerID": "c1"}}}]'
    >>> parse_tasks(doc)
    [Task(id='t1', slot=2, node_id='n1', state='running', desired='running', container_id='c1')]
    """
    return [Task(t["ID"], t.get("Slot"), t.get("NodeID", ""), t["Status"]["State"], t["DesiredState"],
                 (t["Status"].get("ContainerStatus") or {}).get("ContainerID", ""))
            for t in json.loads(inspected or "[]")]


def converged(tasks: list[Task], count: int) -> bool:
    """Exactly ``count`` tasks run and none is about to (the service is settled)."""
    return sum(t.running for t in tasks) == count and not any(t.pending for t in tasks)


def replacement(tasks: list[Task], slot: int, killed: str) -> Task | None:
    """The running task of ``slot`` other than the ``killed`` one, if there is one."""
    return next((t for t in tasks if t.slot == slot and t.id != killed and t.running), None)


def update_started_at(service: dict) -> str:
    """``UpdateStatus.StartedAt`` of ``service inspect``'s document ("" before any update)."""
    return (service.get("UpdateStatus") or {}).get("StartedAt") or ""


def update_end(service: dict, earlier_start: str) -> str:
    """The state in which an update started after the one of ``earlier_start``
    ended; "" while no such update has begun or while it is under way. (Right
    after ``service update`` returns, ``inspect`` may still show the previous
    update, completed.)

    >>> done = {"UpdateStatus": {"State": "completed", "StartedAt": "T1"}}
    >>> update_end(done, "T1"), update_end(done, ""), update_end({}, "")
    ('', 'completed', '')
    >>> update_end({"UpdateStatus": {"State": "updating", "StartedAt": "T2"}}, "T1")
    ''
    """
    status = service.get("UpdateStatus") or {}
    if not status.get("StartedAt") or status["StartedAt"] == earlier_start:
        return ""
    return status.get("State", "") if status.get("State") in UPDATE_ENDED else ""


def summary(tasks: list[Task]) -> str:
    """Task states, counted, for a timeout's message.

    >>> summary([Task("a", 1, "n", "running", "running", ""), Task("b", 2, "n", "pending", "running", "")])
    '1 running/running, 1 pending/running'
    """
    counts: dict[str, int] = {}
    for t in tasks:
        counts[f"{t.state}/{t.desired}"] = counts.get(f"{t.state}/{t.desired}", 0) + 1
    return ", ".join(f"{n} {key}" for key, n in counts.items()) or "no task"


# -- one cluster of one kind ------------------------------------------------------------


class ImageArchive:
    """The offline test image's archive, written once for both clusters."""

    def __init__(self) -> None:
        self.dir: Path | None = None
        self.archive: Path | None = None
        self.ref = ""

    def get(self) -> tuple[str, Path]:
        if self.archive is None:
            self.dir = Path(tempfile.mkdtemp(prefix="bench-swarm-image-"))
            images, self.archive, _ = testimage.write_archives(self.dir)
            self.ref = images["base"].ref
        return self.ref, self.archive

    def close(self) -> None:
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = self.archive = None


class SwarmSubject:
    """One kind of 3-node swarm for the three cases: started at its first round,
    stopped by :meth:`close`. Each method is one round of one case and returns
    its time in ms."""

    def __init__(self, name: str, make: Callable[[], DockerCluster], image: ImageArchive, requires: str = ""):
        self.name, self.make, self.image, self.requires = name, make, image, requires
        self.cluster: DockerCluster | None = None
        self.ref = ""
        self.failed = ""
        self.prefix = f"bench-{secrets.token_hex(3)}-"
        self.made = 0
        self.kill_service = ""
        self.kills = 0
        self.node_of: dict[str, Node] = {}
        self.update_service = ""
        self.updates = 0

    # -- the cluster ---------------------------------------------------------------
    def _up(self) -> DockerCluster:
        if self.failed:
            raise Unavailable(self.failed)
        if self.cluster is not None:
            return self.cluster
        if os.geteuid() != 0:
            self.failed = "a cluster needs root (namespaces, bridges, daemons)"
        elif self.requires and not Path(self.requires).exists():
            self.failed = f"{self.requires} is not installed"
        if self.failed:
            raise Unavailable(self.failed)
        cluster = self.make()
        try:
            cluster.start()  # removes what it made when it fails
        except (ClusterFailed, EngineCallFailed, AssertionError) as exc:
            self.failed = f"the cluster did not start: {str(exc)[-300:]}"
            raise Unavailable(self.failed) from None
        try:
            ref, archive = self.image.get()
            cluster.load_image(archive)
        except (ClusterFailed, EngineCallFailed) as exc:
            cluster.stop()
            self.failed = f"the test image did not load: {str(exc)[-300:]}"
            raise Unavailable(self.failed) from None
        except BaseException:
            cluster.stop()
            raise
        self.cluster, self.ref = cluster, ref
        return cluster

    def close(self) -> list[str]:
        """Stop the cluster; what could not be removed."""
        cluster, self.cluster = self.cluster, None
        return cluster.stop() if cluster is not None else []

    # -- calls and waits -----------------------------------------------------------
    def _call(self, *args: str, node: Node | None = None) -> str:
        node = node or self.cluster.manager
        try:
            result = node.docker(*args, timeout=CALL_TIMEOUT)
        except EngineCallFailed as exc:
            raise Unavailable(f"{self.name}: {str(exc)[-300:]}") from None
        if not result.ok:
            raise Unavailable(f"{self.name}: {' '.join(args[:3])} failed: {result.stderr.strip()[-300:]}")
        return result.stdout

    def _tasks(self, service: str) -> list[Task]:
        ids = self._call("service", "ps", "-q", "--no-trunc", service).split()
        if not ids:
            return []
        inspected = self.cluster.manager.docker("inspect", "--type", "task", *ids, timeout=CALL_TIMEOUT)
        # a task removed between the two calls: the next poll asks again
        return parse_tasks(inspected.stdout) if inspected.ok else []

    def _inspect(self, service: str) -> dict:
        return json.loads(self._call("service", "inspect", service))[0]

    def _wait(self, probe: Callable[[], tuple[object, str]], timeout: float, what: str):
        """Poll ``probe() -> (result, seen)`` until ``result`` is truthy; Unavailable,
        with what was seen last, after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            result, seen = probe()
            if result:
                return result
            if time.monotonic() > deadline:
                raise Unavailable(f"{self.name}: timed out after {timeout:g}s waiting for {what} (last seen: {seen})")
            time.sleep(POLL_INTERVAL)

    def _wait_converged(self, service: str, count: int) -> list[Task]:
        def probe():
            tasks = self._tasks(service)
            return (tasks if converged(tasks, count) else None), summary(tasks)
        return self._wait(probe, CONVERGE_TIMEOUT, f"{count} running tasks of {service}")

    def _create(self, purpose: str, *flags: str) -> str:
        self.made += 1
        name = f"{self.prefix}{purpose}{self.made}"
        self._call("service", "create", "--detach", "--name", name, *SERVICE_FLAGS, *flags, self.ref, *IDLE)
        return name

    def _remove(self, service: str) -> None:
        """``service rm``, then wait until no node has a container of it."""
        self._call("service", "rm", service)

        def probe():
            left = []
            for node in self.cluster.nodes:
                listed = node.docker("ps", "-a", "--format", '{{.Label "com.docker.swarm.service.name"}}',
                                     timeout=CALL_TIMEOUT)
                if not listed.ok or service in listed.stdout.split():
                    left.append(f"node {node.index}")
            return not left, f"containers on {', '.join(left)}"
        self._wait(probe, GONE_TIMEOUT, f"the containers of {service} to go")

    # -- the rounds ----------------------------------------------------------------
    def replicas_up(self) -> float:
        """``service create --replicas 10`` until 10 tasks run."""
        self._up()
        start = time.perf_counter()
        name = self._create("up", "--replicas", str(REPLICAS))
        try:
            self._wait_converged(name, REPLICAS)
            elapsed = time.perf_counter() - start
        except Unavailable:
            self.cluster.manager.docker("service", "rm", name)  # best effort: the other cases go on
            raise
        self._remove(name)
        return elapsed * 1000.0

    def replace_killed(self) -> float:
        """``kill`` of one task's container until its slot has a new running task."""
        cluster = self._up()
        if not self.kill_service:
            self.kill_service = self._create("kill", "--replicas", str(KILL_REPLICAS), *RESTART_FLAGS)
            self.node_of = {node.swarm_node_id(): node for node in cluster.nodes}
        tasks = self._wait_converged(self.kill_service, KILL_REPLICAS)  # the last replacement settled too
        running = sorted((t for t in tasks if t.running), key=lambda t: t.slot or 0)
        victim = running[self.kills % len(running)]
        self.kills += 1
        node = self.node_of.get(victim.node_id)
        if node is None or not victim.container_id:
            raise Unavailable(f"{self.name}: task {victim.id} names node {victim.node_id!r} and container "
                              f"{victim.container_id!r}: no node of the cluster to kill it on")

        def probe():
            tasks = self._tasks(self.kill_service)
            return replacement(tasks, victim.slot, victim.id), summary(tasks)
        start = time.perf_counter()
        self._call("kill", victim.container_id, node=node)
        self._wait(probe, CONVERGE_TIMEOUT, f"a new running task in slot {victim.slot} of {self.kill_service}")
        return (time.perf_counter() - start) * 1000.0

    def rolling_update(self) -> float:
        """``service update --env-add X=n`` of 10 tasks until the update is completed."""
        self._up()
        if not self.update_service:
            self.update_service = self._create("update", "--replicas", str(REPLICAS), *UPDATE_FLAGS)
        self._wait_converged(self.update_service, REPLICAS)
        earlier = update_started_at(self._inspect(self.update_service))
        self.updates += 1

        def probe():
            service = self._inspect(self.update_service)
            status = service.get("UpdateStatus") or {}
            return update_end(service, earlier), f"{status.get('State', 'no update')}: {status.get('Message', '')}"
        start = time.perf_counter()
        self._call("service", "update", "--detach", "--env-add", f"X={self.updates}", self.update_service)
        state = self._wait(probe, UPDATE_TIMEOUT, f"the update of {self.update_service} to complete")
        elapsed = time.perf_counter() - start
        if state != "completed":
            status = self._inspect(self.update_service).get("UpdateStatus") or {}
            raise Unavailable(f"{self.name}: the update of {self.update_service} ended {state}: "
                              f"{status.get('Message', '')}")
        return elapsed * 1000.0


class SwarmBench:
    """Both clusters for the three cases; :meth:`close` stops them."""

    def __init__(self) -> None:
        self.image = ImageArchive()
        self.subjects = {
            "refengine swarm": SwarmSubject(
                "refengine swarm", lambda: RefengineCluster(NODES, profile=profile_by_name("refengine")), self.image),
            "docker swarm": SwarmSubject("docker swarm", lambda: DockerCluster(NODES), self.image, requires=DOCKERD),
        }

    def round(self, measure: Callable[[SwarmSubject], float], subject: SwarmSubject) -> Callable[[], float]:
        """One round of ``measure`` on ``subject``; anything but Unavailable stops
        both clusters before it propagates (the later cases' teardown would not run)."""
        def once() -> float:
            try:
                return measure(subject)
            except Unavailable:
                raise
            except BaseException:
                self.close()  # never raises: the round's own error is the one to see
                raise
        return once

    def subjects_of(self, measure: Callable[[SwarmSubject], float]) -> dict[str, Callable[[], float]]:
        return {name: self.round(measure, subject) for name, subject in self.subjects.items()}

    def close(self) -> None:
        """Stop both clusters. Idempotent; what could not be removed is said on
        stderr (the measurements stand; ``cluster.sweep`` removes it later)."""
        for name, subject in self.subjects.items():
            try:
                leftovers = subject.close()
            except Exception as exc:  # the other cluster must still stop
                leftovers = [f"({type(exc).__name__}: {exc})"]
            if leftovers:
                print(f"bench swarm: {name}: could not remove {', '.join(leftovers)}", file=sys.stderr)
        self.image.close()


def cases(options) -> list[Case]:
    bench = SwarmBench()
    caps = {"max_rounds": MAX_ROUNDS, "max_warmup": MAX_WARMUP}
    return [
        Case(name=f"swarm: service create --replicas {REPLICAS} until all run", unit="ms", higher_is_better=False,
             subjects=bench.subjects_of(SwarmSubject.replicas_up), baseline="docker swarm", **caps,
             description=f"{NODES} nodes; from `service create --detach --replicas {REPLICAS}` until the manager "
                         f"lists {REPLICAS} running tasks; the service is removed between rounds"),
        Case(name="swarm: replacement of a killed task", unit="ms", higher_is_better=False,
             subjects=bench.subjects_of(SwarmSubject.replace_killed), baseline="docker swarm", **caps,
             description=f"{NODES} nodes, {KILL_REPLICAS} replicas, --restart-delay 0s; from `kill` of one task's "
                         "container on its node until its slot has a new running task"),
        Case(name=f"swarm: rolling update of {REPLICAS} tasks, parallelism {UPDATE_PARALLELISM}", unit="ms",
             higher_is_better=False, subjects=bench.subjects_of(SwarmSubject.rolling_update),
             baseline="docker swarm", teardown=bench.close, **caps,
             description=f"{NODES} nodes; from `service update --detach --env-add X=n` until UpdateStatus.State is "
                         f"completed; {' '.join(UPDATE_FLAGS)} (docker's defaults but parallelism: the "
                         f"{UPDATE_MONITOR} monitor after the last batch is in both medians)"),
    ]

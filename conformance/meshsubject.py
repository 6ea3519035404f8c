"""A swarm's routing mesh as a load-balancing subject of suites/ingress
(:class:`conformance.balancers.Subject`): kind ``swarm-mesh``.

The subject is one service on a cluster of :mod:`conformance.cluster` (the
profile's ``settings.cluster``: ``refengine`` or ``docker``; one cluster per
session, :func:`session_cluster`), with its port published in ingress mode:
every node answers on it and balances between the service's replicas on any
node. The load generator runs in the cluster's client namespace on the
underlay (:meth:`DockerCluster.client_netns`), a client outside the swarm.

A replica is a task; its name is its container's hostname (the container's
short ID, docker's default), which its busybox ``httpd`` serves. The service
has a health check (busybox ``wget`` of its own page), so a new task joins
the rotation only once it answers, and a rolling update is ``start-first``.
The profile's ``settings.labels`` (space-separated "KEY=VALUE") are put on the
service: ``refengine.mesh.balance=request`` asks refengine's mesh to balance
HTTP requests rather than connections.
"""

from __future__ import annotations

import json
import secrets
import subprocess

from .balancer_profile import BalancerProfile
from .balancers import Subject, SubjectFailed, wait_until
from .cluster import CLUSTER_KINDS, DockerCluster, start_cluster

#: The port the replicas' httpd listens on in their containers.
TARGET_PORT = 8080
HTTPD = ["sh", "-c", "mkdir -p /w && hostname > /w/index.html && trap 'exit 0' TERM; "
                     f"httpd -f -p {TARGET_PORT} -h /w & wait"]
HEALTH = ["--health-cmd", f"wget -q -O /dev/null http://127.0.0.1:{TARGET_PORT}/", "--health-interval", "1s",
          "--health-timeout", "2s", "--health-retries", "2"]
#: Bounded waits (seconds): a service's tasks converge, a change is seen through the mesh.
CONVERGE_TIMEOUT = 60.0
PROBE_TIMEOUT = 2.0


class SwarmMeshSubject(Subject):
    def __init__(self, profile: BalancerProfile, image: str, cluster: DockerCluster):
        super().__init__(profile, image)
        self.cluster = cluster
        self.service = f"cft-mesh-{secrets.token_hex(3)}"
        self.port = 0
        self.drained: list[str] = []
        self.created = False

    # -- the interface ------------------------------------------------------------------
    def start(self, replicas: int) -> None:
        labels = [f"--label={label}" for label in str(self.profile.settings.get("labels", "")).split()]
        self.created = True
        self._docker("service", "create", "--detach", "--no-resolve-image", "--name", self.service,
                     "--replicas", str(replicas), "--publish", f"target={TARGET_PORT}", *HEALTH,
                     "--update-order", "start-first", "--update-parallelism", "1", "--update-delay", "0s",
                     "--update-monitor", "1s",
                     "--stop-grace-period", "5s", *labels, self.image, *HTTPD)
        endpoint = self._inspect().get("Endpoint") or {}
        ports = [p["PublishedPort"] for p in endpoint.get("Ports") or [] if p.get("TargetPort") == TARGET_PORT]
        if not ports:
            raise SubjectFailed(f"{self.service}: no published port in {endpoint}")
        self.port = ports[0]
        self._wait_serving(replicas)

    def entrypoints(self) -> list[str]:
        return [f"http://{node.ip}:{self.port}" for node in self.cluster.nodes]

    def client_netns(self) -> str | None:
        return self.cluster.client_netns()

    def replicas(self) -> dict[str, str]:
        return {name: node for name, (node, _) in self._running().items()}

    def scale(self, count: int) -> None:
        self._docker("service", "scale", "--detach", f"{self.service}={count}")
        self._wait_serving(count)

    def kill(self, replica: str) -> None:
        node, container = self._running()[replica]
        self._node(node).docker("kill", container, check=True)

    def start_update(self) -> None:
        self._docker("service", "update", "--detach", "--env-add", f"CFT_UPDATE={secrets.token_hex(4)}",
                     self.service)

    def update_done(self) -> bool:
        state = (self._inspect().get("UpdateStatus") or {}).get("State", "")
        if state in ("paused", "rollback_started", "rollback_paused", "rollback_completed"):
            raise SubjectFailed(f"{self.service}: the update ended {state}")
        return state == "completed"

    def drain(self, node: str) -> None:
        count = len(self._running())
        self.drained.append(node)
        self._docker("node", "update", "--availability", "drain", node)
        wait_until(lambda: len(self._running()) == count and node not in self.replicas().values(),
                   CONVERGE_TIMEOUT, f"{self.service}'s tasks to leave {node}", interval=0.25)
        self._wait_serving(count)

    def stop(self) -> list[str]:
        leftovers = []
        for node in self.drained:
            if self._docker("node", "update", "--availability", "active", node, check=False).returncode != 0:
                leftovers.append(f"availability of {node}")
        if self.created and self._docker("service", "rm", self.service, check=False).returncode != 0:
            leftovers.append(f"service {self.service}")
        if self.created:
            try:
                wait_until(lambda: not self._containers_left(), CONVERGE_TIMEOUT,
                           f"{self.service}'s containers to go", interval=0.25)
            except SubjectFailed:
                leftovers.append(f"containers of {self.service}")
        return leftovers

    # -- helpers --------------------------------------------------------------------------
    def _docker(self, *args: str, check: bool = True):
        done = self.cluster.manager.docker(*args, timeout=CONVERGE_TIMEOUT)
        if check and not done.ok:
            raise SubjectFailed(f"{' '.join(args[:2])} {self.service}: {done.stderr.strip()[-300:]}")
        return done

    def _inspect(self) -> dict:
        return json.loads(self._docker("service", "inspect", self.service).stdout)[0]

    def _node(self, hostname: str):
        return next(node for node in self.cluster.nodes if node.hostname == hostname)

    def _running(self) -> dict[str, tuple[str, str]]:
        """Replica name -> (node hostname, container ID) of the tasks running and meant to."""
        ids = self._docker("service", "ps", "-q", "--no-trunc", "--filter", "desired-state=running",
                           self.service).stdout.split()
        inspected = self.cluster.manager.docker("inspect", "--type", "task", *ids) if ids else None
        if inspected is None or not inspected.ok:
            return {}
        found = {}
        hostnames = self._hostnames()
        for task in json.loads(inspected.stdout):
            container = (task["Status"].get("ContainerStatus") or {}).get("ContainerID", "")
            if task["Status"]["State"] == "running" and task["DesiredState"] == "running" and container:
                found[container[:12]] = (hostnames.get(task.get("NodeID", ""), ""), container)
        return found

    def _hostnames(self) -> dict[str, str]:
        listed = self._docker("node", "ls", "--format", "{{.ID}} {{.Hostname}}").stdout.split("\n")
        return dict(line.split(" ", 1) for line in listed if " " in line)

    def _answers(self) -> set[str]:
        """The replica names seen through every node's port in a few requests each."""
        seen = set()
        for url in self.entrypoints():
            for _ in range(2 * max(len(self._running()), 1)):
                done = subprocess.run(["nsenter", f"--net={self.client_netns()}", "curl", "-s", "-m",
                                       str(PROBE_TIMEOUT), f"{url}/"], capture_output=True, text=True,
                                      timeout=PROBE_TIMEOUT + 5)
                if done.returncode == 0 and done.stdout.strip():
                    seen.add(done.stdout.strip())
        return seen

    def _wait_serving(self, count: int) -> None:
        """Until ``count`` tasks run and every node's port reaches each of them."""
        def serving():
            running = set(self._running())
            return len(running) == count and running <= self._answers()
        wait_until(serving, CONVERGE_TIMEOUT, f"{count} replicas of {self.service} to answer on every node",
                   interval=0.25)

    def _containers_left(self) -> bool:
        for node in self.cluster.nodes:
            listed = node.docker("ps", "-a", "--format", '{{.Label "com.docker.swarm.service.name"}}')
            if self.service in listed.stdout.split():
                return True
        return False


def session_cluster(profile: BalancerProfile, images_dir) -> DockerCluster:
    """The 3-node cluster a swarm-mesh profile names (``settings.cluster``), started with
    the test image loaded on every node (the caller stops it at the end of the session)."""
    kind = profile.settings.get("cluster", "refengine")
    if kind not in CLUSTER_KINDS:
        raise SubjectFailed(f"unknown cluster {kind!r} in balancer profile {profile.name}")
    return start_cluster(kind, 3, images_dir)

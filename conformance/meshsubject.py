"""A swarm service as a load-balancing subject of suites/ingress
(:class:`conformance.balancers.Subject`): kinds ``swarm-mesh`` (the routing
mesh) and ``swarm-dnsrr`` (a service in ``--endpoint-mode dnsrr``, balanced
by the swarm's embedded DNS).

The subject is one service on a cluster of :mod:`conformance.cluster` (the
profile's ``settings.cluster``: ``refengine`` or ``docker``; one cluster per
session, :func:`session_cluster`). A replica is a task; its name is its
container's hostname (the container's short ID, docker's default), which its
server answers with (``settings.backend``: busybox ``httpd``, or the
keep-alive server, :func:`conformance.balancers.backend_command`). The
service has a health check (busybox ``wget`` of its own page), so a new task
joins the rotation only once it answers, and a rolling update is
``start-first``. The profile's ``settings.labels`` (space-separated
"KEY=VALUE") are put on the service: ``refengine.mesh.balance=request`` asks
refengine's mesh to balance HTTP requests rather than connections.

``swarm-mesh``: the port is published in ingress mode, so every node answers
on it and balances between the replicas on any node. The load generator runs
in the cluster's client namespace on the underlay
(:meth:`DockerCluster.client_netns`), a client outside the swarm.

``swarm-dnsrr``: a dnsrr service publishes nothing through the mesh; it is
reached by its name from a container on its overlay network, whose DNS
answers with every healthy task's address (docker shuffles them in each
answer). The load generator runs in the network namespace of a client task on
that network (a service of its own, on the last node, where no replica runs,
so that draining a replica's node never moves the client), and resolves the
name by asking the client's DNS server for every connection
(:data:`conformance.load.LoadSpec.resolver`).
"""

from __future__ import annotations

import abc
import ipaddress
import json
import secrets
import subprocess
import sys

from .balancer_profile import BalancerProfile
from .balancers import BACKENDS, Subject, SubjectFailed, backend_command, render_settings, wait_until
from .cluster import CLUSTER_KINDS, DockerCluster, start_cluster

#: The port the replicas' server listens on in their containers.
TARGET_PORT = 8080
HEALTH = ["--health-cmd", f"wget -q -O /dev/null http://127.0.0.1:{TARGET_PORT}/", "--health-interval", "1s",
          "--health-timeout", "2s", "--health-retries", "2"]
#: Bounded waits (seconds): a service's tasks converge, a change is seen through the mesh.
CONVERGE_TIMEOUT = 60.0
PROBE_TIMEOUT = 2.0
#: A swarm subject's settings and their defaults.
DEFAULTS = {"cluster": "refengine", "labels": "", "backend": "httpd"}


class SwarmServiceSubject(Subject):
    """What both swarm subjects share: the service, its tasks, and the changes under load."""

    PREFIX = "cft-svc"

    def __init__(self, profile: BalancerProfile, image: str, cluster: DockerCluster):
        super().__init__(profile, image)
        self.settings = render_settings(DEFAULTS, profile)
        self.cluster = cluster
        self.service = f"{self.PREFIX}-{secrets.token_hex(3)}"
        self.drained: list[str] = []
        self.created = False

    def _create(self, replicas: int, *flags: str) -> None:
        labels = [f"--label={label}" for label in str(self.settings["labels"]).split()]
        self.created = True
        self._docker("service", "create", "--detach", "--no-resolve-image", "--name", self.service,
                     "--replicas", str(replicas), *flags, *HEALTH,
                     "--update-order", "start-first", "--update-parallelism", "1", "--update-delay", "0s",
                     "--update-monitor", "1s", "--stop-grace-period", "5s", *labels, self.image,
                     *backend_command(str(self.settings["backend"]), None, TARGET_PORT))

    # -- the interface ------------------------------------------------------------------
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

    @abc.abstractmethod
    def _serving(self, running: set[str]) -> bool:
        """Whether the subject's clients reach these running tasks now."""

    def _wait_serving(self, count: int) -> None:
        """Until ``count`` tasks run and the subject's clients reach each of them."""
        def serving():
            running = set(self._running())
            return len(running) == count and self._serving(running)
        wait_until(serving, CONVERGE_TIMEOUT, f"{count} replicas of {self.service} to answer its clients",
                   interval=0.25)

    def _containers_left(self) -> bool:
        for node in self.cluster.nodes:
            listed = node.docker("ps", "-a", "--format", '{{.Label "com.docker.swarm.service.name"}}')
            if self.service in listed.stdout.split():
                return True
        return False


class SwarmMeshSubject(SwarmServiceSubject):
    """A service published in ingress mode: every node's port balances (the routing mesh)."""

    PREFIX = "cft-mesh"

    def __init__(self, profile: BalancerProfile, image: str, cluster: DockerCluster):
        super().__init__(profile, image, cluster)
        self.port = 0

    def start(self, replicas: int) -> None:
        self._create(replicas, "--publish", f"target={TARGET_PORT}")
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

    def _serving(self, running: set[str]) -> bool:
        """Every node's port reaches each running task (in a few requests each)."""
        seen = set()
        for url in self.entrypoints():
            for _ in range(2 * max(len(running), 1)):
                done = subprocess.run(["nsenter", f"--net={self.client_netns()}", "curl", "-s", "-m",
                                       str(PROBE_TIMEOUT), f"{url}/"], capture_output=True, text=True,
                                      timeout=PROBE_TIMEOUT + 5)
                if done.returncode == 0 and done.stdout.strip():
                    seen.add(done.stdout.strip())
        return running <= seen


class SwarmDnsrrSubject(SwarmServiceSubject):
    """A service in ``--endpoint-mode dnsrr`` on an overlay of its own, reached by name
    from a client task on that overlay: the swarm's embedded DNS is the balancer."""

    PREFIX = "cft-dnsrr"

    def __init__(self, profile: BalancerProfile, image: str, cluster: DockerCluster):
        super().__init__(profile, image, cluster)
        self.network = f"{self.service}-net"
        self.client = f"{self.service}-client"
        self.network_created = self.client_created = False
        self.host = ""
        self.pid = 0
        self.server = ""

    def start(self, replicas: int) -> None:
        self.host = host = self.cluster.nodes[-1].hostname
        self.network_created = True
        self._docker("network", "create", "--driver", "overlay", self.network)
        self.client_created = True
        self._docker("service", "create", "--detach", "--no-resolve-image", "--name", self.client,
                     "--network", self.network, "--endpoint-mode", "dnsrr", "--constraint",
                     f"node.hostname=={host}", "--stop-grace-period", "1s", self.image,
                     "sh", "-c", "trap 'exit 0' TERM; sleep 86400 & wait")
        self._create(replicas, "--network", self.network, "--endpoint-mode", "dnsrr",
                     "--constraint", f"node.hostname!={host}")
        container, self.pid = wait_until(self._client_pid, CONVERGE_TIMEOUT, f"{self.client} to run on {host}",
                                         interval=0.25)
        # from inside the container: its resolv.conf read through /proc/PID/root would
        # follow the image's symbolic links on the host's file system
        done = self._node(host).docker("exec", container, "cat", "/etc/resolv.conf", timeout=CONVERGE_TIMEOUT)
        if not done.ok:
            raise SubjectFailed(f"cannot read {self.client}'s /etc/resolv.conf: {done.stderr.strip()[-300:]}")
        self.server = nameserver(done.stdout)
        self._wait_serving(replicas)

    def entrypoints(self) -> list[str]:
        return [f"http://{self.service}:{TARGET_PORT}"]

    def client_netns(self) -> str | None:
        # the pid is the client's only while its container runs: a reused one is any process's
        if (self._client_pid() or ("", 0))[1] != self.pid:
            raise SubjectFailed(f"{self.client}'s container (pid {self.pid}) no longer runs on {self.host}")
        return f"/proc/{self.pid}/ns/net"

    def resolver(self) -> str | None:
        return self.server

    def stop(self) -> list[str]:
        try:
            leftovers = super().stop()
        except Exception as exc:  # a docker call that timed out: the client and network still go
            leftovers = [f"service {self.service} ({str(exc).strip().splitlines()[-1][:200]})"]
        if self.client_created and self._docker("service", "rm", self.client, check=False).returncode != 0:
            leftovers.append(f"service {self.client}")
        if self.network_created:
            # the manager lets the network go once the removed services' tasks have left it
            try:
                wait_until(lambda: self._docker("network", "rm", self.network, check=False).returncode == 0
                           or self._docker("network", "inspect", self.network, check=False).returncode != 0,
                           CONVERGE_TIMEOUT, f"network {self.network} to be removed", interval=0.5)
            except SubjectFailed:
                leftovers.append(f"network {self.network}")
        return leftovers

    def _client_pid(self) -> tuple[str, int] | None:
        """The client task's running container on its node and its pid (None before it runs)."""
        node = self._node(self.host)
        listed = node.docker("ps", "--no-trunc", "--format", '{{.ID}} {{.Label "com.docker.swarm.service.name"}}')
        ids = [line.split()[0] for line in listed.stdout.splitlines() if line.split()[1:] == [self.client]]
        if len(ids) != 1:
            return None
        pid = node.docker("inspect", "--format", "{{.State.Pid}}", ids[0]).stdout.strip()
        return (ids[0], int(pid)) if pid.isdigit() and pid != "0" else None

    def _serving(self, running: set[str]) -> bool:
        """The name's DNS answer in the client is exactly the running tasks, and each answers."""
        done = subprocess.run(["nsenter", f"--net={self.client_netns()}", sys.executable, "-m", "conformance.dnsprobe",
                               self.service, self.server, str(TARGET_PORT)], capture_output=True, text=True,
                              timeout=PROBE_TIMEOUT * (len(running) + 2) + 10)
        if done.returncode != 0:
            raise SubjectFailed(f"the DNS probe failed: {done.stderr.strip()[-300:]}")
        seen = json.loads(done.stdout)
        answers = sorted(answer or "" for answer in seen["answers"].values())
        return len(seen["addresses"]) == len(running) and answers == sorted(running)


def nameserver(resolv_conf: str) -> str:
    """The first IPv4 ``nameserver`` of a resolv.conf's text (a container's embedded
    DNS); as glibc, words after the address are ignored.

    >>> nameserver("search x\\nnameserver ::1\\nnameserver 127.0.0.11 # embedded\\noptions ndots:0\\n")
    '127.0.0.11'
    >>> nameserver("nameserver 999.1.1.1\\n")
    Traceback (most recent call last):
    ...
    conformance.balancers.SubjectFailed: no IPv4 nameserver in the client's resolv.conf: 'nameserver 999.1.1.1\\n'
    """
    for words in (line.split() for line in resolv_conf.splitlines()):
        if len(words) >= 2 and words[0] == "nameserver":
            try:
                return str(ipaddress.IPv4Address(words[1]))
            except ValueError:
                continue
    raise SubjectFailed(f"no IPv4 nameserver in the client's resolv.conf: {resolv_conf[:200]!r}")


#: Profile kind -> the swarm subject's class.
SWARM_SUBJECTS: dict[str, type[SwarmServiceSubject]] = {"swarm-mesh": SwarmMeshSubject,
                                                         "swarm-dnsrr": SwarmDnsrrSubject}


def session_cluster(profile: BalancerProfile, images_dir) -> DockerCluster:
    """The 3-node cluster a swarm profile names (``settings.cluster``), started with
    the test image loaded on every node (the caller stops it at the end of the session)."""
    settings = render_settings(DEFAULTS, profile)  # a typo fails here, before a cluster starts
    if settings["backend"] not in BACKENDS:
        raise SubjectFailed(f"balancer {profile.name}: unknown backend {settings['backend']!r}; "
                            f"known: {', '.join(BACKENDS)}")
    kind = settings["cluster"]
    if kind not in CLUSTER_KINDS:
        raise SubjectFailed(f"unknown cluster {kind!r} in balancer profile {profile.name}")
    return start_cluster(kind, 3, images_dir)

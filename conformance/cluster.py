"""Real multi-node docker swarms on this machine: ``--cluster docker``.

Starts N ``dockerd`` (3 by default, ``--cluster-nodes``), each in network and
UTS namespaces of its own, joined by a bridge in the host namespace, the way
moby's integration tests (``testutil/daemon``) run several daemons on one
host; node 1 inits the swarm, the others join it as workers. The session
fixture ``cluster`` hands the running :class:`DockerCluster` to the checks
of ``suites/swarm``; without ``--cluster`` those checks are skipped.

What one cluster makes on the host (RID: 6 hex digits, new per session)::

    /var/lib/cft-sw/RID/              the cluster's directory
        owner                         pid of the process that owns the cluster
        nK/daemon.json                {}: the host's /etc/docker/daemon.json must not apply
        nK/data/                      --data-root (images, containers, swarm state)
        nK/exec/                      --exec-root (its own containerd's state and socket,
                                      the daemon's network namespace files)
        nK/docker.sock                -H unix://
        nK/dockerd.pid, nK/dockerd.log
    /run/netns/cft-swK-RID            node K's network namespace (`ip netns add`)
    bridge cftswRID                   the underlay, in the host namespace, without address
    veth cftswRIDnK <-> eth0 of K     eth0 holds SUBNET.(10+K)/24
    iptables FORWARD -i cftswRID -o cftswRID -j ACCEPT
                                      the host's dockerd sets FORWARD's policy to DROP and
                                      br_netfilter applies it to bridged frames

Every daemon runs with ``--iptables=false --bridge=none``: the swarm needs
only TCP 2377 and 7946 and UDP 7946 and 4789 (VXLAN) between nodes, which
the underlay carries, and the host's iptables stays as it was. dockerd is
started through ``nsenter --net=`` rather than ``ip netns exec``, which
remounts /sys and hides the cgroup hierarchy from the daemon.

Teardown (:meth:`DockerCluster.stop`, also after a failed start) kills the
daemons (SIGTERM, then SIGKILL), every process left in the nodes'
namespaces and in the cgroups of their containers, unmounts everything under
the cluster's directory, deletes the namespaces, links, rule and
directories. :func:`sweep` does the same for what an earlier, killed run
left (any ``cft-sw*`` whose owner is gone) before a cluster starts.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from . import testimage
from .checks import mark_for_subject
from .deviation import Deviation
from .engine import CommandResult, Engine, EngineCallFailed
from .errors import ConformanceError
from .hostnet import free_subnets
from .profile import Profile, profile_by_name
from .report_plugin import register_describer

BASE_DIR = Path("/var/lib/cft-sw")
DOCKERD = "/usr/sbin/dockerd"
#: Where underlay subnets come from: a /16 that no engine picks by default
#: and that the network suite (10.213/16) does not use.
UNDERLAY_POOL = ipaddress.ip_network("10.217.0.0/16")
SWARM_PORT = 2377
#: ``swarm init --dispatcher-heartbeat`` (default 5s): how often nodes report to
#: the managers, so how soon a node that left or died is listed Down and its
#: tasks are placed elsewhere; 1s keeps the checks of suites/swarm short.
DISPATCHER_HEARTBEAT = "1s"
NETNS_PREFIX = "cft-sw"
LINK_PREFIX = "cftsw"

#: Bounded waits (seconds).
DAEMON_START_TIMEOUT = 60.0
DAEMON_STOP_TIMEOUT = 20.0
JOIN_TIMEOUT = 60.0

#: The cluster kinds ``--cluster`` accepts: the engine profile the nodes'
#: CLI comes from, and what such a cluster can do here. docker's ingress
#: routing mesh and its services' virtual IPs (swarm-vip) need IPVS, which this kernel lacks.
CLUSTER_KINDS = {"docker": {"engine": "docker", "capabilities": frozenset({"swarm", "swarm-overlay"})},
                 # refengine swarm (reference_runtime/swarm) on the same layout: conformance/refcluster.py
                 "refengine": {"engine": "refengine", "capabilities": frozenset({"swarm", "swarm-overlay", "swarm-vip"})}}


class ClusterFailed(Exception):
    """A cluster could not be started or driven: not a check's failure."""


# -- names and addresses (pure) ---------------------------------------------------


def netns_name(rid: str, index: int) -> str:
    """The network namespace of node ``index``.

    >>> netns_name("a1b2c3", 2)
    'cft-sw2-a1b2c3'
    """
    return f"{NETNS_PREFIX}{index}-{rid}"


def bridge_name(rid: str) -> str:
    """Interface names have at most 15 characters.

    >>> bridge_name("a1b2c3"), veth_name("a1b2c3", 3)
    ('cftswa1b2c3', 'cftswa1b2c3n3')
    """
    return f"{LINK_PREFIX}{rid}"


def veth_name(rid: str, index: int) -> str:
    return f"{LINK_PREFIX}{rid}n{index}"


def node_address(subnet: ipaddress.IPv4Network, index: int) -> ipaddress.IPv4Interface:
    """Node ``index``'s address on the underlay.

    >>> str(node_address(ipaddress.ip_network("10.217.4.0/24"), 1))
    '10.217.4.11/24'
    """
    return ipaddress.ip_interface(f"{subnet.network_address + 10 + index}/{subnet.prefixlen}")


def run_id_of(name: str) -> str | None:
    """The cluster a namespace or link name belongs to, or None when it is not ours.

    >>> run_id_of("cft-sw3-a1b2c3"), run_id_of("cftswa1b2c3n2"), run_id_of("cftswa1b2c3"), run_id_of("eth0")
    ('a1b2c3', 'a1b2c3', 'a1b2c3', None)
    """
    m = re.fullmatch(rf"{NETNS_PREFIX}\d+-([0-9a-f]{{6}})|{LINK_PREFIX}([0-9a-f]{{6}})(?:n\d+)?", name)
    return (m.group(1) or m.group(2)) if m else None


def mounts_under(mountinfo: str, root: str) -> list[str]:
    """Mount points at or below ``root`` in /proc/self/mountinfo text, deepest first,
    so each can be unmounted before what it sits on.

    >>> text = "36 1 8:1 / /var/lib/x rw - ext4 /dev/a rw\\n37 36 0:5 / /var/lib/x/a\\\\040b rw - nsfs nsfs rw\\n"
    >>> mounts_under(text, "/var/lib/x")
    ['/var/lib/x/a b', '/var/lib/x']
    """
    root = root.rstrip("/")
    found = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
        if point == root or point.startswith(root + "/"):
            found.append(point)
    return sorted(set(found), key=lambda p: (-p.count("/"), p))


def forward_rule(bridge: str) -> list[str]:
    """The FORWARD rule that lets the underlay bridge carry frames between nodes."""
    return ["FORWARD", "-i", bridge, "-o", bridge, "-j", "ACCEPT"]


def shape_problem(listed: list[dict], hostnames: list[str], leader: str) -> str:
    """How ``node ls`` (its JSON lines) differs from a cluster just started: every
    node Ready and Active, ``leader`` the Leader and the only manager. "" when it
    does not.

    >>> ok = [{"Hostname": "a", "ManagerStatus": "Leader", "Status": "Ready", "Availability": "Active"},
    ...       {"Hostname": "b", "ManagerStatus": "", "Status": "Ready", "Availability": "Active"}]
    >>> shape_problem(ok, ["a", "b"], "a")
    ''
    >>> shape_problem(ok, ["a", "b"], "b")
    'a is Leader, Ready, Active'
    """
    by_name = {info["Hostname"]: info for info in listed}
    if sorted(by_name) != sorted(hostnames) or len(listed) != len(hostnames):
        return f"node ls lists {sorted(info['Hostname'] for info in listed)}, not {sorted(hostnames)}"
    for name in hostnames:
        info = by_name[name]
        role = "Leader" if name == leader else ""
        if (info["ManagerStatus"], info["Status"], info["Availability"]) != (role, "Ready", "Active"):
            return f"{name} is {info['ManagerStatus'] or 'a worker'}, {info['Status']}, {info['Availability']}"
    return ""


# -- swarm tasks' times (pure) ------------------------------------------------------


def parse_time(text: str) -> datetime | None:
    """An RFC 3339 time of the API, nanoseconds cut to microseconds.

    >>> parse_time("2026-11-28T17:06:09.63517027Z").isoformat()
    '2026-11-28T17:06:09.635170+00:00'
    >>> parse_time("0001-01-01T00:00:00Z") is None, parse_time("") is None
    (True, True)
    """
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text or "")
    if not m or m.group(1).startswith("0001-"):
        return None
    fraction = (m.group(2) or "0")[:6].ljust(6, "0")
    return datetime.fromisoformat(f"{m.group(1)}.{fraction}{'+00:00' if m.group(3) == 'Z' else m.group(3)}")


def replacement_violation(replacements: list[tuple[datetime, datetime]], parallelism: int,
                          delay: timedelta) -> str:
    """How a rolling update's replacements broke its parallelism and delay ("" when
    they did not). Each replacement is (when the slot's old task was shut down,
    when its new task ran).

    The updater has ``parallelism`` workers; each replaces one slot at a time and
    waits ``delay`` after its new task runs before it stops the next. So by the
    i-th stop (1-based), at least i - parallelism new tasks ran ``delay`` or more
    earlier; with no delay this says at most ``parallelism`` slots are down at once.

    >>> from datetime import datetime, timedelta as td
    >>> at = lambda s: datetime(2026, 1, 1) + td(seconds=s)
    >>> replacement_violation([(at(0), at(1)), (at(0), at(1)), (at(3), at(4))], 2, td(seconds=2))
    ''
    >>> replacement_violation([(at(0), at(1)), (at(0), at(1)), (at(2), at(3))], 2, td(seconds=2))
    'stop 3 of 3 at +2.000s: 0 new tasks ran 2.0s or more before it, 1 needed (parallelism 2, delay 2.0s)'
    """
    stops = sorted(stop for stop, _ in replacements)
    runs = [ran for _, ran in replacements]
    for i, stop in enumerate(stops, 1):
        ready = sum(1 for ran in runs if ran + delay <= stop)
        if ready < i - parallelism:
            return (f"stop {i} of {len(stops)} at +{(stop - stops[0]).total_seconds():.3f}s: {ready} new tasks ran "
                    f"{delay.total_seconds()}s or more before it, {i - parallelism} needed "
                    f"(parallelism {parallelism}, delay {delay.total_seconds()}s)")
    return ""


# -- the one subprocess helper of this module ---------------------------------------


def _run(*argv: str, timeout: float = 30.0, check: bool = True) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ClusterFailed(f"$ {' '.join(argv)}: did not finish within {timeout}s") from None
    if check and proc.returncode != 0:
        raise ClusterFailed(f"$ {' '.join(argv)}: exit {proc.returncode}: {proc.stderr.strip()}")
    return proc


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_pids(pids: list[int], timeout: float) -> None:
    """SIGTERM, then SIGKILL what is still there after ``timeout``."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(_pid_alive(p) for p in pids):
            time.sleep(0.1)
            for pid in pids:  # reap our own children, or they stay zombies and look alive
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
        pids = [p for p in pids if _pid_alive(p)]
        if not pids:
            return


# -- nodes ------------------------------------------------------------------------


@dataclass
class Node:
    """One dockerd of the cluster, and the CLI that drives it."""

    index: int
    hostname: str
    netns: str
    address: ipaddress.IPv4Interface
    dir: Path
    engine: Engine
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def ip(self) -> str:
        return str(self.address.ip)

    @property
    def socket(self) -> Path:
        return self.dir / "docker.sock"

    def docker(self, *args: str, timeout: float = 60.0, check: bool = False) -> CommandResult:
        """``docker -H unix://SOCKET ARGS`` against this node."""
        return self.engine.cli(*args, timeout=timeout, check=check)

    def swarm_node_id(self) -> str:
        """This daemon's swarm node ID ("" when it is in no swarm)."""
        return self.docker("info", "--format", "{{.Swarm.NodeID}}", check=True).stdout.strip()

    def swarm_state(self) -> str:
        """``inactive``, ``pending``, ``active``, ``error`` or ``locked``."""
        return self.docker("info", "--format", "{{.Swarm.LocalNodeState}}", check=True).stdout.strip()


class DockerCluster:
    """N dockerd in a swarm on this machine.

    >>> with DockerCluster(3) as cluster:                      # doctest: +SKIP
    ...     cluster.manager.docker("node", "ls").stdout
    """

    def __init__(self, size: int = 3, *, profile: Profile | None = None, base: Path = BASE_DIR,
                 rid: str | None = None):
        if size < 1:
            raise ConformanceError(f"a cluster needs at least 1 node, not {size}")
        self.size = size
        self.rid = rid or secrets.token_hex(3)
        self.dir = Path(base) / self.rid
        self.base = Path(base)
        self.profile = profile or profile_by_name("docker")
        self.nodes: list[Node] = []
        self.subnet: ipaddress.IPv4Network | None = None
        self.timings: dict[str, float] = {}
        #: The offline test images, once :meth:`load_image` loaded them on every node.
        self.images: testimage.ImageSet | None = None
        #: The archives :meth:`load_image` loaded, loaded again by :meth:`rebuild`.
        self._archives: list[Path] = []
        #: A daemon was crashed or a new cluster forced since the cluster was made:
        #: :meth:`restore` rebuilds it rather than mend it.
        self.disturbed = False

    @property
    def bridge(self) -> str:
        return bridge_name(self.rid)

    @property
    def manager(self) -> Node:
        """Node 1, which initialised the swarm (and stays its leader)."""
        return self.nodes[0]

    def __enter__(self) -> "DockerCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- up -----------------------------------------------------------------
    def start(self) -> "DockerCluster":
        """Sweep leftovers, make the underlay, start the daemons, form the swarm.
        Whatever fails, what was made is removed before the error propagates."""
        began = time.monotonic()
        sweep(self.base)
        try:
            self._make_underlay()
            for node in self.nodes:
                self._start_daemon(node)
            for node in self.nodes:
                self._wait_daemon(node)
            self.manager.docker("swarm", "init", "--advertise-addr", self.manager.ip,
                                "--listen-addr", f"{self.manager.ip}:{SWARM_PORT}",
                                "--dispatcher-heartbeat", DISPATCHER_HEARTBEAT, timeout=JOIN_TIMEOUT, check=True)
            for node in self.nodes[1:]:
                self.join(node, "worker")
        except BaseException:
            self.stop()
            raise
        self.timings["up"] = time.monotonic() - began
        return self

    def _make_underlay(self) -> None:
        # The directory appears with its owner already recorded, so that a
        # sweep starting at the same moment never takes it for a leftover.
        staging = self.base / f".{self.rid}.new"
        staging.mkdir(parents=True)
        (staging / "owner").write_text(f"{os.getpid()}\n")
        staging.rename(self.dir)
        free = free_subnets(UNDERLAY_POOL)
        if not free:
            raise ClusterFailed(f"no /24 of {UNDERLAY_POOL} is free of the host's routes")
        self.subnet = free[0]
        _run("ip", "link", "add", self.bridge, "type", "bridge")
        _run("ip", "link", "set", self.bridge, "up")
        if _run("iptables", "-w", "-C", *forward_rule(self.bridge), check=False).returncode != 0:
            _run("iptables", "-w", "-I", *forward_rule(self.bridge))
        for index in range(1, self.size + 1):
            ns, veth = netns_name(self.rid, index), veth_name(self.rid, index)
            node_dir = self.dir / f"n{index}"
            node_dir.mkdir()
            (node_dir / "daemon.json").write_text("{}\n")
            _run("ip", "netns", "add", ns)
            _run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            _run("ip", "link", "set", veth, "master", self.bridge, "up")
            address = node_address(self.subnet, index)
            _run("ip", "-n", ns, "link", "set", "lo", "up")
            _run("ip", "-n", ns, "addr", "add", str(address), "dev", "eth0")
            _run("ip", "-n", ns, "link", "set", "eth0", "up")
            client = dataclasses.replace(
                self.profile, argv=(*self.profile.argv, "-H", f"unix://{node_dir / 'docker.sock'}"))
            self.nodes.append(Node(index, f"cftsw-{self.rid}-n{index}", ns, address, node_dir,
                                   Engine(client, f"{self.rid}n{index}")))

    def _start_daemon(self, node: Node) -> None:
        d = node.dir
        argv = [
            "nsenter", f"--net=/run/netns/{node.netns}",
            # a UTS namespace of its own, or every node reports the host's name
            "unshare", "--uts", "--", "sh", "-c", 'hostname "$0" && exec "$@"', node.hostname,
            DOCKERD, "--config-file", str(d / "daemon.json"), "--data-root", str(d / "data"),
            "--exec-root", str(d / "exec"), "--pidfile", str(d / "dockerd.pid"),
            "-H", f"unix://{node.socket}", "--iptables=false", "--bridge=none",
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        with open(d / "dockerd.log", "ab") as log:
            node.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env=env, start_new_session=True)

    def _wait_daemon(self, node: Node) -> None:
        deadline = time.monotonic() + DAEMON_START_TIMEOUT
        while True:
            if node.process.poll() is not None:
                raise ClusterFailed(f"dockerd of node {node.index} exited {node.process.returncode}:\n"
                                    f"{self._log_tail(node)}")
            if node.socket.exists() and self._answers(node):
                return
            if time.monotonic() > deadline:
                raise ClusterFailed(f"dockerd of node {node.index} did not answer within {DAEMON_START_TIMEOUT}s:\n"
                                    f"{self._log_tail(node)}")
            time.sleep(0.2)

    @staticmethod
    def _answers(node: Node) -> bool:
        # a daemon restarted on a swarm's state holds API calls while its swarm
        # component starts (up to 20 s for dockerd): a call that times out is "not yet"
        try:
            return node.docker("version", timeout=10).ok
        except EngineCallFailed:
            return False

    @staticmethod
    def _log_tail(node: Node, lines: int = 15) -> str:
        try:
            return "\n".join((node.dir / "dockerd.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # -- membership -------------------------------------------------------------
    def client_netns(self) -> str:
        """A network namespace on the underlay that is no node (made on first use, removed
        with the cluster): where a load generator reaches every node's published ports
        from, as a client outside the swarm would. Its path."""
        ns = netns_name(self.rid, 0)
        if not Path(f"/run/netns/{ns}").exists():
            veth = veth_name(self.rid, 0)
            _run("ip", "netns", "add", ns)
            _run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            _run("ip", "link", "set", veth, "master", self.bridge, "up")
            _run("ip", "-n", ns, "link", "set", "lo", "up")
            _run("ip", "-n", ns, "addr", "add", str(node_address(self.subnet, 0)), "dev", "eth0")
            _run("ip", "-n", ns, "link", "set", "eth0", "up")
        return f"/run/netns/{ns}"

    def join_token(self, role: str) -> str:
        """The manager's current join token for ``worker`` or ``manager``."""
        return self.manager.docker("swarm", "join-token", "-q", role, check=True).stdout.strip()

    def join_with(self, node: Node, token: str) -> CommandResult:
        """``swarm join`` of ``node`` with ``token``, whatever comes of it."""
        return node.docker("swarm", "join", "--token", token, "--advertise-addr", node.ip,
                           "--listen-addr", f"{node.ip}:{SWARM_PORT}", f"{self.manager.ip}:{SWARM_PORT}",
                           timeout=JOIN_TIMEOUT)

    def join(self, node: Node, role: str = "worker") -> str:
        """Join ``node`` with the current token of ``role``; wait until the manager
        lists it Ready. Returns its node ID."""
        result = self.join_with(node, self.join_token(role))
        if not result.ok:
            raise ClusterFailed(f"node {node.index} could not join as {role}:\n{result}")
        node_id = node.swarm_node_id()
        self.wait(lambda: self.node_info(node_id).get("Status", {}).get("State") == "ready",
                  JOIN_TIMEOUT, f"node {node.index} to be ready")
        return node_id

    def leave(self, node: Node) -> None:
        """``node`` leaves the swarm, and its entry is removed from the node list."""
        node_id = node.swarm_node_id()
        node.docker("swarm", "leave", "--force", timeout=JOIN_TIMEOUT, check=True)
        if node_id and node is not self.manager:
            self.wait(lambda: self.manager.docker("node", "rm", "--force", node_id).ok
                      or node_id not in self.node_ids(), JOIN_TIMEOUT, f"node {node.index} to be removable")

    def restore(self) -> None:
        """Put the cluster back as :meth:`start` made it: every node a Ready, Active
        member, node 1 the only manager and so the leader. Checks that change
        membership call it last. A cluster that saw a crash or a forced new
        cluster, or that mending leaves in another shape, is rebuilt instead."""
        if self.disturbed or not all(self.alive(node) for node in self.nodes):
            self.rebuild()
            return
        try:
            self._mend()
            problem = self.shape_problem()
        except (ClusterFailed, EngineCallFailed, AssertionError) as exc:
            problem = str(exc)
        if problem:
            self.rebuild()

    def shape_problem(self) -> str:
        """What differs from the shape :meth:`start` made ("" when nothing does)."""
        return shape_problem(self.nodes_ls(), [node.hostname for node in self.nodes], self.manager.hostname)

    def rebuild(self) -> None:
        """Tear the cluster down and start it afresh with the same nodes, the images
        loaded again: a few seconds, and nothing of the earlier swarm survives."""
        kept = dict(self.timings)
        for node in self.nodes:  # nothing of this swarm is kept: no need to let daemons leave in order
            self.crash(node)
        leftovers = self.stop()
        if leftovers:
            raise ClusterFailed(f"cluster {self.rid}: could not remove {', '.join(leftovers)}")
        self.start()
        for archive in self._archives:
            self.load_image(archive)
        self.disturbed = False
        self.timings = {**kept, "rebuilds": kept.get("rebuilds", 0) + 1}

    def _mend(self) -> None:
        for node in self.nodes[1:]:
            if node.swarm_state() != "active":
                for info in self.nodes_ls():  # its entry from before it left
                    if info["Hostname"] == node.hostname:
                        self.manager.docker("node", "rm", "--force", info["ID"])
                self.join(node, "worker")
        current = {node.swarm_node_id() for node in self.nodes}
        leader = self.manager.swarm_node_id()
        for info in self.nodes_ls():
            if info["ID"] not in current:  # an entry of a node that left and joined again
                self.manager.docker("node", "rm", "--force", info["ID"])
                continue
            if info["ID"] != leader and info.get("ManagerStatus"):
                self.manager.docker("node", "demote", info["ID"], check=True)
            if info.get("Availability") != "Active":
                self.manager.docker("node", "update", "--availability", "active", info["ID"], check=True)

    # -- faults and quorum ---------------------------------------------------------
    def alive(self, node: Node) -> bool:
        """Whether the node's daemon runs (it was not crashed, or was revived)."""
        return node.process is not None and node.process.poll() is None

    def crash(self, node: Node) -> None:
        """SIGKILL the node's daemon, the process that is its swarm manager and agent,
        as a machine that loses power would; the containers it started keep running.
        :meth:`restore` rebuilds a cluster that saw a crash."""
        self.disturbed = True
        if not self.alive(node):
            return
        node.process.kill()
        try:
            node.process.wait(timeout=DAEMON_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise ClusterFailed(f"the daemon of node {node.index} outlived SIGKILL for {DAEMON_STOP_TIMEOUT}s") \
                from None

    def revive(self, node: Node) -> None:
        """Start a crashed node's daemon again on its state; wait until it answers."""
        if self.alive(node):
            return
        self._start_daemon(node)
        self._wait_daemon(node)

    def promote_all(self) -> None:
        """Make every node a manager; wait until each is a reachable manager (the
        leader or Reachable in ``node ls``) and knows it is one."""
        workers = [info["ID"] for info in self.nodes_ls() if not info["ManagerStatus"]]
        if workers:
            self.manager.docker("node", "promote", *workers, check=True)
        self.wait(lambda: all(info["ManagerStatus"] in ("Leader", "Reachable") for info in self.nodes_ls()),
                  JOIN_TIMEOUT, "every node to be a reachable manager")
        for node in self.nodes:
            self.wait(lambda: node.docker("info", "--format", "{{.Swarm.ControlAvailable}}").stdout.strip() == "true",
                      JOIN_TIMEOUT, f"node {node.index} to take control as a manager")

    def leader(self) -> Node | None:
        """The node that a live manager's ``node ls`` names Leader; None while no
        live manager names one (no quorum, or an election under way)."""
        for node in self.nodes:
            if not self.alive(node):
                continue
            listed = node.docker("node", "ls", "--format", "{{json .}}")
            if not listed.ok:
                continue
            for line in listed.stdout.splitlines():
                info = json.loads(line) if line.strip() else {}
                if info.get("ManagerStatus") == "Leader":
                    return next((n for n in self.nodes if n.hostname == info["Hostname"]), None)
        return None

    def force_new_cluster(self, node: Node) -> CommandResult:
        """``swarm init --force-new-cluster`` on ``node``: the way out of a lost quorum,
        whatever comes of it. :meth:`restore` rebuilds the cluster afterwards."""
        self.disturbed = True
        return node.docker("swarm", "init", "--force-new-cluster", "--advertise-addr", node.ip,
                           "--listen-addr", f"{node.ip}:{SWARM_PORT}", timeout=JOIN_TIMEOUT)

    # -- queries --------------------------------------------------------------
    def nodes_ls(self, via: Node | None = None) -> list[dict]:
        """``node ls`` on the manager (or on the manager ``via``), one dict per line
        of its JSON format."""
        out = (via or self.manager).docker("node", "ls", "--format", "{{json .}}", check=True).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def node_ids(self) -> list[str]:
        return [n["ID"] for n in self.nodes_ls()]

    def node_info(self, node_id: str) -> dict:
        result = self.manager.docker("node", "inspect", node_id)
        return json.loads(result.stdout)[0] if result.ok else {}

    def node_by_id(self, node_id: str) -> Node:
        for node in self.nodes:
            if node.swarm_node_id() == node_id:
                return node
        raise ClusterFailed(f"no node of this cluster has swarm ID {node_id}")

    @staticmethod
    def wait(predicate, timeout: float, what: str, interval: float = 0.25):
        """Poll ``predicate()`` until truthy; an AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            time.sleep(interval)

    def load_image(self, archive: Path) -> None:
        """``docker load`` an image archive into every node (nothing is ever pulled)."""
        if archive not in self._archives:
            self._archives.append(archive)
        for node in self.nodes:
            loaded = node.docker("load", "-i", str(archive), timeout=300)
            if not loaded.ok:
                raise ClusterFailed(f"node {node.index} could not load {archive}:\n{loaded}")

    # -- down -----------------------------------------------------------------
    def stop(self) -> list[str]:
        """Remove everything the cluster made; returns what could not be removed."""
        began = time.monotonic()
        daemons = [n.process.pid for n in self.nodes if n.process and n.process.poll() is None]
        _kill_pids(daemons, DAEMON_STOP_TIMEOUT)
        for node in self.nodes:
            if node.process:
                try:
                    node.process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
            node.engine.close()
        leftovers = teardown(self.rid, self.dir)
        self.nodes = []
        self.timings["down"] = time.monotonic() - began
        return leftovers


# -- teardown and sweep ----------------------------------------------------------------


def _container_cgroups(data_root: Path, parent: str = "docker") -> list[Path]:
    """The cgroup directories of the containers a data root knows (cgroup ``parent/ID``)."""
    try:
        ids = [p.name for p in (data_root / "containers").iterdir()]
    except OSError:
        return []
    found = []
    for cid in ids:
        if re.fullmatch(r"[0-9a-f]{64}", cid):
            found += [Path(p) for p in Path("/sys/fs/cgroup").glob(f"*/{parent}/{cid}")]
            found += [Path(p) for p in Path("/sys/fs/cgroup").glob(f"{parent}/{cid}")]
    return found


def teardown(rid: str, cluster_dir: Path) -> list[str]:
    """Remove what the cluster ``rid`` made, whatever state it is in. Idempotent."""
    leftovers: list[str] = []
    namespaces = [line.split()[0] for line in _run("ip", "netns", "list", check=False).stdout.splitlines()
                  if line.split() and run_id_of(line.split()[0]) == rid]
    # Daemons, their containerd and shims live in the node's namespace; the
    # containers' processes in cgroups named by the containers' IDs.
    pids = []
    for ns in namespaces:
        pids += [int(p) for p in _run("ip", "netns", "pids", ns, check=False).stdout.split() if p.isdigit()]
    # dockerd's containers (data root "data") and refengine's (state root "root",
    # conformance/refcluster.py); both name a container's cgroup by its ID
    cgroups = [cg for node_dir in sorted(cluster_dir.glob("n*")) for cg in _container_cgroups(node_dir / "data")
               + _container_cgroups(node_dir / "root", parent="refengine")]
    for cg in cgroups:
        try:
            pids += [int(p) for p in (cg / "cgroup.procs").read_text().split()]
        except OSError:
            pass
    _kill_pids(sorted(set(pids) - {os.getpid()}), DAEMON_STOP_TIMEOUT)
    for cg in sorted(cgroups, key=lambda p: -len(p.parts)):
        try:
            cg.rmdir()
        except OSError:
            pass
    with open("/proc/self/mountinfo") as f:
        mountinfo = f.read()
    for point in mounts_under(mountinfo, str(cluster_dir)):
        _run("umount", "-l", point, check=False)
    for ns in namespaces:
        if _run("ip", "netns", "delete", ns, check=False).returncode != 0:
            leftovers.append(f"netns {ns}")
    bridge = bridge_name(rid)
    for line in _run("ip", "-o", "link", "show", check=False).stdout.splitlines():
        name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        if run_id_of(name) == rid:
            if _run("ip", "link", "delete", name, check=False).returncode != 0 and name == bridge:
                leftovers.append(f"link {name}")
    while _run("iptables", "-w", "-C", *forward_rule(bridge), check=False).returncode == 0:
        if _run("iptables", "-w", "-D", *forward_rule(bridge), check=False).returncode != 0:
            leftovers.append(f"iptables rule {' '.join(forward_rule(bridge))}")
            break
    if cluster_dir.exists():
        shutil.rmtree(cluster_dir, ignore_errors=True)
        if cluster_dir.exists():
            leftovers.append(f"directory {cluster_dir}")
    return leftovers


def _owner_alive(cluster_dir: Path) -> bool:
    try:
        return _pid_alive(int((cluster_dir / "owner").read_text().strip()))
    except (OSError, ValueError):
        return False


def sweep(base: Path = BASE_DIR) -> list[str]:
    """Tear down every cluster (``cft-sw*``) whose owning process is gone: the
    leftovers of a run that was killed. Returns the run ids swept."""
    rids = set()
    for line in _run("ip", "netns", "list", check=False).stdout.splitlines():
        if line.split() and (rid := run_id_of(line.split()[0])):
            rids.add(rid)
    for line in _run("ip", "-o", "link", "show", check=False).stdout.splitlines():
        if ":" in line and (rid := run_id_of(line.split(":")[1].strip().split("@")[0])):
            rids.add(rid)
    if base.exists():
        rids |= {p.name for p in base.iterdir() if re.fullmatch(r"[0-9a-f]{6}", p.name)}
    for line in _run("iptables", "-w", "-S", "FORWARD", check=False).stdout.splitlines():
        if m := re.search(rf"-i {LINK_PREFIX}([0-9a-f]{{6}}) ", line):
            rids.add(m.group(1))
    swept = sorted(rid for rid in rids if not _owner_alive(base / rid))
    for rid in swept:
        teardown(rid, base / rid)
    return swept


# -- the pytest plugin: --cluster, --cluster-nodes, the cluster fixture ------------------

#: What the session's cluster took to come up and go down (seconds), for the summary.
TIMINGS_KEY = pytest.StashKey[dict]()


@dataclass(frozen=True)
class ClusterSubject:
    """A cluster as checks see it: a name, capabilities, and the known deviations
    of its engine's profile (``[deviations."swarm/..."]`` in the engine's TOML)."""

    name: str
    capabilities: frozenset[str]

    def has(self, capability: str) -> bool:
        return capability in self.capabilities

    def deviation(self, check_id: str) -> Deviation | None:
        return profile_by_name(CLUSTER_KINDS[self.name]["engine"]).deviation(check_id)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance")
    group.addoption("--cluster", metavar="KIND", default=None, choices=sorted(CLUSTER_KINDS),
                    help="start a real multi-node cluster of this kind for suites/swarm (root only)")
    group.addoption("--cluster-nodes", metavar="N", type=int, default=3,
                    help="nodes of the --cluster (default 3; 1 for a quick single-node run)")


def _describe_cluster(config: pytest.Config, name: str) -> dict:
    profile = profile_by_name(CLUSTER_KINDS[name]["engine"])
    probe = Engine(profile, "describe")
    try:
        version = probe.version()
    finally:
        probe.close()
    return {"nodes": config.getoption("cluster_nodes"), "client": version,
            "capabilities": sorted(CLUSTER_KINDS[name]["capabilities"])}


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("cluster", None):
        register_describer(config, "cluster", _describe_cluster)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kind = config.getoption("cluster")
    cluster_items = [item for item in items if "cluster" in getattr(item, "fixturenames", ())]
    if not cluster_items:
        return
    if kind is None:
        skip = pytest.mark.skip(reason="needs a cluster: --cluster docker")
        for item in cluster_items:
            item.add_marker(skip)
        return
    subject = ClusterSubject(kind, CLUSTER_KINDS[kind]["capabilities"])
    for item in cluster_items:
        mark_for_subject(item, "cluster", subject)


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    timings = config.stash.get(TIMINGS_KEY, None)
    if timings:
        nodes = f"{timings['nodes']} node{'s' if timings['nodes'] != 1 else ''}"
        terminalreporter.write_line(
            f"cluster {config.getoption('cluster')}: {nodes} up in {timings.get('up', 0):.1f}s "
            f"(image loaded in {timings.get('image', 0):.1f}s), down in {timings.get('down', 0):.1f}s"
            + (f", rebuilt {timings['rebuilds']} times after crashes" if timings.get("rebuilds") else ""))


def start_cluster(kind: str, size: int, images_dir: Path) -> DockerCluster:
    """A started cluster of ``kind`` (CLUSTER_KINDS) with the offline test image loaded on
    every node; whatever fails, what was made is removed before the error propagates."""
    if kind == "refengine":
        from .refcluster import RefengineCluster as kind_class
    else:
        kind_class = DockerCluster
    started = kind_class(size, profile=profile_by_name(CLUSTER_KINDS[kind]["engine"]))
    started.start()
    try:
        began = time.monotonic()
        images, docker_archive, _ = testimage.write_archives(images_dir)
        started.load_image(docker_archive)
        started.images = images
        started.timings["image"] = time.monotonic() - began
    except BaseException:
        started.stop()
        raise
    return started


@pytest.fixture(scope="session")
def cluster(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> DockerCluster:
    """The running cluster (``--cluster``), with the offline test image loaded on every node."""
    if os.geteuid() != 0:
        pytest.skip("a cluster needs root (namespaces, bridges, dockerd)")
    started = start_cluster(pytestconfig.getoption("cluster"), pytestconfig.getoption("cluster_nodes"),
                            tmp_path_factory.mktemp("cluster-image"))
    yield started
    leftovers = started.stop()
    pytestconfig.stash[TIMINGS_KEY] = {"nodes": started.size, **started.timings}
    if leftovers:
        raise ClusterFailed(f"cluster {started.rid}: could not remove {', '.join(leftovers)}")

"""Real multi-node refengine swarms on this machine: ``--cluster refengine``.

The same layout as :mod:`conformance.cluster`'s docker swarm (one network
namespace per node on a bridge underlay, a UTS namespace for its hostname,
its own state directory), with refengine in place of dockerd: refengine is
daemonless, so a node is its network and UTS namespaces plus a state root,
and its CLI is ``nsenter --net=NS --uts=UTS refengine --root ROOT``. ``swarm
init``/``join`` start the node's swarm daemon (``swarmd``) in those
namespaces; :meth:`crash` SIGKILLs it and :meth:`revive` starts it again on
the same state.

What one node adds to the docker cluster's layout::

    /var/lib/cft-sw/RID/nK/uts        the node's UTS namespace (bind mount, from `unshare --uts=`)
    /var/lib/cft-sw/RID/nK/root/      the node's refengine state root (--root)

Teardown and the sweep of a killed run are the docker cluster's (:func:`conformance.cluster.teardown`:
processes in the nodes' network namespaces and in the containers' cgroups, which
refengine names `refengine/ID`, mounts, links, rule, directories).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from . import cluster as base
from .engine import Engine

class RefengineCluster(base.DockerCluster):
    """N refengine nodes in a swarm on this machine."""

    def _node_root(self, node: base.Node) -> Path:
        return node.dir / "root"

    def _make_underlay(self) -> None:
        super()._make_underlay()
        for node in self.nodes:
            root = self._node_root(node)
            root.mkdir(mode=0o711)
            uts = node.dir / "uts"
            uts.touch()
            base._run("unshare", f"--uts={uts}", "hostname", node.hostname)
            program, *rest = self.profile.argv
            # nsenter looks the program up in PATH, which need not hold the venv's bin
            program = shutil.which(program) or shutil.which(program, path=os.path.dirname(sys.executable)) or program
            argv = ("nsenter", f"--net=/run/netns/{node.netns}", f"--uts={uts}", program, *rest,
                    "--root", str(root))
            client = dataclasses.replace(self.profile, argv=argv,
                                         env={k: v for k, v in self.profile.env.items() if k != "REFENGINE_ROOT"})
            node.engine.close()
            node.engine = Engine(client, node.engine.run_id)

    def _start_daemon(self, node: base.Node) -> None:
        """Nothing to start: ``swarm init``/``join`` start the node's swarmd."""

    def _wait_daemon(self, node: base.Node) -> None:
        result = node.docker("version", timeout=30)
        if not result.ok:
            raise base.ClusterFailed(f"refengine on node {node.index} does not answer:\n{result}")

    # -- the swarm daemon of a node ------------------------------------------------
    def swarmd_pid(self, node: base.Node) -> int | None:
        try:
            pid = int((self._node_root(node) / "swarm" / "swarmd.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if base._pid_alive(pid) else None

    def alive(self, node: base.Node) -> bool:
        return self.swarmd_pid(node) is not None

    def crash(self, node: base.Node) -> None:
        """SIGKILL the node's swarm daemon (its containers keep running, as
        dockerd's do with live-restore)."""
        self.disturbed = True
        pid = self.swarmd_pid(node)
        if pid is None:
            return
        os.kill(pid, signal.SIGKILL)
        if node.process is not None and node.process.pid == pid:  # revived by us: reap it, or it stays a zombie
            node.process.wait(timeout=base.DAEMON_STOP_TIMEOUT)
        self.wait(lambda: not base._pid_alive(pid), base.DAEMON_STOP_TIMEOUT, f"swarmd of node {node.index} to die")

    def revive(self, node: base.Node) -> None:
        """Start the node's swarm daemon again on its state; wait until it answers."""
        if self.alive(node):
            return
        root = self._node_root(node)
        argv = ["nsenter", f"--net=/run/netns/{node.netns}", f"--uts={node.dir / 'uts'}", sys.executable, "-m",
                "reference_runtime.swarm.swarmd", "--root", str(root)]
        (root / "swarm").mkdir(parents=True, exist_ok=True)
        with open(root / "swarm" / "swarmd.log", "ab") as log:
            node.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
        self.wait(lambda: node.docker("info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip() == "active",
                  base.DAEMON_START_TIMEOUT, f"swarmd of node {node.index} to answer")

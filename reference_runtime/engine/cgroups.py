"""A container's cgroups: membership (listing and killing every process),
the freezer (pause), memory and pids limits, the OOM-kill counter.

Every container gets a cgroup v2 directory: ``/sys/fs/cgroup/refengine/<id>``
on a unified host, ``/sys/fs/cgroup/unified/refengine/<id>`` on a hybrid one
(these machines). The container's first process is created directly inside
it with clone3(CLONE_INTO_CGROUP): moving a task between cgroups takes a
global lock whose first write waits for an RCU grace period (~10 ms), and
the v2 core files (cgroup.procs, cgroup.freeze, cgroup.kill) need no
controller. On a hybrid host the v1 ``memory`` and ``pids`` controllers
(/sys/fs/cgroup/<controller>/refengine/<id>) are joined only when a limit
asks for them; the v1 freezer is used only where there is no v2 hierarchy.
"""

from __future__ import annotations

import os
import time

BASE = "/sys/fs/cgroup"
PARENT = "refengine"


def unified() -> bool:
    """A cgroup v2-only host."""
    return os.path.exists(f"{BASE}/cgroup.controllers")


def _write(path: str, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


class Cgroup:
    """The cgroups of one container. ``memory``/``pids``: whether the v1 controller is
    wanted (None: use it if it exists, for an already created container)."""

    def __init__(self, cid: str, memory: bool | None = None, pids: bool | None = None):
        self.cid = cid
        self.v2_only = unified()
        self.v1: dict[str, str] = {}
        if self.v2_only:
            self.dir: str | None = f"{BASE}/{PARENT}/{cid}"
            return
        self.dir = f"{BASE}/unified/{PARENT}/{cid}" if os.path.isdir(f"{BASE}/unified") else None
        for controller, want in (("memory", memory), ("pids", pids)):
            path = f"{BASE}/{controller}/{PARENT}/{cid}"
            if (want or (want is None and os.path.isdir(path))) and os.path.isdir(f"{BASE}/{controller}"):
                self.v1[controller] = path
        if self.dir is None and os.path.isdir(f"{BASE}/freezer"):
            self.v1["freezer"] = f"{BASE}/freezer/{PARENT}/{cid}"

    # -- life ------------------------------------------------------------------
    def create(self, memory: int = 0, memory_swap: int = 0, pids: int = 0) -> None:
        if self.dir is not None:
            parent = os.path.dirname(self.dir)
            if self.v2_only and not os.path.isdir(parent):
                os.makedirs(parent, exist_ok=True)
                wanted = set(_read(f"{BASE}/cgroup.controllers").split()) & {"memory", "pids"}
                for d in (BASE, parent):
                    try:
                        _write(f"{d}/cgroup.subtree_control", " ".join("+" + c for c in sorted(wanted)))
                    except OSError:
                        pass
            os.makedirs(self.dir, exist_ok=True)
        for d in self.v1.values():
            os.makedirs(d, exist_ok=True)
        if self.v2_only:
            if memory > 0:
                _write(f"{self.dir}/memory.max", str(memory))
                if memory_swap > 0 and os.path.exists(f"{self.dir}/memory.swap.max"):
                    _write(f"{self.dir}/memory.swap.max", str(max(memory_swap - memory, 0)))
            if pids > 0:
                _write(f"{self.dir}/pids.max", str(pids))
            return
        if memory > 0:
            _write(f"{self.v1['memory']}/memory.limit_in_bytes", str(memory))
            if memory_swap != 0 and os.path.exists(f"{self.v1['memory']}/memory.memsw.limit_in_bytes"):
                try:
                    _write(f"{self.v1['memory']}/memory.memsw.limit_in_bytes", str(memory_swap))
                except OSError:
                    pass  # swap accounting off
        if pids > 0:
            _write(f"{self.v1['pids']}/pids.max", str(pids))

    def open_v2(self) -> int | None:
        """An fd of the v2 cgroup for clone3(CLONE_INTO_CGROUP), or None."""
        if self.dir is None:
            return None
        return os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def join_self(self, v2: bool) -> None:
        """Move the calling process in (``0`` means the writer, also inside a pid
        namespace); ``v2=False`` when clone3 already placed it in the v2 cgroup."""
        for d in self.v1.values():
            _write(f"{d}/cgroup.procs", "0")
        if v2 and self.dir is not None:
            _write(f"{self.dir}/cgroup.procs", "0")

    def pids(self) -> list[int]:
        d = self.dir or self.v1.get("pids") or self.v1.get("freezer")
        if d is None:
            return []
        try:
            return [int(p) for p in _read(f"{d}/cgroup.procs").split()]
        except OSError:
            return []

    def oom_kills(self) -> int:
        """How many processes the OOM killer took from this cgroup so far."""
        try:
            if self.v2_only:
                text = _read(f"{self.dir}/memory.events")
            elif "memory" in self.v1:
                text = _read(f"{self.v1['memory']}/memory.oom_control")
            else:
                return 0
        except OSError:
            return 0
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def freeze(self, frozen: bool) -> None:
        if self.dir is not None:
            _write(f"{self.dir}/cgroup.freeze", "1" if frozen else "0")
            path, want = f"{self.dir}/cgroup.events", ("frozen 1" if frozen else "frozen 0")
        elif "freezer" in self.v1:
            _write(f"{self.v1['freezer']}/freezer.state", "FROZEN" if frozen else "THAWED")
            path, want = f"{self.v1['freezer']}/freezer.state", ("FROZEN" if frozen else "THAWED")
        else:
            raise OSError(95, "no freezer: neither cgroup v2 nor the v1 freezer controller is available")
        for _ in range(500):  # bounded: a freeze settles in milliseconds
            if want in _read(path):
                return
            time.sleep(0.002)

    def kill_all(self) -> None:
        """SIGKILL every process left in the cgroup (thawing it first, or they never die)."""
        try:
            self.freeze(False)
        except OSError:
            pass
        if self.dir is not None and os.path.exists(f"{self.dir}/cgroup.kill"):
            try:
                _write(f"{self.dir}/cgroup.kill", "1")
            except OSError:
                pass
        for _ in range(100):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass
            time.sleep(0.01)

    def destroy(self) -> None:
        """Remove the cgroups; processes still in them are killed first."""
        if self.pids():
            self.kill_all()
        for d in [*self.v1.values(), *([self.dir] if self.dir else [])]:
            for _ in range(100):
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)  # EBUSY until the last task is released

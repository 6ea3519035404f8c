"""A container's cgroup: memory and pids limits, the freezer (pause), the
OOM-kill counter and killing every process left in it.

cgroup v1 (one hierarchy per controller: /sys/fs/cgroup/<controller>/refengine/<id>,
what these machines have) and v2 where /sys/fs/cgroup is unified
(/sys/fs/cgroup/refengine/<id>). Thin: only file reads and writes.
"""

from __future__ import annotations

import os
import time

BASE = "/sys/fs/cgroup"
PARENT = "refengine"
V1_CONTROLLERS = ("memory", "pids", "freezer")


def unified() -> bool:
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
    """The cgroup(s) of one container."""

    def __init__(self, cid: str, memory: bool = True):
        """``memory=False`` leaves out the v1 memory controller: without a limit it
        only costs time (a process's first charge to a new memory cgroup takes
        milliseconds) and tells nothing."""
        self.cid = cid
        self.v2 = unified()
        if self.v2:
            self.dirs = {"unified": f"{BASE}/{PARENT}/{cid}"}
        else:
            self.dirs = {c: f"{BASE}/{c}/{PARENT}/{cid}" for c in V1_CONTROLLERS
                         if (memory or c != "memory") and os.path.isdir(f"{BASE}/{c}")}

    def _path(self, controller: str, name: str) -> str:
        return os.path.join(self.dirs["unified" if self.v2 else controller], name)

    def create(self, memory: int = 0, memory_swap: int = 0, pids: int = 0) -> None:
        if self.v2:
            parent = f"{BASE}/{PARENT}"
            if not os.path.isdir(parent):
                os.makedirs(parent, exist_ok=True)
                wanted = set(_read(f"{BASE}/cgroup.controllers").split()) & {"memory", "pids"}
                for d in (BASE, parent):
                    try:
                        _write(f"{d}/cgroup.subtree_control", " ".join("+" + c for c in sorted(wanted)))
                    except OSError:
                        pass
            os.makedirs(self.dirs["unified"], exist_ok=True)
            if memory > 0:
                _write(self._path("memory", "memory.max"), str(memory))
                if memory_swap > 0 and os.path.exists(self._path("memory", "memory.swap.max")):
                    _write(self._path("memory", "memory.swap.max"), str(max(memory_swap - memory, 0)))
            if pids > 0:
                _write(self._path("pids", "pids.max"), str(pids))
            return
        for d in self.dirs.values():
            os.makedirs(d, exist_ok=True)
        if memory > 0:
            _write(self._path("memory", "memory.limit_in_bytes"), str(memory))
            if memory_swap != 0 and os.path.exists(self._path("memory", "memory.memsw.limit_in_bytes")):
                try:
                    _write(self._path("memory", "memory.memsw.limit_in_bytes"), str(memory_swap))
                except OSError:
                    pass  # swap accounting off
        if pids > 0:
            _write(self._path("pids", "pids.max"), str(pids))

    def join_self(self) -> None:
        """Move the calling process in (``0`` means the writer, also from inside a pid namespace)."""
        for d in self.dirs.values():
            _write(f"{d}/cgroup.procs", "0")

    def join(self, pid: int) -> None:
        for d in self.dirs.values():
            _write(f"{d}/cgroup.procs", str(pid))

    def pids(self) -> list[int]:
        d = self.dirs["unified" if self.v2 else ("pids" if "pids" in self.dirs else next(iter(self.dirs)))]
        try:
            return [int(p) for p in _read(f"{d}/cgroup.procs").split()]
        except OSError:
            return []

    def oom_kills(self) -> int:
        """How many processes the OOM killer took from this cgroup so far."""
        try:
            if self.v2:
                text = _read(self._path("memory", "memory.events"))
            else:
                text = _read(self._path("memory", "memory.oom_control"))
        except (OSError, KeyError):
            return 0
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def freeze(self, frozen: bool) -> None:
        if self.v2:
            _write(self._path("freezer", "cgroup.freeze"), "1" if frozen else "0")
            want = "frozen 1" if frozen else "frozen 0"
            path = self._path("freezer", "cgroup.events")
        else:
            _write(self._path("freezer", "freezer.state"), "FROZEN" if frozen else "THAWED")
            want = "FROZEN" if frozen else "THAWED"
            path = self._path("freezer", "freezer.state")
        for _ in range(500):  # bounded: a freeze settles in milliseconds
            if want in _read(path):
                return
            time.sleep(0.002)

    def kill_all(self) -> None:
        """SIGKILL every process left in the cgroup (thawing it first, or they never die)."""
        import signal

        try:
            self.freeze(False)
        except (OSError, KeyError):
            pass
        for _ in range(100):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.01)

    def destroy(self) -> None:
        """Remove the cgroup; processes still in it are killed first."""
        if self.pids():
            self.kill_all()
        for d in self.dirs.values():
            for _ in range(100):
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)  # EBUSY until the last task is released

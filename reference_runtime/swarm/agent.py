"""The agent of a node: runs the tasks the dispatcher assigned to this node as
refengine containers and reports how they fare.

Each heartbeat brings the node's whole assignment (every task the managers
have placed here, with its desired state); :meth:`Agent.converge` makes the
containers match it and returns the status changes to report. Nothing is kept
on disk: the task a container belongs to is in its labels
(:mod:`.taskspec`), so an agent restarted after SIGKILL picks up where it was.

Containers are created, started, stopped and removed through refengine's own
command line in a subprocess (the same commands a user types), never
in-process: the supervisor a container start forks must not inherit the
daemon's event loop, sockets and certificates.

State order (docker's): a report never moves a task backwards; the
orchestrator decides what happens to a task that ended.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from dataclasses import dataclass

from ..engine.state import Root, rfc3339
from ..errors import ContainerError
from . import overlaynode, taskspec
from .state import RANK

log = logging.getLogger("swarmd.agent")

FINAL = frozenset({"complete", "shutdown", "failed", "rejected", "remove", "orphaned"})

#: Bounded engine calls (seconds): a create or start of a busybox container takes
#: well under a second here; stop waits for the grace period first.
CALL_TIMEOUT = 60.0
#: How long a task in a rotation (a network's DNS names, a virtual IP, a published port) keeps running once told
#: to stop, so that every node has taken it out of the rotation first (they learn it at
#: their next heartbeat, every 0.5 s): new connections never reach a stopping task
#: (moby#30321, the fix users asked docker for).
ROTATION_DRAIN = 2.0


@dataclass
class Container:
    id: str
    task_id: str
    running: bool
    status: str
    exit_code: int
    pid: int
    error: str
    #: the health check's status ("starting", "healthy", "unhealthy"); "" without one
    health: str = ""


def refengine_argv(root_path: str) -> list[str]:
    """How this daemon calls refengine: the same interpreter, so a venv's refengine."""
    return [sys.executable, "-m", "reference_runtime.engine.cli", "--root", root_path]


class Agent:
    def __init__(self, root_path: str, node_id: str, changed=lambda: None):
        self.root = Root(root_path)
        #: called when a status change waits to be reported: the daemon reports it
        #: at once rather than at its next heartbeat
        self.changed = changed
        self.argv = refengine_argv(root_path)
        self.node_id = node_id
        #: task ID -> the last status reported for it
        self.reported: dict[str, dict] = {}
        #: task ID -> the operation in flight for it
        self.busy: dict[str, asyncio.Task] = {}
        #: status changes found by operations, waiting for the next report
        self.pending: dict[str, dict] = {}
        #: the data path of the overlay networks (its view comes with each heartbeat reply)
        self.overlay = overlaynode.OverlayNode(root_path, self.argv)
        self._overlay_sync: asyncio.Task | None = None

    # -- engine calls ----------------------------------------------------------
    async def call(self, *args: str, timeout: float = CALL_TIMEOUT) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            *self.argv, *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, start_new_session=True)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            return 124, "", f"refengine {args[0]} did not finish within {timeout:.0f}s"
        return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")

    def containers(self) -> dict[str, Container]:
        """Task ID -> its container on this node (read from the state root)."""
        found: dict[str, Container] = {}
        for task_id, (cid, state) in taskspec.task_containers(self.root).items():
            found[task_id] = Container(cid, task_id, bool(state.get("Running")), state.get("Status", ""),
                                       int(state.get("ExitCode") or 0), int(state.get("Pid") or 0),
                                       state.get("Error") or "", (state.get("Health") or {}).get("Status") or "")
        return found

    # -- convergence -----------------------------------------------------------
    def converge(self, assignment: list[dict]) -> list[dict]:
        """Start what must run, stop what must not, remove what is no longer
        assigned; returns the status updates found since the last call,
        ``[{"task_id", "status"}]``. Operations run in the background, one at a
        time per task."""
        if self.overlay.view and (self._overlay_sync is None or self._overlay_sync.done()):
            self._overlay_sync = asyncio.get_running_loop().create_task(self.overlay.sync())
        containers = self.containers()
        assigned = {entry["task"]["ID"]: entry for entry in assignment}
        for task_id, entry in assigned.items():
            if task_id in self.busy:
                continue
            task = entry["task"]
            desired = task.get("DesiredState", "running")
            current = task.get("Status", {}).get("State", "new")
            container = containers.get(task_id)
            if desired == "ready" and container is None:
                continue  # "wait": a restart delay, or an old task of the slot still stopping
            if RANK.get(desired, 0) <= RANK["running"]:
                if container is None and current in ("assigned", "new", "pending"):
                    self._spawn(task_id, self._start(entry))
                elif container is not None and container.status == "created":
                    # created by an agent killed before its start: start it now
                    self._spawn(task_id, self._start_created(entry))
                elif container is not None:
                    self._observe(task, container)
                elif current not in FINAL and current != "assigned" and task_id not in self.pending:
                    # it was being started by an agent that is gone: its container never came
                    self._update(task_id, "rejected", "task: container vanished", err="No such container")
            else:  # desired shutdown, remove, ...
                if container is not None and container.running:
                    self._spawn(task_id, self._stop(task, container, drain=bool(entry.get("rotation"))))
                elif current not in FINAL:
                    code = container.exit_code if container else 0
                    self._update(task_id, "shutdown", "shutdown", exit_code=code, container=container)
        for task_id, container in containers.items():
            if task_id not in assigned and task_id not in self.busy:
                self._spawn(task_id, self._remove(container))
        for task_id in list(self.reported):
            if task_id not in assigned:
                del self.reported[task_id]
        updates = [{"task_id": tid, "status": status} for tid, status in self.pending.items()]
        self.pending.clear()
        return updates

    def _spawn(self, task_id: str, coro) -> None:
        job = asyncio.get_running_loop().create_task(coro)
        self.busy[task_id] = job
        job.add_done_callback(lambda _job, tid=task_id: self.busy.pop(tid, None))

    def _update(self, task_id: str, state: str, message: str, *, err: str = "", exit_code: int | None = None,
                container: Container | None = None) -> None:
        last = self.reported.get(task_id, {}).get("State")
        if last is not None and (last == state or RANK.get(state, 0) < RANK.get(last, 0)):
            return
        status = {"Timestamp": rfc3339(), "State": state, "Message": message}
        if err:
            status["Err"] = err
        if container is not None:
            status["ContainerStatus"] = {"ContainerID": container.id, "PID": container.pid if container.running
                                         else 0, "ExitCode": exit_code if exit_code is not None else 0}
        self.reported[task_id] = status
        self.pending[task_id] = status
        self.changed()

    def _observe(self, task: dict, container: Container) -> None:
        """A running task's container ended, or a started one runs now."""
        if container.running and container.health == "unhealthy":
            # swarm replaces an unhealthy task: it fails, its container is stopped
            self._spawn(task["ID"], self._fail_unhealthy(task, container))
        elif container.running and container.health == "starting":
            pass  # docker's task stays "starting" until its health check passes (no rotation yet)
        elif container.running:
            self._update(task["ID"], "running", "started", container=container)
        elif container.status in ("exited", "dead"):
            if container.exit_code == 0:
                self._update(task["ID"], "complete", "finished", exit_code=0, container=container)
            else:
                self._update(task["ID"], "failed", "started",
                             err=f"task: non-zero exit ({container.exit_code})", exit_code=container.exit_code,
                             container=container)

    async def _start(self, entry: dict) -> None:
        task, service_name = entry["task"], entry["service_name"]
        task_id = task["ID"]
        self._update(task_id, "accepted", "accepted")
        self._update(task_id, "preparing", "preparing")
        if task.get("NetworksAttachments"):
            await self.overlay.prepare(task)
        try:
            argv = taskspec.create_argv(task, service_name)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # a spec no container can be made of (no image, a value of the wrong type): the
            # task fails here, as docker rejects it, instead of staying "preparing" for ever
            self._update(task_id, "rejected", "preparing", err=f"invalid container spec: {exc!r}")
            return
        status, _, err = await self.call("create", *argv)
        if status != 0:
            self._update(task_id, "rejected", "preparing", err=_one_line(err) or f"create exited {status}")
            return
        await self._start_created(entry)

    async def _start_created(self, entry: dict) -> None:
        task, service_name = entry["task"], entry["service_name"]
        task_id = task["ID"]
        self._update(task_id, "starting", "starting")
        status, _, err = await self.call("start", taskspec.task_name(service_name, task))
        container = self.containers().get(task_id)
        if status != 0:
            self._update(task_id, "failed", "starting", err=_one_line(err) or f"start exited {status}",
                         exit_code=container.exit_code if container else None, container=container)
            return
        if task.get("NetworksAttachments"):  # its network's VXLAN port and names, without waiting a heartbeat
            await self.overlay.sync(force=True)
        if container is not None:
            self._observe(task, container)

    async def _fail_unhealthy(self, task: dict, container: Container) -> None:
        # reported before the stop, as docker's executor fails the task first: every node
        # takes it out of its rotation (within ROTATION_DRAIN), not after its stop grace
        # period with new connections still sent to a stopping container
        self._update(task["ID"], "failed", "started", err="task: container unhealthy", container=container)
        await self._stop(task, container, drain=True, report=False)

    async def _stop(self, task: dict, container: Container, *, drain: bool = False, report: bool = True) -> None:
        if drain:
            await asyncio.sleep(ROTATION_DRAIN)
        grace = task.get("Spec", {}).get("ContainerSpec", {}).get("StopGracePeriod", 10 * taskspec.NS)
        status, _, err = await self.call("stop", "--time", taskspec.stop_seconds(grace), container.id,
                                         timeout=CALL_TIMEOUT + grace / taskspec.NS)
        if status != 0:
            log.warning("stop of task %s: %s", task["ID"], _one_line(err))
        if not report:
            return
        after = self.containers().get(task["ID"])
        code = after.exit_code if after else 0
        self._update(task["ID"], "shutdown", "shutdown", exit_code=code, container=after or container)

    async def _remove(self, container: Container) -> None:
        status, _, err = await self.call("rm", "--force", container.id)
        if status != 0 and "No such container" not in err:
            log.warning("rm of %s: %s", container.id[:12], _one_line(err))

    async def remove_all(self) -> None:
        """Leaving the swarm: every task container of this node goes (docker does the same)."""
        await asyncio.gather(*self.busy.values(), return_exceptions=True)
        await asyncio.gather(*(self._remove(c) for c in self.containers().values()))
        # and the node's part of the overlays and the routing mesh (an empty view): a node
        # that left would otherwise keep taking the published ports into the swarm's overlays
        self.overlay.view = {}
        try:
            await self.overlay.sync(force=True)
        except (ContainerError, OSError) as exc:  # the node leaves all the same
            log.warning("overlays of a node that leaves: %s", exc)

    async def close(self) -> None:
        if self._overlay_sync is not None:
            self._overlay_sync.cancel()
        await self.overlay.proxy.close()
        for job in list(self.busy.values()):
            job.cancel()
        await asyncio.gather(*self.busy.values(), return_exceptions=True)


def _one_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


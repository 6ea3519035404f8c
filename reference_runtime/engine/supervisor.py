"""The per-container supervisor: a process that outlives the CLI (double
fork, setsid), starts the container with clone(2) so that it is the
container's parent, reaps it, records its exit status (128+n for a signal
death, OOMKilled from the cgroup's oom_kill counter), writes the json-file
log, tees the output to an attached CLI, and applies the restart policy
with docker's back-off. It exits when the container stops for good (after
removing it for ``--rm``).

The CLI that started it reads a status pipe: ``started PID``, then, when
attached, ``exit CODE``; or ``error CODE MESSAGE`` when the command could
not be executed. The container has PR_SET_PDEATHSIG=SIGKILL: if the
supervisor is killed, the container dies with it, and the next CLI call
sees the dead supervisor (pid + start time) and records the truth.

The first start runs under the container lock taken by the CLI (the lock's
open file is inherited across the fork), so no other CLI call can see the
container half-started.
"""

from __future__ import annotations

import os
import select
import time

import _signal

from . import logs, process
from . import syscalls as sc
from .cgroups import Cgroup
from .restart import next_delay, should_restart
from .state import Root, process_start, rfc3339, trace


def spawn(root: Root, cid: str, lock_fd: int, *, attach: bool, interactive: bool) -> int:
    """Fork the supervisor of ``cid``; returns the read end of its status pipe."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.setsid()
            if os.fork() != 0:
                os._exit(0)
            os.close(r)
            Supervisor(root, cid, w, lock_fd, attach=attach, interactive=interactive).run()
        except BaseException:  # noqa: BLE001 - a forked CLI must never return into the CLI's code
            code = 1
        os._exit(code)
    os.close(w)
    os.waitpid(pid, 0)
    return r


class Supervisor:
    def __init__(self, root: Root, cid: str, status_fd: int, lock_fd: int, *, attach: bool, interactive: bool):
        self.root, self.cid = root, cid
        self.status_fd = status_fd
        self.lock_fd = lock_fd  # inherited, held: released after the first start is recorded
        self.attach, self.interactive = attach, interactive
        self.out = self.err = self.stdin = -1
        self.hold_stdin = -1
        self.me = os.getpid()
        self.trash = ""

    # -- plumbing ------------------------------------------------------------
    def _detach_stdio(self) -> None:
        if self.attach:
            self.out, self.err = os.dup(1), os.dup(2)
            if self.interactive:
                self.stdin = os.dup(0)
        elif self.interactive:
            # -d -i: stdin stays open (and empty), like docker's attached-later stdin.
            self.stdin, self.hold_stdin = os.pipe()
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
        keep = {0, 1, 2, self.status_fd, self.lock_fd, self.out, self.err, self.stdin, self.hold_stdin}
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            if fd not in keep:
                try:
                    os.close(fd)
                except OSError:
                    pass

    def _notify(self, message: str) -> None:
        if self.status_fd < 0:
            return
        try:
            os.write(self.status_fd, (message + "\n").encode())
        except OSError:
            self._close_status()

    def _close_status(self) -> None:
        if self.status_fd >= 0:
            os.close(self.status_fd)
            self.status_fd = -1

    def _close_attach(self) -> None:
        for attr in ("out", "err", "stdin"):
            fd = getattr(self, attr)
            if fd >= 0:
                os.close(fd)
                setattr(self, attr, -1)

    def _release_first_lock(self) -> None:
        if self.lock_fd >= 0:
            os.close(self.lock_fd)
            self.lock_fd = -1

    def _update(self, change) -> dict | None:
        """Apply ``change(state)`` under the lock; None if the container is gone or
        another supervisor owns it now."""
        def apply() -> dict | None:
            try:
                state = self.root.read_state(self.cid)
            except Exception:  # noqa: BLE001 - removed under us
                return None
            sup = state.get("Supervisor", {}).get("Pid")
            if sup not in (0, self.me) and self.lock_fd < 0:
                return None
            if change(state) is False:
                return state
            self.root.write_state(self.cid, state)
            return state

        if self.lock_fd >= 0:
            return apply()
        if not os.path.isdir(self.root.container_dir(self.cid)):
            return None
        try:
            with self.root.lock(self.cid):
                return apply()
        except FileNotFoundError:
            return None

    # -- the life of the container -----------------------------------------
    def run(self) -> None:
        trace("supervisor: forked")
        self._detach_stdio()
        _signal.signal(_signal.SIGINT, _signal.SIG_IGN)
        _signal.signal(_signal.SIGHUP, _signal.SIG_IGN)
        _signal.pthread_sigmask(_signal.SIG_BLOCK, [_signal.SIGUSR1])
        sc.set_process_name("refengine-sup")
        from .runtime import container_plan

        config = self.root.read_config(self.cid)
        host = config["HostConfig"]
        policy = host["RestartPolicy"]
        cgroup = Cgroup(self.cid, memory=bool(host.get("Memory")), pids=bool(host.get("PidsLimit")))
        cgroup.create(host.get("Memory") or 0, host.get("MemorySwap") or 0, host.get("PidsLimit") or 0)
        self.cgroup_fd = cgroup.open_v2()
        trace("supervisor: cgroup created")
        delay = 0.0
        first = True
        try:
            while True:
                try:
                    plan = container_plan(self.root, config, cgroup)
                except Exception as exc:  # noqa: BLE001 - one line to the user, not a traceback
                    self._start_failed(125, str(exc), first)
                    return
                started = time.time_ns()
                result = self._start_and_monitor(plan, cgroup, started, first)
                if result is None:
                    return
                code, oom = result
                finished = max(time.time_ns(), started)
                decision = {}

                def record(state: dict) -> None:
                    restart = should_restart(policy["Name"], policy.get("MaximumRetryCount", 0),
                                             restart_count=state["RestartCount"], exit_code=code,
                                             manually_stopped=state["ManualStop"])
                    decision["restart"] = restart
                    state.update(Pid=0, PidStart=0, ExitCode=code, OOMKilled=oom, FinishedAt=rfc3339(finished),
                                 Paused=False, Error="")
                    if restart:
                        state.update(Status="restarting", Running=True, Restarting=True,
                                     RestartCount=state["RestartCount"] + 1)
                    else:
                        state.update(Status="exited", Running=False, Restarting=False)

                gone = self._update(record) is None
                trace("supervisor: exit recorded")
                self.root.event("container", "die", self.cid, {"exitCode": str(code)})
                restart = decision.get("restart", False) and not gone
                if first:
                    self._close_attach()
                    if not restart and not gone and host.get("AutoRemove"):
                        self._remove()
                        gone = True
                        trace("supervisor: removed (--rm)")
                    self._notify(f"exit {code}")
                    self._close_status()
                first = False
                if not restart:
                    if not gone and host.get("AutoRemove"):
                        self._remove()
                    return
                delay = next_delay(delay, ran_for=(finished - started) / 1e9)
                _signal.sigtimedwait([_signal.SIGUSR1], delay)
                state = self._update(lambda s: False)
                if state is None or state["Status"] != "restarting" or state["ManualStop"]:
                    return
        finally:
            cgroup.destroy()
            if self.trash:
                from .runtime import purge

                purge(self.trash)
                self.root.event("container", "destroy", self.cid)

    def _remove(self) -> None:
        """--rm: the container disappears now; its files are purged after the CLI is told."""
        from .runtime import remove_files

        try:
            with self.root.lock(self.cid):
                self.trash = remove_files(self.root, self.cid, volumes=True, cgroups=False)
        except (FileNotFoundError, OSError):
            pass

    def _start_failed(self, code: int, message: str, first: bool) -> None:
        def record(state: dict) -> None:
            # docker leaves a container whose command could not start "created", with the status.
            state.update(ExitCode=code, Error=message, Running=False, Pid=0, Restarting=False,
                         Status="created" if state["Status"] == "created" else "exited")

        self._update(record)
        self._release_first_lock()
        config = self.root.read_config(self.cid)
        if config["HostConfig"].get("AutoRemove"):
            self._remove()
        self._close_attach()
        self._notify(f"error {code} {message}")
        self._close_status()

    def _start_and_monitor(self, plan: dict, cgroup: Cgroup, started: int, first: bool) -> tuple[int, bool] | None:
        oom_before = cgroup.oom_kills()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        x_r, x_w = os.pipe()
        stdin = self.stdin if self.stdin >= 0 else os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
        trace("supervisor: clone")
        plan["join_v2"] = self.cgroup_fd is None
        if self.cgroup_fd is not None:
            try:
                pid = sc.clone_into_cgroup(plan["clone_flags"], self.cgroup_fd)
            except OSError:  # no clone3 (Linux < 5.7): clone, then the child joins
                plan["join_v2"] = True
                pid = sc.clone(plan["clone_flags"])
        else:
            pid = sc.clone(plan["clone_flags"])
        if pid == 0:
            try:
                os.dup2(stdin, 0)
                os.dup2(out_w, 1)
                os.dup2(err_w, 2)
                process.container_main(plan, x_w)
            finally:
                os._exit(125)
        for fd in (out_w, err_w, x_w):
            os.close(fd)
        if stdin != self.stdin:
            os.close(stdin)
        failure = process.read_report(x_r, default=125)
        trace("supervisor: exec done")
        if failure:
            os.waitpid(pid, 0)
            os.close(out_r)
            os.close(err_r)
            self._start_failed(*failure, first)
            return None
        pid_start = process_start(pid)
        me_start = process_start(self.me)

        def record(state: dict) -> None:
            state.update(Status="running", Running=True, Paused=False, Restarting=False, Pid=pid, PidStart=pid_start,
                         StartedAt=rfc3339(started), ExitCode=0, Error="", OOMKilled=False,
                         Supervisor={"Pid": self.me, "Start": me_start})
            if first:
                state.update(ManualStop=False, FinishedAt="0001-01-01T00:00:00Z")

        recorded = self._update(record)
        self._release_first_lock()
        trace("supervisor: running recorded")
        self.root.event("container", "start", self.cid)
        if first:
            self._notify(f"started {pid}")
            if not self.attach:
                self._close_status()
        if recorded is None:  # removed while starting
            os.kill(pid, 9)
        return self._monitor(pid, out_r, err_r, cgroup, oom_before)

    def _monitor(self, pid: int, out_r: int, err_r: int, cgroup: Cgroup, oom_before: int) -> tuple[int, bool]:
        log_fd = os.open(os.path.join(self.root.container_dir(self.cid), f"{self.cid}-json.log"),
                         os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        pidfd = os.pidfd_open(pid)
        poller = select.poll()
        streams = {out_r: ("stdout", logs.LineSplitter()), err_r: ("stderr", logs.LineSplitter())}
        for fd in (out_r, err_r, pidfd):
            poller.register(fd, select.POLLIN)
        status = None
        while streams or status is None:
            for fd, _ in poller.poll():
                if fd == pidfd:
                    _, status = os.waitpid(pid, 0)
                    poller.unregister(pidfd)
                    os.close(pidfd)
                    continue
                name, splitter = streams[fd]
                data = os.read(fd, 65536)
                now = rfc3339()
                if data:
                    records = splitter.feed(data)
                    self._tee(name, data)
                else:
                    records = splitter.flush()
                    poller.unregister(fd)
                    os.close(fd)
                    del streams[fd]
                if records:
                    os.write(log_fd, b"".join(logs.encode(r, name, now) for r in records))
        os.close(log_fd)
        trace("supervisor: reaped, output drained")
        code = process.exit_status(status)
        oom = cgroup.oom_kills() > oom_before
        return code, oom

    def _tee(self, stream: str, data: bytes) -> None:
        attr = "out" if stream == "stdout" else "err"
        fd = getattr(self, attr)
        if fd < 0:
            return
        try:
            while data:
                n = os.write(fd, data)
                data = data[n:]
        except OSError:
            os.close(fd)
            setattr(self, attr, -1)

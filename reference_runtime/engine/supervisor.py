"""The per-container supervisor: a process that outlives the CLI (double
fork, setsid), starts the container with clone(2) so that it is the
container's parent, reaps it, records its exit status (128+n for a signal
death, OOMKilled from the cgroup's oom_kill counter), writes the json-file
log, tees the output to an attached CLI, and applies the restart policy
with docker's back-off. It exits when the container stops for good (after
removing it for ``--rm``).

The CLI that started it reads a status pipe (:mod:`.statuspipe`): ``started
PID``, then, when attached, ``exit CODE``; or ``error CODE MESSAGE`` when
the command could not be executed. The container has PR_SET_PDEATHSIG=SIGKILL: if the
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

from . import health, logs, process, statuspipe
from . import syscalls as sc
from .cgroups import Cgroup
from .plan import ContainerPlan, container_plan
from .removal import purge, remove_files
from .restart import next_delay, should_restart
from .signals import SIGKILL
from .state import Root, fault, process_start, rfc3339, trace


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
        self.removed_config: dict | None = None

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

    def _notify(self, message: bytes) -> None:
        """Send one :mod:`.statuspipe` message to the CLI that started us, if it still listens."""
        if self.status_fd < 0:
            return
        try:
            os.write(self.status_fd, message)
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
        """The phases of a supervisor's life, in order: become the supervisor, make the
        cgroup, run the container until it stops for good (restarting it as its policy
        says), tear down."""
        self._become_supervisor()
        config = self.root.read_config(self.cid)
        # the config a prober needs, when the container has a healthcheck to run
        self.health_config = config if health.probe_argv(config["Config"].get("Healthcheck")) else None
        cgroup = self._create_cgroup(config["HostConfig"])
        try:
            self._run_until_stopped(config, cgroup)
        finally:
            self._tear_down(cgroup)

    def _become_supervisor(self) -> None:
        trace("supervisor: forked")
        self._detach_stdio()
        _signal.signal(_signal.SIGINT, _signal.SIG_IGN)
        _signal.signal(_signal.SIGHUP, _signal.SIG_IGN)
        _signal.pthread_sigmask(_signal.SIG_BLOCK, [_signal.SIGUSR1])
        sc.set_process_name("refengine-sup")

    def _create_cgroup(self, host: dict) -> Cgroup:
        cgroup = Cgroup(self.cid, memory=bool(host.get("Memory")), pids=bool(host.get("PidsLimit")))
        cgroup.create(host.get("Memory") or 0, host.get("MemorySwap") or 0, host.get("PidsLimit") or 0)
        self.cgroup_fd = cgroup.open_v2()
        trace("supervisor: cgroup created")
        fault("supervisor:after-cgroup")
        return cgroup

    def _run_until_stopped(self, config: dict, cgroup: Cgroup) -> None:
        """Plan, start and monitor the container; record each exit; restart with back-off."""
        host = config["HostConfig"]
        delay = 0.0
        first = True
        while True:
            try:
                plan = container_plan(self.root, config, cgroup)
                net = _attachment(self.root, config)
            except Exception as exc:  # noqa: BLE001 - one line to the user, not a traceback
                self._start_failed(125, str(exc), first)
                return
            started = time.time_ns()
            try:
                result = self._start_and_monitor(plan, cgroup, started, first, net)
            finally:
                if net is not None:
                    net.disconnect()
            if result is None:
                return
            code, oom = result
            finished = max(time.time_ns(), started)
            restart, gone = self._record_exit(host["RestartPolicy"], code, oom, finished)
            if first:
                gone = self._first_exit_reported(host, code, restart, gone)
            first = False
            if not restart:
                if not gone and host.get("AutoRemove"):
                    self._remove()
                return
            delay = next_delay(delay, ran_for=(finished - started) / 1e9)
            if not self._wait_to_restart(delay):
                return

    def _record_exit(self, policy: dict, code: int, oom: bool, finished: int) -> tuple[bool, bool]:
        """Write the exit into the state and decide on a restart: (restart, container gone)."""
        decision = {}

        def record(state: dict) -> None:
            restart = should_restart(policy["Name"], policy.get("MaximumRetryCount", 0),
                                     restart_count=state["RestartCount"], exit_code=code,
                                     manually_stopped=state["ManualStop"])
            decision["restart"] = restart
            state.update(Pid=0, PidStart=0, ExitCode=code, OOMKilled=oom, FinishedAt=rfc3339(finished),
                         Paused=False, Error="")
            health.stopped(state)
            if restart:
                state.update(Status="restarting", Running=True, Restarting=True,
                             RestartCount=state["RestartCount"] + 1)
            else:
                state.update(Status="exited", Running=False, Restarting=False)

        # oom and die come before the exit is recorded: whoever sees the container stopped
        # (stop, wait) finds them in the log, and docker's stop event comes after die.
        if oom:
            self.root.container_event("oom", self.cid)
        self.root.container_event("die", self.cid, exitCode=str(code))
        gone = self._update(record) is None
        trace("supervisor: exit recorded")
        return decision.get("restart", False) and not gone, gone

    def _first_exit_reported(self, host: dict, code: int, restart: bool, gone: bool) -> bool:
        """The attached CLI's answer: ``--rm`` first (so the container is gone when the CLI
        exits), then ``exit CODE``. Returns whether the container is gone."""
        self._close_attach()
        if not restart and not gone and host.get("AutoRemove"):
            self._remove()
            gone = True
            trace("supervisor: removed (--rm)")
        self._notify(statuspipe.exited(code))
        self._close_status()
        return gone

    def _wait_to_restart(self, delay: float) -> bool:
        """Sleep the back-off (``stop`` wakes us with SIGUSR1); whether to start again."""
        _signal.sigtimedwait([_signal.SIGUSR1], delay)
        state = self._update(lambda s: False)
        return not (state is None or state["Status"] != "restarting" or state["ManualStop"])

    def _tear_down(self, cgroup: Cgroup) -> None:
        cgroup.destroy()
        if self.trash:
            purge(self.trash)
            self.root.container_event("destroy", self.cid, self.removed_config)

    def _remove(self) -> None:
        """--rm: the container disappears now; its files are purged after the CLI is told."""
        try:
            with self.root.lock(self.cid):
                self.removed_config = self.root.read_config(self.cid)  # for its destroy event
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
        self._notify(statuspipe.failed(code, message))
        self._close_status()

    def _start_and_monitor(self, plan: ContainerPlan, cgroup: Cgroup, started: int, first: bool,
                           net) -> tuple[int, bool] | None:
        oom_before = cgroup.oom_kills()
        stdio, outputs, closing, console_sock = self._container_stdio(plan)
        x_r, x_w = os.pipe()
        if net is not None:
            plan.net_wait = os.pipe()
        trace("supervisor: clone")
        plan.join_v2 = self.cgroup_fd is None
        if self.cgroup_fd is not None:
            try:
                pid = sc.clone_into_cgroup(plan.clone_flags, self.cgroup_fd)
            except OSError:  # no clone3 (Linux < 5.7): clone, then the child joins
                plan.join_v2 = True
                pid = sc.clone(plan.clone_flags)
        else:
            pid = sc.clone(plan.clone_flags)
        if pid == 0:
            try:
                for fd, source in enumerate(stdio):
                    os.dup2(source, fd)
                process.container_main(plan, x_w)
            finally:
                os._exit(125)
        for fd in (*closing, x_w):
            os.close(fd)
        failure = self._plug(net, pid, *plan.net_wait) if net is not None else None
        if failure:  # the container was killed before it ran anything: no report will come
            os.close(x_r)
        else:
            failure = process.read_report(x_r, default=125)
        trace("supervisor: exec done")
        terminal = -1
        if console_sock is not None:
            from . import console

            try:
                if not failure:
                    terminal = console.receive_master(console_sock)
                    outputs = {terminal: "stdout"}  # docker logs a terminal's output as stdout
            except OSError as exc:
                os.kill(pid, SIGKILL)
                failure = (125, f"container setup failed: no terminal from the container: {exc}")
            console_sock.close()
        if failure:
            os.waitpid(pid, 0)
            for fd in outputs:
                os.close(fd)
            self._start_failed(*failure, first)
            return None
        pid_start = process_start(pid)
        me_start = process_start(self.me)

        def record(state: dict) -> bool | None:
            if not first and (state["ManualStop"] or state["Status"] != "restarting"):
                return False  # `stop` came after the back-off: it recorded the container exited
            state.update(Status="running", Running=True, Paused=False, Restarting=False, Pid=pid, PidStart=pid_start,
                         StartedAt=rfc3339(started), ExitCode=0, Error="", OOMKilled=False,
                         Supervisor={"Pid": self.me, "Start": me_start}, Ports=net.ports if net else {})
            if first:
                state.update(ManualStop=False, FinishedAt="0001-01-01T00:00:00Z")
            if self.health_config is not None:
                health.starting(state)

        recorded = self._update(record)
        if recorded is not None and recorded["Pid"] != pid:
            # The restart lost the race with `stop`: undo it instead of recording it.
            os.kill(pid, SIGKILL)
            os.waitpid(pid, 0)
            for fd in outputs:
                os.close(fd)
            return None
        fault("supervisor:after-start")
        self._release_first_lock()
        trace("supervisor: running recorded")
        self.root.container_event("start", self.cid)
        if first:
            self._notify(statuspipe.started(pid))
            if not self.attach:
                self._close_status()
        if recorded is None:  # removed while starting
            os.kill(pid, SIGKILL)
        prober = 0
        if self.health_config is not None and recorded is not None:
            prober = health.spawn_prober(self.root, self.cid, self.health_config, pid, self.me)
        try:
            return self._monitor(pid, outputs, cgroup, oom_before, terminal)
        finally:
            if prober:
                health.stop_prober(prober)

    def _plug(self, net, pid: int, ready: int, announce: int) -> tuple[int, str] | None:
        """Plug the container's interfaces while it waits on ``ready``, then let it go on;
        a failure kills it before it ran anything (the start fails with 125)."""
        os.close(ready)
        try:
            net.connect(pid, process_start(pid))
        except Exception as exc:  # noqa: BLE001 - one line to the user, not a traceback
            os.kill(pid, SIGKILL)
            os.close(announce)
            return 125, str(exc)
        trace("supervisor: network plugged")
        os.write(announce, b"1")
        os.close(announce)
        return None

    def _container_stdio(self, plan: ContainerPlan) -> tuple[tuple[int, int, int], dict[int, str], list[int], object]:
        """The container's fds 0-2, what the supervisor reads (fd -> stream), the fds to
        close once the container is cloned, and, with ``-t``, the socket the terminal's
        master comes back on: it sits in all three slots until the terminal replaces it."""
        if plan.tty:
            from . import console  # only -t pays for its imports

            plan.console_size = console.caller_size(self.out, self.stdin)
            mine, theirs = console.socketpair()
            theirs_fd = theirs.detach()
            return (theirs_fd,) * 3, {}, [theirs_fd], mine
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        stdin = self.stdin if self.stdin >= 0 else os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
        closing = [out_w, err_w] + ([stdin] if stdin != self.stdin else [])
        return (stdin, out_w, err_w), {out_r: "stdout", err_r: "stderr"}, closing, None

    def _monitor(self, pid: int, outputs: dict[int, str], cgroup: Cgroup, oom_before: int,
                 terminal: int = -1) -> tuple[int, bool]:
        """Reap the container, log and tee its output; with a terminal, type the
        attached caller's input into it."""
        log_fd = os.open(os.path.join(self.root.container_dir(self.cid), f"{self.cid}-json.log"),
                         os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        pidfd = os.pidfd_open(pid)
        poller = select.poll()
        streams = {fd: (name, logs.LineSplitter()) for fd, name in outputs.items()}
        for fd in (*streams, pidfd):
            poller.register(fd, select.POLLIN)
        typing = terminal >= 0 and self.stdin >= 0
        if typing:
            poller.register(self.stdin, select.POLLIN)
            # The CLI's end of the status pipe closes when it dies: then its terminal is
            # not ours to read any more (the keys belong to whatever runs there next).
            if self.status_fd >= 0:
                poller.register(self.status_fd, 0)
        status = None
        while streams or status is None:
            for fd, _ in poller.poll():
                if fd == pidfd:
                    _, status = os.waitpid(pid, 0)
                    poller.unregister(pidfd)
                    os.close(pidfd)
                    continue
                if typing and fd == self.stdin:
                    if not self._type_into(terminal):
                        poller.unregister(fd)
                        typing = False
                    continue
                if typing and fd == self.status_fd:  # the attached CLI is gone
                    poller.unregister(self.status_fd)
                    poller.unregister(self.stdin)
                    typing = False
                    self._close_attach()
                    continue
                if fd not in streams:
                    continue
                name, splitter = streams[fd]
                try:
                    data = os.read(fd, 65536)
                except OSError:  # EIO: a terminal whose last user in the container is gone
                    data = b""
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

    def _type_into(self, terminal: int) -> bool:
        """Copy what the caller typed into the container's terminal; False once the
        caller's input is gone (the terminal stays: the container decides when to end)."""
        try:
            data = os.read(self.stdin, 65536)
        except OSError:
            data = b""
        if not data:
            return False
        try:
            while data:
                data = data[os.write(terminal, data):]
        except OSError:
            return False
        return True

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


def _attachment(root: Root, config: dict):
    """The container's bridge networking for one start, its host ports reserved; None
    without any (``none``, ``host``, ``container:``: the networking module is not loaded)."""
    mode = config["HostConfig"]["NetworkMode"]
    if mode in ("none", "host") or mode.startswith("container:"):
        return None
    from ..net.endpoints import Attachment

    return Attachment.prepare(root.path, config)

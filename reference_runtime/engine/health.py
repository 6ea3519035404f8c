"""Container healthchecks with docker's semantics (moby daemon/health.go, 20.10).

What a container is asked to check is its ``Config.Healthcheck`` (docker's
HealthConfig: ``Test``, ``Interval``, ``Timeout``, ``StartPeriod`` in
nanoseconds, ``Retries``): ``--health-*`` flags over the image's HEALTHCHECK,
field by field, as docker's client and daemon merge them (:func:`from_flags`,
:func:`merge`, :func:`check`). What it found is ``State.Health`` in
state.json: ``Status`` (starting, healthy, unhealthy), ``FailingStreak`` and
the last five probes' ``Log`` (:func:`record`, pure).

Probes run in a *prober*, a process the supervisor forks at each start of a
container that has a healthcheck (:func:`spawn_prober`) and SIGKILLs when
the container stopped (:func:`stop_prober`). The first probe runs one interval
after the start, each next one an interval after the previous one ended. A
probe is an exec into the container (the container's cgroup, namespaces,
user, capabilities and seccomp filter, as ``refengine exec``), its stdout and
stderr together kept up to 4096 bytes; one that outlives the timeout has its
process group SIGKILLed and counts as failed. Nothing outlives a SIGKILLed
supervisor: the prober and each probe's host-side child have
PR_SET_PDEATHSIG=SIGKILL, and the probe itself dies with the container's pid
namespace.
"""

from __future__ import annotations

import os
import select
import time

import _signal

from ..errors import ContainerError
from .state import Root, alive, parse_rfc3339, process_start, rfc3339

# The prober's kernel side (syscalls, process, seccomp, cgroups: ctypes and more) is imported by
# the prober only: ps, inspect and run read the pure half of this module.

#: moby's defaults (daemon/health.go) for a zero field.
DEFAULT_INTERVAL_NS = 30_000_000_000
DEFAULT_TIMEOUT_NS = 30_000_000_000
DEFAULT_START_PERIOD_NS = 0
DEFAULT_RETRIES = 3
#: Shorter durations are refused by docker's daemon (containertypes.MinimumDuration).
MINIMUM_DURATION_NS = 1_000_000
#: How many probe results State.Health.Log keeps, and how much output of each.
MAX_LOG_ENTRIES = 5
MAX_OUTPUT = 4096

STARTING, HEALTHY, UNHEALTHY, NONE = "starting", "healthy", "unhealthy", "none"
#: What ``ps --filter health=`` accepts.
HEALTH_FILTER_VALUES = (STARTING, HEALTHY, UNHEALTHY, NONE)


# -- what to check: flags, image, merge ----------------------------------------


def from_flags(opts: dict) -> dict | None:
    """docker's client: the HealthConfig that ``--health-*`` / ``--no-healthcheck`` ask
    for (None when none is given); durations are nanoseconds. Pure.

    >>> from_flags({"health_cmd": "true", "health_interval": 1_000_000_000})
    {'Test': ['CMD-SHELL', 'true'], 'Interval': 1000000000}
    >>> from_flags({"no_healthcheck": True})
    {'Test': ['NONE']}
    """
    cmd = opts.get("health_cmd") or ""
    # an API caller's (refengine compose's) Test in exec form: the command line only says CMD-SHELL
    test = opts.get("health_test") or []
    values = {"Interval": opts.get("health_interval") or 0, "Timeout": opts.get("health_timeout") or 0,
              "StartPeriod": opts.get("health_start_period") or 0, "Retries": opts.get("health_retries") or 0}
    given = bool(cmd or test) or any(values.values())
    if opts.get("no_healthcheck"):
        if given:
            raise ContainerError("--no-healthcheck conflicts with --health-* options")
        return {"Test": ["NONE"]}
    if not given:
        return None
    for key, flag in (("Interval", "--health-interval"), ("Timeout", "--health-timeout"),
                      ("Retries", "--health-retries"), ("StartPeriod", "--health-start-period")):
        if values[key] < 0:
            raise ContainerError(f"{flag} cannot be negative")
    health: dict = {"Test": list(test)} if test else {"Test": ["CMD-SHELL", cmd]} if cmd else {}
    health.update((k, v) for k, v in values.items() if v)  # docker's JSON omits zero fields
    return health


def merge(user: dict | None, image: dict | None) -> dict | None:
    """docker's daemon (daemon/commit.go merge): the image's HEALTHCHECK fills what the
    flags left zero; without flags it is the image's. Pure.

    >>> merge({"Retries": 5}, {"Test": ["CMD", "true"], "Interval": 7})
    {'Retries': 5, 'Test': ['CMD', 'true'], 'Interval': 7}
    """
    if not image:
        return user
    if user is None:
        return dict(image)
    merged = dict(user)
    for key in ("Test", "Interval", "Timeout", "StartPeriod", "Retries"):
        if not merged.get(key) and image.get(key):
            merged[key] = image[key]
    return merged


def check(health: dict | None) -> None:
    """docker's daemon-side validation of a create request's HealthConfig."""
    if not health:
        return
    for key in ("Interval", "Timeout"):
        if 0 < (health.get(key) or 0) < MINIMUM_DURATION_NS or (health.get(key) or 0) < 0:
            raise ContainerError(f"{key} in Healthcheck cannot be less than 1ms")
    if (health.get("Retries") or 0) < 0:
        raise ContainerError("Retries in Healthcheck cannot be negative")
    if 0 < (health.get("StartPeriod") or 0) < MINIMUM_DURATION_NS or (health.get("StartPeriod") or 0) < 0:
        raise ContainerError("StartPeriod in Healthcheck cannot be less than 1ms")


def probe_argv(health: dict | None) -> list[str] | None:
    """The probe's command, or None when the container has no healthcheck to run
    (none, ``NONE``, an empty or unknown test: docker's getProbe). Pure.

    >>> probe_argv({"Test": ["CMD-SHELL", "exit 1"]}), probe_argv({"Test": ["NONE"]})
    (['/bin/sh', '-c', 'exit 1'], None)
    """
    test = (health or {}).get("Test") or []
    if not test or len(test) < 2 and test[0] != "CMD-SHELL":
        return None
    if test[0] == "CMD":
        return list(test[1:])
    if test[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", *test[1:]]
    return None


def timings(health: dict) -> tuple[int, int, int, int]:
    """(interval ns, timeout ns, start period ns, retries), docker's defaults for zero. Pure."""
    return (health.get("Interval") or DEFAULT_INTERVAL_NS, health.get("Timeout") or DEFAULT_TIMEOUT_NS,
            health.get("StartPeriod") or DEFAULT_START_PERIOD_NS, health.get("Retries") or DEFAULT_RETRIES)


# -- what was found: State.Health ------------------------------------------------


def starting(state: dict) -> None:
    """At each start (restarts too): docker's initHealthMonitor, the log kept."""
    previous = state.get("Health") or {}
    state["Health"] = {"Status": STARTING, "FailingStreak": 0, "Log": previous.get("Log") or []}


def stopped(state: dict) -> None:
    """When the probes stop (exit, pause): docker's CloseMonitorChannel reports unhealthy."""
    if state.get("Health"):
        state["Health"]["Status"] = UNHEALTHY


def status_of(state: dict) -> str:
    """ps's ``health`` filter value: ``none`` for a container whose probes never started. Pure."""
    return (state.get("Health") or {}).get("Status") or NONE


def suffix(state: dict) -> str:
    """What ps's STATUS of a running container adds: `` (health: starting)``, `` (healthy)``. Pure."""
    status = (state.get("Health") or {}).get("Status")
    if not status:
        return ""
    return f" (health: {status})" if status == STARTING else f" ({status})"


def record(health: dict, result: dict, *, retries: int, start_period_ns: int, started_at: str) -> str | None:
    """One probe's result into ``health`` (State.Health), as docker's handleProbeResult:
    the log keeps the last five, a pass makes it healthy, a failure counts toward
    ``retries`` unless it started within the start period and no probe passed yet.
    Returns the new status when it changed (docker's ``health_status`` event). Pure.

    >>> h = {"Status": "starting", "FailingStreak": 0, "Log": []}
    >>> r = {"Start": "2026-01-01T00:00:09Z", "End": "2026-01-01T00:00:09Z", "ExitCode": 1, "Output": ""}
    >>> record(h, r, retries=1, start_period_ns=0, started_at="2026-01-01T00:00:00Z"), h["FailingStreak"]
    ('unhealthy', 1)
    """
    old = health["Status"]
    health["Log"] = [*health.get("Log", [])[-(MAX_LOG_ENTRIES - 1):], result]
    if result["ExitCode"] == 0:
        health["FailingStreak"] = 0
        health["Status"] = HEALTHY
    else:
        counts = True
        if old == STARTING:
            since_start = parse_rfc3339(result["Start"]) - parse_rfc3339(started_at)
            counts = since_start >= start_period_ns / 1e9
        if counts:
            health["FailingStreak"] += 1
            if health["FailingStreak"] >= retries:
                health["Status"] = UNHEALTHY
    return health["Status"] if health["Status"] != old else None


def output_text(data: bytes, truncated: bool) -> str:
    """A probe's output as docker stores it: the first 4096 bytes, "..." when more came. Pure.

    >>> output_text(b"ok\\n", False), output_text(b"x", True)
    ('ok\\n', 'x...')
    """
    return data[:MAX_OUTPUT].decode("utf-8", "replace") + ("..." if truncated else "")


def timeout_message(timeout_ns: int) -> str:
    """docker's Output of a probe that ran out of time, its timeout as Go prints a Duration. Pure.

    >>> timeout_message(300_000_000), timeout_message(1_500_000_000)
    ('Health check exceeded timeout (300ms)', 'Health check exceeded timeout (1.5s)')
    """
    from ..build.cachekey import go_duration  # only a timed-out probe pays for importing it

    return f"Health check exceeded timeout ({go_duration(timeout_ns / 1e9)})"


# -- the prober ------------------------------------------------------------------


def spawn_prober(root: Root, cid: str, config: dict, pid: int, supervisor: int) -> int:
    """Fork the prober of the container process ``pid`` (of this start); its pid.
    Called by the supervisor, after the start is recorded."""
    from . import syscalls as sc

    prober = os.fork()
    if prober == 0:
        code = 0
        try:
            sc.prctl(sc.PR_SET_PDEATHSIG, _signal.SIGKILL)
            if os.getppid() != supervisor:  # the supervisor died before the line above
                os._exit(0)
            os.closerange(3, 1 << 20)  # the supervisor's pipes, locks and logs are not ours to hold
            _signal.pthread_sigmask(_signal.SIG_SETMASK, [])
            sc.set_process_name("refengine-hc")
            _probe_until_stopped(root, cid, config, pid)
        except BaseException:  # noqa: BLE001 - a forked supervisor must never return into its code
            code = 1
        os._exit(code)
    return prober


def stop_prober(prober: int) -> None:
    """End the prober (a probe under way dies with the container or, on the host side,
    with the prober) and reap it."""
    try:
        os.kill(prober, _signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.waitpid(prober, 0)


def _probe_until_stopped(root: Root, cid: str, config: dict, pid: int) -> None:
    health = config["Config"].get("Healthcheck")
    argv = probe_argv(health)
    if argv is None:
        return
    interval, timeout, start_period, retries = timings(health)
    pid_start = process_start(pid)
    probe = _ProbeSettings(root, cid, config, pid)
    while True:
        time.sleep(interval / 1e9)
        _reap_strays()
        if not alive(pid, pid_start):
            return
        try:
            state = root.read_state(cid)
        except ContainerError:  # removed
            return
        if state["Pid"] != pid:
            return
        if state["Paused"]:  # docker stops the probes of a paused container
            continue
        result = probe.run(argv, timeout)
        if not alive(pid, pid_start):  # the probe died with the container: docker drops its result
            return
        changed = _store(root, cid, pid, result, retries, start_period)
        if changed is False:
            return
        if changed:
            root.container_event(f"health_status: {changed}", cid)  # the config now: a rename counts


def _store(root: Root, cid: str, pid: int, result: dict, retries: int, start_period: int) -> str | None | bool:
    """Record ``result`` under the container's lock; the new status if it changed, False
    once the container is no longer this run (stopped, restarted, removed)."""
    try:
        with root.lock(cid):
            state = root.read_state(cid)
            if state["Pid"] != pid or not state["Running"] or not state.get("Health"):
                return False
            changed = record(state["Health"], result, retries=retries, start_period_ns=start_period,
                             started_at=state["StartedAt"])
            root.write_state(cid, state)
            return changed
    except (FileNotFoundError, ContainerError):
        return False


def _reap_strays() -> None:
    """Reap host-side probe children left behind by a timed-out probe that could not be
    waited for (a frozen cgroup holds them until thawed)."""
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


class _ProbeSettings:
    """How a probe of this container is exec'd: what ``refengine exec`` would give a
    command (docker's probe is an exec: not privileged, the container's user and
    working directory, its environment and HOSTNAME)."""

    def __init__(self, root: Root, cid: str, config: dict, pid: int):
        from . import seccomp
        from .process import capability_mask, capability_names

        cfg, host = config["Config"], config["HostConfig"]
        self.cid, self.pid = cid, pid
        self.env = dict(e.split("=", 1) if "=" in e else (e, "") for e in cfg["Env"])
        self.env.setdefault("HOSTNAME", cfg["Hostname"])
        self.user = cfg["User"] or "0"
        self.workdir = cfg["WorkingDir"] or "/"
        self.caps = capability_mask(host.get("CapAdd") or [], host.get("CapDrop") or [], host.get("Privileged", False))
        self.no_new_privs = seccomp.security_opts(host.get("SecurityOpt") or [])[1]
        self.bpf = seccomp.filter_for(root.path, host, capability_names(self.caps))

    def run(self, argv: list[str], timeout_ns: int) -> dict:
        """One probe: {Start, End, ExitCode, Output}; ExitCode -1 when it could not be run
        or ran out of time (docker's results for those)."""
        from .process import exit_status, read_report

        start = time.time_ns()
        deadline = time.monotonic() + timeout_ns / 1e9
        out_r, out_w = os.pipe()
        pid_r, pid_w = os.pipe()
        err_r, err_w = os.pipe()
        child = os.fork()
        if child == 0:
            self._child(argv, out_w, pid_w, err_w)
        for fd in (out_w, pid_w, err_w):
            os.close(fd)
        os.set_blocking(out_r, False)
        output, truncated, group = bytearray(), False, 0
        pidfd = os.pidfd_open(child)
        poller = select.poll()
        for fd in (out_r, pid_r, pidfd):
            poller.register(fd, select.POLLIN)
        exited = False
        try:
            while not exited and (left := deadline - time.monotonic()) > 0:
                for fd, _ in poller.poll(left * 1000):
                    if fd == pidfd:
                        exited = True
                    elif fd == pid_r:  # the probe's pid (its process group), from the child
                        data = os.read(pid_r, 32)
                        group = int(data) if data.strip().isdigit() else group
                        poller.unregister(pid_r)
                    else:
                        more, eof = _drain(out_r, output)
                        truncated |= more
                        if eof:
                            poller.unregister(out_r)
            if not exited:
                end = time.time_ns()
                if group:
                    for target in (-group, group):  # the probe and whatever it started; the probe
                        try:                        # alone if it has not made its group yet
                            os.kill(target, _signal.SIGKILL)
                            break
                        except ProcessLookupError:
                            pass
                _wait_bounded(child, pidfd, 2.0)
                return {"Start": rfc3339(start), "End": rfc3339(end), "ExitCode": -1,
                        "Output": timeout_message(timeout_ns)}
            truncated |= _drain(out_r, output)[0]  # what it wrote just before it ended
            code = exit_status(os.waitpid(child, 0)[1])
            failure = read_report(err_r, default=126)  # reads to EOF and closes
            err_r = -1
            end = time.time_ns()
            if failure:  # it could not be exec'd: docker records the exec's error
                return {"Start": rfc3339(start), "End": rfc3339(end), "ExitCode": -1, "Output": failure[1]}
            return {"Start": rfc3339(start), "End": rfc3339(end), "ExitCode": code,
                    "Output": output_text(bytes(output), truncated)}
        finally:
            for fd in (out_r, pid_r, pidfd, err_r):
                if fd >= 0:
                    try:
                        os.close(fd)
                    except OSError:
                        pass

    def _child(self, argv: list[str], out_w: int, pid_w: int, err_w: int) -> None:
        """The probe's host-side child: into the container's cgroup and namespaces, then
        fork the probe (a new process group, so a timeout kills all of it) and wait."""
        from . import syscalls as sc
        from .cgroups import Cgroup
        from .process import become_user_and_exec, enter_isolation, enter_namespaces, exit_status

        try:
            sc.prctl(sc.PR_SET_PDEATHSIG, _signal.SIGKILL)
            Cgroup(self.cid).join_self(v2=True)
            enter_namespaces(self.pid)
            probe = os.fork()
            if probe == 0:
                os.setpgid(0, 0)
                null = os.open("/dev/null", os.O_RDONLY)
                os.dup2(null, 0)
                os.dup2(out_w, 1)
                os.dup2(out_w, 2)
                enter_isolation(err_w)
                become_user_and_exec(argv, dict(self.env), self.user, self.caps, self.no_new_privs, self.bpf,
                                     self.workdir, err_w)
            os.write(pid_w, str(probe).encode())
            for fd in (out_w, pid_w, err_w):
                os.close(fd)
            os._exit(exit_status(os.waitpid(probe, 0)[1]))
        except BaseException as exc:  # noqa: BLE001 - reported as the probe's output
            try:
                os.write(err_w, f"126 {exc}".encode())
            finally:
                os._exit(126)


def _drain(fd: int, output: bytearray) -> tuple[bool, bool]:
    """Read what the non-blocking ``fd`` holds now into ``output``, which keeps the first
    4096 bytes: (whether more than that came, whether ``fd`` is at its end)."""
    more = False
    while True:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return more, False
        if not data:
            return more, True
        room = MAX_OUTPUT - len(output)
        output += data[:max(room, 0)]
        more |= len(data) > room


def _wait_bounded(child: int, pidfd: int, seconds: float) -> None:
    """Reap ``child`` if it ends within ``seconds`` (else :func:`_reap_strays` will)."""
    p = select.poll()
    p.register(pidfd, select.POLLIN)
    if p.poll(seconds * 1000):
        os.waitpid(child, 0)

"""The container's first process, from clone to exec: cgroup, rootfs,
hostname, loopback, user, capabilities, no_new_privs, working directory,
signals, then exec of the command or, with ``--init``, a small init as PID 1
that forwards signals to the command, reaps orphans and exits with the
command's status (128+n when a signal killed it).

Exec failures travel back to the supervisor over a close-on-exec pipe as
``<status> <message>``: 127 when the command cannot be found, 126 when it
cannot be invoked (docker's statuses).
"""

from __future__ import annotations

import os

import _signal

from . import keyring, seccomp
from . import syscalls as sc
from .etcfiles import DEFAULT_PATH, read_or_empty
from .signals import FORWARDED

CAPABILITIES = {
    "CHOWN": 0, "DAC_OVERRIDE": 1, "DAC_READ_SEARCH": 2, "FOWNER": 3, "FSETID": 4, "KILL": 5, "SETGID": 6,
    "SETUID": 7, "SETPCAP": 8, "LINUX_IMMUTABLE": 9, "NET_BIND_SERVICE": 10, "NET_BROADCAST": 11,
    "NET_ADMIN": 12, "NET_RAW": 13, "IPC_LOCK": 14, "IPC_OWNER": 15, "SYS_MODULE": 16, "SYS_RAWIO": 17,
    "SYS_CHROOT": 18, "SYS_PTRACE": 19, "SYS_PACCT": 20, "SYS_ADMIN": 21, "SYS_BOOT": 22, "SYS_NICE": 23,
    "SYS_RESOURCE": 24, "SYS_TIME": 25, "SYS_TTY_CONFIG": 26, "MKNOD": 27, "LEASE": 28, "AUDIT_WRITE": 29,
    "AUDIT_CONTROL": 30, "SETFCAP": 31, "MAC_OVERRIDE": 32, "MAC_ADMIN": 33, "SYSLOG": 34, "WAKE_ALARM": 35,
    "BLOCK_SUSPEND": 36, "AUDIT_READ": 37, "PERFMON": 38, "BPF": 39, "CHECKPOINT_RESTORE": 40,
}
#: Docker's default capability set (moby oci/caps/defaults.go).
DEFAULT_CAPS = ("CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID", "SETFCAP",
                "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE")

_PR_CAPBSET_READ = 23


def capability_mask(add: list[str], drop: list[str], privileged: bool = False) -> int:
    """The capability set of a container: docker's defaults, ``--cap-add``, ``--cap-drop``. Pure.

    >>> capability_mask([], ["ALL"])
    0
    """
    def norm(name: str) -> str:
        name = name.upper()
        return name[4:] if name.startswith("CAP_") else name

    for name in (*add, *drop):
        if norm(name) != "ALL" and norm(name) not in CAPABILITIES:
            raise ValueError(f"unknown capability: {name!r}")
    names = set(CAPABILITIES) if privileged else set(DEFAULT_CAPS)
    if any(norm(n) == "ALL" for n in drop):
        names = set()
    names -= {norm(n) for n in drop}
    names |= set(CAPABILITIES) if any(norm(n) == "ALL" for n in add) else {norm(n) for n in add}
    mask = 0
    for name in names:
        mask |= 1 << CAPABILITIES[name]
    return mask


def capability_names(mask: int) -> set[str]:
    """A capability mask as ``CAP_*`` names (as seccomp profiles name them). Pure.

    >>> sorted(capability_names(1 << 21 | 1))
    ['CAP_CHOWN', 'CAP_SYS_ADMIN']
    """
    return {f"CAP_{name}" for name, bit in CAPABILITIES.items() if mask & (1 << bit)}


def resolve_user(spec: str, passwd: str, group: str) -> tuple[int, int, list[int], str]:
    """``-u`` against the container's /etc/passwd and /etc/group: (uid, gid, groups, home). Pure."""
    user, _, grp = (spec or "0").partition(":")
    # a numeric id is ASCII digits: "²".isdigit() is true, and int() refuses it
    user_id, grp_id = user.isascii() and user.isdigit(), grp.isascii() and grp.isdigit()
    uid = gid = None
    home = "/"
    name = None
    for line in passwd.splitlines():
        f = line.split(":")
        if len(f) < 7:
            continue
        if f[0] == user or (user_id and f[2] == user):
            name, uid, gid, home = f[0], int(f[2]), int(f[3]), f[5] or "/"
            break
    if uid is None:
        if not user_id:
            raise LookupError(f"unable to find user {user}: no matching entries in passwd file")
        uid, gid = int(user), 0
        home = "/root" if uid == 0 else "/"
    extra: list[int] = []
    for line in group.splitlines():
        f = line.split(":")
        if len(f) < 4:
            continue
        if grp and (f[0] == grp or (grp_id and f[2] == grp)):
            gid = int(f[2])
            grp = ""
        if name and name in f[3].split(","):
            extra.append(int(f[2]))
    if grp:
        if not grp_id:
            raise LookupError(f"unable to find group {grp}: no matching entries in group file")
        gid = int(grp)
    return uid, gid or 0, sorted(set(extra)), home


def _loopback_up() -> None:
    import fcntl
    import struct

    import _socket

    s = _socket.socket(2, 2)  # AF_INET, SOCK_DGRAM
    try:
        SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
        req = struct.pack("16sh14x", b"lo", 0)
        flags = struct.unpack("16sh14x", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sh14x", b"lo", flags | IFF_UP))
    finally:
        s.close()


def drop_privileges(user: str, caps: int, env: dict, no_new_privs: bool = False,
                    seccomp_bpf: bytes | None = None) -> None:
    """Become ``user`` with capability set ``caps``; fills HOME in ``env``.

    The seccomp filter comes last, so the runtime's own setup is not filtered:
    after no_new_privs and the final capabilities when no_new_privs is asked;
    without it the kernel wants CAP_SYS_ADMIN to install a filter, so it goes
    in just before the identity changes (runc's order; setuid, capset and
    execve are allowed by every usable profile)."""
    uid, gid, groups, home = resolve_user(user, read_or_empty("/etc/passwd"), read_or_empty("/etc/group"))
    env.setdefault("HOME", home)
    last = int(read_or_empty("/proc/sys/kernel/cap_last_cap") or 40)
    for cap in range(last + 1):
        if not caps & (1 << cap):
            sc.prctl(sc.PR_CAPBSET_DROP, cap)
        elif not sc.prctl(_PR_CAPBSET_READ, cap):
            caps &= ~(1 << cap)  # not ours to give (--privileged under a reduced bounding set): as podman
    if no_new_privs:
        sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
    elif seccomp_bpf:
        seccomp.install(seccomp_bpf)
    os.setgroups(groups)
    os.setgid(gid)
    os.setuid(uid)
    if uid == 0:
        # docker leaves the inheritable set empty: no capability survives an exec
        # into a file with inheritable file capabilities.
        sc.capset(caps, caps, 0)
    if no_new_privs and seccomp_bpf:
        seccomp.install(seccomp_bpf)


#: The namespaces an exec joins; the mount namespace last (after it, /proc is the container's).
NAMESPACES = (("ipc", sc.CLONE_NEWIPC), ("uts", sc.CLONE_NEWUTS), ("net", sc.CLONE_NEWNET),
              ("pid", sc.CLONE_NEWPID), ("mnt", sc.CLONE_NEWNS))


def enter_namespaces(pid: int, which=NAMESPACES) -> None:
    """setns into the namespaces of ``pid`` (every one opened first, for that reason);
    the pid namespace applies to the caller's children (exec and the health probes fork)."""
    fds = [(os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC), flag) for name, flag in which]
    for fd, flag in fds:
        sc.setns(fd, flag)
        os.close(fd)


def enter_isolation(keep_fd: int) -> None:
    """What every process entering a container does first: no descriptor of
    whoever started it survives but stdio and ``keep_fd`` (the close-on-exec
    error pipe), and its own session keyring (keys are not namespaced)."""
    os.closerange(3, keep_fd)
    os.closerange(keep_fd + 1, 1 << 20)
    keyring.join_new_session_keyring()


def reset_signals() -> None:
    _signal.pthread_sigmask(_signal.SIG_SETMASK, [])
    for sig in (_signal.SIGPIPE, _signal.SIGXFSZ, _signal.SIGINT, _signal.SIGTERM, _signal.SIGCHLD,
                _signal.SIGUSR1, _signal.SIGHUP):
        _signal.signal(sig, _signal.SIG_DFL)


def _execvpe(argv: list[str], env: dict) -> None:
    """os.execvpe without its lazy ``import warnings``: after pivot_root the host's
    modules are out of reach. The first error other than "not found" wins."""
    cmd = argv[0]
    if "/" in cmd:
        os.execve(cmd, argv, env)
    found_error = None
    not_found = None
    for directory in env.get("PATH", DEFAULT_PATH).split(":"):
        try:
            os.execve(os.path.join(directory or ".", cmd), argv, env)
        except (FileNotFoundError, NotADirectoryError) as exc:
            not_found = not_found or exc
        except OSError as exc:
            found_error = found_error or exc
    raise found_error or not_found or FileNotFoundError(2, "not found")


def exec_command(argv: list[str], env: dict, err_fd: int) -> None:
    """exec, or report why not on ``err_fd`` and exit 126/127. Never returns."""
    try:
        _execvpe(argv, env)
    except OSError as exc:
        code = 127 if isinstance(exc, (FileNotFoundError, NotADirectoryError)) else 126
        if "/" in argv[0]:
            reason = f'exec: "{argv[0]}": {os.strerror(exc.errno).lower() if exc.errno else exc}'
        elif code == 127:
            reason = f'exec: "{argv[0]}": executable file not found in $PATH'
        else:
            reason = f'exec: "{argv[0]}": {os.strerror(exc.errno).lower() if exc.errno else exc}'
        _report(err_fd, code, f"unable to start container process: {reason}")
        os._exit(code)


def become_user_and_exec(argv: list[str], env: dict, user: str, caps: int, no_new_privs: bool, bpf,
                         workdir: str, err_fd: int) -> None:
    """The last steps of ``exec`` and of a health probe, in a child already inside the
    container: the user and capabilities, the working directory, then exec; a failure is
    reported on ``err_fd`` with docker's 126 (127 for a missing command). Never returns."""
    try:
        drop_privileges(user, caps, env, no_new_privs, bpf)
        os.chdir(workdir)
    except LookupError as exc:
        _report(err_fd, 126, f"unable to start container process: {exc.args[0]}")
        os._exit(126)
    except OSError as exc:
        _report(err_fd, 126, f"unable to start container process: chdir to cwd (\"{workdir}\"): {exc.strerror}")
        os._exit(126)
    reset_signals()
    exec_command(argv, env, err_fd)


def _report(err_fd: int, code: int, message: str) -> None:
    try:
        os.write(err_fd, f"{code} {message}".encode()[:4000])
    except OSError:
        pass


def read_report(err_fd: int, default: int) -> tuple[int, str] | None:
    """The reading end of :func:`_report`: the pipe is read to EOF and closed.

    None when the command was exec'd (close-on-exec closed the pipe empty),
    else (status, message); a report without a number gives ``default``.
    """
    data = b""
    while chunk := os.read(err_fd, 4096):
        data += chunk
    os.close(err_fd)
    if not data:
        return None
    code, _, message = data.decode(errors="replace").partition(" ")
    return (int(code) if code.isdigit() else default), message


def exit_status(status: int) -> int:
    """A wait status as docker's exit code: the code, or 128 + the signal."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def run_init(argv: list[str], env: dict, err_fd: int) -> None:
    """PID 1 with ``--init``: run the command as a child, forward signals to it,
    reap every orphan, exit with the command's status. Never returns."""
    r, w = os.pipe2(os.O_CLOEXEC)
    child = os.fork()
    if child == 0:
        os.close(r)
        reset_signals()
        exec_command(argv, env, w)
    os.close(w)
    data = os.read(r, 4096)
    os.close(r)
    if data:
        code, _, message = data.decode(errors="replace").partition(" ")
        _report(err_fd, int(code), message)
        os._exit(int(code))
    os.close(err_fd)

    def forward(sig, _frame):
        try:
            os.kill(child, sig)
        except ProcessLookupError:
            pass

    for sig in FORWARDED:
        _signal.signal(sig, forward)
    _signal.pthread_sigmask(_signal.SIG_SETMASK, [])
    sc.set_process_name("init")
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            os._exit(0)
        if pid == child:
            os._exit(exit_status(status))


def container_main(plan, err_fd: int) -> None:
    """Everything between clone and exec of ``plan`` (a :class:`plan.ContainerPlan`), in the new
    namespaces. Never returns."""
    # The supervisor's fds (status pipe, the CLI's lock) must not live on in
    # an init that never execs: keep only stdio and the error pipe.
    try:
        sc.prctl(sc.PR_SET_PDEATHSIG, _signal.SIGKILL)
        if plan.net_wait is not None:
            # The supervisor plugs our interfaces from outside; nothing may run before they are
            # there. EOF instead of the byte: the supervisor died or gave up.
            ready, announce = plan.net_wait
            os.close(announce)
            if os.read(ready, 1) != b"1":
                os._exit(125)
            os.close(ready)
        enter_isolation(err_fd)
        if plan.cgroup is not None:
            plan.cgroup.join_self(v2=plan.join_v2)
        if plan.netns:
            fd = os.open(plan.netns, os.O_RDONLY | os.O_CLOEXEC)
            sc.setns(fd, sc.CLONE_NEWNET)
            os.close(fd)
        if plan.net == "private":
            _loopback_up()  # before pivot_root: it imports modules from the host
        from . import rootfs
        from .state import trace

        if plan.tty:
            from . import console  # before pivot_root: it loads modules from the host
        trace("container: namespaces, cgroup joined")
        rootfs.build(plan)
        if plan.tty:  # -t: the supervisor put the console socket in the stdio slots
            owner = resolve_user(plan.user, read_or_empty("/etc/passwd"), read_or_empty("/etc/group"))[0]
            console.attach_in_container(0, plan.console_size, owner)
        if plan.uts:
            sc.sethostname(plan.hostname)
        env = dict(plan.env)
        drop_privileges(plan.user, plan.caps, env, bool(plan.no_new_privs), plan.seccomp)
        cwd = plan.workdir or "/"
        try:
            os.chdir(cwd)
        except FileNotFoundError:
            os.makedirs(cwd, exist_ok=True)
            os.chdir(cwd)
    except LookupError as exc:  # an unknown --user: docker's daemon refuses the start (125), not the command
        _report(err_fd, 125, exc.args[0])
        os._exit(125)
    except Exception as exc:  # noqa: BLE001 - reported to the supervisor as one line, never a traceback
        _report(err_fd, 125, f"container setup failed: {exc}")
        os._exit(125)
    try:
        reset_signals()
        if plan.init:
            run_init(plan.argv, env, err_fd)
        exec_command(plan.argv, env, err_fd)
    except Exception as exc:  # noqa: BLE001 - one line to the user, never a silent 125
        _report(err_fd, 125, f"container setup failed: {exc!r}")
        os._exit(125)

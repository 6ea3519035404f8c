"""RUN: the command in a refengine container on an overlay of the parent
image, in-process (clone + the runtime's container_main, no supervisor and
no interpreter per step). The container gets pid, mount, uts, ipc and a
private network namespace, docker's default capabilities and
no_new_privs, like a ``refengine run`` container; its mount points and
/etc/hostname|hosts|resolv.conf sit in an init layer below the container
layer, so they never appear in the step's diff. The caller commits the
upper directory as the step's layer.
"""

from __future__ import annotations

import os
import sys
import tempfile

from ..engine import process
from ..engine import syscalls as sc
from .errors import BuildError

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_HOSTS = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n"
          "ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")


class RunResult:
    __slots__ = ("status", "message", "dir", "upper")

    def __init__(self, status: int, message: str, directory: str):
        self.status, self.message, self.dir = status, message, directory
        self.upper = os.path.join(directory, "upper")

    def empty(self) -> bool:
        return not os.listdir(self.upper)

    def close(self) -> None:
        from pathlib import Path

        from ..image.tarutil import remove_tree

        remove_tree(Path(self.dir))


def _resolv() -> str:
    try:
        with open("/etc/resolv.conf") as f:
            lines = [ln for ln in f.read().splitlines()
                     if not (ln.startswith("nameserver") and (" 127." in ln or " ::1" in ln))]
    except OSError:
        lines = []
    if not any(ln.startswith("nameserver") for ln in lines):
        lines += ["nameserver 8.8.8.8", "nameserver 8.8.4.4"]
    return "\n".join(lines) + "\n"


def run(work_root: str, layers: list[str], argv: list[str], env: list[str], *, user: str, workdir: str,
        container_id: str, output_fd: int, volumes: dict[str, str] | None = None) -> RunResult:
    """Run *argv* on *layers* (top first); the result holds the exit status and the upper dir.

    *volumes*: container path -> host directory bind-mounted there (the image's VOLUMEs:
    what RUN writes under them is not part of the layer, as with docker).
    """
    directory = tempfile.mkdtemp(prefix=f"run-{os.getpid()}-", dir=work_root)
    try:
        for sub in ("upper", "work", "merged", "init/proc", "init/sys", "init/dev", "init/etc"):
            os.makedirs(os.path.join(directory, sub), exist_ok=True)
        os.chmod(os.path.join(directory, "upper"), 0o755)
        hostname = container_id[:12]
        files = {"hostname": hostname + "\n", "hosts": _HOSTS + f"127.0.1.1\t{hostname}\n",
                 "resolv.conf": _resolv()}
        for name, text in files.items():
            open(os.path.join(directory, "init/etc", name), "w").close()
            with open(os.path.join(directory, name), "w") as f:
                f.write(text)
        env_map: dict[str, str] = {}
        for item in env:
            key, _, value = item.partition("=")
            env_map[key] = value
        if "PATH" not in env_map:
            env_map["PATH"] = DEFAULT_PATH.split("=", 1)[1]
        env_map.setdefault("HOSTNAME", hostname)
        plan = {
            "clone_flags": sc.CLONE_NEWNS | sc.CLONE_NEWUTS | sc.CLONE_NEWIPC | sc.CLONE_NEWPID | sc.CLONE_NEWNET,
            "netns": None, "net": "private", "uts": True, "hostname": hostname,
            "merged": os.path.join(directory, "merged"), "upper": os.path.join(directory, "upper"),
            "work": os.path.join(directory, "work"), "lowers": [os.path.join(directory, "init"), *layers],
            "etc": {n: os.path.join(directory, n) for n in files},
            "mounts": [{"Type": "bind", "Source": src, "Destination": dst, "RW": True}
                       for dst, src in sorted((volumes or {}).items())],
            "root": work_root,
            "cgroup": None, "env": env_map, "user": user or "0", "workdir": workdir,
            "caps": process.capability_mask([], []), "argv": list(argv), "init": False,
        }
        status, message = _spawn(plan, output_fd)
        return RunResult(status, message, directory)
    except BaseException:
        from pathlib import Path

        from ..image.tarutil import remove_tree

        remove_tree(Path(directory))
        raise


def _spawn(plan: dict, output_fd: int) -> tuple[int, str]:
    sys.stdout.flush()
    sys.stderr.flush()
    err_r, err_w = os.pipe()
    null = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
    try:
        pid = sc.clone(plan["clone_flags"])
    except OSError as exc:
        os.close(err_r)
        os.close(err_w)
        os.close(null)
        raise BuildError(f"cannot start the RUN container: {exc}") from None
    if pid == 0:
        try:
            os.dup2(null, 0)
            os.dup2(output_fd, 1)
            os.dup2(output_fd, 2)
            process.container_main(plan, err_w)
        finally:
            os._exit(125)
    os.close(err_w)
    os.close(null)
    _, status = os.waitpid(pid, 0)
    code = process.exit_status(status)
    # The report fits the pipe's buffer, so reading it after the wait cannot block the child.
    return process.read_report(err_r, default=code) or (code, "")

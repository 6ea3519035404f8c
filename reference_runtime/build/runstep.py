"""RUN: the command in a refengine container on an overlay of the parent
image, in-process (clone + the runtime's container_main, no supervisor and
no interpreter per step). The container gets pid, mount, uts, ipc and a
private network namespace, docker's default capabilities and seccomp
profile, like a ``refengine run`` container (its plan is made by the same
code: :mod:`..engine.spec` then :mod:`..engine.plan`); its mount points and
/etc/hostname|hosts|resolv.conf sit in an init layer below the container
layer, so they never appear in the step's diff. The caller commits the
upper directory as the step's layer.
"""

from __future__ import annotations

import os
import sys
import tempfile

from ..engine import etcfiles, process, spec
from ..engine import plan as plans
from ..engine import syscalls as sc
from ..engine.runtime import prepare_layout
from .errors import BuildError


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


def run(work_root: str, layers: list[str], argv: list[str], env: list[str], *, user: str, workdir: str,
        container_id: str, output_fd: int, root_path: str, volumes: dict[str, str] | None = None) -> RunResult:
    """Run *argv* on *layers* (top first); the result holds the exit status and the upper dir.

    *volumes*: container path -> host directory bind-mounted there (the image's VOLUMEs:
    what RUN writes under them is not part of the layer, as with docker). *root_path*:
    refengine's state root (the seccomp programs are cached there).
    """
    container = step_spec(layers, argv, env, user=user, workdir=workdir, container_id=container_id,
                          volumes=volumes)
    spec.validate(container)
    config = spec.to_config(None, container)
    directory = tempfile.mkdtemp(prefix=f"run-{os.getpid()}-", dir=work_root)
    try:
        prepare_layout(directory)
        os.chmod(os.path.join(directory, "upper"), 0o755)
        etcfiles.write(directory, config["HostConfig"]["NetworkMode"], config["Config"]["Hostname"])
        status, message = _spawn(plans.make(config, directory, root_path), output_fd)
        return RunResult(status, message, directory)
    except BaseException:
        from pathlib import Path

        from ..image.tarutil import remove_tree

        remove_tree(Path(directory))
        raise


def step_spec(layers: list[str], argv: list[str], env: list[str], *, user: str, workdir: str, container_id: str,
              volumes: dict[str, str] | None = None) -> spec.ContainerSpec:
    """The RUN step's container as a spec (see :func:`spec.for_run_step`)."""
    return spec.for_run_step(container_id, layers, argv, env, user=user, workdir=workdir, volumes=volumes)


def _spawn(plan: plans.ContainerPlan, output_fd: int) -> tuple[int, str]:
    sys.stdout.flush()
    sys.stderr.flush()
    err_r, err_w = os.pipe()
    null = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
    try:
        pid = sc.clone(plan.clone_flags)
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

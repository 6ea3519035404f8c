"""Commands that reach into a container's filesystem or namespaces:
exec, cp, commit, export, top.

A running container is entered with setns(2) (its mount namespace includes
its volumes); a stopped one is seen through a fresh overlay mounted in a
private mount namespace of a forked child, so no mount is ever left on the
host. ``cp`` copies tar streams and extracts inside the container's root
(chroot + tarfile's ``tar`` filter), so nothing can be written outside it.
"""

from __future__ import annotations

import os
import sys

from ..errors import ContainerError
from . import runtime
from . import syscalls as sc
from .flags import Parsed
from .state import Root

_NAMESPACES = (("ipc", sc.CLONE_NEWIPC), ("uts", sc.CLONE_NEWUTS), ("net", sc.CLONE_NEWNET),
               ("pid", sc.CLONE_NEWPID), ("mnt", sc.CLONE_NEWNS))


def _running_state(root: Root, cid: str) -> dict:
    state = runtime.reconcile(root, cid, root.read_state(cid))
    if state["Status"] == "paused":
        raise ContainerError(f"Container {cid} is paused, unpause the container before exec")
    if state["Status"] != "running" or not state["Pid"]:
        raise ContainerError(f"Container {cid} is not running")
    return state


def _enter(pid: int, which=_NAMESPACES) -> None:
    """setns into the namespaces of ``pid`` (opened first: after the mount
    namespace switch /proc is the container's)."""
    fds = [(os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC), flag) for name, flag in which]
    for fd, flag in fds:
        sc.setns(fd, flag)
        os.close(fd)


def _wait_child(pid: int) -> int:
    from .process import exit_status

    _, status = os.waitpid(pid, 0)
    return exit_status(status)


def _view_of_stopped(root: Root, config: dict, writable: bool) -> str:
    """In a forked child: mount the container's rootfs privately and return it."""
    cdir = root.container_dir(config["Id"])
    sc.unshare(sc.CLONE_NEWNS)
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
    merged = os.path.join(cdir, "merged")
    lowers = [os.path.join(cdir, "init"), *config["Layers"]]
    if writable:
        sc.mount("overlay", merged, "overlay", 0,
                 f"lowerdir={':'.join(lowers)},upperdir={cdir}/upper,workdir={cdir}/work")
    else:
        sc.mount("overlay", merged, "overlay", sc.MS_RDONLY, f"lowerdir={cdir}/upper:{':'.join(lowers)}")
    return merged


def _enter_rootfs(root: Root, cid: str, writable: bool) -> None:
    """In a forked child: make "/" the container's root filesystem."""
    config = root.read_config(cid)
    state = runtime.reconcile(root, cid, root.read_state(cid))
    if state["Running"] and state["Pid"]:
        _enter(state["Pid"], (("mnt", sc.CLONE_NEWNS),))
    else:
        os.chroot(_view_of_stopped(root, config, writable))
    os.chdir("/")


# -- exec ----------------------------------------------------------------------------


def cmd_exec(root: Root, p: Parsed) -> int:
    from .cgroups import Cgroup
    from .process import capability_mask, drop_privileges, exec_command, read_report, reset_signals
    from .runtime import _env_flags, merge_env

    cid = root.find(p.args[0])
    config = root.read_config(cid)
    state = _running_state(root, cid)
    argv = p.args[1:]
    env_list = merge_env(config["Config"]["Env"], _env_flags(p.opts))
    env = dict(e.split("=", 1) if "=" in e else (e, "") for e in env_list)
    env.setdefault("HOSTNAME", config["Config"]["Hostname"])
    host = config["HostConfig"]
    caps = capability_mask(host.get("CapAdd") or [], host.get("CapDrop") or [],
                           host.get("Privileged", False) or bool(p.opts.get("privileged")))
    user = p.opts.get("user") or config["Config"]["User"] or "0"
    workdir = p.opts.get("workdir") or config["Config"]["WorkingDir"] or "/"
    err_r, err_w = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.close(err_r)
            Cgroup(cid).join_self(v2=True)
            _enter(state["Pid"])
            grandchild = os.fork()
            if grandchild == 0:
                if p.opts.get("detach"):
                    null = os.open("/dev/null", os.O_RDWR)
                    for fd in (0, 1, 2):
                        os.dup2(null, fd)
                    os.setsid()
                elif not p.opts.get("interactive"):
                    null = os.open("/dev/null", os.O_RDONLY)
                    os.dup2(null, 0)
                try:
                    drop_privileges(user, caps, env)
                    os.chdir(workdir)
                except LookupError as exc:
                    os.write(err_w, f"126 unable to start container process: {exc.args[0]}".encode())
                    os._exit(126)
                except OSError as exc:
                    os.write(err_w, f"126 unable to start container process: chdir to cwd (\"{workdir}\"): "
                                    f"{exc.strerror}".encode())
                    os._exit(126)
                reset_signals()
                exec_command(argv, env, err_w)
            os.close(err_w)
            if p.opts.get("detach"):
                os._exit(0)
            os._exit(_wait_child(grandchild))
        except BaseException as exc:  # noqa: BLE001 - reported as one line
            try:
                os.write(err_w, f"126 {exc}".encode())
            finally:
                os._exit(126)
    os.close(err_w)
    failure = read_report(err_r, default=126)
    code = _wait_child(child)
    if failure:
        sys.stderr.write(f"refengine: {failure[1]}\n")
        return failure[0]
    return code


# -- cp ------------------------------------------------------------------------------


def _split_cp_arg(arg: str) -> tuple[str | None, str]:
    if ":" in arg and not arg.startswith("/") and not arg.startswith("."):
        ref, _, path = arg.partition(":")
        return ref, path
    return None, arg


def cmd_cp(root: Root, p: Parsed) -> int:
    src_ref, src = _split_cp_arg(p.args[0])
    dst_ref, dst = _split_cp_arg(p.args[1])
    if (src_ref is None) == (dst_ref is None):
        raise ContainerError("copying between containers is not supported" if src_ref else
                             "must specify at least one container source")
    if src_ref is not None:
        return _copy_out(root, root.find(src_ref), src, dst)
    return _copy_in(root, root.find(dst_ref), src, dst)


def _copy_out(root: Root, cid: str, src: str, dst: str) -> int:
    import tarfile

    if not src.startswith("/"):
        src = "/" + src
    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        code = 0
        try:
            os.close(r)
            _enter_rootfs(root, cid, writable=False)
            if not os.path.lexists(src):
                os.write(2, f"refengine: Could not find the file {src} in container {cid[:12]}\n".encode())
                os._exit(1)
            with os.fdopen(w, "wb") as out, tarfile.open(fileobj=out, mode="w|") as tar:
                name = os.path.basename(src.rstrip("/")) or "."
                tar.add(src, arcname=name)
        except BaseException as exc:  # noqa: BLE001
            os.write(2, f"refengine: {exc}\n".encode())
            code = 1
        os._exit(code)
    os.close(w)
    try:
        with os.fdopen(r, "rb") as stream:
            if dst == "-":
                while chunk := stream.read(65536):
                    sys.stdout.buffer.write(chunk)
                sys.stdout.flush()
            else:
                with tarfile.open(fileobj=stream, mode="r|") as tar:
                    if os.path.isdir(dst):
                        tar.extractall(dst, filter="tar")
                    else:
                        parent = os.path.dirname(os.path.abspath(dst))
                        if not os.path.isdir(parent):
                            raise ContainerError(f"destination directory {parent} does not exist")
                        for member in tar:
                            first, _, rest = member.name.partition("/")
                            member.name = os.path.basename(dst) + ("/" + rest if rest else "")
                            tar.extract(member, parent, filter="tar")
    except tarfile.TarError as exc:
        raise ContainerError(f"copying from container: {exc}") from None
    finally:
        code = _wait_child(child)
    return code


def _copy_in(root: Root, cid: str, src: str, dst: str) -> int:
    import tarfile

    if not dst.startswith("/"):
        dst = "/" + dst
    if src != "-" and not os.path.lexists(src):
        raise ContainerError(f"stat {src}: no such file or directory")
    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        code = 0
        try:
            os.close(w)
            _enter_rootfs(root, cid, writable=True)
            with os.fdopen(r, "rb") as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
                if os.path.isdir(dst) or src == "-":
                    tar.extractall(dst, filter="tar")
                else:
                    parent = os.path.dirname(dst) or "/"
                    if not os.path.isdir(parent):
                        raise ContainerError(f"no such directory: {parent}")
                    for member in tar:
                        first, _, rest = member.name.partition("/")
                        member.name = os.path.basename(dst) + ("/" + rest if rest else "")
                        tar.extract(member, parent, filter="tar")
        except BaseException as exc:  # noqa: BLE001
            os.write(2, f"refengine: {exc}\n".encode())
            code = 1
        os._exit(code)
    os.close(r)
    try:
        with os.fdopen(w, "wb") as out:
            if src == "-":
                while chunk := sys.stdin.buffer.read(65536):
                    out.write(chunk)
            else:
                with tarfile.open(fileobj=out, mode="w|") as tar:
                    tar.add(src, arcname=os.path.basename(os.path.abspath(src)))
    except BrokenPipeError:
        pass
    return _wait_child(child)


# -- commit / export -------------------------------------------------------------


def cmd_commit(root: Root, p: Parsed) -> int:
    from pathlib import Path

    from ..image.store import ImageStore
    from .imagecmds import parse_changes

    cid = root.find(p.args[0])
    config = root.read_config(cid)
    store = ImageStore(Path(root.image))
    base = store.by_id(config["Image"]) if config["Image"] else None
    cfg = config["Config"]
    image_config = {k: cfg[k] for k in ("Env", "Cmd", "Entrypoint", "WorkingDir", "User", "Labels", "Volumes",
                                        "StopSignal", "ExposedPorts", "OnBuild") if cfg.get(k)}
    image_config.update(parse_changes(p.opts.get("change") or []))
    state = runtime.reconcile(root, cid, root.read_state(cid))
    pause = p.opts.get("pause", True) and state["Status"] == "running"
    if pause:
        runtime.pause(root, cid, True)
    try:
        image = store.commit(base, Path(root.container_dir(cid)) / "upper", config=image_config,
                             author=p.opts.get("author") or "", comment=p.opts.get("message") or "",
                             ref=p.args[1] if len(p.args) > 1 else None)
    finally:
        if pause:
            runtime.pause(root, cid, False)
    sys.stdout.write(image.id + "\n")
    return 0


def cmd_export(root: Root, p: Parsed) -> int:
    from pathlib import Path

    from ..image.store import ImageStore

    cid = root.find(p.args[0])
    config = root.read_config(cid)
    out_path = p.opts.get("output")
    if not out_path and sys.stdout.isatty():
        raise ContainerError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    sys.stdout.flush()
    child = os.fork()
    if child == 0:
        code = 0
        try:
            merged = _view_of_stopped(root, config, writable=False)
            store = ImageStore(Path(root.image))
            if out_path:
                with open(out_path, "wb") as out:
                    store.export_dir(Path(merged), out)
            else:
                with os.fdopen(1, "wb", closefd=False) as out:
                    store.export_dir(Path(merged), out)
        except BaseException as exc:  # noqa: BLE001
            os.write(2, f"refengine: {exc}\n".encode())
            code = 1
        os._exit(code)
    return _wait_child(child)


# -- top -----------------------------------------------------------------------------


def cmd_top(root: Root, p: Parsed) -> int:
    import subprocess

    from .cgroups import Cgroup

    cid = root.find(p.args[0])
    state = _running_state(root, cid)
    pids = set(Cgroup(cid).pids()) or {state["Pid"]}
    args = p.args[1:] or ["-ef"]
    try:
        out = subprocess.run(["ps", *args], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise ContainerError(f"ps failed: {exc}") from None
    lines = out.splitlines()
    header = lines[0].split()
    if "PID" not in header:
        raise ContainerError("couldn't find PID field in ps output")
    col = header.index("PID")
    sys.stdout.write(lines[0] + "\n")
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > col and fields[col].isdigit() and int(fields[col]) in pids:
            sys.stdout.write(line + "\n")
    return 0

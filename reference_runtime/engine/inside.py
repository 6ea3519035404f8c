"""Commands that reach into a container's filesystem or namespaces:
exec, cp, commit, export, top.

A running container is entered with setns(2) (its mount namespace includes
its volumes); a stopped one is seen through a fresh overlay mounted in a
private mount namespace of a forked child, so no mount is ever left on the
host. ``cp`` copies tar streams and extracts inside the container's root
(chroot + tarfile's ``tar`` filter), so nothing can be written outside it.

The forked ``cp`` child runs as host root while "/" is the container's, so it
must run nothing of the container (CVE-2019-14271): no name lookups through the
C library (glibc would read the container's nsswitch.conf and load its libnss
modules), numeric ids only, as moby's archive package does, and no Python
import either (sys.path holds absolute paths, which now name the container's
files). See :func:`_seal_child`.
"""

from __future__ import annotations

import os
import sys

from ..errors import ContainerError
from . import copyrules, runtime
from . import syscalls as sc
from .flags import Parsed
from .process import enter_namespaces as _enter
from .state import Root


def _running_state(root: Root, cid: str, ref: str | None = None) -> dict:
    """The state of a running container; docker's errors otherwise (a paused
    one is named as the user wrote it, a stopped one by its ID, as dockerd does)."""
    state = runtime.reconcile(root, cid, root.read_state(cid))
    if state["Status"] == "paused":
        raise ContainerError(f"Container {ref or cid} is paused, unpause the container before exec")
    if state["Status"] != "running" or not state["Pid"]:
        raise ContainerError(f"Container {cid} is not running")
    return state


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


def _seal_child() -> None:
    """In a forked ``cp`` child, before "/" becomes the container's: nothing the
    container planted may run here. tarfile's uname/gname lookups (pwd, grp)
    go, so ids stay numeric; imports are limited to the interpreter's built-in
    and frozen modules, so a lazy import fails instead of loading the container's
    copy of a module."""
    import importlib.machinery as machinery
    import tarfile

    tarfile.pwd = None
    tarfile.grp = None
    sys.path[:] = []
    sys.path_importer_cache.clear()
    sys.path_hooks[:] = []
    sys.meta_path[:] = [f for f in sys.meta_path if f in (machinery.BuiltinImporter, machinery.FrozenImporter)]


def _enter_rootfs(root: Root, cid: str, writable: bool) -> None:
    """In a forked child: make "/" the container's root filesystem (sealed first)."""
    config = root.read_config(cid)
    state = runtime.reconcile(root, cid, root.read_state(cid))
    _seal_child()
    if state["Running"] and state["Pid"]:
        _enter(state["Pid"], (("mnt", sc.CLONE_NEWNS),))
    else:
        os.chroot(_view_of_stopped(root, config, writable))
    os.chdir("/")


# -- exec ----------------------------------------------------------------------------


def cmd_exec(root: Root, p: Parsed) -> int:
    from .cgroups import Cgroup
    from . import seccomp
    from .process import become_user_and_exec, capability_mask, capability_names, enter_isolation, read_report
    from .spec import env_flags, merge_env

    cid = root.find(p.args[0])
    config = root.read_config(cid)
    state = _running_state(root, cid, p.args[0])
    argv = p.args[1:]
    env_list = merge_env(config["Config"]["Env"], env_flags(p.opts))
    env = dict(e.split("=", 1) if "=" in e else (e, "") for e in env_list)
    env.setdefault("HOSTNAME", config["Config"]["Hostname"])
    host = config["HostConfig"]
    caps = capability_mask(host.get("CapAdd") or [], host.get("CapDrop") or [],
                           host.get("Privileged", False) or bool(p.opts.get("privileged")))
    # The container's seccomp filter and no_new_privs bind its exec'd processes too (runc's setns init).
    try:
        base_caps = capability_mask(host.get("CapAdd") or [], host.get("CapDrop") or [], host.get("Privileged", False))
        no_new_privs = seccomp.security_opts(host.get("SecurityOpt") or [])[1]
        bpf = seccomp.filter_for(root.path, host, capability_names(base_caps))
    except (seccomp.ProfileError, OSError) as exc:
        raise ContainerError(str(exc)) from None
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
                enter_isolation(err_w)
                become_user_and_exec(argv, env, user, caps, no_new_privs, bpf, workdir, err_w)
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
    archive, follow = bool(p.opts.get("archive")), bool(p.opts.get("follow_link"))
    if src_ref is not None:
        return _copy_out(root, root.find(src_ref), src, dst, archive, follow)
    return _copy_in(root, root.find(dst_ref), src, dst, archive, follow)


def _owned_by(tar, owner: tuple[int, int] | None):
    """The members of ``tar`` with numeric ownership only: ``owner`` (docker cp
    without ``-a`` gives files to the destination's user) or, for ``-a``
    (``owner`` None), the ids they had at the source. Names are dropped so that
    nothing ever maps them through a name service."""
    for member in tar:
        if owner is not None:
            member.uid, member.gid = owner
        member.uname = member.gname = ""
        yield member


def _copy_out(root: Root, cid: str, src: str, dst: str, archive: bool = False, follow: bool = False) -> int:
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
                # -L resolves the link here, where "/" is the container's root; the copy keeps the link's name
                tar.add(os.path.realpath(src) if follow else src, arcname=name)
        except BrokenPipeError:  # the receiving side refused the copy and has said why
            code = 1
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
                    _extract(tar, dst, None if archive else (os.getuid(), os.getgid()))
    except tarfile.TarError as exc:
        code = _wait_child(child)
        if code:  # the child has said why (no such file): an empty stream adds nothing
            return code
        raise ContainerError(f"copying from container: {exc}") from None
    except BaseException:
        _wait_child(child)
        raise
    return _wait_child(child)


def _extract(tar, dst: str, owner: tuple[int, int] | None) -> None:
    """Land a cp stream at DEST_PATH by docker cp's table (on the host, or in a
    child whose "/" is the container's root, so links resolve there)."""
    first = tar.next()
    if first is None:
        return
    how = copyrules.destination(src_is_dir=first.isdir(), dest=copyrules.probe(dst), dest_path=dst)
    if how == "into":
        tar.extractall(dst, members=_owned_by(tar, owner), numeric_owner=True, filter="tar")
        return
    parent, name = os.path.split(os.path.abspath(dst))
    for member in _owned_by(tar, owner):
        member.name = copyrules.renamed(member.name, name)
        tar.extract(member, parent, numeric_owner=True, filter="tar")


def _copy_in(root: Root, cid: str, src: str, dst: str, archive: bool = False, follow: bool = False) -> int:
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
            owner = None if archive else (0, 0)
            if src == "-" and not os.path.isdir(dst):
                raise ContainerError(f'destination "{dst}" must be a directory')
            with os.fdopen(r, "rb") as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
                if src == "-":
                    tar.extractall(dst, members=_owned_by(tar, owner), numeric_owner=True, filter="tar")
                else:
                    _extract(tar, dst, owner)
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
                # SRC_PATH ending in "/." copies the directory's content: its entries are "./..."
                name = "." if os.path.basename(src) == "." else os.path.basename(os.path.abspath(src))
                with tarfile.open(fileobj=out, mode="w|") as tar:
                    tar.add(os.path.realpath(src) if follow else src, arcname=name)
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
                                        "StopSignal", "ExposedPorts", "OnBuild", "Healthcheck") if cfg.get(k)}
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

    from .format import table, top_processes

    cid = root.find(p.args[0])
    # not _running_state: dockerd lists a paused container's (frozen) processes too
    state = runtime.reconcile(root, cid, root.read_state(cid))
    if not state["Running"] or not state["Pid"]:
        raise ContainerError(f"Container {cid} is not running")
    pids = set(Cgroup(cid).pids()) or {state["Pid"]}
    args = p.args[1:] or ["-ef"]
    try:
        out = subprocess.run(["ps", *args], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise ContainerError(f"ps failed: {exc}") from None
    titles, rows = top_processes(out, pids)
    # docker's CLI prints the daemon's table with a tabwriter of 20-wide columns
    sys.stdout.write("".join(line + "\n" for line in table([titles, *rows], min_width=20)))
    return 0

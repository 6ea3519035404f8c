"""The filesystem side of COPY, ADD and WORKDIR: an overlay snapshot of the
parent image (mounted in the builder's own private mount namespace, so no
mount is ever visible on the host or outlives the process), files copied
into it with docker's rules, ADD's archive extraction and URL download.
The step's layer is then the snapshot's upper directory, which the image
store turns into a layer tar (overlay whiteouts -> ``.wh.`` files).

Every path inside the snapshot is resolved with the rootfs's own symlinks
scoped to it (:func:`reference_runtime.scopedpath.secure_join`), so
neither the image nor an archive can make a write land outside it.
"""

from __future__ import annotations

import os
import stat
import tarfile
import tempfile
from pathlib import Path

from ..engine import syscalls as sc
from ..scopedpath import secure_join
from .errors import BuildError

_private_namespace = False


def private_mounts() -> None:
    """Move this process into a mount namespace of its own (once): snapshots mounted
    afterwards vanish with the process, whatever happens to it."""
    global _private_namespace
    if _private_namespace:
        return
    sc.unshare(sc.CLONE_NEWNS)
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
    _private_namespace = True


class Snapshot:
    """An overlay of *lowers* (image layer dirs, top first) with a new upper directory."""

    def __init__(self, work_root: str, lowers: list[str], prefix: str = "snap"):
        private_mounts()
        self.dir = tempfile.mkdtemp(prefix=f"{prefix}-{os.getpid()}-", dir=work_root)
        self.upper = os.path.join(self.dir, "upper")
        self.merged = os.path.join(self.dir, "merged")
        work = os.path.join(self.dir, "work")
        for d in (self.upper, self.merged, work):
            os.mkdir(d)
        os.chmod(self.upper, 0o755)
        if not lowers:
            empty = os.path.join(self.dir, "empty")
            os.mkdir(empty)
            lowers = [empty]
        self.mounted = False
        try:
            sc.mount("overlay", self.merged, "overlay", 0,
                     f"lowerdir={':'.join(lowers)},upperdir={self.upper},workdir={work}")
        except OSError as exc:
            self.close()
            raise BuildError(f"cannot mount the build snapshot: {exc}") from None
        self.mounted = True

    def unmount(self) -> None:
        if self.mounted:
            sc.umount2(self.merged, sc.MNT_DETACH)
            self.mounted = False

    def empty(self) -> bool:
        return not os.listdir(self.upper)

    def close(self) -> None:
        try:
            self.unmount()
        finally:
            from ..image.tarutil import remove_tree

            remove_tree(Path(self.dir))


# -- users ---------------------------------------------------------------------


def _lookup(path: str, name: str, what: str, field: int) -> int:
    if name.isdigit():
        return int(name)
    try:
        with open(path) as f:
            for line in f:
                parts = line.rstrip("\n").split(":")
                if len(parts) > field and parts[0] == name:
                    return int(parts[field])
    except OSError:
        pass
    raise BuildError(f"unable to convert uid/gid chown string to host mapping: can't find {what} with name "
                     f"{name}: no matching entries in {os.path.basename(path)} file")


def resolve_chown(rootfs: str, spec: str) -> tuple[int, int]:
    """``--chown=user[:group]`` against the image's /etc/passwd and /etc/group (docker: the
    group defaults to the same spec as the user)."""
    parts = spec.split(":")
    if len(parts) > 2 or not parts[0]:
        raise BuildError(f"invalid chown string format: {spec}")
    user, group = (parts[0], parts[0]) if len(parts) == 1 else parts
    uid = _lookup(secure_join(rootfs, "/etc/passwd"), user, "uid", 2)
    gid = _lookup(secure_join(rootfs, "/etc/group"), group, "gid", 2)
    return uid, gid


def parse_chmod(spec: str) -> int:
    try:
        mode = int(spec, 8)
    except ValueError:
        raise BuildError(f"invalid chmod parameter: {spec!r}: use an octal mode like 0755") from None
    if mode < 0 or mode > 0o7777:
        raise BuildError(f"invalid chmod parameter: {spec!r}: use an octal mode like 0755")
    return mode


# -- writing into the snapshot ----------------------------------------------------


def mkdir_all(rootfs: str, path: str, owner: tuple[int, int]) -> str:
    """Create *path* (container path) and missing parents (0755, *owner*); the host path."""
    parts = [p for p in path.split("/") if p and p != "."]
    current = "/"
    host = rootfs
    for part in parts:
        current = os.path.join(current, part)
        host = secure_join(rootfs, current)
        if os.path.isdir(host):
            continue
        if os.path.lexists(host):
            raise BuildError(f"cannot create directory {current}: a file is in the way")
        os.mkdir(host, 0o755)
        os.chown(host, *owner)
        os.chmod(host, 0o755)
    return host


def _clear(host: str, keep_dir: bool) -> None:
    if not os.path.lexists(host):
        return
    if os.path.isdir(host) and not os.path.islink(host):
        if keep_dir:
            return
        from ..image.tarutil import remove_tree

        remove_tree(Path(host))
    else:
        os.unlink(host)


def _copy_data(src: str, dst: str) -> None:
    fd_in = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fd_out = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            size = os.fstat(fd_in).st_size
            copied = 0
            while copied < size:
                try:
                    n = os.copy_file_range(fd_in, fd_out, size - copied)
                except OSError:
                    n = os.sendfile(fd_out, fd_in, None, size - copied)
                if n == 0:
                    break
                copied += n
        finally:
            os.close(fd_out)
    finally:
        os.close(fd_in)


def _apply(host: str, owner: tuple[int, int], mode: int, mtime_ns: int, link: bool = False) -> None:
    os.chown(host, *owner, follow_symlinks=False)
    if not link:
        os.chmod(host, mode)  # after chown: chown clears set-id bits
    os.utime(host, ns=(mtime_ns, mtime_ns), follow_symlinks=False)


def copy_entry(src: str, st: os.stat_result, host: str, owner: tuple[int, int], chmod: int | None,
               dirs: list) -> None:
    """Recreate one source entry at *host* (already resolved inside the rootfs)."""
    fmt = stat.S_IFMT(st.st_mode)
    mode = chmod if chmod is not None else stat.S_IMODE(st.st_mode)
    if fmt == stat.S_IFDIR:
        if not os.path.isdir(host) or os.path.islink(host):
            _clear(host, False)
            os.mkdir(host, 0o700)
        os.chown(host, *owner)
        os.chmod(host, mode)
        dirs.append((host, st.st_mtime_ns))  # times after the children are written
        return
    if os.path.isdir(host) and not os.path.islink(host):
        raise BuildError(f"cannot overwrite directory {host} with non-directory")
    _clear(host, False)
    if fmt == stat.S_IFREG:
        _copy_data(src, host)
    elif fmt == stat.S_IFLNK:
        os.symlink(os.readlink(src), host)
        _apply(host, owner, mode, st.st_mtime_ns, link=True)
        return
    elif fmt == stat.S_IFIFO:
        os.mkfifo(host, 0o600)
    elif fmt in (stat.S_IFCHR, stat.S_IFBLK):
        os.mknod(host, fmt | 0o600, st.st_rdev)
    else:
        return  # sockets are not copied (docker skips them too)
    _apply(host, owner, mode, st.st_mtime_ns)


def finish_dirs(dirs: list) -> None:
    for host, mtime_ns in reversed(dirs):
        os.utime(host, ns=(mtime_ns, mtime_ns), follow_symlinks=False)


def copy_tree(tree, source, rootfs: str, dest_dir: str, owner: tuple[int, int], chmod: int | None) -> None:
    """The content of a directory source into the container directory *dest_dir*."""
    base = mkdir_all(rootfs, dest_dir, owner)
    del base
    dirs: list = []
    prefix = len(source.name) + 1 if source.name else 0
    for path, rel, st in tree.walk(source):
        inner = rel[prefix:]
        target = os.path.join(dest_dir, inner)
        host = secure_join(rootfs, target)
        if not os.path.isdir(os.path.dirname(host)):
            # a parent left out by .dockerignore but holding a re-included path
            mkdir_all(rootfs, os.path.dirname(target), owner)
        copy_entry(path, st, host, owner, chmod, dirs)
    finish_dirs(dirs)


def copy_file(src: str, st: os.stat_result, rootfs: str, dest: str, owner: tuple[int, int],
              chmod: int | None) -> None:
    """One file to the container path *dest* (a file path, parents created)."""
    parent = os.path.dirname(dest.rstrip("/")) or "/"
    mkdir_all(rootfs, parent, (0, 0) if owner is None else owner)
    host = secure_join(rootfs, dest)
    dirs: list = []
    copy_entry(src, st, host, owner, chmod, dirs)
    finish_dirs(dirs)


def clone_tree(source: str, target: str) -> None:
    """A copy of the directory *source* at *target* with modes, owners and times."""
    import shutil

    shutil.copytree(source, target, symlinks=True, copy_function=shutil.copy2)
    for directory, dirs, files in os.walk(source):
        rel = os.path.relpath(directory, source)
        for name in [".", *dirs, *files] if rel == "." else [*dirs, *files]:
            src = os.path.normpath(os.path.join(directory, name))
            st = os.lstat(src)
            os.chown(os.path.normpath(os.path.join(target, rel, name)), st.st_uid, st.st_gid, follow_symlinks=False)


def is_dir_in(rootfs: str, path: str) -> bool:
    return os.path.isdir(secure_join(rootfs, path))


# -- ADD: archives and URLs ------------------------------------------------------


def is_archive(path: str) -> bool:
    """Whether ADD unpacks *path*: a tar, plain or gzip/bzip2/xz compressed (by content)."""
    try:
        with tarfile.open(path, "r:*") as tar:
            return tar.next() is not None
    except (tarfile.TarError, OSError, EOFError, ValueError):
        return False


def extract_archive(path: str, rootfs: str, dest_dir: str, owner: tuple[int, int] | None,
                    chmod: int | None) -> None:
    """Unpack the archive at *path* into the container directory *dest_dir*. Owners come from
    the archive unless ``--chown``; every path is resolved inside the rootfs."""
    mkdir_all(rootfs, dest_dir, owner or (0, 0))
    dirs: list = []
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                name = member.name.lstrip("/")
                target = secure_join(rootfs, os.path.join(dest_dir, name))
                if not target.startswith(rootfs.rstrip("/") + "/"):
                    continue  # the root itself: nothing to write
                who = owner if owner is not None else (member.uid, member.gid)
                mode = chmod if chmod is not None else member.mode & 0o7777
                mtime_ns = int(member.mtime) * 10**9
                parent = os.path.dirname(os.path.join(dest_dir, name).rstrip("/"))
                mkdir_all(rootfs, parent, owner or (0, 0))
                if member.isdir():
                    if not os.path.isdir(target) or os.path.islink(target):
                        _clear(target, False)
                        os.mkdir(target, 0o700)
                    os.chown(target, *who)
                    os.chmod(target, mode)
                    dirs.append((target, mtime_ns))
                    continue
                if os.path.isdir(target) and not os.path.islink(target):
                    raise BuildError(f"ADD: cannot overwrite directory {name} with a non-directory from the archive")
                _clear(target, False)
                if member.isreg():
                    src = tar.extractfile(member)
                    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
                    with os.fdopen(fd, "wb") as out:
                        while chunk := src.read(1 << 20):
                            out.write(chunk)
                elif member.issym():
                    os.symlink(member.linkname, target)
                    _apply(target, who, mode, mtime_ns, link=True)
                    continue
                elif member.islnk():
                    link_target = secure_join(rootfs, os.path.join(dest_dir, member.linkname.lstrip("/")))
                    if not os.path.isfile(link_target):
                        raise BuildError(f"ADD: hard link {name} -> {member.linkname}: target not in the archive")
                    os.link(link_target, target)
                    continue
                elif member.isfifo():
                    os.mkfifo(target, 0o600)
                else:
                    continue  # devices from an archive are not created
                _apply(target, who, mode, mtime_ns)
    except (tarfile.TarError, EOFError) as exc:
        raise BuildError(f"ADD: cannot unpack {os.path.basename(path)}: {exc}") from None
    finish_dirs(dirs)


def download(url: str, directory: str) -> tuple[str, str, int]:
    """Fetch *url* into *directory*; (path, file name, mtime in ns from Last-Modified or 0).

    Proxy environment variables are not used: the builder fetches directly.
    """
    import email.utils
    import urllib.error
    import urllib.parse
    import urllib.request

    name = os.path.basename(urllib.parse.urlparse(url).path.rstrip("/"))
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=60) as response:
            disposition = response.headers.get_filename()
            if disposition:
                name = os.path.basename(disposition)
            path = os.path.join(directory, "download")
            with open(path, "wb") as out:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
            modified = response.headers.get("Last-Modified")
    except urllib.error.HTTPError as exc:
        raise BuildError(f"ADD failed: error downloading {url}: {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise BuildError(f"ADD failed: error downloading {url}: {reason}") from None
    mtime_ns = 0
    if modified:
        try:
            mtime_ns = int(email.utils.parsedate_to_datetime(modified).timestamp()) * 10**9
        except (TypeError, ValueError):
            mtime_ns = 0
    if not name:
        raise BuildError(f"ADD failed: cannot determine a file name from the URL {url}: add it to the destination")
    os.chmod(path, 0o600)
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return path, name, mtime_ns

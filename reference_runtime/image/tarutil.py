"""Layer tars in and out: safe extraction with overlay whiteouts, and
deterministic tar writing of a directory.

Extraction (:func:`extract_layer`, :func:`unpack_layer`) never writes
outside its root. It refuses, with a :class:`StoreError` naming the entry:
absolute names, ``..`` components, any write through a symlink (a symlink
in the tar is stored as a symlink, never followed), hard links whose target
is outside the root or not yet extracted, and device files (a layer is not
a way to hand a container a host device; overlay whiteouts come only from
``.wh.`` names), names longer than PATH_MAX or with a component longer
than NAME_MAX, a path named twice (as docker does), a member followed by bytes that are no tar header (one that
declares fewer bytes than follow would otherwise hide the next member), and
a layer whose files add up to more than the limit it is given (see
:func:`~reference_runtime.image.fstree.max_layer_size`; checked from each
header, before the member is written). Sparse members are written with
holes, so a sparse file takes only the disk its data needs.
:func:`unpack_layer` extracts into a temporary directory
next to the target and renames it into place only when every entry was
accepted, so a refused tar leaves nothing behind.

Whiteouts, the OCI/AUFS form in tars and the overlayfs form on disk:

- ``dir/.wh.NAME``   <-> ``dir/NAME`` a character device 0:0
- ``dir/.wh..wh..opq`` <-> xattr ``trusted.overlay.opaque=y`` on ``dir``

Writing (:func:`write_tree`) is deterministic: entries sorted by name,
uid/gid kept (no user names), mtimes in whole seconds (clamped to
``SOURCE_DATE_EPOCH`` when given), no atime/ctime, hard links as links,
``security.capability`` kept (as docker does), PAX headers only where
USTAR cannot hold a field (long names, big ids).
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tarfile
import tempfile
import zlib
from pathlib import Path
from typing import BinaryIO

from ..errors import StoreError
from . import fstree

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
WHITEOUT_OPAQUE = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
KEPT_XATTRS = ("security.capability",)
PATH_MAX = 4096  # Linux: no path, and so no tar entry name, may be longer (with its NUL)
NAME_MAX = 255
BLOCK = tarfile.BLOCKSIZE
_IS_ROOT = os.geteuid() == 0


def entry_parts(name: str, what: str = "layer tar entry") -> list[str]:
    """The path components of a tar entry name, refusing escapes. Pure.

    ``./a//b/`` gives ``["a", "b"]``; the root entry (``./``) gives ``[]``.

    >>> entry_parts("./usr//bin/")
    ['usr', 'bin']
    """
    if "\x00" in name:
        raise StoreError(f"{what} {shown(name)} contains a NUL byte")
    if name.startswith("/"):
        raise StoreError(f"{what} {shown(name)} is an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise StoreError(f"{what} {shown(name)} has a '..' component (would escape the layer root)")
    size = len(name.encode("utf-8", "surrogateescape"))
    if size >= PATH_MAX:
        raise StoreError(f"{what} {shown(name)} is {size} bytes long, more than PATH_MAX ({PATH_MAX - 1})")
    for part in parts:
        if len(part.encode("utf-8", "surrogateescape")) > NAME_MAX:
            raise StoreError(f"{what} {shown(name)} has a name longer than NAME_MAX ({NAME_MAX} bytes)")
    return parts


def shown(name: str, limit: int = 120) -> str:
    """*name* quoted for a one-line message, its middle elided when long. Pure.

    >>> shown("a/" * 100)
    "'a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/...a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/' (200 bytes)"
    """
    if len(name) <= limit:
        return repr(name)
    half = limit // 2
    return f"{name[:half] + '...' + name[-half:]!r} ({len(name.encode('utf-8', 'surrogateescape'))} bytes)"


class _StrictTarInfo(tarfile.TarInfo):
    """A tar header reader that refuses what tarfile would take for the end of the archive.

    tarfile stops, silently, at the first block after a member that is no
    valid header: a member that declares fewer bytes than follow makes the
    rest of its data look like that, and everything after it would be
    dropped without a word. A single zero block followed by more data
    (not the two-block end of archive) hides members the same way. Go's
    archive/tar, which docker uses, refuses both; so do we.
    """

    @classmethod
    def fromtarfile(cls, tar):
        try:
            return super().fromtarfile(tar)
        except (tarfile.InvalidHeaderError, tarfile.TruncatedHeaderError) as exc:
            if tar.offset == 0:
                raise
            raise tarfile.ReadError(f"no valid member header at offset {tar.offset} ({exc}): a member declares "
                                    "fewer bytes than follow it, or the archive is damaged") from None
        except tarfile.EOFHeaderError:
            following = tar.fileobj.read(tarfile.BLOCKSIZE)
            if following.count(0) != len(following):
                raise tarfile.ReadError(f"a zero block at offset {tar.offset} is followed by more data, "
                                        "not by the end of the archive") from None
            raise


#: Links, devices, directories and fifos: their size field is ignored and no data follows.
_HEADER_ONLY_TYPES = {tarfile.LNKTYPE, tarfile.SYMTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.DIRTYPE,
                      tarfile.FIFOTYPE}


class DeclaredSize:
    """Sums the sizes a tar stream's headers declare while the stream is copied (decompressed),
    so a layer whose members declare more than *limit* bytes is refused at the header that passes
    it, before its data is written: a decompression bomb costs kilobytes, not the limit.

    Fed the stream in order, in chunks of whole 512-byte blocks but the last (what a buffered
    ``read(n)`` returns). Watching stops at the end of the archive, or at anything that is no
    valid header: the extractor refuses those; the copy's own byte count stays the backstop (a
    PAX ``size`` record may declare more than its header).
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.total = 0
        self._pos = 0           # stream offset of the next chunk
        self._header = 0        # stream offset of the next header
        self._watching = True

    def feed(self, chunk: bytes) -> None:
        end = self._pos + len(chunk)
        while self._watching and self._header + BLOCK <= end:
            at = self._header - self._pos
            if at < 0:  # a header split across chunks: leave it to the extractor
                self._watching = False
                break
            block = chunk[at:at + BLOCK]
            try:
                size = tarfile.nti(block[124:136])
                valid = tarfile.nti(block[148:156]) in tarfile.calc_chksums(block)
            except (tarfile.HeaderError, ValueError):
                valid = False
            if not valid or size < 0:
                self._watching = False  # the end of the archive, or no tar at all
                break
            if block[156:157] in _HEADER_ONLY_TYPES:
                size = 0  # no data follows whatever the header says, for tarfile and Go alike
            self.total += size
            if self.total > self.limit:
                raise StoreError(f"layer tar entry {shown(tarfile.nts(block[:100], 'utf-8', 'surrogateescape'))}: "
                                 f"the layer's members declare more than {self.limit} bytes, the limit on a "
                                 f"layer's expanded size ({fstree.MAX_LAYER_SIZE_ENV})")
            self._header += BLOCK + -(-size // BLOCK) * BLOCK
        self._pos = end


def open_stream(source: BinaryIO) -> tarfile.TarFile:
    """A forward-only reader of a (plain or compressed) tar that never stops early in silence."""
    return tarfile.open(fileobj=source, mode="r|*", tarinfo=_StrictTarInfo)


class _Extractor:
    """One extraction into *root*; every path is checked component by component."""

    def __init__(self, root: Path, limit: int):
        self.root = root
        self.size = 0
        self.limit = limit
        self.expanded = 0  # bytes the files declare (sparse ones at their full size)
        self.seen: set[str] = set()
        # directories (relative) checked to be real ones, with every ancestor: an entry under one
        # needs no lstat of each component again, which made a 1200-deep layer take O(depth^3)
        self.known_dirs: set[str] = set()
        self.dirs: list[tuple[str, tarfile.TarInfo]] = []

    def _parent(self, name: str, parts: list[str], *, create: bool) -> str:
        """The real directory holding *parts*[-1], never crossing a symlink."""
        parent = "/".join(parts[:-1])
        if not parent or parent in self.known_dirs:
            return os.path.join(str(self.root), parent) if parent else str(self.root)
        path = str(self.root)
        for i, comp in enumerate(parts[:-1]):
            path = os.path.join(path, comp)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                if not create:
                    raise StoreError(f"layer tar entry {shown(name)}: {shown('/'.join(parts[:i + 1]))} "
                                     "does not exist") from None
                os.mkdir(path, 0o755)
                continue
            if stat.S_ISLNK(st.st_mode):
                raise StoreError(f"layer tar entry {shown(name)} would be written through the symlink "
                                 f"{shown('/'.join(parts[:i + 1]))}")
            if not stat.S_ISDIR(st.st_mode):
                raise StoreError(f"layer tar entry {shown(name)}: {shown('/'.join(parts[:i + 1]))} "
                                 "is not a directory")
        self.known_dirs.add(parent)
        return path

    def _clear(self, path: str, keep_dir: bool) -> None:
        """Remove what is at *path* unless it is a directory we are about to reuse."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            if not keep_dir:
                fstree.remove_tree(path)
                rel = os.path.relpath(path, self.root)
                self.known_dirs = {d for d in self.known_dirs if d != rel and not d.startswith(rel + "/")}
        else:
            os.unlink(path)

    def _own(self, path: str, info: tarfile.TarInfo, *, symlink: bool = False) -> None:
        if _IS_ROOT:
            os.lchown(path, info.uid, info.gid)
        if not symlink:
            os.chmod(path, info.mode & 0o7777)
        for key, value in info.pax_headers.items():
            if not key.startswith("SCHILY.xattr."):
                continue
            attr = key[len("SCHILY.xattr."):]
            if attr.startswith("trusted.") or symlink:
                continue  # overlay metadata comes only from .wh. names; a tar cannot forge it
            try:
                os.setxattr(path, attr, value.encode("utf-8", "surrogateescape"), follow_symlinks=False)
            except OSError as exc:
                if exc.errno not in (errno.ENOTSUP, errno.EPERM, errno.EINVAL):
                    raise

    def add(self, tar: tarfile.TarFile, info: tarfile.TarInfo) -> None:
        name = info.name
        parts = entry_parts(name)
        # docker refuses a layer that names one path twice (tar-split: "duplicates of file paths
        # not supported"): the later entry would silently replace the earlier one, or write
        # through a symlink the earlier one made
        key = "/".join(parts)
        if key in self.seen:
            raise StoreError(f"layer tar entry {shown(name)} names a path already in the layer "
                             "(duplicate paths are not supported)")
        self.seen.add(key)
        if not parts:
            if info.isdir():
                self.dirs.append(("", info))
            return
        base = parts[-1]
        if base.startswith(WHITEOUT_PREFIX):
            self._whiteout(name, parts)
            return
        parent = self._parent(name, parts, create=True)
        path = os.path.join(parent, base)
        if info.isdir():
            self._clear(path, keep_dir=True)  # anything but a real directory is gone now
            if not os.path.isdir(path):
                os.mkdir(path, 0o700)
            self.known_dirs.add(key)
            self.dirs.append((path, info))
            return
        self._clear(path, keep_dir=False)
        if info.isreg():
            self.expanded += info.size
            if self.expanded > self.limit:
                raise StoreError(f"layer tar entry {shown(name)}: the layer's files take more than "
                                 f"{self.limit} bytes, the limit on a layer's expanded size "
                                 f"({fstree.MAX_LAYER_SIZE_ENV})")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as dst:
                if info.sparse is not None:
                    _copy_sparse(tar, dst, info)
                else:
                    shutil.copyfileobj(tar.extractfile(info), dst, 1 << 20)
            self.size += info.size
        elif info.issym():
            os.symlink(info.linkname, path)
            self.size += len(info.linkname.encode("utf-8", "surrogateescape"))
            self._own(path, info, symlink=True)
            os.utime(path, ns=(info.mtime * 10**9,) * 2, follow_symlinks=False)
            return
        elif info.islnk():
            target_parts = entry_parts(info.linkname, f"layer tar entry {shown(name)}: hard link target")
            if not target_parts:
                raise StoreError(f"layer tar entry {shown(name)} is a hard link to the layer root")
            target = os.path.join(self._parent(info.linkname, target_parts, create=False), target_parts[-1])
            try:
                st = os.lstat(target)
            except FileNotFoundError:
                raise StoreError(f"layer tar entry {shown(name)} is a hard link to {shown(info.linkname)}, "
                                 "which is not in the layer") from None
            if stat.S_ISDIR(st.st_mode):
                raise StoreError(f"layer tar entry {shown(name)} is a hard link to a directory")
            os.link(target, path, follow_symlinks=False)
            return  # a hard link shares its target's inode, owner and mode
        elif info.isfifo():
            os.mkfifo(path, 0o600)
        elif info.ischr() or info.isblk():
            raise StoreError(f"layer tar entry {shown(name)} is a device file; device files are refused in layers")
        else:
            raise StoreError(f"layer tar entry {shown(name)} has an unsupported type {info.type!r}")
        self._own(path, info)
        os.utime(path, ns=(int(info.mtime) * 10**9,) * 2, follow_symlinks=False)

    def _whiteout(self, name: str, parts: list[str]) -> None:
        parent = self._parent(name, parts, create=True)
        base = parts[-1]
        if base == WHITEOUT_OPAQUE:
            os.setxattr(parent, OPAQUE_XATTR, b"y")
            return
        if base.startswith(WHITEOUT_META_PREFIX):
            return  # other AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): meaningless on overlay
        hidden = base[len(WHITEOUT_PREFIX):]
        if not hidden or hidden in (".", ".."):
            raise StoreError(f"layer tar entry {shown(name)} is not a valid whiteout")
        path = os.path.join(parent, hidden)
        self._clear(path, keep_dir=False)
        os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(0, 0))

    def finish(self) -> None:
        # deepest first, so setting a child's mtime does not bump its parent's afterwards
        for path, info in sorted(self.dirs, key=lambda d: d[0].count("/"), reverse=True):
            target = path or str(self.root)
            try:
                is_dir = stat.S_ISDIR(os.lstat(target).st_mode)
            except FileNotFoundError:
                is_dir = False
            if not is_dir:
                continue  # replaced by a later entry (maybe a symlink out of the root): not ours to touch
            self._own(target, info)
            os.utime(target, ns=(int(info.mtime) * 10**9,) * 2, follow_symlinks=False)


def _copy_sparse(tar: tarfile.TarFile, dst: BinaryIO, info: tarfile.TarInfo) -> None:
    """Write only the data regions of a sparse member, the holes staying holes. The regions are
    stored one after another from ``offset_data``; tarfile's own reader would hand us every hole
    as zeros (gigabytes of them) and cannot seek a stream."""
    stream = tar.fileobj
    stream.seek(info.offset_data)  # forward only, which a stream allows
    for offset, length in info.sparse or ():
        if offset < 0 or length < 0 or offset + length > info.size:
            raise tarfile.ReadError(f"sparse member {shown(info.name)} maps data outside its size")
        dst.seek(offset)
        while length > 0:
            chunk = stream.read(min(length, 1 << 20))
            if not chunk:
                raise tarfile.ReadError("unexpected end of data in a sparse member")
            dst.write(chunk)
            length -= len(chunk)
    dst.truncate(info.size)


def extract_layer(source: BinaryIO, root: Path, limit: int | None = None) -> int:
    """Extract a (gzip or plain) layer tar into the existing directory *root*.

    Returns the layer's size as docker counts it (regular file and symlink
    bytes, hard links once). Files adding up to more than *limit* bytes
    (default :func:`~reference_runtime.image.fstree.max_layer_size`) are
    refused. On error *root* may hold a partial tree: use
    :func:`unpack_layer` for all-or-nothing.
    """
    ex = _Extractor(root, fstree.max_layer_size() if limit is None else limit)
    try:
        with open_stream(source) as tar:
            for info in tar:
                ex.add(tar, info)
        ex.finish()
    except StoreError:
        raise
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise StoreError(f"invalid layer tar: {exc}") from None
    except OSError as exc:
        raise StoreError(f"cannot unpack layer: {exc.strerror or exc}"
                         + (f": {shown(str(exc.filename))}" if exc.filename else "")) from None
    return ex.size


def unpack_layer(source: BinaryIO, target: Path, limit: int | None = None) -> int:
    """Extract a layer tar to *target* (which must not exist) all-or-nothing.

    The tree is built in a temporary directory beside *target* and renamed
    into place only on success; if another process created *target*
    meanwhile, ours is discarded (same content: the name is a chain ID).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{os.getpid()}-", dir=target.parent))
    try:
        os.chmod(staging, 0o755)
        size = extract_layer(source, staging, limit)
        try:
            os.rename(staging, target)
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            remove_tree(staging)
        return size
    except BaseException:
        remove_tree(staging)
        raise


def remove_tree(path: Path) -> None:
    """Remove a tree of any depth (see :func:`fstree.remove_tree`), best effort: what cannot be
    removed now is left for the next writer's stale-staging sweep, never an error for this one."""
    try:
        fstree.remove_tree(path)
    except OSError:
        pass


def _tarinfo(name: str, st: os.stat_result, clamp_mtime: int | None) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.uname = info.gname = ""
    mtime = int(st.st_mtime)
    info.mtime = min(mtime, clamp_mtime) if clamp_mtime is not None else mtime
    return info


def _security_xattrs(path: str) -> dict[str, str]:
    out = {}
    for attr in KEPT_XATTRS:
        try:
            value = os.getxattr(path, attr, follow_symlinks=False)
        except OSError:
            continue
        out[f"SCHILY.xattr.{attr}"] = value.decode("utf-8", "surrogateescape")
    if any(v.encode("utf-8", "surrogateescape") != v.encode("utf-8", "replace") for v in out.values()):
        out["hdrcharset"] = "BINARY"  # lets tarfile write the raw bytes back
    return out


def write_tree(root: Path, out: BinaryIO, *, overlay_whiteouts: bool = False,
               clamp_mtime: int | None = None) -> None:
    """Write the tree under *root* (not *root* itself) as a deterministic tar to *out*.

    With *overlay_whiteouts*, overlay whiteouts (char device 0:0) become
    ``.wh.NAME`` files and opaque directories get a ``.wh..wh..opq`` entry:
    the layer form of a container's upper directory.
    """
    links: dict[tuple[int, int], str] = {}
    try:
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            _write_dir(tar, str(root), "", links, overlay_whiteouts, clamp_mtime)
    except OSError as exc:
        raise StoreError(f"cannot archive {root}: {exc.strerror or exc}"
                         + (f": {shown(str(exc.filename))}" if exc.filename else "")) from None


def _sorted_names(dirpath: str) -> list[str]:
    with os.scandir(dirpath) as it:
        return sorted(e.name for e in it)


def _write_dir(tar: tarfile.TarFile, dirpath: str, prefix: str, links: dict, whiteouts: bool,
               clamp: int | None) -> None:
    """Depth first in name order, with a stack rather than recursion: a container may nest
    directories deeper than Python's recursion limit."""
    stack = [(dirpath, prefix, iter(_sorted_names(dirpath)))]
    while stack:
        dirpath, prefix, names = stack[-1]
        base = next(names, None)
        if base is None:
            stack.pop()
            continue
        path = os.path.join(dirpath, base)
        if _write_entry(tar, path, prefix, base, links, whiteouts, clamp):
            stack.append((path, prefix + base + "/", iter(_sorted_names(path))))


def _write_entry(tar: tarfile.TarFile, path: str, prefix: str, base: str, links: dict, whiteouts: bool,
                 clamp: int | None) -> bool:
    """Archive one entry; True when it is a directory to descend into."""
    name = prefix + base
    st = os.lstat(path)
    mode = st.st_mode
    if whiteouts:
        _refuse_overlay_indirection(path, name, mode)
    if stat.S_ISDIR(mode):
        info = _tarinfo(name, st, clamp)
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
        if whiteouts and _is_opaque(path):
            wo = _tarinfo(f"{name}/{WHITEOUT_OPAQUE}", st, clamp)
            wo.mode = stat.S_IMODE(mode) & 0o777
            tar.addfile(wo)
        return True
    if whiteouts and stat.S_ISCHR(mode) and st.st_rdev == 0:
        info = _tarinfo(prefix + WHITEOUT_PREFIX + base, st, clamp)
        info.mode = 0o600
        tar.addfile(info)
        return False
    if stat.S_ISSOCK(mode):
        return False  # sockets cannot be archived; docker skips them too
    info = _tarinfo(name, st, clamp)
    key = (st.st_dev, st.st_ino)
    if st.st_nlink > 1 and key in links:
        info.type, info.linkname = tarfile.LNKTYPE, links[key]
        tar.addfile(info)
        return False
    if st.st_nlink > 1:
        links[key] = name
    if stat.S_ISREG(mode):
        info.size = st.st_size
        info.pax_headers = _security_xattrs(path)
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            tar.addfile(info, f)
    elif stat.S_ISLNK(mode):
        info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
        tar.addfile(info)
    elif stat.S_ISFIFO(mode):
        info.type = tarfile.FIFOTYPE
        tar.addfile(info)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        tar.addfile(info)
    return False


def _refuse_overlay_indirection(path: str, name: str, mode: int) -> None:
    """An upper dir made with redirect_dir or metacopy holds references into the lower layers,
    not content: archiving it would give a wrong layer, so say so."""
    attrs = ("trusted.overlay.redirect",) if stat.S_ISDIR(mode) else \
        ("trusted.overlay.metacopy",) if stat.S_ISREG(mode) else ()
    for attr in attrs:
        try:
            os.getxattr(path, attr, follow_symlinks=False)
        except OSError:
            continue
        raise StoreError(f"cannot commit {name!r}: the overlay upper dir uses {attr.rsplit('.', 1)[1]} "
                         "(mount the container's overlay with redirect_dir=off,metacopy=off)")


def _is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False

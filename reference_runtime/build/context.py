"""The build context: a directory or a tar on stdin, filtered by
``.dockerignore``; finding COPY/ADD sources in it (wildcards, symlinks kept
inside the context) and hashing them for the cache.

File content hashes are remembered in ``<root>/build/hashes.json`` keyed by
(device, inode, size, mtime, ctime), as buildkit does, so a rebuild does not
read unchanged big files again; the cache KEY stays content-based
(:mod:`.contexthash`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from ..scopedpath import secure_join
from .contexthash import Entry
from .dockerignore import IgnoreMatcher, read_patterns
from .errors import BuildError

_KIND = {stat.S_IFREG: "0", stat.S_IFLNK: "2", stat.S_IFCHR: "3", stat.S_IFBLK: "4", stat.S_IFDIR: "5",
         stat.S_IFIFO: "6"}


class HashCache:
    """sha256 of regular files by (dev, ino, size, mtime_ns, ctime_ns), persisted between builds."""

    def __init__(self, path: Path | None):
        self.path = path
        self.entries: dict[str, list] = {}
        self.dirty = False
        if path is not None:
            try:
                self.entries = json.loads(path.read_bytes())
            except (OSError, ValueError):
                self.entries = {}

    def digest(self, path: str, st: os.stat_result) -> str:
        key = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
        known = self.entries.get(path)
        if known is not None and known[:5] == key:
            return known[5]
        with open(path, "rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        self.entries[path] = [*key, digest]
        self.dirty = True
        return digest

    def save(self) -> None:
        if self.path is None or not self.dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # drop entries of files that are gone, so the cache does not grow without bound
        live = {p: v for p, v in self.entries.items() if os.path.exists(p)}
        import tempfile

        fd, tmp = tempfile.mkstemp(prefix=".hashes.", dir=self.path.parent)
        with os.fdopen(fd, "w") as f:
            json.dump(live, f)
        os.replace(tmp, self.path)


@dataclass
class Source:
    """One resolved COPY/ADD source: where it is on the host, its name for the hash."""

    path: str          # host path (inside the context or a mounted image)
    name: str          # context-relative name
    is_dir: bool


def scoped_join(root: str, path: str) -> str:
    """``root/path`` with every symlink resolved as if *root* were ``/``."""
    try:
        return secure_join(root, path)
    except OSError as exc:
        raise BuildError(exc.strerror or str(exc)) from None


def glob_regex(pattern: str) -> re.Pattern:
    """Go's filepath.Match for one path component (``*``, ``?``, ``[...]``, ``\\`` escapes)."""
    out, i, n = [], 0, len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\" and i < n:
            out.append(re.escape(pattern[i]))
            i += 1
        elif ch == "[":
            end = pattern.find("]", i + 1 if i < n and pattern[i] in "^!" else i)
            if end < 0:
                out.append(re.escape(ch))
                continue
            body = pattern[i:end]
            if body[:1] in ("^", "!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out) + r"\Z", re.S)


def has_wildcard(path: str) -> bool:
    return any(c in path for c in "*?[")


class FileTree:
    """A directory tree COPY reads from: the context, or a mounted image for ``--from``.

    ``matcher`` hides ``.dockerignore``d paths; ``normalise_owner`` records 0:0 in hashes.
    """

    def __init__(self, root: str, matcher: IgnoreMatcher | None, hashes: HashCache):
        self.root = os.path.realpath(root)
        self.matcher = matcher
        self.hashes = hashes

    def excluded(self, rel: str) -> bool:
        return bool(self.matcher and rel not in ("", ".") and self.matcher.matches(rel))

    def scoped(self, rel: str) -> str:
        """Host path of *rel*, symlinks resolved as if the tree's root were ``/``."""
        return scoped_join(self.root, rel)

    def resolve(self, source: str, what: str) -> list[Source]:
        """The sources *source* (a context path, maybe a wildcard) names, sorted."""
        norm = os.path.normpath(source)
        if norm.startswith("../") or norm == ".." or norm.startswith("/.."):
            raise BuildError(f"{what} failed: forbidden path outside the build context: {source} ()")
        rel = os.path.normpath("/" + norm).lstrip("/")
        if has_wildcard(rel):
            found = self._glob(rel)
            if not found:
                raise BuildError(f"{what} failed: no source files were specified")
            return found
        if rel in ("", "."):
            return [Source(self.root, "", True)]
        path = self.scoped(rel)
        if self.excluded(rel) or not os.path.lexists(path):
            raise BuildError(f"{what} failed: file not found in build context or excluded by .dockerignore: "
                             f"stat {rel}: file does not exist")
        return [Source(path, rel, os.path.isdir(path))]

    def _glob(self, rel: str) -> list[Source]:
        parts = rel.split("/")
        found: list[str] = [""]
        for i, part in enumerate(parts):
            nxt: list[str] = []
            for base in found:
                directory = self.scoped(base) if base else self.root
                if not has_wildcard(part):
                    cand = f"{base}/{part}" if base else part
                    if os.path.lexists(self.scoped(cand)):
                        nxt.append(cand)
                    continue
                regex = glob_regex(part)
                try:
                    names = sorted(os.listdir(directory))
                except (NotADirectoryError, FileNotFoundError):
                    continue
                nxt += [f"{base}/{n}" if base else n for n in names if regex.match(n)]
            found = nxt
        out = []
        for rel_path in found:
            if self.excluded(rel_path):
                continue
            path = self.scoped(rel_path)
            out.append(Source(path, rel_path, os.path.isdir(path)))
        return out

    def walk(self, source: Source):
        """(host path, context-relative name, lstat) of every entry under a directory source,
        parents before children, sorted, ``.dockerignore``d paths left out."""
        stack = [(source.path, source.name)]
        while stack:
            directory, rel_dir = stack.pop()
            try:
                with os.scandir(directory) as it:
                    names = sorted(e.name for e in it)
            except OSError as exc:
                raise BuildError(f"cannot read {rel_dir or '.'} in the build context: {exc.strerror}") from None
            subdirs = []
            for name in names:
                path = os.path.join(directory, name)
                rel = f"{rel_dir}/{name}" if rel_dir else name
                st = os.lstat(path)
                is_dir = stat.S_ISDIR(st.st_mode)
                if self.excluded(rel):
                    if is_dir and self.matcher.must_walk(rel):
                        subdirs.append((path, rel))
                    continue
                yield path, rel, st
                if is_dir:
                    subdirs.append((path, rel))
            stack.extend(reversed(subdirs))

    def entry(self, path: str, name: str, st: os.stat_result, owner: tuple[int, int] | None) -> Entry:
        kind = _KIND.get(stat.S_IFMT(st.st_mode), "0")
        uid, gid = owner if owner is not None else (0, 0)
        content = self.hashes.digest(path, st) if kind == "0" else ""
        linkname = os.readlink(path) if kind == "2" else ""
        dev = (os.major(st.st_rdev), os.minor(st.st_rdev)) if kind in ("3", "4") else (0, 0)
        return Entry(name, stat.S_IMODE(st.st_mode), uid, gid, st.st_size if kind == "0" else 0, kind, linkname,
                     content, *dev)

    def hash_source(self, source: Source, owner: tuple[int, int] | None = None) -> tuple[str, list[Entry]]:
        """("file"|"dir", entries) of one source for :func:`contexthash.source_key`."""
        if not source.is_dir:
            st = os.stat(source.path)  # a symlink source is followed, as docker copies its target
            return "file", [self.entry(source.path, source.name or ".", st, owner)]
        return "dir", [self.entry(p, n, st, owner) for p, n, st in self.walk(source)]


@dataclass
class BuildContext:
    """The context tree, the Dockerfile text and where it came from."""

    tree: FileTree
    dockerfile: str
    dockerfile_name: str
    tmpdir: str | None = None

    def cleanup(self) -> None:
        if self.tmpdir:
            import shutil

            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None


def _read_text(path: str, what: str) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise BuildError(f"Cannot locate specified Dockerfile: {what}") from None
    except IsADirectoryError:
        raise BuildError(f"the Dockerfile {what} is a directory") from None
    except OSError as exc:
        raise BuildError(f"cannot read {what}: {exc.strerror}") from None
    return data.decode("utf-8", "replace")


def _untar_context(stream, target: str) -> None:
    """A context tar (plain or compressed) into *target*; nothing may land outside it."""
    import tarfile

    try:
        with tarfile.open(fileobj=stream, mode="r|*") as tar:
            for member in tar:
                if member.isdev():
                    continue
                tar.extract(member, target, filter=_context_filter)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BuildError(f"the build context on stdin is not a usable tar archive: {exc}") from None


def _context_filter(member, path: str):
    import tarfile

    # data_filter refuses absolute names, '..' and links leaving the context; owners are
    # kept out (the CLI sends 0:0) and modes kept as they are, unlike data_filter's.
    try:
        checked = tarfile.data_filter(member, path)
    except tarfile.FilterError as exc:
        raise BuildError(f"the build context tar has an unsafe entry: {exc}") from None
    return checked.replace(mode=member.mode, uid=0, gid=0, uname="", gname="", deep=False)


def load_context(where: str, dockerfile: str | None, state_dir: Path, stdin=None) -> BuildContext:
    """The context at *where* (a directory or ``-`` for a tar/Dockerfile on *stdin*)."""
    hashes = HashCache(state_dir / "hashes.json")
    tmpdir = None
    if where == "-":
        import tempfile

        tmpdir = tempfile.mkdtemp(prefix=f"ctx-{os.getpid()}-", dir=_tmp(state_dir))
        data = stdin.read() if stdin is not None else b""
        root = os.path.join(tmpdir, "context")
        os.mkdir(root)
        import io

        if _is_archive(data):
            _untar_context(io.BytesIO(data), root)
            hashes = HashCache(None)
        else:
            if dockerfile:
                raise BuildError("-f cannot be used when the Dockerfile itself comes on stdin")
            tree = FileTree(root, None, HashCache(None))
            return BuildContext(tree, data.decode("utf-8", "replace"), "Dockerfile", tmpdir)
    else:
        root = where
        if not os.path.isdir(root):
            raise BuildError(f"unable to prepare context: path \"{where}\" not found" if not os.path.exists(root)
                             else f"unable to prepare context: context must be a directory: {where}")
    root = os.path.realpath(root)
    try:
        ignore_text = _read_text(os.path.join(root, ".dockerignore"), ".dockerignore")
    except BuildError:
        ignore_text = ""
    matcher = IgnoreMatcher(read_patterns(ignore_text)) if ignore_text else None
    if dockerfile == "-" and where != "-":
        text = (stdin.read() if stdin is not None else b"").decode("utf-8", "replace")
        return BuildContext(FileTree(root, matcher, hashes), text, "Dockerfile", tmpdir)
    if dockerfile and where != "-":
        df_path = dockerfile if os.path.isabs(dockerfile) else os.path.abspath(dockerfile)
        name = os.path.relpath(df_path, root)
    else:
        name = dockerfile or "Dockerfile"
        df_path = os.path.join(root, name)
        if dockerfile is None and not os.path.exists(df_path) and os.path.exists(os.path.join(root, "dockerfile")):
            name, df_path = "dockerfile", os.path.join(root, "dockerfile")
    text = _read_text(df_path, df_path if where != "-" else name)
    return BuildContext(FileTree(root, matcher, hashes), text, name, tmpdir)


def _is_archive(data: bytes) -> bool:
    if data[:2] == b"\x1f\x8b" or data[:3] == b"BZh" or data[:6] == b"\xfd7zXZ\x00":
        return True
    return len(data) >= 512 and data[257:262] == b"ustar"


def _tmp(state_dir: Path) -> str:
    path = state_dir / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


def context_size(tree: FileTree) -> int:
    """Bytes of the files the context holds (for "Sending build context")."""
    total = 0
    for _, _, st in tree.walk(Source(tree.root, "", True)):
        if stat.S_ISREG(st.st_mode):
            total += st.st_size
    return total

"""Hostile image and layer archives, kept as generators (issue 9, item 3).

Each :class:`Case` is a layer tar (or, for the JSON cases, a whole image
archive) that attacks an image loader: path traversal, links out of the
root, device files, whiteouts aimed outside, paths deeper than PATH_MAX,
over-long names, decompression bombs, sparse files, members that lie about
their size, duplicate entries, JSON nested beyond reason. Nothing is stored
in the repository: :func:`write_load` and :func:`write_import` write a case
into a directory (pytest's ``tmp_path``), small on disk (the 3 GiB bomb is
about 3 MB of gzip, the 2 GiB sparse file a few KB of tar).

An escape aims at a *canary*: a directory outside the engine's store made
by :func:`make_canary`, whose state (:func:`canary_state`) must not change.

A correct engine either refuses a case (non-zero status, saying why) or
accepts it with exactly the files docker 20.10 extracts, which is
:attr:`Case.docker` (``None`` where docker refuses it). Verified on docker
20.10 on the project's machines: see ``suites/image/test_hostile.py``, which
runs every case through every engine's ``load`` and ``import``, and
``tests/refengine/image/test_hostile_store.py`` for refengine's store.

>>> [c.name for c in CASES][:3]
['dotdot-file', 'dotdot-inside', 'absolute-file']
>>> sorted(by_name("dotdot-file").docker(Path("/c")))
['c', 'c/pwned']
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import json
import os
import stat
import struct
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable

#: mtime of every generated entry (2000-01-01), so archives are reproducible.
EPOCH = 946684800
#: The file every canary holds; hard-link cases aim at it.
SECRET = "secret"
#: What escaping entries would write.
PAYLOAD = b"written by a hostile layer\n"
#: Size of the decompression bomb's one file, and of the sparse file.
BOMB_SIZE = 3 << 30
SPARSE_SIZE = 2 << 30
#: Files at least this big are compared by size only.
BIG = 16 << 20
#: How far up ``../`` goes: well past any store's depth below /.
UP = "../" * 64
BLOCK = tarfile.BLOCKSIZE


@dataclass(frozen=True)
class Node:
    """One path of an image's file tree, as export shows it."""

    kind: str                       # dir, file, symlink, chr, blk, fifo
    size: int = 0                   # a file's
    digest: str = ""                # sha256 of a file's content; "" for files of BIG bytes or more
    target: str = ""                # a symlink's
    device: tuple[int, int] = (0, 0)


Tree = dict[str, Node]              # relative path (no "./", no trailing "/") -> node


def file_node(data: bytes) -> Node:
    return Node("file", len(data), "sha256:" + hashlib.sha256(data).hexdigest() if len(data) < BIG else "")


@dataclass(frozen=True)
class Case:
    """One hostile input and what docker 20.10 does with it."""

    name: str
    attack: str                                          # one line: what it tries
    layer: Callable[[BinaryIO, Path], None] | None       # writes the layer tar (canary dir given)
    docker: Callable[[Path], Tree] | None                # the files docker extracts; None: docker refuses
    forms: tuple[str, ...] = ("load", "import")          # load: docker archive; import: a rootfs tar
    compressed: bool = False                             # the layer writer writes gzip
    big: bool = False                                    # expands to gigabytes
    archive: Callable[[Path, Path, str], None] | None = field(default=None, repr=False)
    # ^ for cases that are not about the layer: writes the whole load archive (path, canary, ref)


# ---------------------------------------------------------------- tar writing


def _info(name: str, kind: bytes = tarfile.REGTYPE, *, size: int = 0, mode: int | None = None,
          linkname: str = "", device: tuple[int, int] = (0, 0)) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname, info.mtime = kind, size, linkname, EPOCH
    info.mode = mode if mode is not None else (0o755 if kind == tarfile.DIRTYPE else 0o644)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.devmajor, info.devminor = device
    return info


def regular(name: str, data: bytes = PAYLOAD) -> tuple[tarfile.TarInfo, bytes]:
    return _info(name, size=len(data)), data


def _dir(name: str) -> tuple[tarfile.TarInfo, None]:
    return _info(name, tarfile.DIRTYPE), None


def _symlink(name: str, target: str) -> tuple[tarfile.TarInfo, None]:
    return _info(name, tarfile.SYMTYPE, linkname=target, mode=0o777), None


def _hardlink(name: str, target: str) -> tuple[tarfile.TarInfo, None]:
    return _info(name, tarfile.LNKTYPE, linkname=target), None


def _special(name: str, kind: bytes, device: tuple[int, int] = (0, 0)) -> tuple[tarfile.TarInfo, None]:
    return _info(name, kind, device=device, mode=0o600), None


def _header(info: tarfile.TarInfo) -> bytes:
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _pad(size: int) -> bytes:
    return bytes(-size % BLOCK)


def layer_of(entries: Callable[[Path], list]) -> Callable[[BinaryIO, Path], None]:
    """A layer writer from a list of (TarInfo, data or None) made from the canary path."""
    def write(out: BinaryIO, canary: Path) -> None:
        for info, data in entries(canary):
            out.write(_header(info))
            if data:
                out.write(data + _pad(len(data)))
        out.write(bytes(2 * BLOCK))
    return write


def _inside(canary: Path) -> str:
    """The canary's path without its leading '/': where an absolute name lands inside a root."""
    return str(canary).lstrip("/")


def _dirs_of(path: str) -> Tree:
    """The directories docker creates as parents of *path*."""
    parts = path.split("/")[:-1]
    return {"/".join(parts[:i]): Node("dir") for i in range(1, len(parts) + 1)}


# ---------------------------------------------------------------- special layers


@functools.cache
def _zeros_stream_digests(header: bytes, size: int) -> tuple[int, str]:
    """(crc32, sha256) of header + *size* zero bytes + padding + end of archive; cached, as the
    bomb's 3 GiB take seconds to hash."""
    crc, sha = zlib.crc32(header), hashlib.sha256(header)
    chunk = bytes(1 << 20)
    left = size
    while left:
        piece = chunk if left >= len(chunk) else bytes(left)
        crc, left = zlib.crc32(piece, crc), left - len(piece)
        sha.update(piece)
    tail = _pad(size) + bytes(2 * BLOCK)
    sha.update(tail)
    return zlib.crc32(tail, crc), "sha256:" + sha.hexdigest()


def write_bomb(out: BinaryIO, canary: Path, size: int = BOMB_SIZE) -> None:
    """gzip of a tar holding one file of *size* zero bytes, written without compressing gigabytes:
    deflate blocks of 1 MiB of zeros, each ended by a full flush, are identical and independent,
    so one is compressed and repeated."""
    header = _header(_info("bomb", size=size))
    crc, _ = _zeros_stream_digests(header, size)
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    out.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff")   # gzip header: deflate, mtime 0, unix
    out.write(comp.compress(header) + comp.flush(zlib.Z_FULL_FLUSH))
    mib = bytes(1 << 20)
    block = comp.compress(mib) + comp.flush(zlib.Z_FULL_FLUSH)
    assert comp.compress(mib) + comp.flush(zlib.Z_FULL_FLUSH) == block  # the repetition is exact
    whole, rest = divmod(size, 1 << 20)
    for _ in range(whole):
        out.write(block)
    out.write(comp.compress(bytes(rest) + _pad(size) + bytes(2 * BLOCK)) + comp.flush())
    total = len(header) + size + len(_pad(size)) + 2 * BLOCK
    out.write(struct.pack("<II", crc & 0xFFFFFFFF, total & 0xFFFFFFFF))


def bomb_diff_id(size: int = BOMB_SIZE) -> str:
    return _zeros_stream_digests(_header(_info("bomb", size=size)), size)[1]


def _sparse(out: BinaryIO, canary: Path) -> None:
    """A PAX 1.0 GNU sparse member: SPARSE_SIZE bytes of which only the last 4 KiB are data."""
    data = b"S" * 4096
    sparse_map = f"1\n{SPARSE_SIZE - len(data)}\n{len(data)}\n".encode()
    body = sparse_map + _pad(len(sparse_map)) + data
    info = _info("GNUSparseFile.0/sparse", size=len(body))
    info.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.name": "sparse",
                        "GNU.sparse.realsize": str(SPARSE_SIZE)}
    out.write(_header(info) + body + _pad(len(body)) + bytes(2 * BLOCK))


def _short_member(out: BinaryIO, canary: Path) -> None:
    """``short`` declares 10 bytes but 1024 follow; ``hidden`` comes after them."""
    out.write(_header(_info("short", size=10)) + b"x" * 1024)
    out.write(_header(_info("hidden", size=len(PAYLOAD))) + PAYLOAD + _pad(len(PAYLOAD)) + bytes(2 * BLOCK))


def _zero_block(out: BinaryIO, canary: Path) -> None:
    """One zero block (half an end of archive), then a member a lenient reader never sees."""
    out.write(_header(_info("first", size=len(PAYLOAD))) + PAYLOAD + _pad(len(PAYLOAD)))
    out.write(bytes(BLOCK))
    out.write(_header(_info("hidden", size=len(PAYLOAD))) + PAYLOAD + _pad(len(PAYLOAD)) + bytes(2 * BLOCK))


def _overlong_member(out: BinaryIO, canary: Path) -> None:
    """``long`` declares 1 MiB; the archive ends after 100 bytes of it."""
    out.write(_header(_info("long", size=1 << 20)) + b"y" * 100)


# ---------------------------------------------------------------- JSON cases

DEEP = 100_000  # past Go's encoding/json limit (10000) too, so docker refuses as well


def _deep(depth: int = DEEP) -> str:
    return "[" * depth + "]" * depth


def _json_archive(spoil: str) -> Callable[[Path, Path, str], None]:
    """A docker archive (or, for ``index``, an OCI layout) of a good image with one JSON file spoilt."""
    def write(path: Path, canary: Path, ref: str) -> None:
        layer = _plain_layer(layer_of(lambda c: [regular("good.txt", b"good\n")]), canary)
        diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
        config = image_config(diff_id)
        if spoil == "config":
            config = config[:-1] + b',"x":' + _deep().encode() + b"}"
        config_name = hashlib.sha256(config).hexdigest() + ".json"
        files: dict[str, bytes] = {config_name: config, "layer/layer.tar": layer}
        if spoil == "index":
            manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                                   "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                              "digest": "sha256:" + config_name[:-5], "size": len(config)},
                                   "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                               "digest": diff_id, "size": len(layer)}]}).encode()
            files = {f"blobs/sha256/{config_name[:-5]}": config, f"blobs/sha256/{diff_id[7:]}": layer,
                     f"blobs/sha256/{hashlib.sha256(manifest).hexdigest()}": manifest,
                     "oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
                     "index.json": ('{"schemaVersion":2,"manifests":[],"x":' + _deep() + "}").encode()}
        else:
            entry = {"Config": config_name, "RepoTags": [ref], "Layers": ["layer/layer.tar"]}
            manifest_json = json.dumps([entry]).encode()
            if spoil == "manifest":
                manifest_json = json.dumps([{**entry, "x": "@"}]).encode().replace(b'"@"', _deep().encode())
            files["manifest.json"] = manifest_json
        write_tar(path, files)
    return write


# ---------------------------------------------------------------- the corpus


def _escapes_dotdot(c: Path) -> list:
    return [regular(UP + _inside(c) + "/pwned")]


CASES: tuple[Case, ...] = (
    # docker 20.10 unpacks in a chroot of the layer, where .. of / is /: it keeps these inside
    Case("dotdot-file", "a file named ../../.. up to the canary", layer_of(_escapes_dotdot),
         lambda c: {**_dirs_of(_inside(c) + "/pwned"), _inside(c) + "/pwned": file_node(PAYLOAD)}),
    Case("dotdot-inside", "a name that climbs out after going down (a/../../..)",
         layer_of(lambda c: [_dir("a/"), regular("a/../" + UP + _inside(c) + "/pwned")]),
         lambda c: {"a": Node("dir"), **_dirs_of(_inside(c) + "/pwned"), _inside(c) + "/pwned": file_node(PAYLOAD)}),
    Case("absolute-file", "an absolute name pointing at the canary",
         layer_of(lambda c: [regular(str(c) + "/pwned")]),
         lambda c: {**_dirs_of(_inside(c) + "/pwned"), _inside(c) + "/pwned": file_node(PAYLOAD)}),
    Case("symlink-then-file", "a symlink to the canary, then a file through it",
         layer_of(lambda c: [_symlink("evil", str(c)), regular("evil/pwned")]), None),
    Case("relative-symlink-then-file", "a ../ symlink out of the root, then a file through it",
         layer_of(lambda c: [_symlink("evil", UP + _inside(c)), regular("evil/pwned")]), None),
    Case("symlink-then-dir", "a symlink to the canary, then a directory through it",
         layer_of(lambda c: [_symlink("evil", str(c)), _dir("evil/sub/")]), None),
    # docker 20.10 refuses any path twice in a layer (tar-split: "duplicates of file paths not supported")
    Case("symlink-replaced-by-file", "a symlink to a canary file, then a regular file of the same name",
         layer_of(lambda c: [_symlink("x", f"{c}/{SECRET}"), regular("x", b"replaced\n")]), None),
    Case("hardlink-dotdot", "a hard link to ../../.. canary/secret",
         layer_of(lambda c: [_hardlink("hl", UP + _inside(c) + "/" + SECRET)]), None),
    Case("hardlink-absolute", "a hard link to /canary/secret (absolute)",
         layer_of(lambda c: [_hardlink("hl", f"{c}/{SECRET}")]), None),
    Case("hardlink-through-symlink", "a symlink to the canary, then a hard link to evil/secret",
         layer_of(lambda c: [_symlink("evil", str(c)), _hardlink("hl", f"evil/{SECRET}")]), None),
    Case("hardlink-to-symlink", "a hard link to a symlink that points at a canary file",
         layer_of(lambda c: [_symlink("evil", f"{c}/{SECRET}"), _hardlink("hl", "evil")]),
         lambda c: {"evil": Node("symlink", target=f"{c}/{SECRET}"), "hl": Node("symlink", target=f"{c}/{SECRET}")}),
    Case("char-device", "a character device (1:3, /dev/null's numbers)",
         layer_of(lambda c: [_special("hostile-null", tarfile.CHRTYPE, (1, 3))]),
         lambda c: {"hostile-null": Node("chr", device=(1, 3))}),
    Case("block-device", "a block device (8:0, a host disk's numbers)",
         layer_of(lambda c: [_special("hostile-disk", tarfile.BLKTYPE, (8, 0))]),
         lambda c: {"hostile-disk": Node("blk", device=(8, 0))}),
    Case("fifo", "a named pipe", layer_of(lambda c: [_special("hostile-fifo", tarfile.FIFOTYPE)]),
         lambda c: {"hostile-fifo": Node("fifo")}),
    Case("whiteout-dotdot", "a whiteout of '..' (.wh...) in a directory",
         layer_of(lambda c: [_dir("sub/"), regular("sub/.wh..."), regular("kept", b"kept\n")]), None),
    Case("whiteout-escape", "a whiteout of the canary's secret through ../",
         layer_of(lambda c: [regular(UP + _inside(c) + "/.wh." + SECRET)]),
         lambda c: _dirs_of(_inside(c) + "/.wh." + SECRET)),
    Case("whiteout-through-symlink", "a symlink to the canary, then a whiteout of evil/secret",
         layer_of(lambda c: [_symlink("evil", str(c)), regular(f"evil/.wh.{SECRET}")]), None),
    Case("opaque-through-symlink", "a symlink to the canary, then an opaque marker inside it",
         layer_of(lambda c: [_symlink("evil", str(c)), regular("evil/.wh..wh..opq")]), None),
    Case("opaque-and-whiteout-at-root", "an opaque marker and a whiteout of nothing at the root of one layer",
         layer_of(lambda c: [regular(".wh..wh..opq"), regular(".wh.nothing"), regular("kept", b"kept\n")]),
         lambda c: {"kept": file_node(b"kept\n")}),
    Case("path-max", "a file 2100 directories down: a name longer than PATH_MAX",
         layer_of(lambda c: [regular("d/" * 2100 + "f")]), None),
    Case("deep-1200", "1200 nested directories (deeper than Python's recursion limit) and a file",
         layer_of(lambda c: [_dir("d/" * i) for i in range(1, 1201)] + [regular("d/" * 1200 + "f", b"deep\n")]),
         lambda c: {**{("d/" * i)[:-1]: Node("dir") for i in range(1, 1201)},
                    "d/" * 1200 + "f": file_node(b"deep\n")}),
    Case("name-256", "a name component of 256 bytes (NAME_MAX is 255)",
         layer_of(lambda c: [regular("n" * 256)]), None),
    Case("name-255", "a name component of exactly 255 bytes",
         layer_of(lambda c: [regular("n" * 255)]), lambda c: {"n" * 255: file_node(PAYLOAD)}),
    Case("gzip-bomb", "3 MB of gzip expanding to a 3 GiB file", write_bomb,
         lambda c: {"bomb": Node("file", BOMB_SIZE)}, compressed=True, big=True),
    Case("sparse-2g", "a few KB of tar holding a sparse 2 GiB file", _sparse,
         lambda c: {"sparse": Node("file", SPARSE_SIZE)}, big=True),
    Case("short-member", "a member declaring fewer bytes than follow, hiding the next member",
         _short_member, None),
    Case("zero-block", "one zero block (not the two-block end) before another member", _zero_block, None),
    Case("overlong-member", "a member declaring more bytes than the archive holds", _overlong_member, None),
    Case("dup-file", "the same file twice with different content",
         layer_of(lambda c: [regular("dup", b"first\n"), regular("dup", b"second\n")]), None),
    Case("dup-file-then-dir", "a file, then a directory of the same name with a file in it",
         layer_of(lambda c: [regular("x", b"file\n"), _dir("x/"), regular("x/y", b"y\n")]), None),
    Case("dup-dir-then-file", "a directory with a file in it, then a file of the same name",
         layer_of(lambda c: [_dir("x/"), regular("x/y", b"y\n"), regular("x", b"file\n")]), None),
    Case("dup-spelling", "one path spelt twice (./x and x)",
         layer_of(lambda c: [regular("./x", b"first\n"), regular("x", b"second\n")]), None),
    Case("deep-json-manifest", f"manifest.json nested {DEEP} levels deep", None, None, forms=("load",),
         archive=_json_archive("manifest")),
    Case("deep-json-config", f"an image config with a field nested {DEEP} levels deep", None, None,
         forms=("load",), archive=_json_archive("config")),
    Case("deep-json-index", f"an OCI layout whose index.json nests {DEEP} levels deep", None, None,
         forms=("load",), archive=_json_archive("index")),
)


def by_name(name: str) -> Case:
    for case in CASES:
        if case.name == name:
            return case
    raise KeyError(name)


# ---------------------------------------------------------------- archives


def image_config(diff_id: str) -> bytes:
    from .testimage import go_arch

    return json.dumps({"architecture": go_arch(), "os": "linux", "created": "2000-01-01T00:00:00Z",
                       "config": {"Cmd": ["/nothing"]}, "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                       "history": [{"created": "2000-01-01T00:00:00Z", "comment": "hostile"}]},
                      sort_keys=True, separators=(",", ":")).encode()


def _plain_layer(writer: Callable[[BinaryIO, Path], None], canary: Path) -> bytes:
    buf = io.BytesIO()
    writer(buf, canary)
    return buf.getvalue()


def write_tar(path: Path, files: dict[str, bytes | Path]) -> None:
    """A plain tar of regular files (data, or a file to stream in) at *path*."""
    with open(path, "wb") as out, tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for name, content in files.items():
            if isinstance(content, Path):
                with open(content, "rb") as f:
                    tar.addfile(_info(name, size=os.fstat(f.fileno()).st_size), f)
            else:
                tar.addfile(_info(name, size=len(content)), io.BytesIO(content))


def _diff_id(case: Case, layer: Path) -> str:
    if case.name == "gzip-bomb":
        return bomb_diff_id()
    sha = hashlib.sha256()
    with (gzip.open(layer, "rb") if case.compressed else open(layer, "rb")) as f:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
    return "sha256:" + sha.hexdigest()


def write_import(case: Case, directory: Path, canary: Path) -> Path:
    """The case's layer as a rootfs tar for ``import`` (gzip when the case is compressed)."""
    assert case.layer is not None and "import" in case.forms, f"{case.name} has no import form"
    path = directory / f"{case.name}.tar{'.gz' if case.compressed else ''}"
    with open(path, "wb") as out:
        case.layer(out, canary)
    return path


def write_load(case: Case, directory: Path, canary: Path, ref: str) -> Path:
    """A ``docker save``-format archive of one image, tagged *ref*, whose one layer is the case's."""
    path = directory / f"{case.name}-image.tar"
    if case.archive is not None:
        case.archive(path, canary, ref)
        return path
    layer = write_import(case, directory, canary)
    config = image_config(_diff_id(case, layer))
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [ref], "Layers": ["layer/layer.tar"]}]).encode()
    write_tar(path, {config_name: config, "layer/layer.tar": layer, "manifest.json": manifest})
    layer.unlink()
    return path


def write_good(directory: Path, ref: str, canary: Path | None = None) -> tuple[Path, Tree]:
    """A valid one-layer image archive (the store must still load one after a hostile case) and its tree.

    Its file holds *ref*, so each ref is an image of its own: checks running in parallel never
    share an image ID, and one's ``rmi`` cannot remove the image another is loading (docker
    20.10 then fails the other's ``rmi`` with "unrecognized image ID")."""
    content = f"good {ref}\n".encode()
    good = Case("good", "a valid image", layer_of(lambda c: [_dir("g/"), regular("g/good.txt", content)]),
                lambda c: {"g": Node("dir"), "g/good.txt": file_node(content)})
    return write_load(good, directory, canary or directory, ref), good.docker(directory)  # type: ignore[misc]


# ---------------------------------------------------------------- the canary and trees


def make_canary(directory: Path) -> Path:
    """A directory outside any store with a secret file and a subdirectory: what escapes aim at."""
    canary = directory / "canary"
    (canary / "sub").mkdir(parents=True)
    (canary / SECRET).write_bytes(b"the host's secret\n")
    return canary


def canary_state(canary: Path) -> dict[str, tuple]:
    """Everything that an escape could change: every path's type, mode, owner, size, links, mtime,
    content and xattrs, and the canary's own."""
    state = {}
    for path in [canary, *sorted(canary.rglob("*"))]:
        st = os.lstat(path)
        content = path.read_bytes() if stat.S_ISREG(st.st_mode) else b""
        try:
            xattrs = tuple(sorted(os.listxattr(path, follow_symlinks=False)))
        except OSError:
            xattrs = ()
        state[str(path.relative_to(canary))] = (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_nlink,
                                                st.st_mtime_ns, hashlib.sha256(content).hexdigest(), xattrs)
    return state


def _normal(name: str) -> str:
    while name.startswith(("./", "/")):
        name = name[2:] if name.startswith("./") else name[1:]
    return name.rstrip("/")


def read_tree(stream: BinaryIO) -> Tree:
    """The tree of a tar stream (``export``'s output): hard links take their target's node."""
    tree: Tree = {}
    with tarfile.open(fileobj=stream, mode="r|*") as tar:
        for info in tar:
            name = _normal(info.name)
            if not name or name == ".":
                continue
            if info.isdir():
                tree[name] = Node("dir")
            elif info.isreg():
                if info.size >= BIG:
                    tree[name] = Node("file", info.size)
                else:
                    tree[name] = file_node(tar.extractfile(info).read())
            elif info.issym():
                tree[name] = Node("symlink", target=info.linkname)
            elif info.islnk():
                tree[name] = tree.get(_normal(info.linkname), Node("hardlink", target=info.linkname))
            elif info.ischr() or info.isblk():
                tree[name] = Node("chr" if info.ischr() else "blk", device=(info.devmajor, info.devminor))
            elif info.isfifo():
                tree[name] = Node("fifo")
            else:
                tree[name] = Node(f"type {info.type!r}")
    return tree


def tree_difference(expected: Tree, observed: Tree, limit: int = 6) -> list[str]:
    """What differs between two trees, a line per path (at most *limit*, then a count). Pure."""
    lines = []
    for path in sorted(set(expected) | set(observed)):
        want, got = expected.get(path), observed.get(path)
        if want != got:
            lines.append(f"{_short(path)}: expected {want}, found {got}")
    if len(lines) > limit:
        lines = lines[:limit] + [f"... and {len(lines) - limit} more"]
    return lines


def _short(path: str) -> str:
    return path if len(path) <= 80 else f"{path[:38]}...{path[-38:]} ({len(path)} chars)"

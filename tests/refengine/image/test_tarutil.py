"""Layer extraction (whiteouts, hostile tars) and deterministic tar writing."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from reference_runtime.errors import StoreError
from reference_runtime.image.tarutil import (OPAQUE_XATTR, entry_parts, extract_layer, unpack_layer,
                                             write_tree)

from .conftest import make_tar, tree


def is_whiteout(path: Path) -> bool:
    st_ = os.lstat(path)
    return stat.S_ISCHR(st_.st_mode) and st_.st_rdev == 0


def names_of(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getnames()


# ---------------------------------------------------------------- whiteouts

def test_unpack_turns_whiteouts_into_overlay_form(tmp_path):
    layer = make_tar(("etc", "dir"), ("etc/.wh.passwd", "file"), ("opt", "dir"), ("opt/.wh..wh..opq", "file"),
                     ("opt/new", "file", "n"), ("var/.wh..wh.plnk", "file"))
    target = tmp_path / "layer"
    unpack_layer(io.BytesIO(layer), target)
    assert is_whiteout(target / "etc" / "passwd")
    assert not (target / "etc" / ".wh.passwd").exists()
    assert os.getxattr(target / "opt", OPAQUE_XATTR) == b"y"
    assert (target / "opt" / "new").read_text() == "n"
    assert not (target / "opt" / ".wh..wh..opq").exists()
    assert not (target / "etc").joinpath(".wh..wh..opq").exists()
    with pytest.raises(OSError):
        os.getxattr(target / "etc", OPAQUE_XATTR)
    assert os.listdir(target / "var") == []  # AUFS metadata is dropped


def test_commit_form_turns_overlay_whiteouts_into_wh_entries(tmp_path):
    upper = tmp_path / "upper"
    (upper / "etc").mkdir(parents=True)
    os.mknod(upper / "etc" / "passwd", stat.S_IFCHR | 0o600, os.makedev(0, 0))
    (upper / "opt").mkdir()
    os.setxattr(upper / "opt", OPAQUE_XATTR, b"y")
    (upper / "opt" / "new").write_text("n")
    buf = io.BytesIO()
    write_tree(upper, buf, overlay_whiteouts=True)
    names = names_of(buf.getvalue())
    assert names == ["etc", "etc/.wh.passwd", "opt", "opt/.wh..wh..opq", "opt/new"]
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as tar:
        wh = tar.getmember("etc/.wh.passwd")
        assert wh.isreg() and wh.size == 0
        assert all("trusted.overlay" not in k for m in tar.getmembers() for k in m.pax_headers)


def test_whiteout_round_trip(tmp_path):
    """upper dir -> layer tar -> unpacked layer gives back the same overlay whiteouts."""
    upper = tmp_path / "upper"
    (upper / "d").mkdir(parents=True)
    os.mknod(upper / "gone", stat.S_IFCHR, os.makedev(0, 0))
    os.setxattr(upper / "d", OPAQUE_XATTR, b"y")
    buf = io.BytesIO()
    write_tree(upper, buf, overlay_whiteouts=True)
    buf.seek(0)
    unpack_layer(buf, tmp_path / "layer")
    assert is_whiteout(tmp_path / "layer" / "gone")
    assert os.getxattr(tmp_path / "layer" / "d", OPAQUE_XATTR) == b"y"


def test_tar_cannot_forge_overlay_xattrs(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("d")
        info.type = tarfile.DIRTYPE
        info.pax_headers = {"SCHILY.xattr.trusted.overlay.redirect": "/etc"}
        tar.addfile(info)
    unpack_layer(io.BytesIO(buf.getvalue()), tmp_path / "layer")
    assert os.listxattr(tmp_path / "layer" / "d") == []


# ---------------------------------------------------------------- extraction details

def test_metadata_is_kept(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("bin/tool")
        info.size, info.mode, info.uid, info.gid, info.mtime = 2, 0o4755, 1000, 1001, 1234567890
        tar.addfile(info, io.BytesIO(b"#!"))
        d = tarfile.TarInfo("bin")
        d.type, d.mode, d.mtime = tarfile.DIRTYPE, 0o710, 1111111111
        tar.addfile(d)
    size = unpack_layer(io.BytesIO(buf.getvalue()), tmp_path / "layer")
    st_ = os.lstat(tmp_path / "layer" / "bin" / "tool")
    assert (stat.S_IMODE(st_.st_mode), st_.st_uid, st_.st_gid, int(st_.st_mtime)) == (0o4755, 1000, 1001, 1234567890)
    dst = os.lstat(tmp_path / "layer" / "bin")
    assert (stat.S_IMODE(dst.st_mode), int(dst.st_mtime)) == (0o710, 1111111111)
    assert size == 2


def test_hard_link_inside_layer_and_size_counts_it_once(tmp_path):
    layer = make_tar(("a", "file", "12345"), ("b", "hardlink", "a"), ("l", "symlink", "a"))
    size = unpack_layer(io.BytesIO(layer), tmp_path / "layer")
    assert os.lstat(tmp_path / "layer" / "a").st_ino == os.lstat(tmp_path / "layer" / "b").st_ino
    assert os.readlink(tmp_path / "layer" / "l") == "a"
    assert size == 5 + 1


def test_later_entry_of_a_symlinks_name_is_refused_not_written_through_it(tmp_path):
    # docker 20.10 refuses any path named twice in a layer ("duplicates of file paths not supported")
    outside = tmp_path / "outside"
    outside.mkdir()
    layer = make_tar(("x", "symlink", str(outside / "victim")), ("x", "file", "mine"))
    with pytest.raises(StoreError, match="duplicate paths"):
        unpack_layer(io.BytesIO(layer), tmp_path / "layer")
    assert not (tmp_path / "layer").exists()
    assert tree(outside) == []


def test_gzip_layer_is_accepted(tmp_path):
    unpack_layer(io.BytesIO(make_tar(("f", "file", "z"), gzip=True)), tmp_path / "layer")
    assert (tmp_path / "layer" / "f").read_text() == "z"


def test_fifo_is_created(tmp_path):
    unpack_layer(io.BytesIO(make_tar(("p", "fifo"),)), tmp_path / "layer")
    assert stat.S_ISFIFO(os.lstat(tmp_path / "layer" / "p").st_mode)


# ---------------------------------------------------------------- hostile tars

HOSTILE = {
    "absolute": [("/abs-escape", "file", "x")],
    "dotdot": [("../dotdot-escape", "file", "x")],
    "dotdot-inner": [("a/../../dotdot-escape", "file", "x")],
    "symlink-escape": [("link", "symlink", "{outside}"), ("link/owned", "file", "x")],
    "symlink-relative-escape": [("link", "symlink", "../../outside"), ("link/owned", "file", "x")],
    "symlinked-parent": [("d", "dir"), ("d/up", "symlink", "/"), ("d/up/tmp/owned", "file", "x")],
    "symlink-inside-then-write": [("real", "dir"), ("alias", "symlink", "real"), ("alias/f", "file", "x")],
    "hardlink-escape": [("h", "hardlink", "{outside}/secret")],
    "hardlink-dotdot": [("h", "hardlink", "../outside/secret")],
    "hardlink-through-symlink": [("s", "symlink", "{outside}"), ("h", "hardlink", "s/secret")],
    "hardlink-missing": [("h", "hardlink", "nothere")],
    "device": [("dev/sda", "chr")],
    "whiteout-dotdot": [("a/.wh...", "file")],
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_tar_is_refused_and_nothing_written(tmp_path, case):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("secret")
    entries = [tuple(p.format(outside=outside) if isinstance(p, str) else p for p in e) for e in HOSTILE[case]]
    entries = [("ok-before", "file", "fine")] + entries
    target = tmp_path / "layers" / "target"
    with pytest.raises(StoreError) as err:
        unpack_layer(io.BytesIO(make_tar(*entries)), target)
    message = str(err.value)
    assert "\n" not in message and message
    assert not target.exists()
    assert tree(tmp_path / "layers") == []  # the staging dir is gone too
    assert tree(outside) == ["secret"]
    assert (outside / "secret").read_text() == "secret"


segment = st.sampled_from(["a", "b", "..", ".", "", "c.d", ".wh.a"])


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(segment, min_size=1, max_size=6), st.booleans())
def test_generated_names_never_escape(tmp_path_factory, segments, absolute):
    """Any name is either refused (nothing written) or lands inside the root."""
    base = tmp_path_factory.mktemp("gen")
    name = ("/" if absolute else "") + "/".join(segments)
    target = base / "layers" / "t"
    must_refuse = name.startswith("/") or ".." in segments
    try:
        unpack_layer(io.BytesIO(make_tar(("x/y/z", "dir"), (name, "file", "data"))), target)
    except StoreError as exc:
        assert must_refuse, f"{name!r} refused: {exc}"
        assert tree(base) == ["layers"]
    else:
        assert not must_refuse, f"{name!r} accepted"
        assert all(p == "layers" or p.startswith("layers/t") for p in tree(base))


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(["..", "a", "/", "/tmp", "."]), min_size=1, max_size=5),
       st.lists(st.sampled_from(["a", "b"]), min_size=1, max_size=3))
def test_generated_symlink_writes_are_refused(tmp_path_factory, link_parts, rest):
    """Whatever a symlink points at, a later entry written through it is refused."""
    base = tmp_path_factory.mktemp("sym")
    target = base / "layers" / "t"
    link_target = "/".join(link_parts)
    with pytest.raises(StoreError, match="symlink"):
        unpack_layer(io.BytesIO(make_tar(("a", "dir"), ("link", "symlink", link_target),
                                         ("link/" + "/".join(rest), "file", "x"))), target)
    assert tree(base) == ["layers"]


def test_entry_parts():
    assert entry_parts("./usr//bin/") == ["usr", "bin"]
    assert entry_parts("./") == []
    for bad in ("/etc", "a/../../b", "..", "a\x00b"):
        with pytest.raises(StoreError):
            entry_parts(bad)


def test_garbage_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="invalid layer tar"):
        unpack_layer(io.BytesIO(b"this is not a tar" * 100), tmp_path / "layer")
    assert not (tmp_path / "layer").exists()


# ---------------------------------------------------------------- writing

def _sample_tree(root: Path) -> None:
    (root / "b" / "deep").mkdir(parents=True)
    (root / "a.txt").write_text("a")
    (root / "b" / "deep" / "f").write_text("f")
    os.link(root / "a.txt", root / "z-hard")
    os.symlink("a.txt", root / "sym")
    os.mkfifo(root / "fifo")
    long = root / ("n" * 120)
    long.mkdir()
    (long / ("m" * 120)).write_text("long")
    os.chown(root / "a.txt", 1234, 4321)
    for p in [root, *root.rglob("*")]:
        os.utime(p, (2_000_000_000, 2_000_000_000), follow_symlinks=False)


def test_write_tree_is_deterministic_sorted_and_keeps_owners(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    for root in (one, two):
        root.mkdir()
        _sample_tree(root)
    bufs = []
    for root in (one, two):
        buf = io.BytesIO()
        write_tree(root, buf)
        bufs.append(buf.getvalue())
    assert bufs[0] == bufs[1]
    with tarfile.open(fileobj=io.BytesIO(bufs[0])) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names, key=lambda n: n.split("/"))
    by = {m.name: m for m in members}
    assert (by["a.txt"].uid, by["a.txt"].gid, by["a.txt"].uname) == (1234, 4321, "")
    assert by["z-hard"].islnk() and by["z-hard"].linkname == "a.txt"
    assert by["sym"].issym() and by["fifo"].isfifo()
    assert ("n" * 120 + "/" + "m" * 120) in by
    assert {m.mtime for m in members} == {2_000_000_000}


def test_write_tree_clamps_mtime(tmp_path):
    root = tmp_path / "r"
    root.mkdir()
    _sample_tree(root)
    os.utime(root / "a.txt", (100, 100))
    buf = io.BytesIO()
    write_tree(root, buf, clamp_mtime=1_000_000_000)
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as tar:
        mtimes = {m.name: m.mtime for m in tar.getmembers()}
    assert mtimes["a.txt"] == 100
    assert mtimes["b/deep/f"] == 1_000_000_000


def test_write_then_extract_round_trip(tmp_path):
    root = tmp_path / "r"
    root.mkdir()
    _sample_tree(root)
    buf = io.BytesIO()
    write_tree(root, buf)
    buf.seek(0)
    out = tmp_path / "out"
    out.mkdir()
    extract_layer(buf, out)
    assert tree(out) == tree(root)
    assert os.lstat(out / "a.txt").st_uid == 1234
    assert os.lstat(out / "a.txt").st_ino == os.lstat(out / "z-hard").st_ino


@pytest.mark.parametrize("kind", ["redirect", "metacopy"])
def test_commit_form_refuses_overlay_indirection(tmp_path, kind):
    upper = tmp_path / "upper"
    (upper / "moved").mkdir(parents=True)
    (upper / "file").write_text("")
    target = upper / ("moved" if kind == "redirect" else "file")
    os.setxattr(target, f"trusted.overlay.{kind}", b"/orig" if kind == "redirect" else b"")
    with pytest.raises(StoreError, match=f"uses {kind}"):
        write_tree(upper, io.BytesIO(), overlay_whiteouts=True)
    write_tree(upper, io.BytesIO())  # export of a merged tree does not care


@pytest.mark.parametrize("replacement", ["symlink", "file", "whiteout"])
def test_replaced_directory_metadata_is_not_applied_through_the_replacement(tmp_path, replacement):
    """A dir's mode/mtime are applied at the end; if a later entry replaced the dir by a symlink
    to a host file, that must not chmod the host file."""
    outside = tmp_path / "outside"
    outside.write_text("host file")
    os.chmod(outside, 0o600)
    os.utime(outside, (1, 1))
    later = {"symlink": ("a", "symlink", str(outside)), "file": ("a", "file", "x"), "whiteout": (".wh.a", "file")}
    d = tarfile.TarInfo("a")
    d.type, d.mode, d.mtime = tarfile.DIRTYPE, 0o777, 2_000_000_000
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(make_tar(later[replacement]))) as src, \
            tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(d)  # the directory first, then the entry that replaces it
        for m in src.getmembers():
            tar.addfile(m, src.extractfile(m) if m.isreg() else None)
    if replacement == "whiteout":
        unpack_layer(io.BytesIO(out.getvalue()), tmp_path / "layer")
        assert not (tmp_path / "layer" / "a").is_dir()
    else:  # a path named twice: docker 20.10 refuses the layer, so do we
        with pytest.raises(StoreError, match="duplicate paths"):
            unpack_layer(io.BytesIO(out.getvalue()), tmp_path / "layer")
    st_ = os.stat(outside)
    assert stat.S_IMODE(st_.st_mode) == 0o600 and int(st_.st_mtime) == 1

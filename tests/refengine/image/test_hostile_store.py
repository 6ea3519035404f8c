"""refengine's image store driven directly with the hostile corpus (conformance/hostile.py), and
the fixes it needed: trees of any depth removed with file descriptors, stale staging that never
blocks a writer, the layer size limit (decompression bombs, sparse files), tar streams that hide
members, duplicate paths, deep JSON."""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
import time
from pathlib import Path

import pytest

from conformance import hostile
from reference_runtime.errors import StoreError
from reference_runtime.image import fstree
from reference_runtime.image.archive import decompress_to
from reference_runtime.image.store import ImageStore
from reference_runtime.image.tarutil import DeclaredSize, write_tree

PARAMS = [pytest.param(case, form, id=f"{form}-{case.name}") for case in hostile.CASES for form in case.forms]


def dir_tree(root: Path) -> hostile.Tree:
    """The tree of a directory as export would show it (overlay whiteouts hidden), walked without recursion."""
    tree: hostile.Tree = {}
    stack = [""]
    while stack:
        rel = stack.pop()
        with os.scandir(root / rel if rel else root) as entries:
            for entry in entries:
                path = f"{rel}/{entry.name}" if rel else entry.name
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    tree[path] = hostile.Node("dir")
                    stack.append(path)
                elif stat.S_ISREG(st.st_mode):
                    data = b"" if st.st_size >= hostile.BIG else Path(entry.path).read_bytes()
                    tree[path] = hostile.file_node(data) if data or not st.st_size else hostile.Node("file", st.st_size)
                elif stat.S_ISLNK(st.st_mode):
                    tree[path] = hostile.Node("symlink", target=os.readlink(entry.path))
                elif stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                    continue  # an overlay whiteout: nothing in the container's view
                elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                    tree[path] = hostile.Node("chr" if stat.S_ISCHR(st.st_mode) else "blk",
                                              device=(os.major(st.st_rdev), os.minor(st.st_rdev)))
                elif stat.S_ISFIFO(st.st_mode):
                    tree[path] = hostile.Node("fifo")
    return tree


def staging_left(store: ImageStore) -> list[str]:
    """Whatever a writer left in tmp/ or as layers/.tmp-*."""
    left = [f"tmp/{n}" for n in os.listdir(store.tmp_dir)] if store.tmp_dir.exists() else []
    if store.layer_dir.exists():
        left += [f"layers/{n}" for n in os.listdir(store.layer_dir) if n.startswith(".")]
    return left


def good_image_still_loads(store: ImageStore, directory: Path) -> None:
    archive, expected = hostile.write_good(directory, "localhost/good:latest")
    store.load(archive)
    image = store.resolve("localhost/good:latest")
    assert dir_tree(store.layer_dirs(image)[0]) == expected
    store.remove("localhost/good:latest")
    assert staging_left(store) == []


@pytest.mark.parametrize("case,form", PARAMS)
def test_hostile_archive_in_the_store(store, tmp_path, case, form):
    canary = hostile.make_canary(tmp_path)
    before = hostile.canary_state(canary)
    work = tmp_path / "work"
    work.mkdir()
    ref = f"localhost/hostile/{case.name}:{form}"
    try:
        if form == "load":
            store.load(hostile.write_load(case, work, canary, ref))
        else:
            with open(hostile.write_import(case, work, canary), "rb") as f:
                store.import_tar(f, ref)
    except StoreError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 600, f"a refusal must be one short line: {str(exc)[:800]!r}"
        with pytest.raises(StoreError, match="No such image"):
            store.resolve(ref)
    else:
        assert case.docker is not None, f"the store accepted {case.name}, which docker 20.10 refuses"
        image = store.resolve(ref)
        (layer,) = store.layer_dirs(image)
        difference = hostile.tree_difference(case.docker(canary), dir_tree(layer))
        assert not difference, f"{case.name}: other files than docker extracts: {difference}"
        store.remove(ref)
        assert not os.listdir(store.layer_dir), "rmi left a layer directory"
    assert staging_left(store) == [], f"{case.name}: staging left behind"
    assert hostile.canary_state(canary) == before, f"{case.name} changed the canary"
    good_image_still_loads(store, tmp_path)


# ---------------------------------------------------------------- trees of any depth


def make_deep(root: Path, depth: int) -> None:
    """*depth* nested directories under *root*, each with a file and a symlink out (made with dir fds:
    the deepest path is far past PATH_MAX)."""
    root.mkdir(parents=True)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            os.close(os.open("f", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd))
            os.symlink("/etc", "l", dir_fd=fd)
            child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
    finally:
        os.close(fd)


def test_remove_tree_handles_depth_past_recursion_limit_and_path_max(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("keep")
    make_deep(tmp_path / "deep", 2500)  # 5000+ byte paths, 2500 levels
    os.symlink(outside, tmp_path / "deep" / "out")
    fstree.remove_tree(tmp_path / "deep")
    assert not (tmp_path / "deep").exists()
    assert (outside / "keep").read_text() == "keep", "remove_tree followed a symlink"
    fstree.remove_tree(tmp_path / "deep")  # missing: not an error
    (tmp_path / "file").write_text("x")
    fstree.remove_tree(tmp_path / "file")
    assert not (tmp_path / "file").exists()


def test_remove_tree_opens_mode_0_directories(tmp_path):
    (tmp_path / "t" / "locked" / "inner").mkdir(parents=True)
    (tmp_path / "t" / "locked" / "inner" / "f").write_text("x")
    os.chmod(tmp_path / "t" / "locked", 0)
    fstree.remove_tree(tmp_path / "t")
    assert not (tmp_path / "t").exists()


def test_stale_staging_of_a_dead_writer_past_path_max_does_not_block_writers(store, archives, tmp_path):
    """A load that died (its pid gone) leaving a tree deeper than PATH_MAX: the next writer removes it
    and works; nothing raises, ever, for what a dead writer left."""
    dead = 2 ** 22 + 12345  # above pid_max's default: no such process
    make_deep(store.tmp_dir / f"load-{dead}-abc", 2200)
    make_deep(store.tmp_dir / f"trash-{dead}-def" / "layer", 1500)
    make_deep(store.layer_dir / f".tmp-{dead}-ghi", 1200)
    store.load(archives[1])
    assert staging_left(store) == []
    good_image_still_loads(store, tmp_path)


def test_an_image_1200_deep_loads_commits_and_is_removed(store, tmp_path):
    case = hostile.by_name("deep-1200")
    store.load(hostile.write_load(case, tmp_path, tmp_path, "localhost/deep:1"))
    image = store.resolve("localhost/deep:1")
    (layer,) = store.layer_dirs(image)
    upper = tmp_path / "upper"
    make_deep(upper, 1200)
    try:
        committed = store.commit(image, upper, config={}, ref="localhost/deep:2")
        assert len(committed.diff_ids) == 2
        out = io.BytesIO()
        write_tree(upper, out)  # no recursion: 1200 levels archive like any others
        assert sum(1 for _ in tarfile.open(fileobj=io.BytesIO(out.getvalue()))) == 3 * 1200
    finally:
        fstree.remove_tree(upper)  # pytest's own clean-up of old tmp dirs recurses (shutil.rmtree)
    store.remove("localhost/deep:2")
    store.remove("localhost/deep:1")
    assert os.listdir(store.layer_dir) == [] and staging_left(store) == []


# ---------------------------------------------------------------- the size limit


@pytest.mark.parametrize("text,size", [("1024", 1024), ("64k", 64 << 10), ("512M", 512 << 20), ("8G", 8 << 30),
                                       ("2GiB", 2 << 30), ("1t", 1 << 40), (" 10 MB ", 10 << 20)])
def test_parse_size(text, size):
    assert fstree.parse_size(text) == size


@pytest.mark.parametrize("text", ["", "0", "-1", "1.5G", "8X", "G"])
def test_parse_size_refuses_nonsense(text):
    with pytest.raises(StoreError, match="invalid size"):
        fstree.parse_size(text)


def test_max_layer_size_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv(fstree.MAX_LAYER_SIZE_ENV, raising=False)
    assert fstree.max_layer_size() == fstree.DEFAULT_MAX_LAYER_SIZE == 2 << 30
    monkeypatch.setenv(fstree.MAX_LAYER_SIZE_ENV, "8G")
    assert fstree.max_layer_size() == 8 << 30
    assert ImageStore(Path("/nonexistent")).max_layer_size == 8 << 30
    monkeypatch.setenv(fstree.MAX_LAYER_SIZE_ENV, "lots")
    with pytest.raises(StoreError, match=fstree.MAX_LAYER_SIZE_ENV):
        fstree.max_layer_size()


def test_declared_size_refuses_at_the_header_that_passes_the_limit():
    first = tarfile.TarInfo("a")
    first.size = 600
    big = tarfile.TarInfo("b")
    big.size = 5000
    stream = first.tobuf() + bytes(1024) + big.tobuf()
    watch = DeclaredSize(4000)
    watch.feed(stream[:1536])
    assert watch.total == 600
    with pytest.raises(StoreError, match="declare more than 4000 bytes"):
        watch.feed(stream[1536:])
    DeclaredSize(10).feed(bytes(4096))  # the end of an archive: nothing declared
    DeclaredSize(10).feed(b"not a tar" * 1000)  # no header: left to the extractor


SMALL_LIMIT = 8 << 20


@pytest.mark.parametrize("form", ["load", "import"])
def test_a_bomb_is_refused_at_its_first_header(tmp_path, form):
    store = ImageStore(tmp_path / "root", max_layer_size=SMALL_LIMIT)
    bomb = tmp_path / "bomb.tar.gz"
    with open(bomb, "wb") as f:
        hostile.write_bomb(f, tmp_path, size=256 << 20)
    assert bomb.stat().st_size < 1 << 20
    start = time.monotonic()
    with pytest.raises(StoreError, match=f"declare more than {SMALL_LIMIT} bytes"):
        if form == "import":
            with open(bomb, "rb") as f:
                store.import_tar(f, "localhost/bomb:1")
        else:
            case = hostile.Case("bomb", "small bomb", lambda out, c: hostile.write_bomb(out, c, size=256 << 20), None,
                                compressed=True)
            archive = tmp_path / "image.tar"
            layer = hostile.write_import(case, tmp_path, tmp_path)
            config = hostile.image_config(hostile.bomb_diff_id(256 << 20))
            hostile.write_tar(archive, {"c.json": config, "l.tar": layer, "manifest.json":
                                         b'[{"Config":"c.json","RepoTags":["localhost/bomb:1"],"Layers":["l.tar"]}]'})
            store.load(archive)
    assert time.monotonic() - start < 10, "the bomb was refused only after decompressing it"
    assert staging_left(store) == []


def test_a_stream_that_expands_past_the_limit_is_cut_at_the_limit(tmp_path):
    """No tar header to read (or one that lies): the byte count stops the copy at the limit."""
    payload = io.BytesIO()
    with gzip.GzipFile(fileobj=payload, mode="wb", compresslevel=1) as gz:
        for _ in range(3 * SMALL_LIMIT >> 20):
            gz.write(b"\x01" * (1 << 20))
    target = tmp_path / "out"
    with pytest.raises(StoreError, match=f"expands to more than {SMALL_LIMIT} bytes"):
        decompress_to(io.BytesIO(payload.getvalue()), target, SMALL_LIMIT)
    assert target.stat().st_size <= SMALL_LIMIT


def test_files_adding_up_past_the_limit_are_refused(tmp_path):
    """A layer of sparse members: a few KB of tar whose files declare more than the limit."""
    store = ImageStore(tmp_path / "root", max_layer_size=1 << 30)
    case = hostile.by_name("sparse-2g")
    with open(hostile.write_import(case, tmp_path, tmp_path), "rb") as f:
        with pytest.raises(StoreError, match="the layer's files take more than 1073741824 bytes"):
            store.import_tar(f, "localhost/sparse:1")
    assert staging_left(store) == []


def test_a_sparse_file_takes_only_the_disk_its_data_needs(store, tmp_path):
    case = hostile.by_name("sparse-2g")
    with open(hostile.write_import(case, tmp_path, tmp_path), "rb") as f:
        store.import_tar(f, "localhost/sparse:1")
    (layer,) = store.layer_dirs(store.resolve("localhost/sparse:1"))
    st = os.stat(layer / "sparse")
    assert st.st_size == hostile.SPARSE_SIZE
    assert st.st_blocks * 512 < 1 << 20, f"the sparse file takes {st.st_blocks * 512} bytes of disk"
    with open(layer / "sparse", "rb") as f:
        f.seek(hostile.SPARSE_SIZE - 4096)
        assert f.read() == b"S" * 4096
        f.seek(1 << 30)
        assert f.read(4096) == bytes(4096)


def test_a_name_that_passes_path_max_only_under_the_store_is_refused_cleanly(store, tmp_path):
    """4001 bytes of name: below PATH_MAX itself, above it once joined to the store's staging
    directory. Refused in one line (docker, unpacking in a chroot, would take it), nothing left."""
    case = hostile.Case("near-path-max", "a name of 4001 bytes",
                        hostile.layer_of(lambda c: [hostile.regular("d/" * 2000 + "f")]), None)
    with pytest.raises(StoreError, match="File name too long") as info:
        store.load(hostile.write_load(case, tmp_path, tmp_path, "localhost/near:1"))
    assert "\n" not in str(info.value) and len(str(info.value)) < 600
    assert staging_left(store) == []
    good_image_still_loads(store, tmp_path)


def test_declared_size_ignores_the_size_of_header_only_entries():
    """A hard link that declares a size carries no data (tarfile and Go's archive/tar ignore it)."""
    link = tarfile.TarInfo("hl")
    link.type, link.linkname, link.size = tarfile.LNKTYPE, "f", 1 << 40
    after = tarfile.TarInfo("f2")
    after.size = 100
    watch = DeclaredSize(1000)
    watch.feed(link.tobuf(tarfile.GNU_FORMAT) + after.tobuf(tarfile.GNU_FORMAT) + bytes(512))
    assert watch.total == 100

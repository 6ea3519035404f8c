"""The image store: load, save, resolve, commit, import/export, tag, rmi, prune."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conformance.testimage import REPOSITORY, canonical_json
from reference_runtime.errors import StoreError
from reference_runtime.image.digest import chain_ids, digest_bytes
from reference_runtime.image.store import ImageStore, ImageUse

from .conftest import make_tar, tree

BASE = f"{REPOSITORY}:base"


def snapshot(store: ImageStore) -> tuple:
    """Everything a refused operation must leave unchanged."""
    index = store.index_path.read_bytes() if store.index_path.exists() else None
    files = tree(store.root) if store.root.exists() else []
    return index, [f for f in files if f != "lock"]


def members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isreg()}


def rebuild(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


# ---------------------------------------------------------------- load and resolve

@pytest.mark.parametrize("kind", ["docker", "oci"])
def test_load_gives_the_promised_ids(store, archives, kind):
    images, docker_path, oci_path = archives
    lines = store.load(docker_path if kind == "docker" else oci_path)
    assert lines == [f"Loaded image: {i.ref}" for i in images.images]
    for image in images.images:
        got = store.resolve(image.ref)
        assert got.id == image.id == digest_bytes(got.config_bytes)
        assert got.config_bytes == image.config
        assert got.diff_ids == [images.diff_id]
        assert got.chain_ids == chain_ids([images.diff_id])
        assert got.repo_tags == [image.ref]


def test_load_from_a_stream_and_gzip(store, archives):
    data = gzip.compress(archives[1].read_bytes())
    store.load(io.BytesIO(data))
    assert store.resolve(BASE).id == archives[0]["base"].id


def test_layer_dirs_are_shared_and_hold_the_layer(loaded, archives):
    dirs = {tuple(loaded.layer_dirs(loaded.resolve(i.ref))) for i in archives[0].images}
    assert len(dirs) == 1
    (layer,) = dirs.pop()
    assert layer.name == archives[0].diff_id[7:]
    assert (layer / "bin" / "busybox").read_bytes() == Path("/bin/busybox").read_bytes()
    assert os.readlink(layer / "bin" / "sh") == "busybox"
    assert stat.S_IMODE(os.lstat(layer / "tmp").st_mode) == 0o1777
    assert len(list((loaded.root / "layers").iterdir())) == 1


def test_size_counts_like_docker(loaded):
    # docker 20.10 shows 1984263 bytes for this image (`docker inspect -f {{.Size}}`) with the
    # busybox-static of this machine: files + symlink target lengths
    layer = loaded.layer_dirs(loaded.resolve(BASE))[0]
    expected = sum(os.lstat(p).st_size for p in layer.rglob("*") if not p.is_dir() or p.is_symlink())
    assert loaded.resolve(BASE).size == expected


@pytest.mark.parametrize("form", ["full", "sha256-full", "short12", "sha256-short", "familiar", "hex5"])
def test_resolve_forms(loaded, archives, form):
    image_id = archives[0]["stopsignal"].id
    ref = {"full": image_id[7:], "sha256-full": image_id, "short12": image_id[7:19],
           "sha256-short": image_id[:19], "familiar": f"{REPOSITORY}:stopsignal", "hex5": image_id[7:12]}[form]
    assert loaded.resolve(ref).id == image_id


def test_resolve_docker_normalisation(loaded):
    loaded.tag(BASE, "busybox")
    for ref in ("busybox", "busybox:latest", "library/busybox", "docker.io/library/busybox:latest"):
        assert loaded.resolve(ref).repo_tags == ["busybox:latest", BASE]


@pytest.mark.parametrize("ref", ["nothere", "localhost/conformance/busybox", f"{REPOSITORY}:nope", "0" * 12,
                                 "sha256:" + "0" * 64])
def test_resolve_unknown(loaded, ref):
    with pytest.raises(StoreError, match=f"^No such image: {ref}$"):
        loaded.resolve(ref)


def test_resolve_invalid_reference(loaded):
    with pytest.raises(StoreError, match="^invalid reference format"):
        loaded.resolve("UPPER//bad")


def test_resolve_path_imports_nothing_heavy(loaded):
    code = (
        "import sys\nfrom pathlib import Path\nfrom reference_runtime.image.store import ImageStore\n"
        f"s = ImageStore(Path({str(loaded.root)!r}))\nprint(s.layer_dirs(s.resolve({BASE!r}))[0].name)\n"
        "print(sorted(m for m in ('tarfile', 'hashlib', 'shutil', 'tempfile', 'gzip', 'dataclasses', 'typing')"
        " if m in sys.modules))\n"
        "from reference_runtime.image import reference\nprint(len(reference._compiled))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert len(out[0]) == 64
    assert out[1] == "[]"
    assert out[2] == "0"  # a stored tag resolves without compiling the reference grammar


# ---------------------------------------------------------------- save

def test_save_writes_docker_and_oci_layouts(loaded, archives):
    buf = io.BytesIO()
    loaded.save([BASE], buf)
    files = members(buf.getvalue())
    for name, data in files.items():
        if name.startswith("blobs/sha256/"):
            assert hashlib.sha256(data).hexdigest() == name.rsplit("/", 1)[1]
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads(files["index.json"])
    (desc,) = index["manifests"]
    assert desc["annotations"] == {"io.containerd.image.name": BASE, "org.opencontainers.image.ref.name": "base"}
    # same manifest bytes as the test image's own: layers stay uncompressed, JSON canonical
    assert desc["digest"] == archives[0]["base"].manifest_digest
    manifest = json.loads(files[f"blobs/sha256/{desc['digest'][7:]}"])
    assert manifest["config"]["digest"] == archives[0]["base"].id
    (entry,) = json.loads(files["manifest.json"])
    assert entry["RepoTags"] == [BASE]
    assert entry["Config"] == f"blobs/sha256/{archives[0]['base'].id[7:]}"
    assert entry["Layers"] == [f"blobs/sha256/{archives[0].diff_id[7:]}"]
    assert json.loads(files["repositories"]) == {REPOSITORY: {"base": archives[0].diff_id[7:]}}


def test_save_is_deterministic(loaded):
    one, two = io.BytesIO(), io.BytesIO()
    loaded.save([BASE, f"{REPOSITORY}:volume"], one)
    loaded.save([BASE, f"{REPOSITORY}:volume"], two)
    assert one.getvalue() == two.getvalue()


def test_save_bare_name_saves_every_tag(loaded):
    buf = io.BytesIO()
    loaded.save([REPOSITORY], buf)
    tags = sorted(t for e in json.loads(members(buf.getvalue())["manifest.json"]) for t in e["RepoTags"])
    assert tags == sorted(f"{REPOSITORY}:{v}" for v in ("base", "stopsignal", "volume"))


def test_save_by_id_has_no_tags(loaded, archives):
    buf = io.BytesIO()
    loaded.save([archives[0]["base"].id[7:19]], buf)
    files = members(buf.getvalue())
    assert json.loads(files["manifest.json"])[0]["RepoTags"] is None
    assert "annotations" not in json.loads(files["index.json"])["manifests"][0]


def test_save_load_round_trip_keeps_ids(loaded, archives, tmp_path):
    buf = io.BytesIO()
    loaded.save([BASE, f"{REPOSITORY}:volume"], buf)
    fresh = ImageStore(tmp_path / "fresh")
    assert fresh.load(io.BytesIO(buf.getvalue())) == [f"Loaded image: {BASE}", f"Loaded image: {REPOSITORY}:volume"]
    assert fresh.resolve(BASE).id == archives[0]["base"].id
    assert fresh.resolve(f"{REPOSITORY}:volume").id == archives[0]["volume"].id
    # the OCI half alone loads too
    files = members(buf.getvalue())
    oci_only = rebuild({k: v for k, v in files.items() if k not in ("manifest.json", "repositories")})
    other = ImageStore(tmp_path / "oci-only")
    other.load(io.BytesIO(oci_only))
    assert other.resolve(BASE).id == archives[0]["base"].id


def test_save_unknown_image(loaded):
    with pytest.raises(StoreError, match="^No such image: nothere$"):
        loaded.save(["nothere"], io.BytesIO())


def test_load_moves_a_tag_and_says_so(loaded, archives, tmp_path):
    # retag "volume" as base's tag in another store's archive, then load it here
    other = ImageStore(tmp_path / "other")
    other.load(archives[1])
    other.tag(f"{REPOSITORY}:volume", "localhost/moved:t")
    loaded.tag(BASE, "localhost/moved:t")
    buf = io.BytesIO()
    other.save(["localhost/moved:t"], buf)
    lines = loaded.load(io.BytesIO(buf.getvalue()))
    assert lines == [f"The image localhost/moved:t already exists, renaming the old one with ID "
                     f"{archives[0]['base'].id} to empty string", "Loaded image: localhost/moved:t"]
    assert loaded.resolve("localhost/moved:t").id == archives[0]["volume"].id
    assert loaded.resolve(BASE).repo_tags == [BASE]


# ---------------------------------------------------------------- tampered and bad archives

def _tamper_layer(data: bytes) -> bytes:
    files = members(data)
    name = next(k for k in files if k.endswith("layer.tar") or (k.startswith("blobs/") and len(files[k]) > 100000))
    layer = bytearray(files[name])
    pos = layer.index(b"seeded from the image")
    layer[pos:pos + 6] = b"HACKED"
    files[name] = bytes(layer)
    return rebuild(files)


@pytest.mark.parametrize("kind", ["docker", "oci"])
def test_tampered_layer_is_refused_and_store_unchanged(loaded, archives, kind):
    before = snapshot(loaded)
    data = (archives[1] if kind == "docker" else archives[2]).read_bytes()
    with pytest.raises(StoreError, match="modified or damaged") as err:
        loaded.load(io.BytesIO(_tamper_layer(data)))
    assert "\n" not in str(err.value)
    assert snapshot(loaded) == before


def test_tampered_layer_refused_by_empty_store(store, archives):
    with pytest.raises(StoreError):
        store.load(io.BytesIO(_tamper_layer(archives[1].read_bytes())))
    assert store.images() == []
    assert not (store.root / "layers").exists() or list((store.root / "layers").iterdir()) == []
    assert not (store.root / "blobs").exists() or tree(store.root / "blobs") in ([], ["sha256"])


def test_tampered_config_is_refused(loaded, archives):
    before = snapshot(loaded)
    files = members(archives[1].read_bytes())
    name = archives[0]["base"].id[7:] + ".json"
    files[name] = files[name].replace(b'"sh"', b'"id"')
    with pytest.raises(StoreError, match="does not match its digest"):
        loaded.load(io.BytesIO(rebuild(files)))
    assert snapshot(loaded) == before


def test_oci_manifest_pointing_at_wrong_size_is_refused(store, archives):
    files = members(archives[2].read_bytes())
    index = json.loads(files["index.json"])
    index["manifests"][0]["size"] += 1
    files["index.json"] = json.dumps(index).encode()
    with pytest.raises(StoreError, match="size"):
        store.load(io.BytesIO(rebuild(files)))
    assert store.images() == []


def test_hostile_layer_with_matching_diff_id_is_refused(loaded, tmp_path):
    """Digests can be right and the layer still hostile: extraction refuses it, nothing stored."""
    before = snapshot(loaded)
    layer = make_tar(("ok", "file", "x"), ("esc", "symlink", str(tmp_path)), ("esc/pwned", "file", "x"))
    config = canonical_json({"architecture": "amd64", "os": "linux", "config": {},
                             "rootfs": {"type": "layers", "diff_ids": [digest_bytes(layer)]}})
    archive = rebuild({"layer.tar": layer, "config.json": config, "manifest.json": json.dumps(
        [{"Config": "config.json", "RepoTags": ["localhost/hostile:x"], "Layers": ["layer.tar"]}]).encode()})
    with pytest.raises(StoreError, match="symlink"):
        loaded.load(io.BytesIO(archive))
    assert snapshot(loaded) == before
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("archive, message", [
    (b"not a tar at all" * 64, "invalid archive"),
    (make_tar(("hello", "file", "x")), "no manifest.json"),
    (make_tar(("manifest.json", "file", "{}")), "not a list"),
    (make_tar(("manifest.json", "file", "[{\"Config\": \"c.json\", \"Layers\": []}]")), "missing"),
    (make_tar(("manifest.json", "file", "[{\"Config\": \"../../etc/passwd\", \"Layers\": []}]")), "'..'"),
    (make_tar(("manifest.json", "file", "not json")), "not valid JSON"),
    (make_tar(("oci-layout", "file", '{"imageLayoutVersion":"1.0.0"}'), ("index.json", "file", '{"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:abc"}]}')), "invalid manifest digest"),
])
def test_bad_archives_get_one_line_errors(loaded, archive, message):
    before = snapshot(loaded)
    with pytest.raises(StoreError, match=message) as err:
        loaded.load(io.BytesIO(archive))
    assert "\n" not in str(err.value)
    assert snapshot(loaded) == before


def test_config_with_wrong_layer_count_is_refused(store, archives):
    files = members(archives[1].read_bytes())
    manifest = json.loads(files["manifest.json"])
    manifest[0]["Layers"] = manifest[0]["Layers"] * 2
    files["manifest.json"] = json.dumps(manifest).encode()
    with pytest.raises(StoreError, match="lists 1 DiffIDs but the image has 2 layers"):
        store.load(io.BytesIO(rebuild(files)))


def test_load_missing_file(store, tmp_path):
    with pytest.raises(StoreError, match="cannot open"):
        store.load(tmp_path / "nothere.tar")


# ---------------------------------------------------------------- concurrency

LOADER = """
import sys
from pathlib import Path
from reference_runtime.image.store import ImageStore
store = ImageStore(Path(sys.argv[1]))
for _ in range(int(sys.argv[3])):
    store.load(Path(sys.argv[2]))
    if len(sys.argv) > 4:
        store.remove(sys.argv[4])
"""


def test_concurrent_loads_leave_a_consistent_store(store, archives):
    procs = [subprocess.Popen([sys.executable, "-c", LOADER, str(store.root), str(path), "3"],
                              stderr=subprocess.PIPE, text=True)
             for path in (archives[1], archives[2], archives[1])]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    _assert_consistent(store, archives)


def test_concurrent_load_and_remove(store, archives):
    store.load(archives[1])
    procs = [subprocess.Popen([sys.executable, "-c", LOADER, str(store.root), str(archives[2]), "4", ref],
                              stderr=subprocess.PIPE, text=True)
             for ref in (BASE, f"{REPOSITORY}:volume")]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    store.load(archives[1])
    _assert_consistent(store, archives)


def _assert_consistent(store: ImageStore, archives) -> None:
    images = store.images()
    assert sorted(i.id for i in images) == sorted(i.id for i in archives[0].images)
    assert sorted(t for i in images for t in i.repo_tags) == sorted(i.ref for i in archives[0].images)
    assert sorted(p.name for p in (store.root / "layers").iterdir()) == [archives[0].diff_id[7:]]
    assert list((store.root / "tmp").iterdir()) == []
    for p in (store.root / "blobs" / "sha256").iterdir():
        assert hashlib.sha256(p.read_bytes()).hexdigest() == p.name
    layer = store.layer_dirs(images[0])[0]
    assert (layer / "bin" / "busybox").stat().st_size == Path("/bin/busybox").stat().st_size


# ---------------------------------------------------------------- commit, import, export

def _upper(tmp_path: Path) -> Path:
    upper = tmp_path / "upper"
    (upper / "etc").mkdir(parents=True)
    (upper / "etc" / "added").write_text("new\n")
    os.mknod(upper / "etc" / "group", stat.S_IFCHR, os.makedev(0, 0))
    (upper / "data").mkdir()
    os.setxattr(upper / "data", "trusted.overlay.opaque", b"y")
    return upper


def test_commit_adds_a_layer_with_whiteouts(loaded, tmp_path):
    base = loaded.resolve(BASE)
    image = loaded.commit(base, _upper(tmp_path), config={**base.config["config"], "Cmd": ["cat", "/etc/added"]},
                          author="me", comment="msg", created_by="sh -c test", ref="localhost/committed:1")
    assert image.id == digest_bytes(image.config_bytes)
    assert image.diff_ids[0] == base.diff_ids[0] and len(image.diff_ids) == 2
    assert image.chain_ids == chain_ids(image.diff_ids)
    assert image.parent == base.id
    assert image.repo_tags == ["localhost/committed:1"]
    assert image.config["author"] == "me" and image.config["config"]["Cmd"] == ["cat", "/etc/added"]
    assert image.config["history"][-1] == {"created": image.created, "created_by": "sh -c test",
                                           "author": "me", "comment": "msg"}
    blob = (loaded.root / "blobs" / "sha256" / image.diff_ids[1][7:]).read_bytes()
    assert digest_bytes(blob) == image.diff_ids[1]
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        # sorted by the names on disk; the opaque marker right after its directory, as docker writes it
        assert tar.getnames() == ["data", "data/.wh..wh..opq", "etc", "etc/added", "etc/.wh.group"]
    lower, top = loaded.layer_dirs(image)
    assert lower == loaded.layer_dirs(base)[0]
    assert (top / "etc" / "added").read_text() == "new\n"
    assert stat.S_ISCHR(os.lstat(top / "etc" / "group").st_mode)
    assert os.getxattr(top / "data", "trusted.overlay.opaque") == b"y"
    rows = loaded.history("localhost/committed:1")
    assert [r["id"] for r in rows] == [image.id, base.id]
    assert rows[0]["created_by"] == "sh -c test" and rows[0]["size"] == 4 and rows[0]["comment"] == "msg"


def test_commit_is_reproducible_with_fixed_time(loaded, tmp_path):
    base = loaded.resolve(BASE)
    upper = _upper(tmp_path)
    kw = dict(config={"Cmd": ["sh"]}, created="2020-01-01T00:00:00Z", clamp_mtime=1577836800)
    one = loaded.commit(base, upper, **kw)
    os.utime(upper / "etc" / "added", (2_000_000_000, 2_000_000_000))  # later than the clamp: no change
    two = loaded.commit(base, upper, **kw)
    assert one.id == two.id


def test_commit_without_layer_is_an_empty_layer_step(loaded):
    base = loaded.resolve(BASE)
    image = loaded.commit(base, None, config={**base.config["config"], "Env": ["A=1"]}, created_by="ENV A=1")
    assert image.diff_ids == base.diff_ids
    assert image.config["history"][-1]["empty_layer"] is True
    assert image.dangling
    rows = loaded.history(image.id)
    assert rows[0]["empty_layer"] is True and rows[0]["size"] == 0
    assert rows[1]["size"] == base.size


def test_commit_from_scratch(store, tmp_path):
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "hello").write_text("hi")
    image = store.commit(None, root, config={"Cmd": ["/bin/hello"]}, ref="localhost/scratch")
    assert len(image.diff_ids) == 1 and image.chain_ids == image.diff_ids
    assert store.resolve("localhost/scratch:latest").id == image.id


def test_import_makes_one_layer_and_a_new_id(loaded, tmp_path):
    layer = make_tar(("bin", "dir"), ("bin/x", "file", "payload"))
    image = loaded.import_tar(io.BytesIO(gzip.compress(layer)), "localhost/imported:v",
                              changes={"Cmd": ["/bin/x"]}, message="hello")
    assert image.diff_ids == [digest_bytes(layer)]
    assert image.config["config"] == {"Cmd": ["/bin/x"]}
    assert image.config["history"] == [{"created": image.created, "comment": "hello"}]
    assert (loaded.layer_dirs(image)[0] / "bin" / "x").read_text() == "payload"
    again = loaded.import_tar(io.BytesIO(layer), None)
    assert again.id != image.id and again.diff_ids == image.diff_ids
    assert again.config["history"][0]["comment"] == "Imported from -"


def test_import_of_garbage_stores_nothing(loaded):
    before = snapshot(loaded)
    with pytest.raises(StoreError, match="invalid layer tar"):
        loaded.import_tar(io.BytesIO(b"garbage" * 1000), "localhost/bad:x")
    assert snapshot(loaded) == before


def test_export_then_import_round_trip(loaded, tmp_path):
    layer = loaded.layer_dirs(loaded.resolve(BASE))[0]
    buf = io.BytesIO()
    loaded.export_dir(layer, buf)
    imported = loaded.import_tar(io.BytesIO(buf.getvalue()), "localhost/reimported:x")
    assert tree(loaded.layer_dirs(imported)[0]) == tree(layer)
    assert imported.id != loaded.resolve(BASE).id


# ---------------------------------------------------------------- tag, rmi, prune

def test_tag_never_changes_the_id(loaded, archives):
    loaded.tag(BASE, "localhost/other:tag")
    image = loaded.resolve("localhost/other:tag")
    assert image.id == archives[0]["base"].id
    assert image.repo_tags == [BASE, "localhost/other:tag"]
    assert image.last_tag_time != "0001-01-01T00:00:00Z"


def test_tag_errors(loaded):
    with pytest.raises(StoreError, match="^No such image: nope$"):
        loaded.tag("nope", "x")
    with pytest.raises(StoreError, match="invalid reference format"):
        loaded.tag(BASE, "Bad Tag")


def test_rmi_one_of_two_tags_only_untags(loaded):
    loaded.tag(BASE, "localhost/other:tag")
    assert loaded.remove("localhost/other:tag") == ["Untagged: localhost/other:tag"]
    assert loaded.resolve(BASE).repo_tags == [BASE]


def test_rmi_last_tag_deletes_image_but_keeps_shared_layer(loaded, archives):
    assert loaded.remove(BASE) == [f"Untagged: {BASE}", f"Deleted: {archives[0]['base'].id}"]
    assert not (loaded.root / "blobs" / "sha256" / archives[0]["base"].id[7:]).exists()
    assert loaded.layer_dirs(loaded.resolve(f"{REPOSITORY}:volume"))


def test_rmi_of_the_last_image_deletes_its_layer(loaded, archives):
    loaded.remove(BASE)
    loaded.remove(f"{REPOSITORY}:volume")
    lines = loaded.remove(archives[0]["stopsignal"].id[7:19])
    assert lines == [f"Untagged: {REPOSITORY}:stopsignal", f"Deleted: {archives[0]['stopsignal'].id}",
                     f"Deleted: {archives[0].diff_id}"]
    assert list((loaded.root / "layers").iterdir()) == []
    assert list((loaded.root / "blobs" / "sha256").iterdir()) == []
    assert loaded.images() == []


def test_rmi_by_id_with_tags_in_two_repositories_must_be_forced(loaded, archives):
    loaded.tag(BASE, "localhost/other:tag")
    short = archives[0]["base"].id[7:19]
    before = snapshot(loaded)
    with pytest.raises(StoreError, match=f"^conflict: unable to delete {short} \\(must be forced\\) - "
                                         "image is referenced in multiple repositories$"):
        loaded.remove(short)
    assert snapshot(loaded) == before
    assert loaded.remove(short, force=True) == [f"Untagged: {BASE}", "Untagged: localhost/other:tag",
                                                f"Deleted: {archives[0]['base'].id}"]


def test_rmi_in_use_by_a_stopped_container(loaded, archives):
    image_id = archives[0]["base"].id
    uses = {image_id: [ImageUse("c0ffee" * 10, False)]}
    with pytest.raises(StoreError, match=f'^conflict: unable to remove repository reference "{BASE}" '
                                         f"\\(must force\\) - container c0ffeec0ffee is using its referenced image "
                                         f"{image_id[7:19]}$"):
        loaded.remove(BASE, in_use=uses)
    with pytest.raises(StoreError, match="must be forced\\) - image is being used by stopped container c0ffeec0ffee"):
        loaded.remove(image_id[7:19], in_use=uses)
    # a plain set of image IDs works too
    with pytest.raises(StoreError, match="must force"):
        loaded.remove(BASE, in_use={image_id})
    assert loaded.remove(BASE, force=True, in_use=uses) == [f"Untagged: {BASE}", f"Deleted: {image_id}"]
    # the container keeps its image's layers and config until it is gone
    with pytest.raises(StoreError, match="No such image"):
        loaded.resolve(image_id)
    assert loaded.layer_dirs(loaded.by_id(image_id))
    loaded.remove(f"{REPOSITORY}:volume", in_use=uses)
    loaded.remove(f"{REPOSITORY}:stopsignal", in_use=uses)
    assert (loaded.root / "layers" / archives[0].diff_id[7:]).is_dir()
    loaded.prune(in_use={})
    with pytest.raises(StoreError):
        loaded.by_id(image_id)
    assert list((loaded.root / "layers").iterdir()) == []


def test_rmi_running_container_cannot_be_forced(loaded, archives):
    image_id = archives[0]["base"].id
    uses = {image_id: [("feed" * 16, True)]}
    with pytest.raises(StoreError, match=f"^conflict: unable to delete {image_id[7:19]} \\(cannot be forced\\) - "
                                         "image is being used by running container feedfeedfeed$"):
        loaded.remove(image_id, force=True, in_use=uses)
    # by name with force: docker only untags
    assert loaded.remove(BASE, force=True, in_use=uses) == [f"Untagged: {BASE}"]
    assert loaded.by_id(image_id).dangling


def test_rmi_parent_with_child_is_refused_and_child_removal_prunes_parent(loaded, tmp_path):
    base = loaded.resolve(BASE)
    mid = loaded.commit(base, None, config={"Env": ["A=1"]})
    child = loaded.commit(mid, _upper(tmp_path), config={"Env": ["A=1"]}, ref="localhost/child:1")
    with pytest.raises(StoreError, match=f"unable to delete {mid.id[7:19]} \\(cannot be forced\\) - "
                                         "image has dependent child images"):
        loaded.remove(mid.id, force=True)
    lines = loaded.remove("localhost/child:1")
    assert lines[:2] == ["Untagged: localhost/child:1", f"Deleted: {child.id}"]
    assert f"Deleted: {child.chain_ids[-1]}" in lines
    assert lines[-1] == f"Deleted: {mid.id}"
    assert loaded.resolve(BASE).id == base.id  # tagged: not pruned


def test_rmi_unknown(loaded):
    with pytest.raises(StoreError, match="^No such image: nope:1$"):
        loaded.remove("nope:1")


def test_prune_dangling_and_all(loaded, archives, tmp_path):
    base = loaded.resolve(BASE)
    dangling = loaded.commit(base, _upper(tmp_path), config={})
    used = loaded.commit(base, None, config={"Cmd": ["true"]})
    lines, reclaimed = loaded.prune_report(in_use={used.id})
    assert lines[0] == f"deleted: {dangling.id}" and f"deleted: {dangling.chain_ids[-1]}" in lines
    assert reclaimed == dangling.layer_sizes[-1] > 0
    assert {i.id for i in loaded.images()} == {i.id for i in archives[0].images} | {used.id}
    lines = loaded.prune(dangling_only=False, in_use={archives[0]["volume"].id})
    assert f"untagged: {BASE}" in lines and f"deleted: {used.id}" in lines
    assert [i.id for i in loaded.images()] == [archives[0]["volume"].id]


def test_inspect_has_dockers_keys(loaded, archives):
    data = loaded.inspect(BASE)
    assert data["Id"] == archives[0]["base"].id
    assert data["RepoTags"] == [BASE] and data["RepoDigests"] == []
    assert data["Created"] == "2000-01-01T00:00:00Z"
    assert data["Config"]["Cmd"] == ["sh"] and data["Config"]["Entrypoint"] is None
    assert data["RootFS"] == {"Type": "layers", "Layers": [archives[0].diff_id]}
    assert data["Os"] == "linux" and data["Architecture"]
    assert data["Size"] == loaded.resolve(BASE).size
    assert set(data) >= {"Id", "RepoTags", "RepoDigests", "Parent", "Comment", "Created", "Author", "Config",
                         "Architecture", "Os", "Size", "RootFS", "Metadata", "GraphDriver"}


def test_killed_writer_leaves_a_usable_store(store, archives):
    """SIGKILL a loader at some point of its work: the store is old-or-new, and the next load cleans up."""
    import signal
    import time

    for delay in (0.05, 0.3, 1.0):
        p = subprocess.Popen([sys.executable, "-c", LOADER, str(store.root), str(archives[1]), "50"])
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=60)
        images = store.images() if store.index_path.exists() else []
        for image in images:
            assert image.id == digest_bytes(image.config_bytes)
    store.load(archives[2])
    _assert_consistent(store, archives)
    assert [p.name for p in (store.root / "layers").iterdir() if p.name.startswith(".tmp-")] == []


def test_stale_staging_of_dead_writers_is_removed(store, archives):
    dead = subprocess.Popen(["true"])
    dead.wait()
    (store.root / "tmp" / f"load-{dead.pid}-abc").mkdir(parents=True)
    (store.root / "layers" / f".tmp-{dead.pid}-abc" / "x").mkdir(parents=True)
    (store.root / "tmp" / f"load-{os.getpid()}-mine").mkdir()  # a live writer's: kept
    store.load(archives[1])
    assert sorted(p.name for p in (store.root / "tmp").iterdir()) == [f"load-{os.getpid()}-mine"]
    assert [p.name for p in (store.root / "layers").iterdir()] == [archives[0].diff_id[7:]]


def test_load_from_a_pipe(store, archives):
    code = ("import sys\nfrom pathlib import Path\nfrom reference_runtime.image.store import ImageStore\n"
            f"print(ImageStore(Path({str(store.root)!r})).load(sys.stdin.buffer))")
    with open(archives[2], "rb") as f:
        out = subprocess.run([sys.executable, "-c", code], stdin=f, capture_output=True, text=True, check=True)
    assert BASE in out.stdout
    assert store.resolve(BASE).id == archives[0]["base"].id


def test_commit_tar_and_children(loaded):
    base = loaded.resolve(BASE)
    layer = make_tar(("app", "dir"), ("app/main", "file", "code"), ("etc/.wh.group", "file"))
    image = loaded.commit_tar(base, io.BytesIO(gzip.compress(layer)), config={"Cmd": ["/app/main"]},
                              created_by="COPY main /app/", ref="localhost/built:1")
    assert image.diff_ids == base.diff_ids + [digest_bytes(layer)]
    top = loaded.layer_dirs(image)[-1]
    assert (top / "app" / "main").read_text() == "code"
    assert stat.S_ISCHR(os.lstat(top / "etc" / "group").st_mode)
    assert [c.id for c in loaded.children(base.id)] == [image.id]
    assert loaded.children(image.id) == []


def test_images_hides_intermediate_images_unless_all(loaded):
    base = loaded.resolve(BASE)
    mid = loaded.commit(base, None, config={"Env": ["A=1"]})
    top = loaded.commit(mid, None, config={"Env": ["A=1", "B=2"]}, ref="localhost/top:1")
    dangling = loaded.commit(base, None, config={"Env": ["C=3"]})
    shown = {i.id for i in loaded.images()}
    assert top.id in shown and dangling.id in shown and mid.id not in shown
    assert mid.id in {i.id for i in loaded.images(all=True)}


def test_docker_archive_with_linked_duplicate_layer(store, tmp_path):
    """docker save stores a repeated layer once and links the second copy to it."""
    layer = make_tar(("same", "file", "x"))
    diff_id = digest_bytes(layer)
    config = canonical_json({"architecture": "amd64", "os": "linux", "config": {},
                             "rootfs": {"type": "layers", "diff_ids": [diff_id, diff_id]}})
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("a/layer.tar", layer), ("c.json", config), ("manifest.json", json.dumps(
                [{"Config": "c.json", "RepoTags": ["localhost/dup:1"], "Layers": ["a/layer.tar", "b/layer.tar"]}]
        ).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("b/layer.tar")
        link.type, link.linkname = tarfile.SYMTYPE, "../a/layer.tar"
        tar.addfile(link)
    assert store.load(io.BytesIO(buf.getvalue())) == ["Loaded image: localhost/dup:1"]
    image = store.resolve("localhost/dup:1")
    assert image.chain_ids == chain_ids([diff_id, diff_id]) and len(set(image.chain_ids)) == 2
    assert [(d / "same").read_text() for d in store.layer_dirs(image)] == ["x", "x"]
    assert store.remove("localhost/dup:1")[-2:] == [f"Deleted: {image.chain_ids[1]}", f"Deleted: {image.chain_ids[0]}"]
    assert list((store.root / "blobs" / "sha256").iterdir()) == []


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8)
    | st.sampled_from(["c.json", "layer.tar", "blobs/sha256/" + "0" * 64, "sha256:" + "0" * 64,
                       "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.sampled_from(["Config", "RepoTags", "Layers", "manifests", "mediaType", "digest", "size", "annotations",
                         "config", "layers", "rootfs", "diff_ids", "type", "imageLayoutVersion"]), children, max_size=4),
    max_leaves=12)


@settings(max_examples=80, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(manifest=json_values, oci=st.booleans())
def test_malformed_manifests_give_store_errors(tmp_path_factory, manifest, oci):
    """Whatever JSON an archive holds, load answers with a StoreError, never a traceback."""
    store = ImageStore(tmp_path_factory.mktemp("fuzz") / "image")
    files = {"c.json": b"{}", "layer.tar": make_tar(("f", "file", "x"))}
    if oci:
        files.update({"oci-layout": b'{"imageLayoutVersion":"1.0.0"}', "index.json": json.dumps(manifest).encode(),
                      "blobs/sha256/" + "0" * 64: json.dumps(manifest).encode()})
    else:
        files["manifest.json"] = json.dumps(manifest).encode()
    with pytest.raises(StoreError):
        store.load(io.BytesIO(rebuild(files)))
    assert store.images() == []

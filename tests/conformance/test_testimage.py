import hashlib
import io
import json
import subprocess
import sys
import tarfile

from conformance import testimage


def _digests_of_a_fresh_build(tmp_path) -> dict[str, str]:
    """Build in a separate interpreter so no in-process state can make builds agree."""
    code = (
        "import sys, hashlib, pathlib; from conformance.testimage import write_archives; "
        "_, d, o = write_archives(pathlib.Path(sys.argv[1])); "
        "print(hashlib.sha256(d.read_bytes()).hexdigest(), hashlib.sha256(o.read_bytes()).hexdigest())"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    docker, oci = out.stdout.split()
    return {"docker": docker, "oci": oci}


def test_archives_are_byte_for_byte_reproducible(tmp_path):
    first = _digests_of_a_fresh_build(tmp_path / "a")
    second = _digests_of_a_fresh_build(tmp_path / "b")
    assert first == second


def test_image_ids_are_the_config_digests_and_layers_are_shared():
    images = testimage.build_image_set(b"\x7fELF fake busybox", ["sh", "sleep", "true"], arch="amd64")
    assert [i.variant for i in images.images] == ["base", "stopsignal", "volume"]
    for image in images.images:
        config = json.loads(image.config)
        assert image.id == "sha256:" + hashlib.sha256(image.config).hexdigest()
        assert config["rootfs"]["diff_ids"] == [images.diff_id]
        manifest = json.loads(image.manifest)
        assert manifest["config"]["digest"] == image.id
        assert manifest["layers"][0]["digest"] == images.diff_id
    assert json.loads(images["stopsignal"].config)["config"]["StopSignal"] == "SIGINT"
    assert json.loads(images["volume"].config)["config"]["Volumes"] == {"/data": {}}
    assert len({i.id for i in images.images}) == 3


def test_layer_entries_are_normalised():
    layer = testimage.rootfs_layer(b"bb", ["sh", "ls"])
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in members} == {(0, 0, "", "", testimage.EPOCH)}
    by_name = {m.name: m for m in members}
    assert by_name["bin/sh"].issym() and by_name["bin/sh"].linkname == "busybox"
    assert by_name["tmp"].mode == 0o1777


def test_docker_archive_lists_every_tag(tmp_path):
    images = testimage.build_image_set(b"bb", ["sh"], arch="amd64")
    with tarfile.open(fileobj=io.BytesIO(testimage.docker_archive(images))) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        for entry in manifest:
            config = tar.extractfile(entry["Config"]).read()
            assert "sha256:" + hashlib.sha256(config).hexdigest() == images[entry["RepoTags"][0].rsplit(":", 1)[1]].id
            layer = tar.extractfile(entry["Layers"][0]).read()
            assert "sha256:" + hashlib.sha256(layer).hexdigest() == images.diff_id


def test_oci_archive_blobs_match_their_names():
    images = testimage.build_image_set(b"bb", ["sh"], arch="amd64")
    with tarfile.open(fileobj=io.BytesIO(testimage.oci_archive(images))) as tar:
        assert json.load(tar.extractfile("oci-layout")) == {"imageLayoutVersion": "1.0.0"}
        index = json.load(tar.extractfile("index.json"))
        assert {m["annotations"]["io.containerd.image.name"] for m in index["manifests"]} == {
            f"{testimage.REPOSITORY}:{v}" for v in testimage.VARIANTS}
        for member in tar.getmembers():
            if member.isfile() and member.name.startswith("blobs/sha256/"):
                data = tar.extractfile(member).read()
                assert hashlib.sha256(data).hexdigest() == member.name.rsplit("/", 1)[1]

"""Images moving in and out of an engine: save/load, export/import, commit,
tag, and what a loader does with an archive that lies about its content."""

from __future__ import annotations

import json
import re
import secrets

import pytest

from .archive import (docker_archive, docker_manifest, members, oci_layout_problems, rewrite, sha256, tar_of,
                      uncompressed)
from .conftest import COMMIT, EXPORT, LAYOUT_SPEC, LOAD, SAVE, TAG, diff_ids, image_id, new_ref, saved


@pytest.mark.spec(SAVE, "save writes a tar with docker's manifest.json: per image its config, its layers "
                        "bottom first, and its tags")
def test_save_writes_a_docker_manifest(engine, test_image):
    ref = test_image.base
    files = saved(engine, ref)
    entry = docker_manifest(files)[0]
    assert ref in (entry.get("RepoTags") or []), f"RepoTags {entry.get('RepoTags')} lacks {ref}"
    assert len(entry["Layers"]) == 1
    assert sha256(uncompressed(files[entry["Layers"][0]])) == test_image.set.diff_id


@pytest.mark.requires("save-oci")  # docker 25+; docker 20.10 and podman 4.3 write the legacy archive only
@pytest.mark.spec(LAYOUT_SPEC, "save writes a valid OCI image layout (oci-layout, index.json, blobs named by their "
                               "digest) next to manifest.json (docker 25+)")
def test_save_writes_an_oci_layout(engine, test_image):
    files = saved(engine, test_image.base)
    docker_manifest(files)
    problems = oci_layout_problems(files)
    assert not problems, f"{engine.name}: save's archive is no OCI layout: {problems}; members: {sorted(files)[:12]}"


@pytest.mark.requires("commit")
@pytest.mark.spec(LOAD, "load restores a saved image with the same ID, layers and tag")
def test_save_then_load_keeps_the_image_id(engine, test_image, tmp_path):
    ref = committed(engine, test_image.base, f"echo {secrets.token_hex(8)} > /saved.txt")
    before, layers = image_id(engine, ref), diff_ids(engine, ref)
    archive = tmp_path / "saved.tar"
    result = engine.cli("save", "-o", str(archive), ref, timeout=300)
    assert result.ok, str(result)
    engine.cli("rmi", ref, check=True)
    assert not engine.cli("image", "inspect", ref).ok, "rmi left the image"
    engine.cli("load", "-i", str(archive), check=True, timeout=300)
    assert image_id(engine, ref) == before
    assert diff_ids(engine, ref) == layers


@pytest.mark.spec(EXPORT, "export writes the container's flattened filesystem; import makes it an image of one "
                          "layer (DiffID = sha256 of that tar) with a new ID")
def test_export_then_import_makes_one_layer_and_a_new_id(engine, test_image):
    name = engine.create([test_image.base, "sh", "-c", "echo exported > /exported.txt"])
    engine.cli("start", "-a", name, check=True)
    exported = engine.cli("export", name, text=False, timeout=300)
    assert exported.ok, f"export failed: {exported.stderr[-300:]!r}"
    ref = new_ref(engine, "imported")
    engine.cli("import", "-", ref, input=exported.stdout, text=False, check=True, timeout=300)
    assert image_id(engine, ref) != image_id(engine, test_image.base)
    assert diff_ids(engine, ref) == [sha256(uncompressed(exported.stdout))]
    run = engine.run(["--rm", ref, "/bin/cat", "/exported.txt"])
    assert run.ok and run.stdout == "exported\n", str(run)


@pytest.mark.requires("commit")
@pytest.mark.spec(COMMIT, "commit adds the container's changes as one new layer on top of the image's layers")
def test_commit_adds_one_layer(engine, test_image):
    base_layers = diff_ids(engine, test_image.base)
    ref = committed(engine, test_image.base, "echo committed > /committed.txt")
    layers = diff_ids(engine, ref)
    assert layers[:-1] == base_layers and len(layers) == len(base_layers) + 1
    assert image_id(engine, ref) != image_id(engine, test_image.base)
    files = saved(engine, ref)
    top = docker_manifest(files)[0]["Layers"][-1]
    assert b"committed\n" in members(uncompressed(files[top])).values()
    assert sha256(uncompressed(files[top])) == layers[-1]


@pytest.mark.spec(TAG, "tag adds a name to an image: the ID never changes; re-tagging moves the name only")
def test_tag_never_changes_the_id(engine, test_image, tmp_path):
    base_id = image_id(engine, test_image.base)
    ref = new_ref(engine, "tagged")
    engine.cli("tag", test_image.base, ref, check=True)
    assert image_id(engine, ref) == base_id
    path = tmp_path / "other.tar"
    path.write_bytes(tar_of({"other.txt": b"other\n"}))
    other = new_ref(engine, "other")
    engine.cli("import", str(path), other, check=True, timeout=120)
    other_id = image_id(engine, other)
    engine.cli("tag", other, ref, check=True)
    assert image_id(engine, ref) == other_id
    assert image_id(engine, test_image.base) == base_id and image_id(engine, other) == other_id


@pytest.mark.spec(LOAD, "a layer whose content does not match the DiffID its config claims is refused; the "
                        "engine's images are unchanged")
def test_load_refuses_a_tampered_layer(engine, test_image, tmp_path):
    images = test_image.set
    base_config = json.loads(images["base"].config)
    added = tar_of({"added.txt": secrets.token_hex(16).encode()})
    config = json.dumps({**base_config, "rootfs": {"type": "layers", "diff_ids": [images.diff_id, sha256(added)]},
                         "history": base_config["history"] + [{"created": "2000-01-01T00:00:00Z",
                                                                "created_by": "conformance: added.txt"}]},
                        sort_keys=True).encode()
    ref = new_ref(engine, "claimed")
    engine.cli("tag", test_image.base, ref, check=True)  # the name the archive claims already exists
    good = docker_archive(ref, config, [images.layer, added])
    forged = tar_of({"added.txt": b"not what the config says"})
    bad = rewrite(good, {f"{sha256(added)[7:]}/layer.tar": lambda _: forged})
    (tmp_path / "bad.tar").write_bytes(bad)
    (tmp_path / "good.tar").write_bytes(good)

    refused = engine.cli("load", "-i", str(tmp_path / "bad.tar"), timeout=300)
    assert refused.returncode != 0, f"{engine.name} loaded a layer that does not match its DiffID\n{refused}"
    assert re.search(r"diff ?id|digest", refused.stderr + refused.stdout, re.IGNORECASE), str(refused)
    assert image_id(engine, ref) == images["base"].id, "the refused load moved the tag"
    assert image_id(engine, test_image.base) == images["base"].id
    assert not engine.cli("image", "inspect", sha256(config)).ok, "the refused image is in the store"

    # the same archive untampered loads: the refusal was for the forged layer
    engine.cli("load", "-i", str(tmp_path / "good.tar"), check=True, timeout=300)
    assert image_id(engine, ref) == sha256(config)
    assert diff_ids(engine, ref) == [images.diff_id, sha256(added)]


def committed(engine, base: str, script: str) -> str:
    """An image committed from a container of ``base`` that ran ``script``."""
    name = engine.create([base, "sh", "-c", script])
    engine.cli("start", "-a", name, check=True)
    ref = new_ref(engine, "committed")
    engine.cli("commit", name, ref, check=True, timeout=120)
    return ref

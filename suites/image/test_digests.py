"""Content addressing: what an engine's image ID, DiffIDs and ChainIDs are
made of, checked against the bytes ``save`` writes."""

from __future__ import annotations

import json

import pytest

from .archive import chain_ids, docker_manifest, sha256, tar_of, uncompressed
from .conftest import CONFIG_SPEC, IMPORT, diff_ids, image_id, new_ref, saved


@pytest.mark.spec(f"{CONFIG_SPEC}#imageid", "the image ID is the sha256 of the image's config JSON as stored")
def test_loaded_image_id_is_the_digest_of_its_config(engine, test_image):
    expected = test_image.set["base"]
    assert image_id(engine, expected.ref) == expected.id
    files = saved(engine, expected.ref)
    config_name = docker_manifest(files)[0]["Config"]
    assert files[config_name] == expected.config, "save changed the config bytes the image was loaded with"


@pytest.mark.requires("build")
@pytest.mark.spec(f"{CONFIG_SPEC}#imageid", "the image ID of a built image is the sha256 of the config that save writes")
def test_built_image_id_is_the_digest_of_its_saved_config(engine, layered):
    files = saved(engine, layered)
    config_name = docker_manifest(files)[0]["Config"]
    assert sha256(files[config_name]) == image_id(engine, layered)


@pytest.mark.requires("build")
@pytest.mark.spec(f"{CONFIG_SPEC}#layer-diffid", "DiffID = sha256 of the uncompressed layer tar; rootfs.diff_ids lists "
                                                 "them bottom first, and inspect's RootFS.Layers shows the same")
def test_diff_ids_are_the_digests_of_the_saved_layers(engine, layered, test_image):
    files = saved(engine, layered)
    entry = docker_manifest(files)[0]
    config = json.loads(files[entry["Config"]])
    computed = [sha256(uncompressed(files[name])) for name in entry["Layers"]]
    assert len(computed) == 3, f"base + RUN + COPY should be three layers, save wrote {entry['Layers']}"
    assert computed == config["rootfs"]["diff_ids"]
    assert computed == diff_ids(engine, layered)
    assert computed[0] == test_image.set.diff_id, "the base layer's DiffID changed on the way"


@pytest.mark.requires("build")
@pytest.mark.spec(f"{CONFIG_SPEC}#layer-chainid", "ChainID(L0) = DiffID(L0); ChainID(L0|..|Ln) = "
                                                  "sha256(ChainID(L0|..|Ln-1) + ' ' + DiffID(Ln)); an image built on "
                                                  "another extends the base's chain")
def test_chain_ids_extend_the_base_chain(engine, layered, test_image):
    # Neither docker nor podman prints ChainIDs; what they expose are the
    # DiffIDs the chain is made of, in the order the formula needs.
    base_layers, layers = diff_ids(engine, test_image.base), diff_ids(engine, layered)
    chain = chain_ids(layers)
    assert chain[0] == layers[0] == test_image.set.diff_id
    assert chain[1] == sha256(f"{layers[0]} {layers[1]}".encode())
    assert chain[2] == sha256(f"{chain[1]} {layers[2]}".encode())
    assert chain_ids(base_layers) == chain[:len(base_layers)], "the built image does not extend its base's chain"
    files = saved(engine, layered)
    from_save = [sha256(uncompressed(files[n])) for n in docker_manifest(files)[0]["Layers"]]
    assert chain_ids(from_save) == chain


@pytest.mark.spec(IMPORT, "two images made from the same layer content share its DiffID (the sha256 of the "
                          "uncompressed tar) while their IDs differ with their configs")
def test_same_layer_content_shares_the_diff_id(engine, tmp_path):
    layer = tar_of({"hello.txt": b"same content\n"})
    path = tmp_path / "layer.tar"
    path.write_bytes(layer)
    first, second = new_ref(engine, "one"), new_ref(engine, "two")
    engine.cli("import", "--change", "LABEL which=one", str(path), first, check=True, timeout=120)
    engine.cli("import", "--change", "LABEL which=two", str(path), second, check=True, timeout=120)
    assert image_id(engine, first) != image_id(engine, second)
    assert diff_ids(engine, first) == diff_ids(engine, second) == [sha256(layer)]

"""Content addressing: what an engine's image ID and DiffIDs are made of,
checked against the bytes ``save`` writes.

No engine reports ChainIDs through its CLI: docker 20.10 and podman 4.3 show
DiffIDs (inspect's ``RootFS.Layers``), and fold ChainIDs only into the legacy
layer directory names of ``save``'s archive by formulas of their own
(docker's ``v1.CreateID``, containers/image's ``writeLegacyMetadataLocked``)
that no documentation promises. A ChainID is made of the DiffIDs and their
order alone (:func:`archive.chain_ids`), so the checks hold engines to those:
the DiffIDs they report, the layers ``save`` writes, and a built image's
layers extending its base's.
"""

from __future__ import annotations

import json

import pytest

from .archive import docker_manifest, sha256, tar_of, uncompressed
from .conftest import CONFIG_SPEC, DOCS, IMPORT, diff_ids, image_id, new_ref, saved

LAYERS = f"{DOCS}/get-started/docker-concepts/building-images/understanding-image-layers/"


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
@pytest.mark.spec(LAYERS, "an image built on another extends it by reusing its layers: the base's layers, in "
                          "order, then one per RUN/COPY")
def test_built_image_reuses_the_base_layers_in_order(engine, layered, test_image):
    # What makes the built image's ChainIDs extend the base's chain.
    base_layers, layers = diff_ids(engine, test_image.base), diff_ids(engine, layered)
    assert base_layers == [test_image.set.diff_id], (
        f"{engine.name}: the loaded base reports RootFS.Layers {base_layers}; its archive has {[test_image.set.diff_id]}")
    assert layers[:len(base_layers)] == base_layers and len(layers) == len(base_layers) + 2, (
        f"{engine.name}: built FROM the base with a RUN and a COPY, the image reports RootFS.Layers {layers}; "
        f"expected the base's {base_layers} then two layers")
    # The base layer the built image's save writes is the base's own bytes.
    base_files, files = saved(engine, test_image.base), saved(engine, layered)
    base_layer = base_files[docker_manifest(base_files)[0]["Layers"][0]]
    first = files[docker_manifest(files)[0]["Layers"][0]]
    assert sha256(uncompressed(first)) == sha256(uncompressed(base_layer)) == test_image.set.diff_id, (
        f"{engine.name}: save of the built image writes a bottom layer of DiffID {sha256(uncompressed(first))}, "
        f"not the base's {test_image.set.diff_id}")


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

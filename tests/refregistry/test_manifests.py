"""Manifest validation, references, Accept negotiation and referrer descriptors."""
import json

import pytest
from hypothesis import given, strategies as st

from reference_runtime.registry.manifests import (DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, ManifestError,
                                                  accepts, parse_manifest, referrer_descriptor)
from reference_runtime.registry.reference import parse_digest

A, B, C = ("sha256:" + c * 64 for c in "abc")


def image(media_type=OCI_MANIFEST, **extra):
    return json.dumps({"schemaVersion": 2, "mediaType": media_type,
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": A, "size": 2},
                       "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": B, "size": 3}],
                       **extra}).encode()


def test_image_manifest_references():
    m = parse_manifest(image(), OCI_MANIFEST)
    assert m.media_type == OCI_MANIFEST and not m.is_index
    assert [str(d) for d in m.blobs] == [A, B] and m.children == ()
    assert m.artifact_type == "application/vnd.oci.image.config.v1+json"


def test_docker_types_and_indexes():
    assert parse_manifest(image(DOCKER_MANIFEST), None).media_type == DOCKER_MANIFEST
    for media_type in (OCI_INDEX, DOCKER_LIST):
        body = json.dumps({"schemaVersion": 2, "mediaType": media_type,
                           "manifests": [{"mediaType": OCI_MANIFEST, "digest": C, "size": 5}]}).encode()
        m = parse_manifest(body, media_type)
        assert m.is_index and [str(d) for d in m.children] == [C] and m.blobs == ()


def test_media_type_from_header_when_body_has_none():
    body = json.loads(image())
    del body["mediaType"]
    assert parse_manifest(json.dumps(body).encode(), OCI_MANIFEST).media_type == OCI_MANIFEST


def test_subject_and_artifact_type():
    m = parse_manifest(image(subject={"mediaType": OCI_MANIFEST, "digest": C, "size": 9},
                             artifactType="application/x.sig", annotations={"k": "v"}), OCI_MANIFEST)
    assert str(m.subject) == C
    assert referrer_descriptor(m, parse_digest(A), 42) == {
        "mediaType": OCI_MANIFEST, "digest": A, "size": 42, "artifactType": "application/x.sig",
        "annotations": {"k": "v"}}


def test_foreign_layers_are_not_required():
    body = json.loads(image(DOCKER_MANIFEST))
    body["layers"].append({"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                           "digest": C, "size": 1, "urls": ["https://example.invalid/l"]})
    assert str(C) not in [str(d) for d in parse_manifest(json.dumps(body).encode(), None).blobs]


@pytest.mark.parametrize("data,content_type,message", [
    (b"{", OCI_MANIFEST, "not valid JSON"),
    (b"[]", OCI_MANIFEST, "not a JSON object"),
    (b"\xff\xfe", OCI_MANIFEST, "not valid JSON"),
    (image(), DOCKER_MANIFEST, "does not match Content-Type"),
    (image("application/vnd.docker.distribution.manifest.v1+prettyjws"), None, "unsupported manifest media type"),
    (image(schemaVersion=1), OCI_MANIFEST, "schemaVersion"),
    (json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []}).encode(), None, "config"),
    (json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX}).encode(), None, "manifests list"),
    (image(config={"digest": "sha256:nothex", "size": 1}), None, "config.digest"),
    (image(config={"digest": A, "size": -1}), None, "size"),
    (image(config={"digest": A, "size": True}), None, "size"),
    (image(subject="x"), None, "subject"),
])
def test_invalid_manifests(data, content_type, message):
    with pytest.raises(ManifestError) as info:
        parse_manifest(data, content_type)
    assert message in str(info.value)


@pytest.mark.parametrize("accept,ok", [([], True), ([OCI_MANIFEST], True), ([f"{DOCKER_MANIFEST}, {OCI_MANIFEST}"], True),
                                       ([DOCKER_MANIFEST, OCI_INDEX], False), (["*/*"], True), (["application/*"], True),
                                       ([f"{OCI_MANIFEST};q=0"], False), ([f"{OCI_MANIFEST}; q=0.5"], True),
                                       (["text/plain"], False)])
def test_accept(accept, ok):
    assert accepts(accept, OCI_MANIFEST) is ok


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                    lambda children: st.lists(children, max_size=4) | st.dictionaries(
                        st.sampled_from(["mediaType", "schemaVersion", "config", "layers", "manifests", "digest",
                                         "size", "subject", "annotations", "artifactType", "urls", "x"]),
                        children, max_size=6), max_leaves=20)


@given(JSON, st.sampled_from([None, OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, "text/plain"]))
def test_any_json_is_a_manifest_or_a_manifest_error(value, content_type):
    """Bad input is a ManifestError (400 MANIFEST_INVALID), never another exception (500)."""
    try:
        parse_manifest(json.dumps(value).encode(), content_type)
    except ManifestError:
        pass


@given(st.binary(max_size=64))
def test_any_bytes_are_a_manifest_or_a_manifest_error(data):
    try:
        parse_manifest(data, OCI_MANIFEST)
    except ManifestError:
        pass

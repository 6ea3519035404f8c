"""Media types: OCI manifests and indexes, Docker schema2 manifests and lists
come back with the type they were pushed with, and only if accepted."""

from __future__ import annotations

import pytest

from conformance.registry_client import (DOCKER_LIST, DOCKER_MANIFEST, MANIFEST_TYPES, OCI_INDEX, OCI_MANIFEST,
                                         config_blob, digest, error_codes, image_manifest,
                                         index_manifest)

from .conftest import CONTENT_NEGOTIATION, PULL_MANIFESTS, blob, describe

ALL = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST]
IDS = ["oci-manifest", "oci-index", "docker-manifest", "docker-list"]


def push_kind(c, repo: str, media_type: str, tag: str) -> bytes:
    """Push a manifest of ``media_type`` (with its children for lists) under ``tag``."""
    child_type = {OCI_INDEX: OCI_MANIFEST, DOCKER_LIST: DOCKER_MANIFEST}.get(media_type, media_type)
    children = []
    for i in range(2 if media_type in (OCI_INDEX, DOCKER_LIST) else 1):
        config, layer = config_blob(f"{repo}/{tag}/{i}"), blob(1000 + i, f"{repo}/{tag}/{i}")
        c.push_blob(repo, config)
        c.push_blob(repo, layer)
        body = image_manifest(config, [layer], media_type=child_type)
        children.append((body, child_type))
    if media_type in (OCI_INDEX, DOCKER_LIST):
        for body, kind in children:
            r = c.push_manifest(repo, digest(body), body, kind)
            assert r.status_code == 201, describe(r)
        body = index_manifest(children, media_type=media_type)
    else:
        body = children[0][0]
    r = c.push_manifest(repo, tag, body, media_type)
    assert r.status_code == 201, describe(r)
    assert r.headers.get("Location"), describe(r)
    return body


@pytest.mark.spec(PULL_MANIFESTS, "the Content-Type of a manifest GET is the type it was pushed with; the bytes are unchanged")
@pytest.mark.parametrize("media_type", ALL, ids=IDS)
def test_content_type_is_the_pushed_media_type(registry, repo, media_type):
    with registry.client() as c:
        body = push_kind(c, repo, media_type, "t")
        for ref in ("t", digest(body)):
            got = c.get_manifest(repo, ref, accept=MANIFEST_TYPES)
            assert got.status_code == 200, describe(got)
            assert got.headers.get("Content-Type") == media_type, describe(got)
            assert got.content == body


@pytest.mark.spec(CONTENT_NEGOTIATION, "a registry never answers 200 with a manifest type the client did not Accept")
@pytest.mark.parametrize("media_type", ALL, ids=IDS)
@pytest.mark.parametrize("by", ["tag", "digest"])
def test_never_a_type_the_client_did_not_accept(registry, repo, media_type, by):
    with registry.client() as c:
        body = push_kind(c, repo, media_type, "t")
        accept = [t for t in ALL if t != media_type]
        got = c.get_manifest(repo, "t" if by == "tag" else digest(body), accept=accept)
        if got.status_code == 200:
            assert got.headers.get("Content-Type") in accept, f"Accept: {accept}; {describe(got)}"
            assert got.headers.get("Docker-Content-Digest") == digest(got.content), describe(got)
        else:  # refusing is fine (404, 406, 400...), as long as it is a proper error
            assert 400 <= got.status_code < 500 and error_codes(got), describe(got)

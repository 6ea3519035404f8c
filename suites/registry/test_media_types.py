"""Media types: OCI manifests and indexes, Docker schema2 manifests and lists
come back with the type they were pushed with, and only if accepted."""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest

from conformance.registry_client import (DOCKER_LIST, DOCKER_MANIFEST, MANIFEST_TYPES, OCI_INDEX, OCI_MANIFEST,
                                         canonical, digest, error_codes, image_manifest, index_manifest)

from .conftest import CONTENT_NEGOTIATION, PULL_MANIFESTS, blob, describe

ALL = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST]
IDS = ["oci-manifest", "oci-index", "docker-manifest", "docker-list"]
#: The platforms index_manifest gives its children, in order.
ARCHES = ["amd64", "arm64"]
CREATED = "2024-01-01T00:00:00Z"


def layer_tar(label: str) -> bytes:
    """A one-file layer tar unique to ``label`` (and to this run), fixed metadata."""
    content = blob(1000, label)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("conformance.bin")
        info.size, info.mode, info.mtime = len(content), 0o644, 0
        tar.addfile(info, io.BytesIO(content))
    return out.getvalue()


def image_config(label: str, arch: str, diff_ids: list[str]) -> bytes:
    """A config as builders write it: rootfs.diff_ids for each layer and a history entry per layer
    (a registry converting to Docker schema1 needs both)."""
    return canonical({
        "architecture": arch, "os": "linux", "created": CREATED,
        "config": {"Cmd": ["/bin/sh"], "Labels": {"conformance": label}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": CREATED, "created_by": f"/bin/sh -c #(nop) ADD file:{label} in / "}],
    })


def push_image(c, repo: str, media_type: str, label: str, arch: str) -> bytes:
    """Push a realistic one-layer image (gzipped tar for Docker, plain tar for OCI); its manifest bytes."""
    tar = layer_tar(label)
    layer = gzip.compress(tar, mtime=0) if media_type == DOCKER_MANIFEST else tar
    config = image_config(label, arch, [digest(tar)])
    c.push_blob(repo, config)
    c.push_blob(repo, layer)
    return image_manifest(config, [layer], media_type=media_type)


def push_kind(c, repo: str, media_type: str, tag: str) -> bytes:
    """Push a manifest of ``media_type`` (with its children for lists) under ``tag``."""
    child_type = {OCI_INDEX: OCI_MANIFEST, DOCKER_LIST: DOCKER_MANIFEST}.get(media_type, media_type)
    is_list = media_type in (OCI_INDEX, DOCKER_LIST)
    children = [(push_image(c, repo, child_type, f"{repo}/{tag}/{i}", ARCHES[i]), child_type)
                for i in range(2 if is_list else 1)]
    if is_list:
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


@pytest.mark.spec(CONTENT_NEGOTIATION, "a registry never answers 200 with a manifest type the client did not Accept: it "
                                       "serves an accepted representation (e.g. a list's linux/amd64 child) or refuses "
                                       "with 404 MANIFEST_UNKNOWN (the manifest GET's documented failure)")
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
        else:
            assert got.status_code == 404, f"Accept: {accept}; expected 200 with an accepted type or 404: {describe(got)}"
            assert "MANIFEST_UNKNOWN" in error_codes(got), describe(got)

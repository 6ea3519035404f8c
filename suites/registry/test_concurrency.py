"""Concurrency: the same blob committed at once to two repositories, and many
parallel pushes sharing layers; nothing is lost or corrupted."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from conformance.registry_client import OCI_MANIFEST, config_blob, digest, image_manifest

from .conftest import PUSH_MANIFESTS, SPEC, blob, describe

DEDUP = f"{SPEC}#layer-upload-de-duplication"


def verify_image(c, repo: str, tag: str, manifest: bytes, blobs: list[bytes]) -> None:
    got = c.get_manifest(repo, tag)
    assert got.status_code == 200 and got.content == manifest, describe(got)
    for data in blobs:
        r = c.get(f"/v2/{repo}/blobs/{digest(data)}")
        assert r.status_code == 200, describe(r)
        assert digest(r.content) == digest(data), f"{repo}: blob {digest(data)} served corrupted"


@pytest.mark.spec(DEDUP, "the same blob uploaded to two repositories at once: both complete, both serve it intact")
def test_same_blob_committed_at_once_to_two_repositories(registry, repo):
    data = blob(8 * 1024 * 1024, "same-blob")
    d = digest(data)
    barrier = threading.Barrier(4)

    def push(target: str) -> int:
        with registry.client() as c:
            location = c.absolute(c.start_upload(target).headers["Location"], digest=d)
            barrier.wait(timeout=60)
            return c.put(location, content=data, headers={"Content-Type": "application/octet-stream"}).status_code

    targets = [f"{repo}/a", f"{repo}/b", f"{repo}/a", f"{repo}/b"]
    with ThreadPoolExecutor(len(targets)) as pool:
        statuses = list(pool.map(push, targets))
    assert statuses == [201] * len(targets), statuses
    with registry.client() as c:
        for target in set(targets):
            r = c.get(f"/v2/{target}/blobs/{d}")
            assert r.status_code == 200 and r.content == data, describe(r)


@pytest.mark.spec(PUSH_MANIFESTS, "parallel pushes of images sharing layers all succeed and every image is complete")
def test_parallel_pushes_of_shared_layers(registry, repo):
    shared = [blob(256 * 1024, f"shared-{i}") for i in range(3)]
    jobs = [(f"{repo}/r{i % 4}", f"t{i}", blob(64 * 1024, f"own-{i}")) for i in range(12)]

    def push(job):
        target, tag, own = job
        with registry.client() as c:
            config = config_blob(f"{target}:{tag}")
            layers = [*shared, own]
            for data in [config, *layers]:
                c.push_blob(target, data)
            manifest = image_manifest(config, layers)
            r = c.push_manifest(target, tag, manifest, OCI_MANIFEST)
            assert r.status_code == 201, describe(r)
            return target, tag, manifest, [config, *layers]

    with ThreadPoolExecutor(6) as pool:
        pushed = list(pool.map(push, jobs))
    with registry.client() as c:
        for target, tag, manifest, blobs in pushed:
            verify_image(c, target, tag, manifest, blobs)

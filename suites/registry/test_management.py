"""Content management: deleting tags, manifests and blobs, and refusing to
when deletion is off."""

from __future__ import annotations

import pytest

from conformance.registry_client import digest, error_codes

from .conftest import DELETE_BLOBS, DELETE_MANIFESTS, DELETE_TAGS, ERROR_CODES, blob, describe


@pytest.mark.spec(DELETE_TAGS, "DELETE of a tag: 202, the tag is gone at once; other tags of the same manifest stay")
@pytest.mark.requires("delete", "tag-delete")  # a registry MAY allow deletion only by manifest
def test_delete_tag_keeps_other_tags(registry, repo):
    with registry.client() as c:
        manifest, d = c.push_image(repo, "one", label="delete-tag")
        assert c.push_manifest(repo, "two", manifest, "application/vnd.oci.image.manifest.v1+json").status_code == 201
        r = c.delete(f"/v2/{repo}/manifests/one")
        assert r.status_code == 202, describe(r)
        assert c.get_manifest(repo, "one").status_code == 404
        for ref in ("two", d):
            got = c.get_manifest(repo, ref)
            assert got.status_code == 200 and got.content == manifest, describe(got)
        assert "one" not in (c.get(f"/v2/{repo}/tags/list").json().get("tags") or [])


@pytest.mark.spec(DELETE_MANIFESTS, "DELETE of a manifest by digest: 202, then it and every tag naming it answer 404 at once")
@pytest.mark.requires("delete")
def test_delete_manifest_by_digest(registry, repo):
    with registry.client() as c:
        manifest, d = c.push_image(repo, "one", label="delete-manifest")
        c.push_manifest(repo, "two", manifest, "application/vnd.oci.image.manifest.v1+json")
        r = c.delete(f"/v2/{repo}/manifests/{d}")
        assert r.status_code == 202, describe(r)
        for ref in (d, "one", "two"):
            got = c.get_manifest(repo, ref)
            assert got.status_code == 404, describe(got)
            assert c.get_manifest(repo, ref, method="HEAD").status_code == 404
        again = c.delete(f"/v2/{repo}/manifests/{d}")
        assert again.status_code == 404, describe(again)


@pytest.mark.spec(DELETE_BLOBS, "DELETE of a blob: 202, then 404 at once; deleting it again gives 404")
@pytest.mark.requires("delete")
def test_delete_blob(registry, repo):
    data = blob(5000, "delete-blob")
    with registry.client() as c:
        d = c.push_blob(repo, data)
        r = c.delete(f"/v2/{repo}/blobs/{d}")
        assert r.status_code == 202, describe(r)
        for method in ("HEAD", "GET"):
            assert c.request(method, f"/v2/{repo}/blobs/{d}").status_code == 404
        again = c.delete(f"/v2/{repo}/blobs/{d}")
        assert again.status_code == 404, describe(again)
        assert "BLOB_UNKNOWN" in error_codes(again), describe(again)


@pytest.mark.spec(ERROR_CODES, "with deletion off, DELETE of a manifest or blob gives 405 UNSUPPORTED and removes nothing")
@pytest.mark.parametrize("what", ["tag", "manifest", "blob"])
def test_delete_when_disabled_is_405_unsupported(registry_nodelete, repo, what):
    layer = blob(3000, "nodelete")
    with registry_nodelete.client() as c:
        manifest, d = c.push_image(repo, "v1", label="nodelete", layers=[layer])
        path = {"tag": f"/v2/{repo}/manifests/v1", "manifest": f"/v2/{repo}/manifests/{d}",
                "blob": f"/v2/{repo}/blobs/{digest(layer)}"}[what]
        r = c.delete(path)
        assert r.status_code == 405, describe(r)
        assert "UNSUPPORTED" in error_codes(r), describe(r)
        assert c.get_manifest(repo, "v1").content == manifest
        assert c.get(f"/v2/{repo}/blobs/{digest(layer)}").content == layer

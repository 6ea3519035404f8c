"""Digest rules: content is stored only under the digest its bytes hash to,
and manifests only when every blob they name is there."""

from __future__ import annotations

import pytest

from conformance.registry_client import (OCI_MANIFEST, config_blob, digest, digest_matches, error_codes,
                                         image_manifest)

from .conftest import (ERROR_CODES, PULL_BLOBS, PULL_MANIFESTS, PUSH_MANIFESTS, blob,
                       describe)

OCTETS = {"Content-Type": "application/octet-stream"}


@pytest.mark.spec(ERROR_CODES, "DIGEST_INVALID: provided digest did not match uploaded content; nothing is stored")
@pytest.mark.parametrize("how", ["post-put", "single-post"])
def test_mismatched_blob_digest_is_refused_and_nothing_stored(registry, repo, how):
    data, claimed = blob(5000, "mismatch"), digest(blob(5000, "something else"))
    with registry.client() as c:
        if how == "post-put":
            r = c.start_upload(repo)
            r = c.put(c.absolute(r.headers["Location"], digest=claimed), content=data, headers=OCTETS)
        else:
            r = c.post(f"/v2/{repo}/blobs/uploads/", params={"digest": claimed}, content=data, headers=OCTETS)
            if r.status_code == 202:  # no single POST: complete the session it opened, as the spec says
                r = c.put(c.absolute(r.headers["Location"], digest=claimed), content=data, headers=OCTETS)
        assert r.status_code == 400, describe(r)
        assert "DIGEST_INVALID" in error_codes(r), describe(r)
        for d in (claimed, digest(data)):
            head = c.head(f"/v2/{repo}/blobs/{d}")
            assert head.status_code == 404, f"{d} is stored after a refused upload: {describe(head)}"


@pytest.mark.spec(ERROR_CODES, "MANIFEST_BLOB_UNKNOWN: a manifest names blobs the registry lacks; one error per missing blob")
def test_manifest_naming_missing_blobs_is_refused_one_error_per_blob(registry, repo):
    config, missing = config_blob("missing-blobs"), [blob(100, "missing-1"), blob(200, "missing-2")]
    with registry.client() as c:
        c.push_blob(repo, config)
        manifest = image_manifest(config, missing)
        r = c.push_manifest(repo, "missing", manifest, OCI_MANIFEST)
        assert r.status_code == 400, describe(r)
        codes = error_codes(r)
        assert codes.count("MANIFEST_BLOB_UNKNOWN") == len(missing), describe(r)
        details = r.text
        for layer in missing:
            assert digest(layer) in details, f"error body does not name {digest(layer)}: {describe(r)}"
        assert c.get_manifest(repo, "missing").status_code == 404
        assert c.get_manifest(repo, digest(manifest)).status_code == 404


@pytest.mark.spec(PUSH_MANIFESTS, "a manifest PUT by a digest reference its bytes do not hash to is refused with 400 "
                                  "DIGEST_INVALID (provided digest did not match uploaded content)")
def test_manifest_put_by_wrong_digest_is_refused(registry, repo):
    config = config_blob("wrong-digest")
    with registry.client() as c:
        c.push_blob(repo, config)
        manifest = image_manifest(config, [])
        other = digest(image_manifest(config, [], annotations={"x": "y"}))
        r = c.push_manifest(repo, other, manifest, OCI_MANIFEST)
        assert r.status_code == 400, describe(r)
        assert "DIGEST_INVALID" in error_codes(r), describe(r)
        for ref in (other, digest(manifest)):
            got = c.get_manifest(repo, ref)
            assert got.status_code == 404, f"stored after a refused PUT: {describe(got)}"


@pytest.mark.spec(PULL_MANIFESTS, "Docker-Content-Digest, if present, MUST match the served content (manifests and blobs)")
def test_served_bytes_hash_to_docker_content_digest(registry, repo):
    layer = blob(300_000, "served")
    with registry.client() as c:
        manifest, mdigest = c.push_image(repo, "v1", label="served", layers=[layer])
        for ref in ("v1", mdigest):
            got = c.get_manifest(repo, ref)
            assert got.status_code == 200, describe(got)
            assert got.content == manifest
            assert got.headers.get("Docker-Content-Digest") == digest(got.content), describe(got)
        got = c.get(f"/v2/{repo}/blobs/{digest(layer)}")
        assert got.status_code == 200 and got.content == layer, describe(got)
        assert got.headers.get("Docker-Content-Digest") == digest(got.content), describe(got)


@pytest.mark.spec(PULL_BLOBS, "blobs addressed by sha512 digests are stored and served under that digest")
@pytest.mark.requires("sha512")
def test_sha512_blob(registry, repo):
    data = blob(20_000, "sha512")
    with registry.client() as c:
        d = c.push_blob(repo, data, algorithm="sha512")
        assert d.startswith("sha512:")
        got = c.get(f"/v2/{repo}/blobs/{d}")
        assert got.status_code == 200 and got.content == data, describe(got)
        served = got.headers.get("Docker-Content-Digest")  # a MUST; it MAY use another algorithm
        assert served is not None and digest_matches(served, got.content), describe(got)
        wrong = d[:-4] + ("0000" if not d.endswith("0000") else "1111")
        r = c.start_upload(repo)
        r = c.put(c.absolute(r.headers["Location"], digest=wrong), content=data, headers=OCTETS)
        assert r.status_code == 400 and "DIGEST_INVALID" in error_codes(r), describe(r)

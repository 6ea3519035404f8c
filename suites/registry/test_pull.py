"""Pulling: HEAD answers exactly like GET without a body; blobs serve byte ranges."""

from __future__ import annotations

import httpx
import pytest

from conformance.registry_client import digest

from .conftest import EXISTS, FETCH_BLOB_PART, blob, describe

#: Headers a HEAD must give exactly as its GET does.
SAME = ("content-type", "content-length", "docker-content-digest")


def _compare(get, head) -> None:
    assert head.status_code == get.status_code, f"GET {describe(get)}\nHEAD {describe(head)}"
    assert head.content == b"", f"HEAD has a body: {describe(head)}"
    for name in SAME:
        assert head.headers.get(name) == get.headers.get(name), f"{name}: GET {get.headers.get(name)!r} HEAD {head.headers.get(name)!r}"


@pytest.mark.spec(EXISTS, "HEAD of an existing blob or manifest: 200 with GET's headers and no body; 404 when missing")
@pytest.mark.parametrize("what", ["manifest-by-tag", "manifest-by-digest", "blob", "missing-manifest", "missing-blob"])
def test_head_equals_get_without_body(registry, repo, what):
    layer = blob(12_345, "head")
    with registry.client() as c:
        _, mdigest = c.push_image(repo, "v1", label="head", layers=[layer])
        path = {
            "manifest-by-tag": f"/v2/{repo}/manifests/v1",
            "manifest-by-digest": f"/v2/{repo}/manifests/{mdigest}",
            "blob": f"/v2/{repo}/blobs/{digest(layer)}",
            "missing-manifest": f"/v2/{repo}/manifests/absent",
            "missing-blob": f"/v2/{repo}/blobs/{digest(b'absent' + layer)}",
        }[what]
        accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
        get, head = c.get(path, headers=accept), c.head(path, headers=accept)
        _compare(get, head)
        assert get.status_code == (404 if what.startswith("missing") else 200), describe(get)
        if get.status_code == 200:  # both MUST carry the size and the digest
            assert get.headers.get("content-length") == str(len(get.content)), describe(get)
            assert get.headers.get("docker-content-digest") == digest(get.content), describe(get)


@pytest.mark.spec(FETCH_BLOB_PART, "GET with Range: bytes=a-b gives 206 with Content-Range bytes a-b/size and those bytes")
@pytest.mark.parametrize("first,last", [(0, 0), (10, 4095), (100_000, 199_999), (199_990, 199_999)])
def test_blob_range_get(registry, repo, first, last):
    data = blob(200_000, "range")
    with registry.client() as c:
        d = c.push_blob(repo, data)
        got = c.get(f"/v2/{repo}/blobs/{d}", headers={"Range": f"bytes={first}-{last}"})
        assert got.status_code == 206, describe(got)
        assert got.headers.get("Content-Range") == f"bytes {first}-{last}/{len(data)}", describe(got)
        assert got.content == data[first:last + 1]


@pytest.mark.spec(FETCH_BLOB_PART, "a Range wholly past the end of the blob gives 416 Requested Range Not Satisfiable, "
                                   "with Content-Range: bytes */<size> (RFC 9110 15.5.17, which the spec's Range support follows)")
def test_blob_range_out_of_bounds_gives_416(registry, repo):
    data = blob(1000, "range-416")
    with registry.client() as c:
        d = c.push_blob(repo, data)
        try:
            got = c.get(f"/v2/{repo}/blobs/{d}", headers={"Range": "bytes=1000-1999"})
        except httpx.RemoteProtocolError as exc:  # e.g. a 416 that still announces the blob's length
            raise AssertionError(f"malformed answer to an out-of-bounds Range: {exc}") from None
        assert got.status_code == 416, describe(got)
        assert got.headers.get("Content-Range") == "bytes */1000", describe(got)

"""Every way of pushing a blob: single POST, POST+PUT, streamed and chunked
PATCH, zero-length blobs, cancelling, and cross-repository mounts."""

from __future__ import annotations

import pytest

from conformance.registry_client import content_range, digest, digest_matches, error_codes

from .conftest import (CANCEL_UPLOAD, CHUNKED, MOUNT, POST_PUT, SINGLE_POST, STREAMED, UPLOAD_PROGRESS, blob,
                       describe)

OCTETS = {"Content-Type": "application/octet-stream"}


def assert_blob(client, repo: str, data: bytes, d: str | None = None) -> None:
    """The registry serves exactly ``data`` for its digest, with the right header."""
    d = d or digest(data)
    got = client.get(f"/v2/{repo}/blobs/{d}")
    assert got.status_code == 200, describe(got)
    assert got.content == data, f"served {len(got.content)} bytes, pushed {len(data)}"
    served = got.headers.get("Docker-Content-Digest")  # a MUST on blob GETs, in any algorithm
    assert served is not None and digest_matches(served, got.content), \
        f"Docker-Content-Digest {served!r} is missing or does not hash the body: {describe(got)}"


@pytest.mark.spec(SINGLE_POST, "POST ?digest= with the body: 201 + Location, or 202 + Location to continue with PUT")
def test_single_post_stores_the_blob(registry, repo):
    data = blob(70_000, "single-post")
    with registry.client() as c:
        r = c.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest(data)}, content=data, headers=OCTETS)
        assert r.status_code in (201, 202), describe(r)
        assert r.headers.get("Location"), describe(r)
        if r.status_code == 202:  # single POST unsupported: the spec's fallback is the session it opened
            done = c.put(c.absolute(r.headers["Location"], digest=digest(data)), content=data, headers=OCTETS)
            assert done.status_code == 201, describe(done)
        assert_blob(c, repo, data)


@pytest.mark.spec(POST_PUT, "POST opens a session (202 + Location), PUT ?digest= with the body gives 201 + Location")
def test_post_then_put_stores_the_blob(registry, repo):
    data = blob(100_000, "post-put")
    with registry.client() as c:
        started = c.start_upload(repo)
        assert started.status_code == 202, describe(started)
        assert started.headers.get("Location"), describe(started)
        done = c.put(c.absolute(started.headers["Location"], digest=digest(data)), content=data, headers=OCTETS)
        assert done.status_code == 201, describe(done)
        location = done.headers.get("Location")
        assert location, describe(done)
        pulled = c.get(c.absolute(location))
        assert pulled.status_code == 200 and pulled.content == data, describe(pulled)


@pytest.mark.spec(STREAMED, "PATCH without Content-Range streams the body into the session; PUT ?digest= closes it")
def test_streamed_patch_then_put(registry, repo):
    data = blob(3 * 1024 * 1024 + 17, "streamed")
    with registry.client() as c:
        started = c.start_upload(repo)
        assert started.status_code == 202, describe(started)

        def stream():  # no Content-Length: chunked transfer encoding, like docker's pushes
            for i in range(0, len(data), 256 * 1024):
                yield data[i:i + 256 * 1024]

        patched = c.patch(c.absolute(started.headers["Location"]), content=stream(), headers=OCTETS)
        assert patched.status_code == 202, describe(patched)
        assert content_range(patched.headers.get("Range")) == (0, len(data) - 1), describe(patched)
        done = c.put(c.absolute(patched.headers["Location"], digest=digest(data)))
        assert done.status_code == 201, describe(done)
        assert_blob(c, repo, data)


def _chunks(data: bytes, sizes: list[int]) -> list[tuple[int, bytes]]:
    out, at = [], 0
    for size in sizes:
        out.append((at, data[at:at + size]))
        at += size
    return out


@pytest.mark.spec(CHUNKED, "each chunk: 202 + Location, and Range 0-<last byte received> (inclusive)")
def test_chunked_upload_reports_exact_range_after_each_chunk(registry, repo):
    data = blob(1_000_003, "chunked")
    with registry.client() as c:
        r = c.start_upload(repo)
        assert r.status_code == 202, describe(r)
        location = r.headers["Location"]
        for start, chunk in _chunks(data, [65_536, 1, 300_000, 634_466]):
            end = start + len(chunk) - 1
            r = c.patch(c.absolute(location), content=chunk,
                        headers={**OCTETS, "Content-Range": f"{start}-{end}", "Content-Length": str(len(chunk))})
            assert r.status_code == 202, describe(r)
            assert r.headers.get("Location"), describe(r)
            assert content_range(r.headers.get("Range")) == (0, end), f"after chunk {start}-{end}: {describe(r)}"
            location = r.headers["Location"]
        done = c.put(c.absolute(location, digest=digest(data)))
        assert done.status_code == 201, describe(done)
        assert_blob(c, repo, data)


@pytest.mark.spec(UPLOAD_PROGRESS, "GET on an upload session: 204 No Content with Range 0-<last byte received>")
def test_get_on_an_upload_session_gives_204_and_its_progress(registry, repo):
    data = blob(50_000, "progress")
    with registry.client() as c:
        r = c.start_upload(repo)
        r = c.patch(c.absolute(r.headers["Location"]), content=data[:20_000],
                    headers={**OCTETS, "Content-Range": "0-19999", "Content-Length": "20000"})
        assert r.status_code == 202, describe(r)
        status = c.get(c.absolute(r.headers["Location"]))
        assert status.status_code == 204, describe(status)
        assert status.content == b"", describe(status)
        assert status.headers.get("Location"), describe(status)
        assert content_range(status.headers.get("Range")) == (0, 19_999), describe(status)


# (first chunk, bad second chunk's start) for 20,000 + 10,000 bytes
_BAD_CHUNKS = {
    "gap": (20_000, 20_005),  # skips 5 bytes
    "overlap": (20_000, 19_990),  # repeats 10 bytes
    "out-of-order": (None, 20_000),  # the second chunk sent first
}


@pytest.mark.spec(CHUNKED, "a chunk out of order (gap, overlap, not starting at the end) MUST get 416, with Location and "
                           "Range: 0-<last valid byte> (distribution's api.md, chunked upload); the session survives: GET "
                           "gives 204 with that Range, and the upload completes from there")
@pytest.mark.parametrize("case", list(_BAD_CHUNKS))
def test_chunk_out_of_order_gets_416(registry, repo, case):
    data = blob(30_000, "bad-chunks")
    first, bad_start = _BAD_CHUNKS[case]
    kept = first or 0
    # Range of a session holding `kept` bytes; an empty one answers 0-0 (api.md: "When starting an upload,
    # it will return an empty range, since no content has been received", shown as Range: 0-0).
    progress = (0, max(kept - 1, 0))
    with registry.client() as c:
        r = c.start_upload(repo)
        assert r.status_code == 202, describe(r)
        location = r.headers["Location"]
        if first:
            r = c.patch(c.absolute(location), content=data[:first],
                        headers={**OCTETS, "Content-Range": f"0-{first - 1}", "Content-Length": str(first)})
            assert r.status_code == 202, describe(r)
            location = r.headers["Location"]
        chunk = data[bad_start:bad_start + 10_000]
        bad = c.patch(c.absolute(location), content=chunk,
                      headers={**OCTETS, "Content-Range": f"{bad_start}-{bad_start + len(chunk) - 1}",
                               "Content-Length": str(len(chunk))})
        assert bad.status_code == 416, describe(bad)
        assert bad.headers.get("Location"), f"416 without Location: {describe(bad)}"
        assert content_range(bad.headers.get("Range")) == progress, f"416 must give Range 0-{progress[1]}: {describe(bad)}"
        status = c.get(c.absolute(location))
        assert status.status_code == 204, f"the session did not survive the 416: {describe(status)}"
        assert status.headers.get("Location"), describe(status)
        assert content_range(status.headers.get("Range")) == progress, f"expected Range 0-{progress[1]}: {describe(status)}"
        rest = c.patch(c.absolute(status.headers["Location"]), content=data[kept:],
                       headers={**OCTETS, "Content-Range": f"{kept}-{len(data) - 1}", "Content-Length": str(len(data) - kept)})
        assert rest.status_code == 202, f"resuming at byte {kept} after the 416: {describe(rest)}"
        assert content_range(rest.headers.get("Range")) == (0, len(data) - 1), describe(rest)
        done = c.put(c.absolute(rest.headers["Location"], digest=digest(data)))
        assert done.status_code == 201, describe(done)
        assert_blob(c, repo, data)


@pytest.mark.spec(POST_PUT, "a zero-length blob is pushed and served like any other (sha256 of the empty string)")
def test_zero_length_blob(registry, repo):
    empty = digest(b"")
    with registry.client() as c:
        r = c.start_upload(repo)
        done = c.put(c.absolute(r.headers["Location"], digest=empty), content=b"", headers=OCTETS)
        assert done.status_code == 201, describe(done)
        head = c.head(f"/v2/{repo}/blobs/{empty}")
        assert head.status_code == 200 and head.headers.get("Content-Length") == "0", describe(head)
        assert_blob(c, repo, b"", empty)


@pytest.mark.spec(CANCEL_UPLOAD, "DELETE on a session cancels it (204); the session is then unknown: 404 BLOB_UPLOAD_UNKNOWN")
def test_cancelled_upload_is_unknown(registry, repo):
    data = blob(10_000, "cancel")
    with registry.client() as c:
        r = c.start_upload(repo)
        r = c.patch(c.absolute(r.headers["Location"]), content=data,
                    headers={**OCTETS, "Content-Range": "0-9999", "Content-Length": "10000"})
        location = c.absolute(r.headers["Location"])
        cancelled = c.delete(location)
        assert cancelled.status_code == 204, describe(cancelled)
        for method in ("GET", "PATCH", "PUT"):
            kwargs = {"content": b"x", "headers": OCTETS} if method == "PATCH" else {}
            url = c.absolute(r.headers["Location"], digest=digest(data)) if method == "PUT" else location
            after = c.request(method, url, **kwargs)
            assert after.status_code == 404, describe(after)
            assert "BLOB_UPLOAD_UNKNOWN" in error_codes(after), describe(after)
        assert c.head(f"/v2/{repo}/blobs/{digest(data)}").status_code == 404


@pytest.mark.spec(MOUNT, "POST ?mount=<digest>&from=<repo> of a readable blob: 201 with Location into the target")
@pytest.mark.requires("cross-repo-mount")
def test_cross_repo_mount_of_a_known_blob(registry, repo):
    data = blob(40_000, "mount")
    source, target = repo + "/source", repo + "/target"
    with registry.client() as c:
        d = c.push_blob(source, data)
        r = c.post(f"/v2/{target}/blobs/uploads/", params={"mount": d, "from": source})
        assert r.status_code == 201, describe(r)
        location = r.headers.get("Location", "")
        assert f"/v2/{target}/blobs/" in c.absolute(location), describe(r)
        assert_blob(c, target, data, d)


@pytest.mark.spec(MOUNT, "a mount the registry cannot do (unknown blob) opens an upload session instead: 202 + Location")
def test_cross_repo_mount_of_an_unknown_blob_opens_a_session(registry, repo):
    data = blob(1000, "mount-unknown")
    with registry.client() as c:
        r = c.post(f"/v2/{repo}/target/blobs/uploads/", params={"mount": digest(data), "from": f"{repo}/source"})
        assert r.status_code == 202, describe(r)
        done = c.put(c.absolute(r.headers["Location"], digest=digest(data)), content=data, headers=OCTETS)
        assert done.status_code == 201, describe(done)
        assert c.head(f"/v2/{repo}/source/blobs/{digest(data)}").status_code == 404

"""The distribution API of a running ``refregistry serve``: every push path,
pulls, media types, discovery, deletes and error bodies (OCI distribution
spec v1.1; distribution's behaviour where the spec leaves room)."""
import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from refregistry_testlib import OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, Pusher, error_codes, sha256

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
EMPTY = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def same_headers(head: httpx.Response, get: httpx.Response) -> bool:
    """HEAD answers GET's headers (RFC 9110 9.3.2), Date aside."""
    strip = lambda r: sorted((k, v) for k, v in r.headers.multi_items() if k.lower() != "date")
    assert strip(head) == strip(get)
    return True


def test_base_and_api_version_header(client):
    r = client.get("/v2/")
    assert r.status_code == 200 and r.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    r = client.get("/v2/nope")
    assert r.status_code == 404 and r.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    error_codes(r)


def test_monolithic_post_and_pull(client):
    data = os.urandom(70_000)
    r = client.post("/v2/mono/blobs/uploads/", params={"digest": sha256(data)}, content=data)
    assert r.status_code == 201
    assert r.headers["Location"] == f"/v2/mono/blobs/{sha256(data)}"
    assert r.headers["Docker-Content-Digest"] == sha256(data)
    get = client.get(r.headers["Location"])
    assert get.status_code == 200 and get.content == data
    assert get.headers["Docker-Content-Digest"] == sha256(data)
    head = client.head(r.headers["Location"])
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Length"] == str(len(data))
    assert same_headers(head, get)


def test_post_then_put(client):
    data = os.urandom(1000)
    r = client.post("/v2/postput/blobs/uploads/")
    assert r.status_code == 202 and r.headers["Range"] == "0-0"
    assert r.headers["Docker-Upload-UUID"] in r.headers["Location"]
    r = client.put(r.headers["Location"], params={"digest": sha256(data)}, content=data)
    assert r.status_code == 201
    assert client.get(f"/v2/postput/blobs/{sha256(data)}").content == data


def test_streamed_patch(client):
    data = os.urandom(3 << 20)

    def stream():
        for i in range(0, len(data), 100_000):
            yield data[i:i + 100_000]

    location = client.post("/v2/stream/blobs/uploads/").headers["Location"]
    r = client.patch(location, content=stream(), headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 202 and r.headers["Range"] == f"0-{len(data) - 1}"
    r = client.put(r.headers["Location"], params={"digest": sha256(data)})
    assert r.status_code == 201
    assert hashlib.sha256(client.get(f"/v2/stream/blobs/{sha256(data)}").content).hexdigest() == sha256(data)[7:]


def test_chunked_patch_ranges_and_416s(client):
    data = os.urandom(5000)
    location = client.post("/v2/chunks/blobs/uploads/").headers["Location"]
    uuid = location.rsplit("/", 1)[1]
    ends = []
    for start, end in ((0, 999), (1000, 2499), (2500, 4999)):
        r = client.patch(location, content=data[start:end + 1], headers={"Content-Range": f"{start}-{end}"})
        assert r.status_code == 202, r.text
        assert r.headers["Range"] == f"0-{end}" and r.headers["Docker-Upload-UUID"] == uuid
        location = r.headers["Location"]
        ends.append(end)
        status = client.get(location)
        assert status.status_code == 204 and status.headers["Range"] == f"0-{end}"
        if end == 999:
            # a gap, an overlap, a repeat, and an out-of-order chunk are refused, changing nothing
            for bad in ((1500, 1999), (500, 1499), (0, 999), (2500, 2999)):
                r = client.patch(location, content=data[bad[0]:bad[1] + 1],
                                 headers={"Content-Range": f"{bad[0]}-{bad[1]}"})
                assert r.status_code == 416, bad
                assert error_codes(r) == ["RANGE_INVALID"]
            assert client.get(location).headers["Range"] == "0-999"
    r = client.put(location, params={"digest": sha256(data)})
    assert r.status_code == 201
    assert client.get(f"/v2/chunks/blobs/{sha256(data)}").content == data


def test_chunk_length_must_match_its_range(client):
    location = client.post("/v2/chunks/blobs/uploads/").headers["Location"]
    r = client.patch(location, content=b"12345", headers={"Content-Range": "0-9"})
    assert r.status_code == 416
    assert client.get(location).headers["Range"] == "0-0"
    assert client.get(location).status_code == 204


def test_final_chunk_in_put(client):
    data = os.urandom(2000)
    location = client.post("/v2/finalchunk/blobs/uploads/").headers["Location"]
    location = client.patch(location, content=data[:1200], headers={"Content-Range": "0-1199"}).headers["Location"]
    r = client.put(location, params={"digest": sha256(data)}, content=data[1200:],
                   headers={"Content-Range": "1200-1999"})
    assert r.status_code == 201
    assert client.get(f"/v2/finalchunk/blobs/{sha256(data)}").content == data


def test_zero_length_blob(client):
    r = client.post("/v2/empty/blobs/uploads/", params={"digest": EMPTY}, content=b"")
    assert r.status_code == 201
    r = client.get(f"/v2/empty/blobs/{EMPTY}")
    assert r.status_code == 200 and r.content == b"" and r.headers["Content-Length"] == "0"
    location = client.post("/v2/empty2/blobs/uploads/").headers["Location"]
    assert client.put(location, params={"digest": EMPTY}).status_code == 201


def test_sha512_blob(client):
    data = os.urandom(4096)
    digest = "sha512:" + hashlib.sha512(data).hexdigest()
    location = client.post("/v2/sha512/blobs/uploads/").headers["Location"]
    client.patch(location, content=data)
    r = client.put(location, params={"digest": digest})
    assert r.status_code == 201 and r.headers["Docker-Content-Digest"] == digest
    r = client.get(f"/v2/sha512/blobs/{digest}")
    assert r.content == data and r.headers["Docker-Content-Digest"] == digest


def test_digest_mismatch_stores_nothing(client):
    data, wrong = b"the real bytes", sha256(b"other bytes")
    r = client.post("/v2/mismatch/blobs/uploads/", params={"digest": wrong}, content=data)
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]
    assert client.head(f"/v2/mismatch/blobs/{wrong}").status_code == 404
    assert client.head(f"/v2/mismatch/blobs/{sha256(data)}").status_code == 404
    location = client.post("/v2/mismatch/blobs/uploads/").headers["Location"]
    client.patch(location, content=data)
    r = client.put(location, params={"digest": wrong})
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]
    assert client.head(f"/v2/mismatch/blobs/{wrong}").status_code == 404
    assert error_codes(client.get(location)) == ["BLOB_UPLOAD_UNKNOWN"]


@pytest.mark.parametrize("digest", ["sha256:abc", "md5:" + "0" * 32, "nonsense"])
def test_malformed_digests(client, digest):
    r = client.post("/v2/baddigest/blobs/uploads/", params={"digest": digest}, content=b"x")
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]
    r = client.get(f"/v2/baddigest/blobs/{digest}")
    assert r.status_code in (400, 404)
    error_codes(r)


def test_cancel_upload(client):
    location = client.post("/v2/cancel/blobs/uploads/").headers["Location"]
    client.patch(location, content=b"partial")
    assert client.delete(location).status_code == 204
    for method in ("GET", "PATCH", "PUT", "DELETE"):
        r = client.request(method, location, params={"digest": EMPTY} if method == "PUT" else None)
        assert r.status_code == 404 and error_codes(r) == ["BLOB_UPLOAD_UNKNOWN"], method


def test_unknown_and_bogus_upload_ids(client):
    for uuid in ("00000000-0000-0000-0000-000000000000", "a..b", "not-a-uuid"):
        r = client.get(f"/v2/up/blobs/uploads/{uuid}")
        assert r.status_code == 404 and error_codes(r) == ["BLOB_UPLOAD_UNKNOWN"]


def test_blob_ranges(client, push):
    data = os.urandom(10_000)
    digest = push.blob("ranges", data)
    url = f"/v2/ranges/blobs/{digest}"
    r = client.get(url, headers={"Range": "bytes=100-199"})
    assert r.status_code == 206 and r.content == data[100:200]
    assert r.headers["Content-Range"] == "bytes 100-199/10000"
    r = client.get(url, headers={"Range": "bytes=9990-"})
    assert r.status_code == 206 and r.content == data[9990:]
    r = client.get(url, headers={"Range": "bytes=-10"})
    assert r.status_code == 206 and r.content == data[-10:]
    r = client.get(url, headers={"Range": "bytes=10000-"})
    assert r.status_code == 416 and r.headers["Content-Range"] == "bytes */10000"
    assert error_codes(r) == ["RANGE_INVALID"]
    r = client.get(url, headers={"Range": "bytes=20-10"})
    assert r.status_code == 200 and r.content == data


def test_blob_delete(client, push):
    digest = push.blob("delblob", b"delete me")
    r = client.delete(f"/v2/delblob/blobs/{digest}")
    assert r.status_code == 202
    r = client.get(f"/v2/delblob/blobs/{digest}")
    assert r.status_code == 404 and error_codes(r) == ["BLOB_UNKNOWN"]
    assert client.head(f"/v2/delblob/blobs/{digest}").status_code == 404
    assert error_codes(client.delete(f"/v2/delblob/blobs/{digest}")) == ["BLOB_UNKNOWN"]


def test_blobs_are_per_repository(client, push):
    digest = push.blob("owner", b"private layer")
    r = client.get(f"/v2/stranger/blobs/{digest}")
    assert r.status_code == 404 and error_codes(r) == ["BLOB_UNKNOWN"]


def test_cross_repository_mount(client, push):
    digest = push.blob("mount/source", b"shared layer")
    r = client.post("/v2/mount/target/blobs/uploads/", params={"mount": digest, "from": "mount/source"})
    assert r.status_code == 201 and r.headers["Location"] == f"/v2/mount/target/blobs/{digest}"
    assert client.get(r.headers["Location"]).content == b"shared layer"
    missing = sha256(b"nowhere")
    r = client.post("/v2/mount/target/blobs/uploads/", params={"mount": missing, "from": "mount/source"})
    assert r.status_code == 202 and "/v2/mount/target/blobs/uploads/" in r.headers["Location"]
    r = client.post("/v2/mount/other/blobs/uploads/", params={"mount": digest, "from": "Not/Valid"})
    assert r.status_code == 202


def test_manifest_roundtrip_media_types(client, push):
    for media_type in (OCI_MANIFEST, DOCKER_MANIFEST):
        digest, body = push.image("types", media_type.rsplit(".", 2)[-2], [b"layer " + media_type.encode()],
                                  media_type=media_type)
        for reference in (media_type.rsplit(".", 2)[-2], digest):
            r = client.get(f"/v2/types/manifests/{reference}", headers={"Accept": media_type})
            assert r.status_code == 200 and r.headers["Content-Type"] == media_type
            assert r.headers["Docker-Content-Digest"] == digest == sha256(r.content)
            head = client.head(f"/v2/types/manifests/{reference}", headers={"Accept": media_type})
            assert head.status_code == 200 and head.content == b""
            assert head.headers["Content-Length"] == str(len(r.content))
            assert same_headers(head, r)


def test_indexes_and_lists(client, push):
    child, _ = push.image("idx", None, [b"amd64 layer"])
    size = len(client.get(f"/v2/idx/manifests/{child}").content)
    for media_type in (OCI_INDEX, DOCKER_LIST):
        index = {"schemaVersion": 2, "mediaType": media_type, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": child, "size": size,
             "platform": {"architecture": "amd64", "os": "linux"}}]}
        digest = push.manifest("idx", "multi", index, media_type)
        r = client.get("/v2/idx/manifests/multi", headers={"Accept": media_type})
        assert r.headers["Content-Type"] == media_type and r.headers["Docker-Content-Digest"] == digest
    missing = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": sha256(b"no such child"), "size": 3}]}
    r = client.put("/v2/idx/manifests/broken", content=json.dumps(missing), headers={"Content-Type": OCI_INDEX})
    assert r.status_code == 400 and error_codes(r) == ["MANIFEST_BLOB_UNKNOWN"]


def test_accept_negotiation_never_serves_unaccepted_types(client, push):
    push.image("accept", "v1", [b"accept layer"])
    r = client.get("/v2/accept/manifests/v1", headers={"Accept": DOCKER_MANIFEST})
    assert r.status_code == 404 and error_codes(r) == ["MANIFEST_UNKNOWN"]
    r = client.get("/v2/accept/manifests/v1", headers=[("Accept", DOCKER_MANIFEST), ("Accept", OCI_MANIFEST)])
    assert r.status_code == 200 and r.headers["Content-Type"] == OCI_MANIFEST
    r = client.get("/v2/accept/manifests/v1")
    assert r.status_code == 200


def test_manifest_missing_blobs_one_error_each(client, push):
    config = push.blob("missing", b"{}")
    absent = [sha256(b"absent 1"), sha256(b"absent 2")]
    body = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config, "size": 2},
            "layers": [{"mediaType": OCI_LAYER, "digest": d, "size": 8} for d in absent]}
    r = client.put("/v2/missing/manifests/v1", content=json.dumps(body), headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 400
    assert error_codes(r) == ["MANIFEST_BLOB_UNKNOWN"] * 2
    assert sorted(e["detail"] for e in r.json()["errors"]) == sorted(absent)
    assert client.get("/v2/missing/manifests/v1").status_code == 404


def test_manifest_put_by_wrong_digest(client, push):
    digest, body = push.image("wrongdigest", "v1", [b"wd layer"])
    data = json.dumps(body).encode()
    wrong = sha256(data + b" ")
    r = client.put(f"/v2/wrongdigest/manifests/{wrong}", content=data, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]
    assert client.get(f"/v2/wrongdigest/manifests/{wrong}").status_code == 404
    r = client.put(f"/v2/wrongdigest/manifests/{sha256(data)}", content=data, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 201


def test_manifest_by_sha512(client, push):
    _digest, body = push.image("m512", None, [b"m512 layer"])
    data = json.dumps(body).encode()
    digest = "sha512:" + hashlib.sha512(data).hexdigest()
    r = client.put(f"/v2/m512/manifests/{digest}", content=data, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 201 and r.headers["Docker-Content-Digest"] == digest
    assert client.get(f"/v2/m512/manifests/{digest}").content == data


@pytest.mark.parametrize("data,status,code", [
    (b"not json", 400, "MANIFEST_INVALID"), (b'{"schemaVersion": 2}', 400, "MANIFEST_INVALID"),
    (b"x" * (4 * 1024 * 1024 + 1), 413, "MANIFEST_INVALID")])
def test_invalid_manifests(client, data, status, code):
    r = client.put("/v2/invalid/manifests/v1", content=data, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == status and error_codes(r) == [code]


def test_names_and_tags_are_checked(client):
    r = client.get("/v2/Upper/tags/list")
    assert r.status_code == 400 and error_codes(r) == ["NAME_INVALID"]
    r = client.put("/v2/ok/manifests/-bad-tag", content=b"{}", headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 400 and error_codes(r) == ["TAG_INVALID"]
    r = client.get("/v2/a..b/manifests/latest")
    assert r.status_code == 400 and error_codes(r) == ["NAME_INVALID"]


def test_unknown_things(client):
    assert error_codes(client.get("/v2/nobody/manifests/latest")) == ["MANIFEST_UNKNOWN"]
    assert error_codes(client.get(f"/v2/nobody/manifests/{EMPTY}")) == ["MANIFEST_UNKNOWN"]
    assert error_codes(client.get(f"/v2/nobody/blobs/{EMPTY}")) == ["BLOB_UNKNOWN"]
    r = client.get("/v2/nobody/tags/list")
    assert r.status_code == 404 and error_codes(r) == ["NAME_UNKNOWN"]
    for method in ("POST", "OPTIONS", "PROPFIND", "PURGE"):
        r = client.request(method, "/v2/nobody/manifests/latest")
        assert r.status_code == 405 and error_codes(r) == ["UNSUPPORTED"], method


def test_tag_list_pagination(client, push):
    tags = ["b", "a", "c1", "c10", "c2", "d"]
    for tag in tags:
        push.image("paged", tag, [b"paged layer"])
    assert client.get("/v2/paged/tags/list").json() == {"name": "paged", "tags": sorted(tags)}
    r = client.get("/v2/paged/tags/list", params={"n": 2})
    assert r.json()["tags"] == ["a", "b"]
    assert r.headers["Link"] == '</v2/paged/tags/list?n=2&last=b>; rel="next"'
    r = client.get("/v2/paged/tags/list", params={"n": 2, "last": "b"})
    assert r.json()["tags"] == ["c1", "c10"]
    r = client.get("/v2/paged/tags/list", params={"n": 10, "last": "c2"})
    assert r.json()["tags"] == ["d"] and "Link" not in r.headers
    r = client.get("/v2/paged/tags/list", params={"n": 0})
    assert r.status_code == 200 and r.json()["tags"] == []
    r = client.get("/v2/paged/tags/list", params={"n": -1})
    assert r.status_code == 400 and error_codes(r) == ["PAGINATION_NUMBER_INVALID"]


def test_catalog(client, push):
    for name in ("cat/zeta", "cat/alpha", "cat/mid"):
        push.image(name, "v1", [b"cat layer"])
    names = client.get("/v2/_catalog").json()["repositories"]
    assert names == sorted(names) and {"cat/zeta", "cat/alpha", "cat/mid"} <= set(names)
    r = client.get("/v2/_catalog", params={"n": 1, "last": "cat/alpha"})
    assert r.json() == {"repositories": ["cat/mid"]}
    assert r.headers["Link"] == '</v2/_catalog?n=1&last=cat%2Fmid>; rel="next"'
    assert client.get("/v2/_catalog", params={"n": "x"}).status_code == 400


def test_referrers(client, push):
    subject, _ = push.image("refs", "v1", [b"subject layer"])
    size = len(client.get(f"/v2/refs/manifests/{subject}").content)
    r = client.get(f"/v2/refs/referrers/{subject}")
    assert r.status_code == 200 and r.headers["Content-Type"] == OCI_INDEX
    assert r.json() == {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    sigs = []
    for artifact in ("application/x.sig", "application/x.sbom"):
        config = push.blob("refs", b"{}")
        body = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact,
                "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config, "size": 2},
                "layers": [{"mediaType": OCI_LAYER, "digest": push.blob("refs", artifact.encode()), "size": 1}],
                "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": size},
                "annotations": {"kind": artifact}}
        data = json.dumps(body).encode()
        put = client.put(f"/v2/refs/manifests/{sha256(data)}", content=data, headers={"Content-Type": OCI_MANIFEST})
        assert put.status_code == 201 and put.headers["OCI-Subject"] == subject
        sigs.append((artifact, sha256(data), len(data)))
    listed = client.get(f"/v2/refs/referrers/{subject}").json()["manifests"]
    assert sorted((d["artifactType"], d["digest"], d["size"]) for d in listed) == sorted(sigs)
    assert all(d["mediaType"] == OCI_MANIFEST and d["annotations"]["kind"] == d["artifactType"] for d in listed)
    r = client.get(f"/v2/refs/referrers/{subject}", params={"artifactType": "application/x.sig"})
    assert r.headers["OCI-Filters-Applied"] == "artifactType"
    assert [d["digest"] for d in r.json()["manifests"]] == [sigs[0][1]]
    assert client.delete(f"/v2/refs/manifests/{sigs[0][1]}").status_code == 202
    assert [d["digest"] for d in client.get(f"/v2/refs/referrers/{subject}").json()["manifests"]] == [sigs[1][1]]
    assert error_codes(client.get("/v2/refs/referrers/sha256:zz")) == ["DIGEST_INVALID"]


def test_manifest_and_tag_delete(client, push):
    digest, _ = push.image("deltag", "one", [b"deltag layer"])
    push.image("deltag", "two", [b"deltag layer"])
    assert client.delete("/v2/deltag/manifests/one").status_code == 202
    assert error_codes(client.get("/v2/deltag/manifests/one")) == ["MANIFEST_UNKNOWN"]
    assert client.get("/v2/deltag/manifests/two").status_code == 200
    assert client.get(f"/v2/deltag/manifests/{digest}").status_code == 200
    assert client.delete(f"/v2/deltag/manifests/{digest}").status_code == 202
    for reference in ("two", digest):
        assert client.get(f"/v2/deltag/manifests/{reference}").status_code == 404
    assert error_codes(client.delete(f"/v2/deltag/manifests/{digest}")) == ["MANIFEST_UNKNOWN"]


def test_delete_disabled(server_factory):
    server = server_factory({"storage": {"delete": {"enabled": False}}})
    with httpx.Client(base_url=server.url) as c:
        digest, _ = Pusher(c).image("nodelete", "v1", [b"kept"])
        for url in ("/v2/nodelete/manifests/v1", f"/v2/nodelete/manifests/{digest}",
                    f"/v2/nodelete/blobs/{sha256(b'kept')}"):
            r = c.delete(url)
            assert r.status_code == 405 and error_codes(r) == ["UNSUPPORTED"]
        assert c.get("/v2/nodelete/manifests/v1").status_code == 200


def test_same_blob_committed_at_once_to_two_repositories(client):
    data = os.urandom(2 << 20)
    digest = sha256(data)

    def upload(name):
        with httpx.Client(base_url=str(client.base_url), timeout=60) as c:
            location = c.post(f"/v2/{name}/blobs/uploads/").headers["Location"]
            assert c.patch(location, content=data).status_code == 202
            return c.put(location, params={"digest": digest}).status_code

    for _ in range(3):
        with ThreadPoolExecutor(4) as pool:
            assert list(pool.map(upload, ["twin/a", "twin/b", "twin/a", "twin/b"])) == [201] * 4
    for name in ("twin/a", "twin/b"):
        assert sha256(client.get(f"/v2/{name}/blobs/{digest}").content) == digest


def test_parallel_pushes_of_shared_layers(client):
    shared = [os.urandom(300_000) for _ in range(3)]

    def push_image(i):
        with httpx.Client(base_url=str(client.base_url), timeout=60) as c:
            return Pusher(c).image(f"parallel/{i % 4}", f"t{i}", shared + [f"own {i}".encode()])[0]

    with ThreadPoolExecutor(8) as pool:
        digests = list(pool.map(push_image, range(16)))
    for i, digest in enumerate(digests):
        r = client.get(f"/v2/parallel/{i % 4}/manifests/t{i}")
        assert r.headers["Docker-Content-Digest"] == digest == sha256(r.content)
        for layer in r.json()["layers"] + [r.json()["config"]]:
            assert sha256(client.get(f"/v2/parallel/{i % 4}/blobs/{layer['digest']}").content) == layer["digest"]


def test_interrupted_chunk_leaves_the_session_as_it_was(client, plain):
    import socket
    import time

    data = os.urandom(4000)
    location = client.post("/v2/interrupted/blobs/uploads/").headers["Location"]
    location = client.patch(location, content=data[:1000], headers={"Content-Range": "0-999"}).headers["Location"]
    host, port = plain.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(f"PATCH {location} HTTP/1.1\r\nHost: {host}\r\nContent-Range: 1000-3999\r\n"
                     f"Content-Length: 3000\r\n\r\n".encode() + data[1000:2000])
        time.sleep(0.2)  # let the server take the partial body before the connection drops
    # The next chunk waits for the dropped request to be rolled back (the session's lock).
    r = client.patch(location, content=data[1000:], headers={"Content-Range": "1000-3999"})
    assert r.status_code == 202 and r.headers["Range"] == "0-3999"
    assert client.put(location, params={"digest": sha256(data)}).status_code == 201
    assert client.get(f"/v2/interrupted/blobs/{sha256(data)}").content == data

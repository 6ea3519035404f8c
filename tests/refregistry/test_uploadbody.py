"""Upload bodies (reference_runtime/registry/uploadbody.py): bodies of a MiB
or more with a Content-Length are read straight from the socket by threads
of their own and close the connection afterwards; everything else streams
through aiohttp. Both must store exactly the bytes sent, verify the digest,
and leave a session as it was when a body stops short."""
import hashlib
import os
import socket
import ssl
import time

import httpx

from conformance import pki
from reference_runtime.registry import uploadbody
from refregistry_testlib import error_codes, sha256

BIG = 3 * uploadbody.DIRECT_MIN + 17  # several buffers of the direct path, and a partial one


def raw_request(url: str, head: str, body: bytes, *, close_early: bool = False) -> tuple[int, dict, bytes]:
    """Send ``head`` + ``body`` on a new connection; the status, headers and body of the answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head.encode() + b"\r\n\r\n")
        sock.sendall(body)
        if close_early:
            time.sleep(0.3)  # let the server start on the body before the connection drops
            return 0, {}, b""
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head_text, _, rest = data.partition(b"\r\n\r\n")
    lines = head_text.decode().split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, rest


def test_large_put_is_stored_exactly_and_closes_the_connection(client, plain):
    data = os.urandom(BIG)
    location = client.post("/v2/direct/put/blobs/uploads/").headers["Location"]
    start = time.monotonic()
    status, headers, _ = raw_request(plain.url, f"PUT {location}?digest={sha256(data)} HTTP/1.1\r\n"
                                                f"Host: x\r\nContent-Length: {len(data)}", data)
    took = time.monotonic() - start
    assert status == 201, headers
    assert took < 5, f"the server closed the connection only after {took:.1f}s (aiohttp lingering on the body?)"
    assert headers.get("connection") == "close", f"a directly read body must end its connection: {headers}"
    assert client.get(f"/v2/direct/put/blobs/{sha256(data)}").content == data


def test_large_patches_then_put(client):
    data = os.urandom(2 * BIG + 5)
    cut1, cut2 = BIG, 2 * BIG
    location = client.post("/v2/direct/patch/blobs/uploads/").headers["Location"]
    r = client.patch(location, content=data[:cut1], headers={"Content-Range": f"0-{cut1 - 1}"})
    assert r.status_code == 202 and r.headers["Range"] == f"0-{cut1 - 1}"
    r = client.patch(r.headers["Location"], content=data[cut1:cut2], headers={"Content-Range": f"{cut1}-{cut2 - 1}"})
    assert r.status_code == 202 and r.headers["Range"] == f"0-{cut2 - 1}"
    r = client.put(r.headers["Location"], params={"digest": sha256(data)}, content=data[cut2:],
                   headers={"Content-Range": f"{cut2}-{len(data) - 1}"})
    assert r.status_code == 201, r.text
    assert client.get(f"/v2/direct/patch/blobs/{sha256(data)}").content == data


def test_wrong_digest_on_a_direct_body_stores_nothing(client, plain):
    data = os.urandom(BIG)
    wrong = sha256(b"something else")
    location = client.post("/v2/direct/wrong/blobs/uploads/").headers["Location"]
    status, _, body = raw_request(plain.url, f"PUT {location}?digest={wrong} HTTP/1.1\r\n"
                                             f"Host: x\r\nContent-Length: {len(data)}", data)
    assert status == 400 and b"DIGEST_INVALID" in body
    for digest in (wrong, sha256(data)):
        assert client.head(f"/v2/direct/wrong/blobs/{digest}").status_code == 404


def test_client_gone_mid_body_leaves_the_session_as_it_was(client, plain):
    data = os.urandom(BIG)
    location = client.post("/v2/direct/gone/blobs/uploads/").headers["Location"]
    r = client.patch(location, content=data[:1000], headers={"Content-Range": "0-999"})
    location = r.headers["Location"]
    rest = len(data) - 1000
    raw_request(plain.url, f"PATCH {location} HTTP/1.1\r\nHost: x\r\nContent-Range: 1000-{len(data) - 1}\r\n"
                           f"Content-Length: {rest}", data[1000:1000 + rest // 2], close_early=True)
    deadline = time.monotonic() + 20
    while True:  # the server rolls the half body back when it sees the connection end
        r = client.get(location)
        if r.headers.get("Range") == "0-999" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert r.status_code == 204 and r.headers["Range"] == "0-999", f"session after a dropped body: {r.headers}"
    r = client.patch(location, content=data[1000:], headers={"Content-Range": f"1000-{len(data) - 1}"})
    assert r.status_code == 202 and r.headers["Range"] == f"0-{len(data) - 1}"
    assert client.put(r.headers["Location"], params={"digest": sha256(data)}).status_code == 201
    assert client.get(f"/v2/direct/gone/blobs/{sha256(data)}").content == data


def test_chunked_transfer_encoding_streams_through_aiohttp(client):
    data = os.urandom(BIG)
    location = client.post("/v2/direct/te/blobs/uploads/").headers["Location"]
    pieces = (data[i:i + 300_000] for i in range(0, len(data), 300_000))  # no length: chunked encoding
    r = client.patch(location, content=pieces)
    assert r.status_code == 202 and r.headers["Range"] == f"0-{len(data) - 1}"
    assert r.headers.get("Connection") != "close", "a streamed body keeps its connection"
    assert client.put(r.headers["Location"], params={"digest": sha256(data)}).status_code == 201
    assert client.get(f"/v2/direct/te/blobs/{sha256(data)}").content == data


def test_small_bodies_keep_the_connection(plain):
    data = os.urandom(1000)
    with httpx.Client(base_url=plain.url, timeout=30) as c:
        r = c.post("/v2/direct/small/blobs/uploads/", params={"digest": sha256(data)}, content=data)
        assert r.status_code == 201 and r.headers.get("Connection") != "close"


def test_session_writer_writes_at_its_offset_hashes_and_finishes_short_writes(tmp_path, monkeypatch):
    path = tmp_path / "data"
    path.write_bytes(b"head")
    fd = os.open(path, os.O_WRONLY)
    try:
        hasher = hashlib.sha256(b"head")
        writer = uploadbody.SessionWriter(fd, 4, hasher)
        writer.write([b"abc", memoryview(b"defgh")])
        real = os.pwritev
        monkeypatch.setattr(os, "pwritev", lambda fd, chunks, offset: real(fd, [bytes(chunks[0])[:2]], offset))
        writer.write([b"ijk", b"lmn"])  # only 2 bytes taken at first: the rest must follow
        monkeypatch.undo()
    finally:
        os.close(fd)
    assert path.read_bytes() == b"headabcdefghijklmn"
    assert writer.offset == 18 and hasher.hexdigest() == hashlib.sha256(b"headabcdefghijklmn").hexdigest()


def test_wrong_length_in_content_range_is_refused_before_any_body(client):
    location = client.post("/v2/direct/range/blobs/uploads/").headers["Location"]
    r = client.patch(location, content=os.urandom(BIG), headers={"Content-Range": f"0-{BIG}"})
    assert r.status_code == 416 and error_codes(r) == ["RANGE_INVALID"], r.text
    assert client.get(location).headers["Range"] == "0-0"


def test_large_bodies_over_tls_stream_through_aiohttp(tmp_path, server_factory):
    ca = pki.make_ca()
    cert, key = pki.write_pem(pki.issue(ca, "refregistry", ips=["127.0.0.1"]), tmp_path, "server")
    server = server_factory({"http": {"tls": {"certificate": str(cert), "key": str(key)}}}, name="tls")
    (tmp_path / "ca.crt").write_bytes(ca.cert_pem)
    data = os.urandom(BIG)
    with httpx.Client(base_url=server.url, timeout=60,
                      verify=ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))) as c:
        r = c.post("/v2/direct/tls/blobs/uploads/", params={"digest": sha256(data)}, content=data)
        assert r.status_code == 201 and r.headers.get("Connection") != "close", r.headers
        assert c.get(f"/v2/direct/tls/blobs/{sha256(data)}").content == data

"""A raw-socket HTTP/1.1 client for large blob transfers, and a null registry
that shows how fast that client alone is.

Python HTTP clients (httpx) copy every byte through user space several times
and, on loopback, measure themselves as much as the server. This client sends
a body with sendfile(2) straight from a file and reads a body into one reused
buffer, so the server is what limits it. :class:`NullRegistry` answers the
same requests while doing no work (bodies discarded, blobs served from one
file by sendfile): the client's rate against it is the ceiling any server can
show, and the bench reports it beside the registries ("client alone").

Every request is ``Connection: close`` on a fresh connection: for blobs of
100 MiB and more a TCP handshake is noise, and the client needs no pooling.

>>> source = BlobSource(Path(tmp) / "blob", 64 << 20)     # doctest: +SKIP
>>> BlobClient("http://127.0.0.1:5000").push("bench/big", source.blob(1))  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

TIMEOUT = 120.0  # seconds without progress on one socket operation
RECV_BUFFER = 1 << 20
KEEP = 64 << 10  # body bytes a response keeps (for error messages); the rest is counted
_FILL = 8 << 20


class TransferError(Exception):
    """A blob request failed (what was asked, what came back)."""


@dataclass(frozen=True)
class Blob:
    """``size`` bytes: the first ``size - len(tail)`` bytes of ``file``, then ``tail``."""

    file: BinaryIO
    size: int
    tail: bytes
    digest: str


class BlobSource:
    """A file of random bytes (written in chunks, never sparse) from which blobs
    of that size are made that no registry has seen: each ends in its own 8-byte
    counter, and the hash of the shared part is computed once."""

    def __init__(self, path: Path, size: int):
        self.path, self.size = path, size
        hasher = hashlib.sha256()
        with open(path, "wb") as f:
            for start in range(0, size, _FILL):
                chunk = os.urandom(min(_FILL, size - start))
                f.write(chunk)
                if start + len(chunk) <= size - 8:
                    hasher.update(chunk)
                else:
                    hasher.update(chunk[:size - 8 - start])
        self._prefix_hash = hasher
        self.file = open(path, "rb")

    def blob(self, counter: int) -> Blob:
        tail = counter.to_bytes(8, "big")
        hasher = self._prefix_hash.copy()
        hasher.update(tail)
        return Blob(self.file, self.size, tail, "sha256:" + hasher.hexdigest())

    def close(self) -> None:
        self.file.close()


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-case names, last value wins
    body: bytes  # the first KEEP bytes at most (a blob is counted, not kept)
    body_size: int


def _send_body(sock: socket.socket, blob: Blob, start: int, end: int) -> None:
    """Bytes ``start`` to ``end`` (exclusive) of ``blob``: the file part by sendfile."""
    file_end = blob.size - len(blob.tail)
    if start < file_end:
        count = min(end, file_end) - start
        sent = sock.sendfile(blob.file, start, count)
        if sent != count:
            raise TransferError(f"sendfile sent {sent} of {count} bytes")
    if end > file_end:
        sock.sendall(blob.tail[max(start, file_end) - file_end:end - file_end])


def _read_response(sock: socket.socket, method: str) -> Response:
    buffer = bytearray(RECV_BUFFER)
    view = memoryview(buffer)
    head = bytearray()
    while b"\r\n\r\n" not in head:
        n = sock.recv_into(view)
        if n == 0:
            raise TransferError(f"connection closed before a response head ({bytes(head[:200])!r})")
        head += view[:n]
        if len(head) > 1 << 16 and b"\r\n\r\n" not in head[:1 << 16]:
            raise TransferError("response head over 64 KiB")
    head, _, rest = bytes(head).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    match = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
    if not match:
        raise TransferError(f"not an HTTP response: {lines[0]!r}")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    status = int(match.group(1))
    length = None if method == "HEAD" or status in (204, 304) else headers.get("content-length")
    if method == "HEAD" or status in (204, 304):
        return Response(status, headers, b"", 0)
    kept = bytearray(rest)
    size = len(rest)
    want = int(length) if length is not None else None  # None: until the server closes
    while want is None or size < want:
        # Past what we keep, MSG_TRUNC has the kernel discard TCP data without
        # copying it out: the client then costs almost nothing per byte.
        n = sock.recv_into(view, 0, socket.MSG_TRUNC) if len(kept) >= KEEP else sock.recv_into(view)
        if n == 0:
            if want is None:
                break
            raise TransferError(f"connection closed after {size} of {want} body bytes")
        size += n
        if len(kept) < KEEP:
            kept += view[:min(n, KEEP - len(kept))]
    return Response(status, headers, bytes(kept), size)


class BlobClient:
    """Blob pushes and pulls against one registry (plain HTTP on loopback)."""

    def __init__(self, base_url: str, timeout: float = TIMEOUT):
        parts = urlsplit(base_url)
        if parts.scheme != "http":
            raise ValueError(f"BlobClient speaks plain HTTP only, not {base_url}")
        self.host, self.port, self.timeout = parts.hostname, parts.port or 80, timeout

    def request(self, method: str, target: str, headers: dict[str, str] | None = None,
                blob: Blob | None = None, start: int = 0, end: int | None = None) -> Response:
        if target.startswith("http"):
            target = urlsplit(target)._replace(scheme="", netloc="").geturl()
        end = (blob.size if blob else 0) if end is None else end
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host}:{self.port}", "Connection: close",
                 "User-Agent: conformance-bench-blobclient"]
        if blob is not None or method in ("PUT", "POST", "PATCH"):
            lines.append(f"Content-Length: {end - start}")
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        with socket.create_connection((self.host, self.port), timeout=self.timeout) as sock:
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            if blob is not None and end > start:
                _send_body(sock, blob, start, end)
            return _read_response(sock, method)

    def _expect(self, response: Response, status: int, what: str) -> Response:
        if response.status != status:
            raise TransferError(f"{what} answered {response.status} (expected {status}): {response.body[:200]!r}")
        return response

    def start_upload(self, repo: str) -> str:
        r = self._expect(self.request("POST", f"/v2/{repo}/blobs/uploads/"), 202, "POST upload")
        return r.headers["location"]

    @staticmethod
    def _with_digest(location: str, digest: str) -> str:
        return location + ("&" if "?" in location else "?") + f"digest={digest}"

    def push(self, repo: str, blob: Blob) -> None:
        """POST, then one PUT with the whole body (a monolithic upload)."""
        location = self.start_upload(repo)
        self._expect(self.request("PUT", self._with_digest(location, blob.digest),
                                  {"Content-Type": "application/octet-stream"}, blob), 201, "PUT blob")

    def push_chunked(self, repo: str, blob: Blob, chunk: int) -> None:
        """POST, PATCHes of ``chunk`` bytes with Content-Range, then an empty PUT."""
        location = self.start_upload(repo)
        for start in range(0, blob.size, chunk):
            end = min(blob.size, start + chunk)
            r = self._expect(self.request("PATCH", location, {"Content-Type": "application/octet-stream",
                                                               "Content-Range": f"{start}-{end - 1}"},
                                          blob, start, end), 202, f"PATCH {start}-{end - 1}")
            location = r.headers["location"]
        self._expect(self.request("PUT", self._with_digest(location, blob.digest)), 201, "final PUT")

    def pull(self, repo: str, digest: str) -> int:
        """GET the blob, counting its bytes; returns the size."""
        return self._expect(self.request("GET", f"/v2/{repo}/blobs/{digest}"), 200, "GET blob").body_size


class NullRegistry:
    """Answers blob pushes and pulls at once, doing no work: request bodies are
    read and discarded (Content-Length or chunked), manifest PUTs get their
    digest back, a blob GET gets its file from the OCI ``layout`` if there is
    one, else the bytes of ``source``, by sendfile; a manifest GET gets the
    layout's image. A thread per connection, loopback only.

    It is the calibration subject of the registry bench: a client is fit to
    measure a registry when it is several times faster against this."""

    def __init__(self, source: Path | None = None, layout: Path | None = None):
        self.source, self.layout = source, layout
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self._listener.settimeout(0.2)
        self._stop = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def serve_forever(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except (socket.timeout, OSError):
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        """One request per connection (every answer says Connection: close)."""
        conn.settimeout(TIMEOUT)
        view = memoryview(bytearray(RECV_BUFFER))
        try:
            head, pending = self._read_head(conn, view, b"")
            if head is None:
                return
            method, target, headers = head
            digest = ""
            if "/manifests/" in target:  # small: kept, for the digest a registry answers with
                length = int(headers.get("content-length", "0"))
                body = bytes(pending)
                while len(body) < length:
                    n = conn.recv_into(view)
                    if n == 0:
                        return
                    body += view[:n]
                digest = "sha256:" + hashlib.sha256(body[:length]).hexdigest()
            else:
                self._discard_body(conn, view, pending, headers)
            self._answer(conn, method, target, digest)
        except (OSError, TransferError, ValueError):
            return
        finally:
            conn.close()

    @staticmethod
    def _read_head(conn, view, pending: bytes):
        data = bytearray(pending)
        while b"\r\n\r\n" not in data:
            n = conn.recv_into(view)
            if n == 0 or not view[:1].tobytes().isalpha():
                return None, b""  # closed, or not HTTP (skopeo tries TLS first): close at once
            data += view[:n]
        head, _, rest = bytes(data).partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return (method, target, headers), rest

    @staticmethod
    def _discard_body(conn, view, pending: bytes, headers: dict) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            data = bytes(pending)
            while True:
                while b"\r\n" not in data:
                    n = conn.recv_into(view)
                    if n == 0:
                        raise TransferError("closed inside a chunked body")
                    data += view[:n]
                size_line, _, data = data.partition(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                data = NullRegistry._skip(conn, view, data, size + 2)  # the chunk and its CRLF
                if size == 0:
                    return data  # trailers are not expected from blob clients
        return NullRegistry._skip(conn, view, pending, int(headers.get("content-length", "0")))

    @staticmethod
    def _skip(conn, view, pending: bytes, left: int) -> bytes:
        """Consume ``left`` bytes (``pending`` first); returns what was read beyond them."""
        if len(pending) >= left:
            return pending[left:]
        left -= len(pending)
        while left > 0:
            n = conn.recv_into(view[:min(left, len(view))])
            if n == 0:
                raise TransferError("closed inside a body")
            left -= n
        return b""

    def _answer(self, conn, method: str, target: str, body_digest: str) -> None:
        """Answer like a registry that has nothing and keeps nothing."""
        path, _, query = target.partition("?")
        headers = {"Docker-Distribution-API-Version": "registry/2.0"}
        status, body, blob = 404, b"", None
        upload = re.fullmatch(r"/v2/(.+)/blobs/uploads/(\w*)", path)
        manifest = re.fullmatch(r"/v2/(.+)/manifests/([^/]+)", path)
        if upload and method in ("POST", "PATCH", "PUT"):
            if method == "PUT":
                digest = re.search(r"digest=([^&]+)", query)
                status = 201
                headers["Docker-Content-Digest"] = digest.group(1).replace("%3A", ":") if digest else ""
                headers["Location"] = f"/v2/{upload.group(1)}/blobs/{headers['Docker-Content-Digest']}"
            else:
                status = 202
                headers["Location"] = f"/v2/{upload.group(1)}/blobs/uploads/null"
                headers["Range"] = "0-0"
        elif manifest and method == "PUT":
            status = 201
            headers["Docker-Content-Digest"] = body_digest
            headers["Location"] = f"/v2/{manifest.group(1)}/manifests/{body_digest}"
        elif path == "/v2/":
            status, body = 200, b"{}"
        elif manifest and method in ("GET", "HEAD") and self.layout:
            descriptor = json.loads((self.layout / "index.json").read_text())["manifests"][0]
            blob = self._layout_blob(descriptor["digest"])
            status = 200
            headers["Content-Type"] = descriptor["mediaType"]
            headers["Docker-Content-Digest"] = descriptor["digest"]
        elif (m := re.fullmatch(r"/v2/.+/blobs/([\w:]+)", path)) and method == "GET":
            # HEAD stays 404: a pushing client must upload
            blob = self._layout_blob(m.group(1)) or self.source
            status = 200 if blob else 404
        size = os.stat(blob).st_size if blob else len(body)
        head = [f"HTTP/1.1 {status} X", f"Content-Length: {size}", "Connection: close"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + (body if method != "HEAD" else b""))
        if blob and method == "GET":
            # Blocking writes of 1 MiB from one buffer: on loopback a copy loop outruns
            # sendfile(2) (1.5-1.7 against 1.25-1.3 GB/s here), and the calibration
            # subject must be at least as fast as any registry's way of sending.
            conn.settimeout(None)
            buffer = memoryview(bytearray(1 << 20))
            with open(blob, "rb", buffering=0) as f:
                while n := f.readinto(buffer):
                    conn.sendall(buffer[:n])

    def _layout_blob(self, digest: str) -> Path | None:
        if self.layout is None or not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
            return None
        path = self.layout / "blobs" / "sha256" / digest.split(":", 1)[1]
        return path if path.exists() else None


class NullRegistryProcess:
    """A :class:`NullRegistry` in its own process, like the registries it
    stands beside (in the bench's process it would share the client's GIL)."""

    def __init__(self, source: Path | None = None, layout: Path | None = None, wait: float = 30.0):
        argv = [sys.executable, "-m", "conformance.bench.blobclient", str(source or ""), str(layout or "")]
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        ready = threading.Timer(wait, self.process.kill)
        ready.start()
        try:
            line = self.process.stdout.readline().strip()
        finally:
            ready.cancel()
        if not line.startswith("http://"):
            self.stop()
            raise TransferError(f"the null registry did not start ({line!r})")
        self.url = line

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process.stdout.close()


if __name__ == "__main__":
    # python -m conformance.bench.blobclient SOURCE LAYOUT (either may be "")
    server = NullRegistry(*(Path(a) if a else None for a in sys.argv[1:3]))
    print(server.url, flush=True)
    server.serve_forever()

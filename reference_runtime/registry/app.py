"""The HTTP side of refregistry: an aiohttp application whose handlers are
small dispatchers from the distribution API onto :mod:`storage`.

Errors: handlers raise :class:`errcodes.ApiError`; storage raises
:class:`RegistryError` subclasses; ``error_middleware`` is the one place
that turns both into the spec's JSON error body (and never a traceback).
"""
from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from functools import partial

from aiohttp import web

from reference_runtime.errors import RegistryError
from reference_runtime.registry import errcodes as E
from reference_runtime.registry import blobsend, httpranges, manifests, pagination, storage as st, uploadbody
from reference_runtime.registry.auth import Identity, access_controller
from reference_runtime.registry.config import Config
from reference_runtime.registry.reference import (Digest, DigestError, digest_of, looks_like_digest,
                                                  parse_digest, valid_name, valid_tag)
from reference_runtime.registry.routes import Route, needed_access, route
from reference_runtime.registry.tokens import Access

log = logging.getLogger("refregistry")

API_VERSION = ("Docker-Distribution-API-Version", "registry/2.0")
MAX_SESSIONS = 10_000
API_METHODS = {"GET", "HEAD", "PUT", "POST", "PATCH", "DELETE"}


@dataclass
class UploadSession:
    """What the server remembers of a session between requests: a running
    sha256 of the bytes so far (so finishing needs no second read)."""
    size: int = 0
    hasher: "hashlib._Hash | None" = field(default_factory=hashlib.sha256)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def _json(data, status: int = 200, headers: dict | None = None, content_type: str = "application/json") -> web.Response:
    return web.Response(body=json.dumps(data).encode(), status=status, headers=headers, content_type=content_type)


def _empty(status: int, headers: dict) -> web.Response:
    return web.Response(status=status, headers=headers)


class Registry:
    def __init__(self, config: Config):
        self.config = config
        self.storage = st.Storage(config.rootdirectory)
        self.access, self.token_issuer = access_controller(config)
        self.sessions: dict[str, UploadSession] = {}
        self.media_types: dict[Digest, str] = {}

    # -- plumbing ---------------------------------------------------------
    async def blocking(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(None, partial(fn, *args))

    def application(self) -> web.Application:
        app = web.Application(middlewares=[self.error_middleware], client_max_size=1 << 30)
        app.on_response_prepare.append(self.add_api_version)
        app.on_response_prepare.append(uploadbody.close_after_response)
        if self.token_issuer is not None:
            app.router.add_get(self.config.token.realm_path, self.token_endpoint)
            app.router.add_post(self.config.token.realm_path, self.token_endpoint)
        app.router.add_route("*", "/{tail:.*}", self.dispatch)
        return app

    @staticmethod
    async def add_api_version(request, response):
        response.headers[API_VERSION[0]] = API_VERSION[1]

    @web.middleware
    async def error_middleware(self, request, handler):
        try:
            return await handler(request)
        except E.ApiError as exc:
            return web.Response(status=exc.status, body=exc.body(), content_type="application/json",
                                headers=exc.headers)
        except RegistryError as exc:
            api = self.map_storage_error(exc)
            return web.Response(status=api.status, body=api.body(), content_type="application/json")
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            descriptor = E.UNSUPPORTED
            body = E.error_body([(descriptor, exc.reason, None)])
            return web.Response(status=exc.status, body=body, content_type="application/json")
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as exc:
            detail = None
            if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
                # the storage is full: no bug to trace; say so, as distribution's UNKNOWN with the error
                detail = exc.strerror
                log.error("%s %s: storage: %s", request.method, request.path, detail)
            else:
                log.exception("internal error on %s %s", request.method, request.path)
            body = json.dumps({"errors": [{"code": "UNKNOWN", "message": "unknown error", "detail": detail}]})
            return web.Response(status=500, body=body.encode(), content_type="application/json")

    @staticmethod
    def map_storage_error(exc: RegistryError) -> E.ApiError:
        if isinstance(exc, st.UploadUnknown):
            return E.ApiError(E.BLOB_UPLOAD_UNKNOWN)
        if isinstance(exc, st.DigestMismatch):
            return E.ApiError(E.DIGEST_INVALID, detail=str(exc))
        if isinstance(exc, st.BlobUnknown):
            return E.ApiError(E.BLOB_UNKNOWN)
        if isinstance(exc, st.MissingReferences):
            return E.ApiError.many([(E.MANIFEST_BLOB_UNKNOWN, str(d)) for d in exc.blobs + exc.manifests])
        log.error("storage error: %s", exc)
        return E.ApiError(E.UNSUPPORTED, detail=str(exc), status=500)

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        r = route(request.path)
        method = request.method
        if r is None:
            await self.access.authorize(request, [])
            raise E.ApiError(E.UNSUPPORTED, message="no such endpoint", status=404)
        if r.name is not None and not valid_name(r.name):
            await self.access.authorize(request, [])
            raise E.ApiError(E.NAME_INVALID, detail={"name": r.name})
        identity = await self.access.authorize(request, needed_access(r, method))
        handler = getattr(self, f"{r.kind}_{method.lower()}", None) if method in API_METHODS else None
        if handler is None and method == "HEAD":
            handler = getattr(self, f"{r.kind}_get", None)
        if handler is None:
            raise E.ApiError(E.UNSUPPORTED, detail=f"{method} is not allowed here")
        return await handler(request, r, identity)

    def require_delete(self):
        if not self.config.delete_enabled:
            raise E.ApiError(E.UNSUPPORTED, detail="deletes are disabled (storage.delete.enabled)")

    # -- base, catalog, tags ----------------------------------------------
    async def base_get(self, request, r: Route, identity: Identity):
        return _json({})

    async def catalog_get(self, request, r, identity):
        names = await self.blocking(self.storage.repositories)
        shown, link = self.paginate(request, names, "/v2/_catalog")
        return _json({"repositories": shown}, headers=link)

    async def tags_get(self, request, r, identity):
        tags = await self.blocking(self.storage.list_tags, r.name)
        if tags is None:
            raise E.ApiError(E.NAME_UNKNOWN, detail={"name": r.name})
        shown, link = self.paginate(request, tags, f"/v2/{r.name}/tags/list")
        return _json({"name": r.name, "tags": shown}, headers=link)

    @staticmethod
    def paginate(request, items: list[str], path: str) -> tuple[list[str], dict]:
        try:
            n = pagination.parse_n(request.query.get("n"))
        except pagination.PaginationError as exc:
            raise E.ApiError(E.PAGINATION_NUMBER_INVALID, detail=str(exc)) from None
        shown, next_last = pagination.page(items, n=n, last=request.query.get("last") or None)
        headers = {}
        if next_last is not None:
            headers["Link"] = pagination.link_header(path, n=n, next_last=next_last)
        return shown, headers

    # -- manifests --------------------------------------------------------
    def manifest_reference(self, reference: str) -> tuple[Digest | None, str | None]:
        """(digest, None) or (None, tag); bad references are 400s."""
        if looks_like_digest(reference):
            try:
                return parse_digest(reference), None
            except DigestError as exc:
                raise E.ApiError(E.DIGEST_INVALID, detail=str(exc)) from None
        if not valid_tag(reference):
            raise E.ApiError(E.TAG_INVALID, detail={"tag": reference})
        return None, reference

    def media_type_of(self, digest: Digest, data: bytes) -> str:
        media_type = self.media_types.get(digest)
        if media_type is None:
            media_type = manifests.sniff_media_type(data)
            if len(self.media_types) > 8192:
                self.media_types.clear()
            self.media_types[digest] = media_type
        return media_type

    async def manifest_get(self, request, r, identity):
        digest, tag = self.manifest_reference(r.arg)
        if digest is None:
            digest = self.storage.resolve_tag(r.name, tag)
        data = self.storage.read_manifest(r.name, digest) if digest is not None else None
        if data is None:
            raise E.ApiError(E.MANIFEST_UNKNOWN, detail={"name": r.name, "reference": r.arg})
        media_type = self.media_type_of(digest, data)
        if not manifests.accepts(request.headers.getall("Accept", []), media_type):
            raise E.ApiError(E.MANIFEST_UNKNOWN, message=f"{media_type} found, but the Accept header does not allow it",
                             detail={"name": r.name, "reference": r.arg})
        headers = {"Content-Type": media_type, "Docker-Content-Digest": str(digest), "ETag": f'"{digest}"'}
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(data))
            return web.Response(headers=headers)
        return web.Response(body=data, headers=headers)

    async def read_limited(self, request, limit: int) -> bytes:
        if request.content_length is not None and request.content_length > limit:
            raise E.ApiError(E.MANIFEST_INVALID, detail=f"manifest exceeds {limit} bytes", status=413)
        data = bytearray()
        while chunk := await request.content.readany():
            data += chunk
            if len(data) > limit:
                raise E.ApiError(E.MANIFEST_INVALID, detail=f"manifest exceeds {limit} bytes", status=413)
        return bytes(data)

    async def manifest_put(self, request, r, identity):
        digest, tag = self.manifest_reference(r.arg)
        data = await self.read_limited(request, manifests.MAX_MANIFEST_BYTES)
        try:
            manifest = manifests.parse_manifest(data, request.headers.get("Content-Type"))
        except manifests.ManifestError as exc:
            raise E.ApiError(E.MANIFEST_INVALID, detail=str(exc)) from None
        if digest is None:
            digest = digest_of(data)
        elif digest_of(data, digest.algorithm) != digest:
            raise E.ApiError(E.DIGEST_INVALID, detail=f"the manifest does not hash to {digest}")
        await self.blocking(self.storage.put_manifest, r.name, data, digest, manifest, tag)
        self.media_types[digest] = manifest.media_type
        headers = {"Location": f"/v2/{r.name}/manifests/{digest}", "Docker-Content-Digest": str(digest)}
        if manifest.subject is not None:
            headers["OCI-Subject"] = str(manifest.subject)
        return _empty(201, headers)

    async def manifest_delete(self, request, r, identity):
        self.require_delete()
        digest, tag = self.manifest_reference(r.arg)
        if tag is not None:
            found = await self.blocking(self.storage.delete_tag, r.name, tag)
        else:
            found = await self.blocking(self.storage.delete_manifest, r.name, digest)
        if not found:
            raise E.ApiError(E.MANIFEST_UNKNOWN, detail={"name": r.name, "reference": r.arg})
        return _empty(202, {})

    # -- referrers --------------------------------------------------------
    async def referrers_get(self, request, r, identity):
        try:
            subject = parse_digest(r.arg)
        except DigestError as exc:
            raise E.ApiError(E.DIGEST_INVALID, detail=str(exc)) from None
        artifact_type = request.query.get("artifactType")
        descriptors = await self.blocking(self.referrer_descriptors, r.name, subject)
        headers = {}
        if artifact_type is not None:
            descriptors = [d for d in descriptors if d.get("artifactType") == artifact_type]
            headers["OCI-Filters-Applied"] = "artifactType"
        index = {"schemaVersion": 2, "mediaType": manifests.OCI_INDEX, "manifests": descriptors}
        return _json(index, headers=headers, content_type=manifests.OCI_INDEX)

    def referrer_descriptors(self, name: str, subject: Digest) -> list[dict]:
        found = []
        for digest in self.storage.referrers(name, subject):
            data = self.storage.read_manifest(name, digest)
            if data is None:
                continue
            found.append(manifests.referrer_descriptor(manifests.parse_manifest(data, None), digest, len(data)))
        return found

    # -- blobs ------------------------------------------------------------
    def blob_digest(self, text: str) -> Digest:
        try:
            return parse_digest(text)
        except DigestError as exc:
            raise E.ApiError(E.DIGEST_INVALID, detail=str(exc)) from None

    async def blob_get(self, request, r, identity):
        digest = self.blob_digest(r.arg)
        if request.method == "HEAD":
            # A pushing client HEADs to skip an upload: touch the blob so GC spares it.
            size = await self.blocking(self.storage.claim_blob, r.name, digest)
        else:
            size = self.storage.blob_size(r.name, digest)
        if size is None:
            raise E.ApiError(E.BLOB_UNKNOWN, detail={"digest": str(digest)})
        headers = {"Docker-Content-Digest": str(digest), "Content-Type": "application/octet-stream",
                   "ETag": f'"{digest}"', "Accept-Ranges": "bytes"}
        if request.method == "HEAD":
            headers["Content-Length"] = str(size)
            return web.Response(headers=headers)
        range_header = request.headers.get("Range")
        byte_range = None
        if range_header is not None:
            try:
                byte_range = httpranges.parse_blob_range(range_header, size)
            except httpranges.Unsatisfiable:
                raise E.ApiError(E.RANGE_INVALID,
                                 detail=f"range {range_header!r} is outside the blob of {size} bytes",
                                 headers={"Content-Range": f"bytes */{size}"}) from None
        # aiohttp's FileResponse (sendfile) sees only the range we validated and
        # none of the conditionals it would judge by mtime, which GC's touches change.
        new_headers = request.headers.copy()
        for name in ("Range", "If-Range", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since"):
            new_headers.popall(name, None)
        if byte_range is not None:
            new_headers["Range"] = f"bytes={byte_range[0]}-{byte_range[1]}"
        return _BlobFileResponse(self.storage.blob_path(digest), request.clone(headers=new_headers), headers=headers)

    async def blob_delete(self, request, r, identity):
        self.require_delete()
        digest = self.blob_digest(r.arg)
        if not await self.blocking(self.storage.unlink_blob, r.name, digest):
            raise E.ApiError(E.BLOB_UNKNOWN, detail={"digest": str(digest)})
        return _empty(202, {"Docker-Content-Digest": str(digest)})

    # -- uploads ----------------------------------------------------------
    def session_headers(self, name: str, uuid: str, size: int) -> dict:
        return {"Location": f"/v2/{name}/blobs/uploads/{uuid}", "Range": httpranges.upload_range_header(size),
                "Docker-Upload-UUID": uuid}

    def session(self, name: str, uuid: str) -> UploadSession:
        size = self.storage.upload_size(name, uuid)  # raises UploadUnknown
        state = self.sessions.get(uuid)
        if state is None:
            # A session begun by another process or before a restart: no running hash.
            state = self.sessions[uuid] = UploadSession(size=size, hasher=None)
        return state

    async def uploads_post(self, request, r, identity):
        mount, source = request.query.get("mount"), request.query.get("from")
        if mount is not None and source:
            digest = self.blob_digest(mount)
            if valid_name(source) and identity.may(Access("repository", source, ("pull",))) and \
                    await self.blocking(self.storage.mount_blob, source, r.name, digest):
                return _empty(201, {"Location": f"/v2/{r.name}/blobs/{digest}", "Docker-Content-Digest": str(digest)})
        digest_text = request.query.get("digest") if mount is None else None
        digest = self.blob_digest(digest_text) if digest_text is not None else None
        uuid = await self.blocking(self.storage.start_upload, r.name)
        if len(self.sessions) >= MAX_SESSIONS:
            # Abandoned sessions: forget their running hash (finishing one rehashes its file).
            for idle in [u for u, s in self.sessions.items() if not s.lock.locked()]:
                del self.sessions[idle]
        state = self.sessions[uuid] = UploadSession()
        if digest is None:
            return _empty(202, self.session_headers(r.name, uuid, 0))
        async with state.lock:
            await self.receive(request, r.name, uuid, state, expected=None)
            return await self.commit(r.name, uuid, state, digest)

    async def upload_get(self, request, r, identity):
        size = self.storage.upload_size(r.name, r.arg)
        return _empty(204, self.session_headers(r.name, r.arg, size))

    async def upload_patch(self, request, r, identity):
        state = self.session(r.name, r.arg)
        async with state.lock:
            expected = self.check_chunk(request, r.name, r.arg, state)
            await self.receive(request, r.name, r.arg, state, expected=expected)
            return _empty(202, self.session_headers(r.name, r.arg, state.size))

    async def upload_put(self, request, r, identity):
        state = self.session(r.name, r.arg)
        digest_text = request.query.get("digest")
        if digest_text is None:
            raise E.ApiError(E.DIGEST_INVALID, detail="finishing an upload needs ?digest=")
        digest = self.blob_digest(digest_text)
        async with state.lock:
            expected = self.check_chunk(request, r.name, r.arg, state)
            await self.receive(request, r.name, r.arg, state, expected=expected)
            return await self.commit(r.name, r.arg, state, digest)

    async def upload_delete(self, request, r, identity):
        self.storage.upload_size(r.name, r.arg)
        state = self.sessions.pop(r.arg, None)
        if state is not None:
            async with state.lock:
                await self.blocking(self.storage.cancel_upload, r.name, r.arg)
        else:
            await self.blocking(self.storage.cancel_upload, r.name, r.arg)
        return _empty(204, {})

    def check_chunk(self, request, name: str, uuid: str, state: UploadSession) -> int | None:
        """A chunk's ``Content-Range`` must start where the session ends (else 416)."""
        state_size = self.storage.upload_size(name, uuid)
        if state.size != state_size:
            state.size, state.hasher = state_size, None
        header = request.headers.get("Content-Range")
        if header is None:
            return None
        try:
            start, end = httpranges.parse_content_range(header)
        except httpranges.RangeError as exc:
            raise E.ApiError(E.RANGE_INVALID, detail=str(exc),
                             headers=self.session_headers(name, uuid, state.size)) from None
        if start != state.size:
            raise E.ApiError(E.RANGE_INVALID,
                             detail=f"chunk starts at {start} but the upload has {state.size} bytes",
                             headers=self.session_headers(name, uuid, state.size))
        length = end - start + 1
        if request.content_length is not None and request.content_length != length:
            raise E.ApiError(E.RANGE_INVALID,
                             detail=f"Content-Length {request.content_length} does not match Content-Range {header}",
                             headers=self.session_headers(name, uuid, state.size))
        return length

    async def receive(self, request, name: str, uuid: str, state: UploadSession, expected: int | None) -> None:
        """Append the request body to the session; all of it, or (on error) none of it."""
        path = self.storage.upload_file(name, uuid)
        start = state.size
        hasher_before = state.hasher.copy() if state.hasher is not None else None
        fd = await self.blocking(os.open, path, os.O_WRONLY)
        writer = uploadbody.SessionWriter(fd, start, state.hasher)

        def too_long() -> E.ApiError:
            return E.ApiError(E.RANGE_INVALID, detail="chunk is longer than its Content-Range",
                              headers=self.session_headers(name, uuid, start))
        try:
            sock = uploadbody.direct_socket(request)
            if sock is not None:
                received = request.content_length
                await uploadbody.receive_direct(request, sock, writer, received)
            else:
                received = await uploadbody.receive_stream(request, writer, expected, too_long)
            if expected is not None and received != expected:
                raise E.ApiError(E.RANGE_INVALID, detail="chunk is shorter than its Content-Range",
                                 headers=self.session_headers(name, uuid, start))
            state.size = start + received
        except BaseException:
            os.ftruncate(fd, start)
            state.hasher = hasher_before
            raise
        finally:
            os.close(fd)

    async def commit(self, name: str, uuid: str, state: UploadSession, digest: Digest) -> web.Response:
        try:
            await self.blocking(self.storage.commit_upload, name, uuid, digest, state.hasher)
        finally:
            self.sessions.pop(uuid, None)
        return _empty(201, {"Location": f"/v2/{name}/blobs/{digest}", "Docker-Content-Digest": str(digest)})

    # -- token endpoint ---------------------------------------------------
    async def token_endpoint(self, request):
        if request.method == "POST":
            return _json(await self.token_issuer.issue_post(request))
        return _json(await self.token_issuer.issue_get(request))


class _BlobFileResponse(web.FileResponse):
    """A FileResponse (sendfile) for a blob: it answers the sanitized request,
    keeps the digest as ETag and sends no Last-Modified, so its headers are
    the HEAD response's."""

    def __init__(self, path, sanitized_request, **kwargs):
        super().__init__(path, **kwargs)
        self._sanitized_request = sanitized_request

    async def prepare(self, request):
        return await super().prepare(self._sanitized_request)

    async def _sendfile(self, request, fobj, offset: int, count: int):
        """The body by :mod:`.blobsend` (a copy loop on a thread, faster than sendfile on
        loopback); over TLS, aiohttp's own path (the socket carries ciphertext)."""
        transport = request.transport
        if transport is None:
            raise ConnectionResetError("Connection lost")
        if transport.get_extra_info("ssl_object") is not None or transport.get_extra_info("socket") is None:
            return await super()._sendfile(request, fobj, offset, count)
        writer = await web.StreamResponse.prepare(self, request)
        send_headers = getattr(writer, "send_headers", None)
        if send_headers is not None:  # aiohttp >= 3.10 holds the headers back for the first body write
            send_headers()
        for _ in range(10000):  # the headers leave before the body: both go to one socket
            if not transport.get_write_buffer_size():
                break
            await asyncio.sleep(0.001)
        else:
            raise ConnectionResetError("the reader does not take the response headers")
        sock = transport.get_extra_info("socket")
        await asyncio.get_running_loop().run_in_executor(
            blobsend.pool(), blobsend.send_range, sock.fileno(), fobj.fileno(), offset, count)
        await web.StreamResponse.write_eof(self)
        return writer

    @property
    def etag(self):
        return super().etag

    @etag.setter
    def etag(self, value):
        pass

    @property
    def last_modified(self):
        return None

    @last_modified.setter
    def last_modified(self, value):
        pass


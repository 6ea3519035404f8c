"""The registry's error codes: registered descriptors (code, message, HTTP status).

Like distribution's ``registry/api/errcode``, every error a handler can answer
is declared here once; handlers raise :class:`ApiError` with a descriptor and
a detail, and the app's error middleware is the one place that turns it into
the spec's body ``{"errors": [{"code", "message", "detail"}]}``.

>>> error = ApiError(DIGEST_INVALID, detail="sha256:abc is not a digest")
>>> error.status, error.entries[0][0].code
(400, 'DIGEST_INVALID')
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ErrorDescriptor:
    code: str
    message: str
    status: int


REGISTERED: dict[str, ErrorDescriptor] = {}


def _register(code: str, message: str, status: int) -> ErrorDescriptor:
    descriptor = ErrorDescriptor(code, message, status)
    REGISTERED[code] = descriptor
    return descriptor


# The codes of the OCI distribution spec ("Error Codes" table) with the HTTP
# statuses distribution answers them with.
BLOB_UNKNOWN = _register("BLOB_UNKNOWN", "blob unknown to registry", 404)
BLOB_UPLOAD_INVALID = _register("BLOB_UPLOAD_INVALID", "blob upload invalid", 400)
BLOB_UPLOAD_UNKNOWN = _register("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", 404)
DIGEST_INVALID = _register("DIGEST_INVALID", "provided digest did not match uploaded content", 400)
MANIFEST_BLOB_UNKNOWN = _register("MANIFEST_BLOB_UNKNOWN", "manifest references a manifest or blob unknown to registry", 400)
MANIFEST_INVALID = _register("MANIFEST_INVALID", "manifest invalid", 400)
MANIFEST_UNKNOWN = _register("MANIFEST_UNKNOWN", "manifest unknown to registry", 404)
NAME_INVALID = _register("NAME_INVALID", "invalid repository name", 400)
NAME_UNKNOWN = _register("NAME_UNKNOWN", "repository name not known to registry", 404)
SIZE_INVALID = _register("SIZE_INVALID", "provided length did not match content length", 400)
TAG_INVALID = _register("TAG_INVALID", "manifest tag did not match URI", 400)
UNAUTHORIZED = _register("UNAUTHORIZED", "authentication required", 401)
DENIED = _register("DENIED", "requested access to the resource is denied", 403)
UNSUPPORTED = _register("UNSUPPORTED", "the operation is unsupported", 405)
TOOMANYREQUESTS = _register("TOOMANYREQUESTS", "too many requests", 429)
# distribution's own codes, used where the spec leaves the code open.
PAGINATION_NUMBER_INVALID = _register("PAGINATION_NUMBER_INVALID", "invalid number of results requested", 400)
RANGE_INVALID = _register("RANGE_INVALID", "invalid content range", 416)


class ApiError(Exception):
    """One HTTP error answer: one or more descriptors with details.

    ``status`` overrides the descriptor's status where the spec asks for a
    different one (413 for an oversized manifest, 404 for an unknown route).
    ``headers`` carries e.g. ``WWW-Authenticate`` or ``Content-Range``.
    """

    def __init__(self, descriptor: ErrorDescriptor, detail: Any = None, *, message: str | None = None,
                 status: int | None = None, headers: dict[str, str] | None = None,
                 more: list[tuple[ErrorDescriptor, Any]] | None = None):
        self.entries = [(descriptor, message or descriptor.message, detail)]
        for extra, extra_detail in more or []:
            self.entries.append((extra, extra.message, extra_detail))
        self.status = status or descriptor.status
        self.headers = headers or {}
        super().__init__(f"{descriptor.code}: {message or descriptor.message}")

    @classmethod
    def many(cls, errors: list[tuple[ErrorDescriptor, Any]], **kwargs) -> "ApiError":
        (first, detail), rest = errors[0], errors[1:]
        return cls(first, detail, more=rest, **kwargs)

    def body(self) -> bytes:
        return error_body(self.entries)


def error_body(entries: list[tuple[ErrorDescriptor, str, Any]]) -> bytes:
    """The spec's error body; ``detail`` is always present (null when unknown)."""
    return json.dumps({"errors": [
        {"code": d.code, "message": message, "detail": detail} for d, message, detail in entries
    ]}).encode()

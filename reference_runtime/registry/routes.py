"""The distribution API's URL space, pure: which endpoint a path names, and
the access (``repository:NAME:ACTIONS``) a request to it needs.

Repository names contain ``/``, so the name is everything before the last
``/manifests/``, ``/blobs/``, ``/tags/list`` or ``/referrers/``.

>>> route("/v2/library/busybox/manifests/latest")
Route(kind='manifest', name='library/busybox', arg='latest')
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from reference_runtime.registry.tokens import Access

_PATTERNS = [
    ("tags", re.compile(r"(?P<name>.+)/tags/list")),
    ("manifest", re.compile(r"(?P<name>.+)/manifests/(?P<arg>[^/]+)")),
    ("uploads", re.compile(r"(?P<name>.+)/blobs/uploads/?")),
    ("upload", re.compile(r"(?P<name>.+)/blobs/uploads/(?P<arg>[^/]+)")),
    ("blob", re.compile(r"(?P<name>.+)/blobs/(?P<arg>[^/]+)")),
    ("referrers", re.compile(r"(?P<name>.+)/referrers/(?P<arg>[^/]+)")),
]


@dataclass(frozen=True)
class Route:
    kind: str  # base, catalog, tags, manifest, uploads, upload, blob, referrers
    name: str | None = None
    arg: str | None = None


def route(path: str) -> Route | None:
    if path in ("/v2", "/v2/"):
        return Route("base")
    if not path.startswith("/v2/"):
        return None
    rest = path[4:]
    if rest == "_catalog":
        return Route("catalog")
    for kind, pattern in _PATTERNS:
        match = pattern.fullmatch(rest)
        if match:
            return Route(kind, match.group("name"), match.groupdict().get("arg"))
    return None


def needed_access(r: Route, method: str) -> list[Access]:
    """What a token must grant, as distribution's app.go asks for it."""
    if r.kind == "base":
        return []
    if r.kind == "catalog":
        return [Access("registry", "catalog", ("*",))]
    if method in ("GET", "HEAD"):
        actions: tuple[str, ...] = ("pull",)
    elif method == "DELETE" and r.kind != "upload":
        actions = ("delete",)
    else:
        actions = ("pull", "push")
    return [Access("repository", r.name, actions)]

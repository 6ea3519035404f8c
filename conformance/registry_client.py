"""Thin httpx helpers for talking to a registry: digests, manifests, auth, errors.

Pure helpers (digests, manifest documents, header parsing) have no I/O;
:class:`RegistryClient` is an ``httpx.Client`` bound to one registry that
authenticates the way docker does (Basic, or Bearer tokens fetched from the
challenge's realm) and offers the few push steps checks share.

>>> digest(b"")
'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
>>> parse_challenge('Bearer realm="http://t/token",service="reg",scope="repository:a:pull"')
('bearer', {'realm': 'http://t/token', 'service': 'reg', 'scope': 'repository:a:pull'})
>>> next_link('</v2/a/tags/list?n=2&last=b>; rel="next"')
'/v2/a/tags/list?n=2&last=b'
"""

from __future__ import annotations

import hashlib
import json
import re
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable
from urllib.parse import urlencode, urljoin

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MANIFEST_TYPES = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST)
API_VERSION = "registry/2.0"


def digest(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def digest_matches(claimed: str | None, data: bytes) -> bool:
    """Whether a ``Docker-Content-Digest`` value is the digest of ``data`` in its own algorithm. Pure.

    >>> digest_matches(digest(b"x", "sha512"), b"x"), digest_matches("sha256:00", b"x")
    (True, False)
    """
    algorithm, _, _ = (claimed or "").partition(":")
    if algorithm not in ("sha256", "sha384", "sha512"):
        return False
    return digest(data, algorithm) == claimed


def canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def descriptor(data: bytes, media_type: str, **extra) -> dict:
    return {"mediaType": media_type, "digest": digest(data), "size": len(data), **extra}


def config_blob(label: str) -> bytes:
    """A small, valid image config; ``label`` makes it (and so the image) unique."""
    return canonical({"architecture": "amd64", "os": "linux", "config": {"Labels": {"conformance": label}},
                      "rootfs": {"type": "layers", "diff_ids": []}})


def image_manifest(config: bytes, layers: Iterable[bytes], *, media_type: str = OCI_MANIFEST,
                   subject: dict | None = None, artifact_type: str | None = None,
                   config_type: str | None = None, annotations: dict | None = None) -> bytes:
    """An OCI (default) or Docker schema2 image manifest naming these blobs. Pure."""
    docker = media_type == DOCKER_MANIFEST
    doc: dict = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": descriptor(config, config_type or (DOCKER_CONFIG if docker else OCI_CONFIG)),
        "layers": [descriptor(layer, DOCKER_LAYER if docker else OCI_LAYER) for layer in layers],
    }
    if artifact_type:
        doc["artifactType"] = artifact_type
    if subject:
        doc["subject"] = subject
    if annotations:
        doc["annotations"] = annotations
    return canonical(doc)


def index_manifest(children: Iterable[tuple[bytes, str]], *, media_type: str = OCI_INDEX) -> bytes:
    """An OCI index (default) or Docker manifest list of (manifest bytes, media type) children. Pure."""
    arches = ["amd64", "arm64", "s390x", "ppc64le", "386", "riscv64"]
    manifests = [descriptor(body, kind, platform={"architecture": arches[i % len(arches)], "os": "linux"})
                 for i, (body, kind) in enumerate(children)]
    return canonical({"schemaVersion": 2, "mediaType": media_type, "manifests": manifests})


def error_codes(response: httpx.Response) -> list[str]:
    """The ``code`` of each error in a spec-shaped error body; [] if the body is not one."""
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return []
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return []
    return [e.get("code") for e in errors if isinstance(e, dict)]


def error_shape_problems(response: httpx.Response) -> list[str]:
    """What is wrong with a 4xx body per the spec's error format; [] when it conforms.

    ``{"errors": [{"code": UPPER_CASE, "message": str, "detail": any}, ...]}``; the
    spec makes ``message`` and ``detail`` optional, the brief of this suite (and
    docker's clients) expects ``code`` and ``message`` on every error.
    """
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return [f"body is not JSON: {response.content[:120]!r}"]
    if not isinstance(body, dict) or not isinstance(body.get("errors"), list) or not body["errors"]:
        return [f"no non-empty 'errors' list: {body!r:.200}"]
    problems = []
    for e in body["errors"]:
        if not isinstance(e, dict):
            problems.append(f"error is not an object: {e!r}")
            continue
        if not isinstance(e.get("code"), str) or not re.fullmatch(r"[A-Z_]+", e["code"]):
            problems.append(f"code is not UPPER_CASE: {e.get('code')!r}")
        if not isinstance(e.get("message"), str):
            problems.append(f"message missing or not a string in {e!r:.200}")
    return problems


_PARAM = re.compile(r'\s*([A-Za-z_][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``WWW-Authenticate: Scheme k="v",...`` -> (scheme in lower case, params). Pure."""
    scheme, _, rest = header.strip().partition(" ")
    params = {m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3)) for m in _PARAM.finditer(rest)}
    return scheme.lower(), params


def next_link(header: str | None) -> str | None:
    """The target of ``Link: <url>; rel="next"``, or None. Pure."""
    for part in (header or "").split(","):
        m = re.fullmatch(r'\s*<([^>]*)>\s*;\s*rel="?next"?\s*', part)
        if m:
            return m.group(1)
    return None


def content_range(header: str | None) -> tuple[int, int] | None:
    """``Range: 0-99`` (upload progress) or ``bytes 0-99/100`` -> (0, 99). Pure."""
    m = re.fullmatch(r"\s*(?:bytes[ =])?(\d+)-(\d+)(?:/(?:\d+|\*))?\s*", header or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


class BearerAuth(httpx.Auth):
    """Docker's token flow: on a Bearer challenge, get a token for its scope and retry.

    Tokens are cached by scope; a request whose scope is already cached goes
    out with that token first.
    """

    requires_response_body = True

    def __init__(self, username: str | None = None, password: str | None = None):
        self.credentials = (username, password) if username is not None else None
        self.tokens: dict[str, str] = {}
        self.last_scope: str | None = None

    def auth_flow(self, request: httpx.Request):
        guess = self.tokens.get(_scope_guess(request))
        if guess:
            request.headers["Authorization"] = f"Bearer {guess}"
        response = yield request
        if response.status_code != 401:
            return
        scheme, params = parse_challenge(response.headers.get("WWW-Authenticate", ""))
        if scheme != "bearer" or "realm" not in params:
            return
        query = {"service": params.get("service", "")}
        if params.get("scope"):
            query["scope"] = params["scope"]
        token_request = httpx.Request("GET", params["realm"], params=query)
        if self.credentials:
            token_request.headers["Authorization"] = httpx.BasicAuth(*self.credentials)._auth_header
        token_response = yield token_request
        token_response.read()
        if token_response.status_code != 200:
            return
        body = token_response.json()
        token = body.get("token") or body.get("access_token")
        self.tokens[params.get("scope", "")] = token
        self.last_scope = params.get("scope", "")
        request.headers["Authorization"] = f"Bearer {token}"
        yield request


def _scope_guess(request: httpx.Request) -> str:
    m = re.match(r"/v2/(.+?)/(?:blobs|manifests|tags|referrers)/", request.url.path)
    if not m:
        return "registry:catalog:*" if request.url.path.startswith("/v2/_catalog") else ""
    actions = "pull" if request.method in ("GET", "HEAD") else ("delete" if request.method == "DELETE" else "pull,push")
    return f"repository:{m.group(1)}:{actions}"


@dataclass(frozen=True)
class Endpoint:
    """Where a registry answers and how to reach it (one configuration of it)."""

    url: str
    username: str | None = None
    password: str | None = None
    ca: Path | None = None
    auth: str = "none"  # none | basic | token (how a client authenticates)

    def client(self, *, anonymous: bool = False, username: str | None = None, password: str | None = None,
               **kwargs) -> "RegistryClient":
        user = username if username is not None else self.username
        pw = password if password is not None else self.password
        auth: httpx.Auth | None = None
        if not anonymous and user is not None:
            auth = BearerAuth(user, pw) if self.auth == "token" else httpx.BasicAuth(user, pw or "")
        elif not anonymous and self.auth == "token":
            auth = BearerAuth()
        return RegistryClient(self, auth=auth, **kwargs)

    def ssl_context(self) -> ssl.SSLContext | bool:
        return ssl.create_default_context(cafile=str(self.ca)) if self.ca else True


class RegistryClient(httpx.Client):
    """An ``httpx.Client`` with the registry's base URL, trust and auth.

    >>> with endpoint.client() as c:                                   # doctest: +SKIP
    ...     c.get("/v2/").status_code
    200
    """

    def __init__(self, endpoint: Endpoint, **kwargs):
        kwargs.setdefault("timeout", httpx.Timeout(120.0, connect=30.0))
        kwargs.setdefault("verify", endpoint.ssl_context())
        super().__init__(base_url=endpoint.url, **kwargs)
        self.endpoint = endpoint

    def absolute(self, location: str, **params: str) -> str:
        """A ``Location`` header (absolute or relative) as a URL this client can call.

        ``params`` are added to the query the registry put there (its upload
        state must survive; httpx's ``params=`` would replace it).
        """
        url = urljoin(str(self.base_url), location)
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params)
        return url

    def start_upload(self, repo: str, **params) -> httpx.Response:
        return self.post(f"/v2/{repo}/blobs/uploads/", params=params or None, headers={"Content-Length": "0"})

    def push_blob(self, repo: str, data: bytes, algorithm: str = "sha256") -> str:
        """POST then PUT ``data``; returns its digest, raises AssertionError with the response otherwise."""
        d = digest(data, algorithm)
        started = self.start_upload(repo)
        assert started.status_code == 202, describe(started)
        done = self.put(self.absolute(started.headers["Location"], digest=d), content=data,
                        headers={"Content-Type": "application/octet-stream"})
        assert done.status_code == 201, describe(done)
        return d

    def push_manifest(self, repo: str, reference: str, body: bytes, media_type: str) -> httpx.Response:
        return self.put(f"/v2/{repo}/manifests/{reference}", content=body, headers={"Content-Type": media_type})

    def push_image(self, repo: str, reference: str, *, label: str, layers: Iterable[bytes] = (),
                   media_type: str = OCI_MANIFEST) -> tuple[bytes, str]:
        """Blobs then manifest; returns (manifest bytes, manifest digest)."""
        layers = list(layers)
        config = config_blob(label)
        for blob in [config, *layers]:
            self.push_blob(repo, blob)
        manifest = image_manifest(config, layers, media_type=media_type)
        response = self.push_manifest(repo, reference, manifest, media_type)
        assert response.status_code == 201, describe(response)
        return manifest, digest(manifest)

    def get_manifest(self, repo: str, reference: str, accept: Iterable[str] = MANIFEST_TYPES, method: str = "GET") -> httpx.Response:
        return self.request(method, f"/v2/{repo}/manifests/{reference}", headers={"Accept": ", ".join(accept)})


def describe(response: httpx.Response) -> str:
    """One response as a short text for assertion messages."""
    request = response.request
    headers = {k: v for k, v in response.headers.items() if k.lower() in (
        "content-type", "location", "range", "content-range", "docker-content-digest", "www-authenticate",
        "docker-upload-uuid", "link", "oci-subject", "content-length")}
    body = response.content[:300] if request.method != "HEAD" else b""
    return f"{request.method} {request.url} -> {response.status_code} {headers} {body!r}"

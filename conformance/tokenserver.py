"""A minimal token issuer for testing registries configured with token auth.

It implements the Docker token protocol as CNCF distribution 2.8 verifies it
(``registry/auth/token``): a JWS (``ES256`` or ``RS256``) whose header
carries ``x5c``, the signing certificate chaining to the registry's
``auth.token.rootcertbundle``; claims ``iss`` (= ``auth.token.issuer``),
``aud`` (= ``auth.token.service``), ``sub``, ``exp``/``nbf``/``iat``,
``jti`` and ``access`` (what was granted).

Grants come from an ACL: user -> [(repository glob, actions)]. A request
gets the intersection of what it asked for (``scope``) and what the ACL
allows; unknown users or wrong passwords get 401, anonymous requests a token
granting nothing.

>>> ca = pki.make_ca()
>>> issuer = TokenIssuer(ca, issuer="conformance", service="registry")
>>> token = issuer.token("alice", [Access("repository", "a/b", ("pull",))])
>>> decode_claims(token)["access"][0]["name"]
'a/b'
"""

from __future__ import annotations

import base64
import fnmatch
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from . import pki


@dataclass(frozen=True)
class Access:
    """One entry of a token's ``access`` claim, e.g. repository a/b pull,push."""

    type: str
    name: str
    actions: tuple[str, ...]

    def claim(self) -> dict:
        return {"type": self.type, "name": self.name, "actions": list(self.actions)}


def parse_scope(scope: str) -> Access | None:
    """``repository:a/b:pull,push`` -> Access; None when malformed. Pure.

    The name may itself hold a ``:`` (a registry host with a port), so the
    type is the first field and the actions the last.
    """
    kind, _, rest = scope.partition(":")
    name, _, actions = rest.rpartition(":")
    if not kind or not name or not actions:
        return None
    return Access(kind, name, tuple(a for a in actions.split(",") if a))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def decode_claims(token: str) -> dict:
    """The claims of a compact JWS, unverified (for tests and diagnostics). Pure."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@dataclass
class TokenIssuer:
    """Signs tokens with a key whose certificate ``ca`` issued.

    The registry trusts ``ca.cert_pem`` as its ``rootcertbundle``.
    """

    ca: pki.KeyPair
    issuer: str
    service: str
    algorithm: str = "ES256"
    lifetime: int = 300
    signer: pki.KeyPair = field(init=False)

    def __post_init__(self) -> None:
        if self.algorithm == "ES256":
            key = ec.generate_private_key(ec.SECP256R1())
        elif self.algorithm == "RS256":
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        else:
            raise ValueError(f"token algorithm {self.algorithm!r} is not ES256 or RS256")
        self.signer = pki.issue(self.ca, "conformance token signer", key=key)

    def _sign(self, data: bytes) -> bytes:
        key = self.signer.key
        if self.algorithm == "RS256":
            return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")  # JWS wants raw r||s, not DER

    def token(self, subject: str, access: list[Access], *, lifetime: int | None = None,
              issuer: str | None = None, audience: str | None = None, now: float | None = None) -> str:
        """A signed token; the keyword arguments make deliberately bad ones (expired, wrong issuer)."""
        now = int(time.time() if now is None else now)
        header = {"typ": "JWT", "alg": self.algorithm,
                  "x5c": [base64.b64encode(self.signer.cert_der).decode()]}
        claims = {
            "iss": issuer or self.issuer, "sub": subject, "aud": audience or self.service,
            "exp": now + (self.lifetime if lifetime is None else lifetime), "nbf": now - 5, "iat": now,
            "jti": secrets.token_hex(16), "access": [a.claim() for a in access],
        }
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        return f"{signing_input}.{b64url(self._sign(signing_input.encode()))}"


def grant(acl: list[tuple[str, tuple[str, ...]]], wanted: Access) -> Access | None:
    """What of ``wanted`` the ACL allows (repository globs; ``*`` action = all). Pure."""
    if wanted.type != "repository":
        allowed = {a for pattern, actions in acl if pattern == f"{wanted.type}:{wanted.name}" for a in actions}
    else:
        allowed = {a for pattern, actions in acl if fnmatch.fnmatchcase(wanted.name, pattern) for a in actions}
    actions = tuple(a for a in wanted.actions if a in allowed or "*" in allowed)
    return Access(wanted.type, wanted.name, actions) if actions else None


class TokenServer:
    """The token endpoint (``auth.token.realm``) on 127.0.0.1, in a thread.

    >>> server = TokenServer(issuer, users={"alice": "pw"}, acls={"alice": [("*", ("pull", "push"))]})  # doctest: +SKIP
    >>> server.start(); server.realm                                                                    # doctest: +SKIP
    'http://127.0.0.1:40123/token'
    """

    def __init__(self, issuer: TokenIssuer, users: dict[str, str], acls: dict[str, list[tuple[str, tuple[str, ...]]]]):
        self.issuer, self.users, self.acls = issuer, users, acls
        self.requests: list[dict] = []  # what was asked, for checks on the registry's challenge
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def realm(self) -> str:
        assert self._httpd, "token server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/token"

    def authenticate(self, header: str | None) -> str | None:
        """The user named by a Basic ``Authorization`` header; "" for anonymous; None if refused."""
        if not header:
            return ""
        kind, _, value = header.partition(" ")
        if kind.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return user if user in self.users and secrets.compare_digest(self.users[user], password) else None

    def respond(self, query: dict[str, list[str]], authorization: str | None) -> tuple[int, dict]:
        user = self.authenticate(authorization)
        self.requests.append({"user": user, "service": query.get("service", [""])[0], "scope": query.get("scope", [])})
        if user is None:
            return 401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]}
        if query.get("service", [""])[0] != self.issuer.service:
            return 400, {"errors": [{"code": "UNSUPPORTED", "message": "unknown service"}]}
        granted = []
        for scope in query.get("scope", []):
            for part in scope.split(" "):
                wanted = parse_scope(part)
                got = grant(self.acls.get(user, []), wanted) if wanted and user else None
                if got:
                    granted.append(got)
        token = self.issuer.token(user or "", granted)
        return 200, {"token": token, "access_token": token, "expires_in": self.issuer.lifetime,
                     "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}

    def start(self) -> "TokenServer":
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                url = urlsplit(self.path)
                if url.path != "/token":
                    status, body = 404, {"errors": [{"code": "NOT_FOUND", "message": url.path}]}
                else:
                    status, body = server.respond(parse_qs(url.query), self.headers.get("Authorization"))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:  # keep credentials and noise out of test output
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="token-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

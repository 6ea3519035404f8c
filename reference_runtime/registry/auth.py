"""Who may do what: htpasswd (Basic) and token (Bearer) access control, and
refregistry's own token endpoint.

An access controller answers ``authorize(request, needed)`` with the caller's
identity or raises the 401 (with distribution's ``WWW-Authenticate``
challenge) that the error middleware sends. Credentials are never logged:
nothing here passes a header or password to a logger or an error detail.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import bcrypt
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from reference_runtime.errors import RegistryError
from reference_runtime.registry import errcodes, tokens
from reference_runtime.registry.config import Config, TokenAuth
from reference_runtime.registry.tokens import Access, Claims

log = logging.getLogger("refregistry.auth")

BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")


@dataclass(frozen=True)
class Identity:
    user: str
    claims: Claims | None = None  # None: every action allowed (htpasswd user, or no auth)

    def may(self, access: Access) -> bool:
        if self.claims is None:
            return True
        return all(self.claims.allows(access.type, access.name, action) for action in access.actions)


ANONYMOUS = Identity("")


class Htpasswd:
    """bcrypt entries of an htpasswd file (distribution accepts only bcrypt)."""

    def __init__(self, path: Path):
        try:
            lines = path.read_text().splitlines()
        except OSError as exc:
            raise RegistryError(f"cannot read htpasswd file {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise RegistryError(f"htpasswd file {path} is not text") from None
        self.entries: dict[str, bytes] = {}
        for number, line in enumerate(lines, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            user, sep, hashed = line.partition(":")
            if not sep or not user:
                raise RegistryError(f"htpasswd file {path}, line {number}: expected user:hash")
            if not hashed.startswith(BCRYPT_PREFIXES):
                log.warning("htpasswd file %s, line %d: not a bcrypt hash, entry ignored", path, number)
                continue
            self.entries[user] = hashed.encode()
        # bcrypt is slow by design; remember (user, sha256(password)) pairs that matched.
        self._verified: set[tuple[str, bytes]] = set()

    async def check(self, user: str, password: str) -> bool:
        hashed = self.entries.get(user)
        if hashed is None:
            return False
        key = (user, hashlib.sha256(password.encode()).digest())
        if key in self._verified:
            return True
        ok = await asyncio.get_running_loop().run_in_executor(None, _checkpw, password.encode(), hashed)
        if ok:
            if len(self._verified) > 4096:
                self._verified.clear()
            self._verified.add(key)
        return ok


def _checkpw(password: bytes, hashed: bytes) -> bool:
    try:
        return bcrypt.checkpw(password, hashed)
    except ValueError:
        return False


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header[:6].lower() == "basic ":
        return None
    try:
        user, sep, password = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def bearer_token(header: str | None) -> str | None:
    if not header or not header[:7].lower() == "bearer ":
        return None
    return header[7:].strip() or None


class NoAuth:
    async def authorize(self, request, needed: list[Access]) -> Identity:
        return ANONYMOUS


class HtpasswdAccess:
    """Basic auth; every authenticated user may do everything (as distribution)."""

    def __init__(self, realm: str, htpasswd: Htpasswd):
        self.realm, self.htpasswd = realm, htpasswd

    def challenge(self) -> dict[str, str]:
        return {"WWW-Authenticate": f'Basic realm="{self.realm}"'}

    async def authorize(self, request, needed: list[Access]) -> Identity:
        credentials = basic_credentials(request.headers.get("Authorization"))
        if credentials is None:
            raise errcodes.ApiError(errcodes.UNAUTHORIZED, headers=self.challenge())
        if not await self.htpasswd.check(*credentials):
            raise errcodes.ApiError(errcodes.UNAUTHORIZED, detail="invalid username or password",
                                    headers=self.challenge())
        return Identity(credentials[0])


class TokenAccess:
    """Bearer tokens checked as distribution 2.8 does (tokens.verify)."""

    def __init__(self, config: TokenAuth, roots: list[x509.Certificate]):
        self.config, self.roots = config, roots
        self._verified: dict[str, Claims] = {}

    def challenge(self, needed: list[Access], error: str | None = None) -> dict[str, str]:
        value = f'Bearer realm="{self.config.realm}",service="{self.config.service}"'
        if needed:
            value += f',scope="{" ".join(str(a) for a in needed)}"'
        if error:
            value += f',error="{error}"'
        return {"WWW-Authenticate": value}

    def claims_of(self, token: str) -> Claims:
        now = time.time()
        claims = self._verified.get(token)
        if claims is None:
            claims = tokens.verify(token, roots=self.roots, issuer=self.config.issuer,
                                   service=self.config.service, now=now)
            if len(self._verified) > 4096:
                self._verified.clear()
            self._verified[token] = claims
        elif now > claims.expires + tokens.LEEWAY:
            raise tokens.TokenError("token is expired")
        return claims

    async def authorize(self, request, needed: list[Access]) -> Identity:
        token = bearer_token(request.headers.get("Authorization"))
        if token is None:
            raise errcodes.ApiError(errcodes.UNAUTHORIZED, headers=self.challenge(needed))
        try:
            claims = self.claims_of(token)
        except tokens.TokenError as exc:
            raise errcodes.ApiError(errcodes.UNAUTHORIZED, detail=str(exc),
                                    headers=self.challenge(needed, "invalid_token")) from None
        identity = Identity(claims.subject, claims)
        missing = [a for a in needed if not identity.may(a)]
        if missing:
            raise errcodes.ApiError(
                errcodes.UNAUTHORIZED, message="insufficient scope",
                detail=[{"Type": a.type, "Name": a.name, "Action": ",".join(a.actions)} for a in missing],
                headers=self.challenge(needed, "insufficient_scope"))
        return identity


def load_certificates(path: Path) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(path.read_bytes())
    except OSError as exc:
        raise RegistryError(f"cannot read certificates {path}: {exc.strerror}") from None
    except ValueError:
        raise RegistryError(f"{path} holds no valid PEM certificate") from None


class TokenIssuer:
    """refregistry's token endpoint: authenticates htpasswd users, signs tokens.

    Any authenticated user gets every action requested; anonymous callers get
    a token that grants nothing (what docker expects when it tries without
    credentials first).
    """

    def __init__(self, config: TokenAuth):
        self.config = config
        self.htpasswd = Htpasswd(config.htpasswd)
        try:
            self.key = serialization.load_pem_private_key(config.signingkey.read_bytes(), password=None)
        except OSError as exc:
            raise RegistryError(f"cannot read auth.token.signingkey {config.signingkey}: {exc.strerror}") from None
        except (ValueError, TypeError):
            raise RegistryError(f"auth.token.signingkey {config.signingkey} is not an unencrypted PEM private key") from None
        try:
            tokens.algorithm_for(self.key)
        except tokens.TokenError as exc:
            raise RegistryError(f"auth.token.signingkey: {exc}") from None
        self.chain = load_certificates(config.signingcert)
        if self.chain[0].public_key().public_numbers() != self.key.public_key().public_numbers():
            raise RegistryError("auth.token.signingcert is not the certificate of auth.token.signingkey")

    async def issue_get(self, request) -> dict:
        """``GET realm?service=..&scope=..`` with optional Basic credentials (docker's token flow)."""
        credentials = None
        header = request.headers.get("Authorization")
        if header is not None:
            credentials = basic_credentials(header)
            if credentials is None:
                raise self.refused()
        return await self.issue(credentials, request.query.getall("scope", []), request.query.get("service"))

    async def issue_post(self, request) -> dict:
        """``POST realm`` with an OAuth2 password grant form (containerd's first try)."""
        form = await request.post()
        if form.get("grant_type") != "password":
            raise errcodes.ApiError(errcodes.UNSUPPORTED, detail="only grant_type=password is supported", status=400)
        username, password = form.get("username"), form.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            raise self.refused()
        return await self.issue((username, password), form.getall("scope", []), form.get("service"))

    def refused(self) -> errcodes.ApiError:
        return errcodes.ApiError(errcodes.UNAUTHORIZED, detail="invalid username or password",
                                 headers={"WWW-Authenticate": f'Basic realm="{self.config.realm}"'})

    async def issue(self, credentials: tuple[str, str] | None, scopes: list[str], service: str | None) -> dict:
        if service is not None and service != self.config.service:
            raise errcodes.ApiError(errcodes.DENIED, detail=f"this endpoint issues tokens for {self.config.service!r}")
        user = ""
        if credentials is not None:
            if not await self.htpasswd.check(*credentials):
                raise self.refused()
            user = credentials[0]
        granted = []
        if user:
            for scope in " ".join(scopes).split():
                try:
                    granted.append(tokens.parse_scope(scope))
                except tokens.TokenError as exc:
                    raise errcodes.ApiError(errcodes.UNSUPPORTED, detail=str(exc), status=400) from None
        now = time.time()
        claims = tokens.issue_claims(issuer=self.config.issuer, service=self.config.service, subject=user,
                                     access=granted, now=now, expiration=self.config.expiration)
        token = tokens.sign(claims, self.key, self.chain)
        issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        return {"token": token, "access_token": token, "expires_in": self.config.expiration, "issued_at": issued,
                "scope": " ".join(str(a) for a in granted)}


def access_controller(config: Config):
    """The controller the configuration asks for, and the token issuer if any."""
    if config.htpasswd is not None:
        return HtpasswdAccess(config.htpasswd.realm, Htpasswd(config.htpasswd.path)), None
    if config.token is not None:
        roots = load_certificates(config.token.rootcertbundle)
        issuer = TokenIssuer(config.token) if config.token.serves_endpoint else None
        if issuer is not None:
            roots = roots + issuer.chain[-1:]
        return TokenAccess(config.token, roots), issuer
    return NoAuth(), None

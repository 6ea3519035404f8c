"""refregistry's configuration: the CNCF distribution registry's YAML keys
where they overlap, plus a few refregistry-only keys for the token endpoint.

Accepted keys (distribution's meaning unless marked *refregistry only*)::

    version: 0.1
    log:
      accesslog:
        disabled: false
    http:
      addr: 127.0.0.1:5000          # host:port, ":5000" listens on all addresses
      tls:
        certificate: /path/server.crt
        key: /path/server.key
    auth:                           # at most one of htpasswd / token
      htpasswd:
        realm: my-realm
        path: /path/htpasswd        # bcrypt entries only, like distribution
      token:
        realm: https://127.0.0.1:5000/auth/token
        service: refregistry
        issuer: refregistry-issuer
        rootcertbundle: /path/token-ca.pem
        # refregistry only: serve the realm's path as a token endpoint
        signingkey: /path/token.key   # PEM private key, RSA (RS256) or EC P-256 (ES256)
        signingcert: /path/token.crt  # its certificate, sent as the x5c header; also trusted
        htpasswd: /path/htpasswd      # the users the endpoint authenticates (bcrypt)
        expiration: 300               # token lifetime in seconds
    storage:
      filesystem:
        rootdirectory: /var/lib/registry
      delete:
        enabled: false

Other distribution keys (``storage.cache``, ``http.headers``, ``health``,
``notifications``...) are accepted and ignored with a warning so that one
configuration serves both registries; anything else is an error.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from reference_runtime.errors import RegistryError

# distribution keys refregistry does not implement but tolerates.
IGNORED_KEYS = {
    "log.level", "log.formatter", "log.fields", "log.hooks", "loglevel",
    "http.secret", "http.headers", "http.debug", "http.host", "http.prefix", "http.relativeurls",
    "http.draintimeout", "http.http2", "http.net", "http.tls.clientcas", "http.tls.letsencrypt",
    "http.tls.minimumtls", "http.tls.ciphersuites",
    "storage.cache", "storage.maintenance", "storage.redirect", "storage.tag",
    "storage.filesystem.maxthreads",
    "health", "notifications", "redis", "reporting", "middleware", "proxy", "validation",
    "compatibility", "catalog", "auth.token.autoredirect",
}


@dataclass(frozen=True)
class HtpasswdAuth:
    realm: str
    path: Path


@dataclass(frozen=True)
class TokenAuth:
    realm: str
    service: str
    issuer: str
    rootcertbundle: Path
    signingkey: Path | None = None
    signingcert: Path | None = None
    htpasswd: Path | None = None
    expiration: int = 300

    @property
    def serves_endpoint(self) -> bool:
        return self.signingkey is not None

    @property
    def realm_path(self) -> str:
        return urlsplit(self.realm).path or "/"


@dataclass(frozen=True)
class Config:
    host: str
    port: int
    rootdirectory: Path
    delete_enabled: bool = False
    tls_certificate: Path | None = None
    tls_key: Path | None = None
    htpasswd: HtpasswdAuth | None = None
    token: TokenAuth | None = None
    accesslog: bool = True
    warnings: tuple[str, ...] = field(default=())

    @property
    def tls(self) -> bool:
        return self.tls_certificate is not None


def load_config(path: str | Path) -> Config:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise RegistryError(f"cannot read configuration {path}: {exc.strerror}") from None
    return parse_config(text, source=str(path))


def parse_config(text: str, *, source: str = "<config>") -> Config:
    """Parse and validate a configuration; every problem is a one-line RegistryError."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise RegistryError(f"{source}: malformed YAML{where}") from None
    if not isinstance(data, dict):
        raise RegistryError(f"{source}: the configuration must be a YAML mapping")
    return _Reader(source).read(data)


class _Reader:
    def __init__(self, source: str):
        self.source = source
        self.warnings: list[str] = []

    def fail(self, message: str):
        raise RegistryError(f"{self.source}: {message}")

    def section(self, data: dict, key: str, known: set[str], prefix: str) -> dict:
        value = data.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(f"{prefix}{key} must be a mapping")
        self.check_keys(value, known, f"{prefix}{key}.")
        return value

    def check_keys(self, data: dict, known: set[str], prefix: str):
        for key in data:
            dotted = f"{prefix}{key}"
            if not isinstance(key, str):
                self.fail(f"unknown configuration key {dotted!r}")
            if key in known:
                continue
            if dotted in IGNORED_KEYS:
                self.warnings.append(f"ignoring {dotted}: not implemented by refregistry")
                continue
            self.fail(f"unknown configuration key {dotted!r}")

    def string(self, data: dict, key: str, prefix: str, *, required: bool = False) -> str | None:
        value = data.get(key)
        if value is None or value == "":
            if required:
                self.fail(f"{prefix}{key} is required")
            return None
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            self.fail(f"{prefix}{key} must be a string")
        return str(value)

    def path(self, data: dict, key: str, prefix: str, *, required: bool = False) -> Path | None:
        value = self.string(data, key, prefix, required=required)
        return Path(value) if value is not None else None

    def boolean(self, data: dict, key: str, prefix: str, default: bool) -> bool:
        value = data.get(key, default)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail(f"{prefix}{key} must be true or false")
        return value

    def read(self, data: dict) -> Config:
        self.check_keys(data, {"version", "log", "http", "auth", "storage"}, "")
        version = data.get("version")
        if version is None:
            self.fail("version is required (version: 0.1)")
        if str(version) != "0.1":
            self.fail(f"unsupported configuration version {version!r} (expected 0.1)")
        log = self.section(data, "log", {"accesslog"}, "")
        accesslog = self.section(log, "accesslog", {"disabled"}, "log.") if log else {}
        http = self.section(data, "http", {"addr", "tls"}, "")
        host, port = parse_addr(self.string(http, "addr", "http.") or ":5000", self.fail)
        tls = self.section(http, "tls", {"certificate", "key"}, "http.")
        certificate = self.path(tls, "certificate", "http.tls.")
        key = self.path(tls, "key", "http.tls.")
        if (certificate is None) != (key is None):
            self.fail("http.tls needs both certificate and key")
        htpasswd, token = self.read_auth(data)
        storage = data.get("storage")
        if not isinstance(storage, dict):
            self.fail("storage is required (storage.filesystem.rootdirectory)")
        drivers = [k for k in storage if k not in {"delete", "cache", "maintenance", "redirect", "tag"}]
        for driver in drivers:
            if driver != "filesystem":
                self.fail(f"storage driver {driver!r} is not supported (only filesystem)")
        if not drivers:
            self.fail("storage.filesystem is required")
        self.check_keys(storage, {"filesystem", "delete"}, "storage.")
        filesystem = self.section(storage, "filesystem", {"rootdirectory"}, "storage.")
        root = self.path(filesystem, "rootdirectory", "storage.filesystem.") or Path("/var/lib/registry")
        delete = self.section(storage, "delete", {"enabled"}, "storage.")
        return Config(
            host=host, port=port, rootdirectory=root,
            delete_enabled=self.boolean(delete, "enabled", "storage.delete.", False),
            tls_certificate=certificate, tls_key=key, htpasswd=htpasswd, token=token,
            accesslog=not self.boolean(accesslog, "disabled", "log.accesslog.", False),
            warnings=tuple(self.warnings),
        )

    def read_auth(self, data: dict) -> tuple[HtpasswdAuth | None, TokenAuth | None]:
        auth = data.get("auth")
        if auth is None:
            return None, None
        if not isinstance(auth, dict):
            self.fail("auth must be a mapping")
        for scheme in auth:
            if scheme == "silly":
                self.fail("auth.silly is not supported (use htpasswd or token)")
        self.check_keys(auth, {"htpasswd", "token"}, "auth.")
        if len(auth) > 1:
            self.fail("auth takes one scheme, htpasswd or token")
        htpasswd = token = None
        if "htpasswd" in auth:
            section = self.section(auth, "htpasswd", {"realm", "path"}, "auth.")
            htpasswd = HtpasswdAuth(realm=self.string(section, "realm", "auth.htpasswd.", required=True),
                                    path=self.path(section, "path", "auth.htpasswd.", required=True))
        if "token" in auth:
            p = "auth.token."
            section = self.section(auth, "token", {"realm", "service", "issuer", "rootcertbundle", "signingkey",
                                                   "signingcert", "htpasswd", "expiration"}, "auth.")
            expiration = section.get("expiration", 300)
            if not isinstance(expiration, int) or isinstance(expiration, bool) or expiration <= 0:
                self.fail("auth.token.expiration must be a positive number of seconds")
            realm = self.string(section, "realm", p, required=True)
            if urlsplit(realm).scheme not in ("http", "https"):
                self.fail("auth.token.realm must be an http(s) URL")
            token = TokenAuth(
                realm=realm,
                service=self.string(section, "service", p, required=True),
                issuer=self.string(section, "issuer", p, required=True),
                rootcertbundle=self.path(section, "rootcertbundle", p, required=True),
                signingkey=self.path(section, "signingkey", p),
                signingcert=self.path(section, "signingcert", p),
                htpasswd=self.path(section, "htpasswd", p),
                expiration=expiration,
            )
            endpoint_keys = [token.signingkey, token.signingcert, token.htpasswd]
            if any(endpoint_keys) and not all(endpoint_keys):
                self.fail("auth.token.signingkey, signingcert and htpasswd go together (the token endpoint)")
        return htpasswd, token


def parse_addr(addr: str, fail) -> tuple[str, int]:
    """distribution's ``http.addr``: ``host:port``, ``[v6]:port`` or ``:port``."""
    host, sep, port_text = addr.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        fail(f"http.addr {addr!r} is not host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            fail(f"http.addr {addr!r} has an invalid IPv6 address")
    elif ":" in host:
        fail(f"http.addr {addr!r}: write IPv6 addresses in brackets")
    return host or "0.0.0.0", int(port_text)

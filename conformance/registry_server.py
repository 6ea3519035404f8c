"""Starting a registry implementation on loopback with a configuration we write.

Both implementations read CNCF distribution's configuration keys
(``version: 0.1``, ``http.addr``, ``http.tls.*``, ``auth.htpasswd.*``,
``auth.token.*``, ``storage.filesystem.rootdirectory``,
``storage.delete.enabled``); :func:`registry_config` is the one place that
writes them. :class:`RunningRegistry` owns one process and its temp dir.

>>> cfg = registry_config("127.0.0.1:5000", Path("/tmp/r/data"), delete=True)
>>> cfg["storage"]["delete"]
{'enabled': True}
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from . import pki
from .errors import ConformanceError
from .htpasswd import write_htpasswd
from .registry_client import Endpoint
from .registry_profile import RegistryProfile
from .tokenserver import TokenIssuer, TokenServer

#: The users every auth-enabled configuration knows; bob may only use repositories under bob/ with tokens.
USERS = {"alice": "alice-secret-1", "bob": "bob-secret-2"}
TOKEN_ACLS = {
    "alice": [("*", ("pull", "push", "delete")), ("registry:catalog", ("*",))],
    "bob": [("bob/*", ("pull", "push", "delete"))],
}
TOKEN_SERVICE = "conformance-registry"
TOKEN_ISSUER = "conformance-token-issuer"


def registry_config(addr: str, root: Path, *, delete: bool = True, tls: tuple[Path, Path] | None = None,
                    htpasswd: Path | None = None, token: dict | None = None) -> dict:
    """The configuration document (distribution's keys) for one registry. Pure."""
    config: dict = {
        "version": 0.1,
        "http": {"addr": addr},
        "storage": {"filesystem": {"rootdirectory": str(root)}, "delete": {"enabled": delete}},
    }
    if tls:
        config["http"]["tls"] = {"certificate": str(tls[0]), "key": str(tls[1])}
    if htpasswd:
        config["auth"] = {"htpasswd": {"realm": "conformance-basic-realm", "path": str(htpasswd)}}
    elif token:
        config["auth"] = {"token": token}
    return config


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the harness dies, even by SIGKILL.

    A registry outliving a killed pytest would hold its port and temp dir
    forever; prctl(PR_SET_PDEATHSIG) has no Python wrapper, hence ctypes.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


PR_SET_PDEATHSIG = 1


def launch(argv: list[str], log_path: Path, *, cwd: Path | None = None, env: dict | None = None) -> subprocess.Popen:
    """Start a registry process: output appended to ``log_path``, no stdin, its own
    session (so it can be stopped as a group), and SIGTERM when the caller dies."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd,
                                env={**os.environ, **(env or {})}, start_new_session=True,
                                preexec_fn=_die_with_parent)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningRegistry:
    """One started registry: its process, config, storage and the endpoint to reach it."""

    profile: RegistryProfile
    kind: str  # plain | nodelete | basic-tls | token | ... (what the config enables)
    directory: Path
    config_path: Path
    endpoint: Endpoint
    process: subprocess.Popen
    log_path: Path
    ca: pki.KeyPair | None = None
    token_server: TokenServer | None = None
    extra: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.endpoint.url

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def garbage_collect(self, *extra: str, timeout: float = 180) -> subprocess.CompletedProcess:
        argv = self.profile.command("garbage_collect", self.config_path) + list(extra)
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=self.directory,
                              env={**os.environ, **self.profile.env})

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(15)
        if self.token_server:
            self.token_server.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def start_registry(profile: RegistryProfile, kind: str = "plain", *, wait: float = 60.0) -> RunningRegistry:
    """Start ``profile``'s registry with the configuration ``kind`` on a free loopback port.

    Kinds: ``plain`` (HTTP, delete on), ``nodelete`` (HTTP, delete off),
    ``basic-tls`` (HTTPS with a test CA, htpasswd users :data:`USERS`),
    ``token`` (HTTP, token auth from an in-process :class:`TokenServer`).
    """
    if not profile.startable:
        raise ConformanceError(f"registry {profile.name!r} has no serve command; pass --registry-impl or a profile")
    directory = Path(tempfile.mkdtemp(prefix=f"conformance-registry-{profile.name}-{kind}-"))
    try:
        return _start(profile, kind, directory, wait)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise


def _start(profile: RegistryProfile, kind: str, directory: Path, wait: float) -> RunningRegistry:
    ca = token_server = None
    tls = htpasswd = token = None
    username = password = None
    auth = "none"
    if kind == "basic-tls":
        ca = pki.make_ca("conformance registry CA")
        tls = pki.write_pem(pki.issue(ca, "registry", dns=["localhost"], ips=["127.0.0.1"]), directory, "server")
        pki.write_pem(ca, directory, "ca")
        htpasswd = write_htpasswd(directory / "htpasswd", USERS)
        username, password, auth = "alice", USERS["alice"], "basic"
    elif kind == "token":
        ca = pki.make_ca("conformance token CA")
        bundle = directory / "token-ca.crt"
        bundle.write_bytes(ca.cert_pem)
        token_server = TokenServer(TokenIssuer(ca, issuer=TOKEN_ISSUER, service=TOKEN_SERVICE), USERS, TOKEN_ACLS).start()
        token = {"realm": token_server.realm, "service": TOKEN_SERVICE, "issuer": TOKEN_ISSUER,
                 "rootcertbundle": str(bundle)}
        username, password, auth = "alice", USERS["alice"], "token"
    elif kind not in ("plain", "nodelete"):
        raise ConformanceError(f"unknown registry configuration {kind!r}")
    last_error = ""
    for _attempt in range(3):  # a free port may be taken between probe and bind
        port = free_port()
        config = registry_config(f"127.0.0.1:{port}", directory / "storage", delete=kind != "nodelete",
                                 tls=tls, htpasswd=htpasswd, token=token)
        config_path = directory / "config.yml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        log_path = directory / "registry.log"
        scheme = "https" if tls else "http"
        ca_path = directory / "ca.crt" if tls else None
        endpoint = Endpoint(f"{scheme}://127.0.0.1:{port}", username, password, ca_path, auth)
        process = launch(profile.command("serve", config_path), log_path, cwd=directory, env=profile.env)
        running = RunningRegistry(profile, kind, directory, config_path, endpoint, process, log_path, ca, token_server)
        if _wait_ready(running, wait):
            return running
        last_error = running.log_tail()
        if process.poll() is None:
            process.kill()
        process.wait(15)
    if token_server:
        token_server.stop()
    raise ConformanceError(f"{profile.name} ({kind}) did not answer /v2/ within {wait:.0f}s: "
                           f"{' '.join(profile.command('serve', directory / 'config.yml'))}\n{last_error}")


def _wait_ready(running: RunningRegistry, wait: float) -> bool:
    deadline = time.monotonic() + wait
    verify = running.endpoint.ssl_context()
    while time.monotonic() < deadline:
        if running.process.poll() is not None:
            return False
        try:
            status = httpx.get(running.url + "/v2/", verify=verify, timeout=5).status_code
            if status in (200, 401):
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    return False

"""Helpers of refregistry's tests: start a real ``refregistry serve`` process on
127.0.0.1 (port chosen by the kernel, read back from its startup line) in a
temporary directory, and a minimal distribution-API client. The process
launch, the base configuration, media types, digests and the error-body
reading are the harness's (``conformance.registry_server``,
``conformance.registry_client``); what is left here is what the harness does
not do: settings of any shape, and the port read back from the startup line.

(A uniquely named module rather than a package: ``suites/registry`` is the
package ``registry``, and both must load in one pytest run.)"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from conformance import registry_client
from conformance.registry_client import OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST  # noqa: F401 - re-exported
from conformance.registry_client import digest as sha256
from conformance.registry_server import launch, registry_config

REFREGISTRY = [sys.executable, "-m", "reference_runtime.registry.cli"]


@dataclass
class Server:
    url: str
    root: Path
    config: Path
    log: Path
    process: subprocess.Popen

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def start_server(directory: Path, settings: dict, *, wait: float = 30.0) -> Server:
    """Write a config (``settings`` merged over plain defaults) and start the server."""
    directory.mkdir(parents=True, exist_ok=True)
    root = directory / "root"
    config = registry_config("127.0.0.1:0", root, delete=True)
    for key, value in settings.items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    config_path = directory / "config.yml"
    config_path.write_text(yaml.safe_dump(config))
    log = directory / "server.log"
    log.unlink(missing_ok=True)
    process = launch([*REFREGISTRY, "serve", str(config_path)], log)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if "refregistry listening on " in line:
                url = line.split("listening on ", 1)[1].strip()
                return Server(url, root, config_path, log, process)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    stop_server(process)
    raise AssertionError(f"refregistry did not start:\n{log.read_text(errors='replace')}")


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


class Pusher:
    """A minimal distribution-API client for the tests."""

    def __init__(self, client: httpx.Client):
        self.c = client

    def blob(self, name: str, data: bytes) -> str:
        digest = sha256(data)
        r = self.c.post(f"/v2/{name}/blobs/uploads/", params={"digest": digest}, content=data)
        assert r.status_code == 201, r.text
        return digest

    def manifest(self, name: str, reference: str, body: dict | bytes, media_type: str = OCI_MANIFEST) -> str:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        r = self.c.put(f"/v2/{name}/manifests/{reference}", content=data, headers={"Content-Type": media_type})
        assert r.status_code == 201, r.text
        assert r.headers["Docker-Content-Digest"] == sha256(data) or ":" in reference
        return r.headers["Docker-Content-Digest"]

    def image(self, name: str, tag: str | None, layers: list[bytes], config: bytes | None = None,
              media_type: str = OCI_MANIFEST, **extra) -> tuple[str, dict]:
        config = config if config is not None else json.dumps({"layers": len(layers), **extra.pop("cfg", {})}).encode()
        body = {"schemaVersion": 2, "mediaType": media_type,
                "config": {"mediaType": OCI_CONFIG, "digest": self.blob(name, config), "size": len(config)},
                "layers": [{"mediaType": OCI_LAYER, "digest": self.blob(name, layer), "size": len(layer)}
                           for layer in layers], **extra}
        data = json.dumps(body).encode()
        digest = self.manifest(name, tag or sha256(data), data, media_type)
        return digest, body



def error_codes(response: httpx.Response) -> list[str]:
    """The harness's reading of an error body, stricter: refregistry always sends ``detail``."""
    assert not registry_client.error_shape_problems(response), registry_client.error_shape_problems(response)
    body = response.json()
    assert set(body) == {"errors"}, body
    for entry in body["errors"]:
        assert {"code", "message", "detail"} <= set(entry), entry
    return registry_client.error_codes(response)

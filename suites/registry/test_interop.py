"""Interop with real clients: images pushed with skopeo and docker into the
registry over TLS with htpasswd auth come back through podman and skopeo with
the same digests.

Needs skopeo, docker (with a running dockerd) and podman; each check removes
the references it created in docker and podman, its certs.d entry and its
client configuration.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conformance import testimage
from conformance.profile import profile_by_name

from .conftest import describe

DOCKER = "/usr/bin/docker"
PUSH_DOC = "https://docs.docker.com/reference/cli/docker/image/push/"
SKOPEO_DOC = "https://github.com/containers/skopeo/blob/main/docs/skopeo-copy.1.md"
PODMAN_DOC = "https://docs.podman.io/en/latest/markdown/podman-pull.1.html"
# The podman profile's environment (its containers.conf and its own store).
PODMAN_ENV = {**os.environ, **profile_by_name("podman").env}


def run(argv: list[str], *, input: str | None = None, env: dict | None = None, timeout: float = 300) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, input=input, env=env, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr[-1500:]}{done.stdout[-500:]}"
    return done.stdout


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def archives(tmp_path_factory):
    images, docker_tar, oci_tar = testimage.write_archives(tmp_path_factory.mktemp("interop-image"))
    return images, docker_tar, oci_tar


@pytest.fixture
def tls_auth_registry(registry_basic, tmp_path):
    """The TLS + htpasswd registry, with a cert dir holding only its CA (as skopeo/podman want it)."""
    if not registry_basic.url.startswith("https://") or not registry_basic.endpoint.ca:
        pytest.skip("interop needs the registry over TLS with its CA (--registry-impl, or --registry https://... --registry-ca)")
    certs = tmp_path / "certs"
    certs.mkdir()
    shutil.copy(registry_basic.endpoint.ca, certs / "ca.crt")
    host = registry_basic.url.removeprefix("https://")
    creds = f"{registry_basic.endpoint.username}:{registry_basic.endpoint.password}"
    return registry_basic, host, certs, creds


def need(*programs: str) -> None:
    for program in programs:
        if not shutil.which(program):
            pytest.skip(f"{program} is not installed")


class Podman:
    """podman with the project's containers.conf; forgets what it pulled."""

    def __init__(self) -> None:
        self.refs: list[str] = []

    def pull_digests(self, ref: str, certs: Path, creds: str) -> list[str]:
        """Pull ``ref``; the repo digests podman records for it (the image may also be known by others)."""
        run(["podman", "pull", "-q", "--cert-dir", str(certs), "--creds", creds, ref], env=PODMAN_ENV)
        self.refs.append(ref)
        return json.loads(run(["podman", "image", "inspect", "--format", "{{json .RepoDigests}}", ref], env=PODMAN_ENV))

    def cleanup(self) -> None:
        for ref in self.refs:
            subprocess.run(["podman", "rmi", ref], capture_output=True, env=PODMAN_ENV, timeout=120)


@pytest.fixture
def podman():
    need("podman")
    p = Podman()
    yield p
    p.cleanup()


def skopeo_raw(ref: str, certs: Path, creds: str) -> bytes:
    done = subprocess.run(["skopeo", "inspect", "--raw", "--cert-dir", str(certs), "--creds", creds, f"docker://{ref}"],
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-1000:]
    return done.stdout


@pytest.mark.spec(SKOPEO_DOC, "skopeo copy pushes an OCI image; skopeo and podman pull it back with the same manifest digest")
def test_skopeo_push_then_podman_and_skopeo_pull(tls_auth_registry, archives, repo, podman, tmp_path):
    need("skopeo")
    registry, host, certs, creds = tls_auth_registry
    images, _, oci_tar = archives
    ref = f"{host}/{repo}:base"
    run(["skopeo", "copy", "--preserve-digests", "--dest-cert-dir", str(certs), "--dest-creds", creds,
         f"oci-archive:{oci_tar}:base", f"docker://{ref}"])
    raw = skopeo_raw(ref, certs, creds)
    assert sha256(raw) == images["base"].manifest_digest, f"registry holds {sha256(raw)}: {raw[:300]!r}"
    with registry.client() as c:  # and the registry itself says so
        got = c.get_manifest(repo, "base")
        assert got.headers.get("Docker-Content-Digest") == images["base"].manifest_digest, describe(got)
    out = tmp_path / "pulled"
    run(["skopeo", "copy", "--preserve-digests", "--src-cert-dir", str(certs), "--src-creds", creds, f"docker://{ref}", f"oci:{out}:base"])
    index = json.loads((out / "index.json").read_text())
    assert [m["digest"] for m in index["manifests"]] == [images["base"].manifest_digest], index
    name = ref.rsplit(":", 1)[0]
    assert f"{name}@{images['base'].manifest_digest}" in podman.pull_digests(ref, certs, creds)


@pytest.fixture
def docker_client(tls_auth_registry, tmp_path):
    """docker with a throwaway --config, logged in; the registry's CA in certs.d (removed afterwards)."""
    need(DOCKER)
    if subprocess.run([DOCKER, "version"], capture_output=True, timeout=60).returncode != 0:
        pytest.skip("dockerd is not running")
    registry, host, certs, creds = tls_auth_registry
    certs_d = Path("/etc/docker/certs.d") / host
    certs_d.mkdir(parents=True, exist_ok=False)
    tagged: list[str] = []
    try:
        shutil.copy(certs / "ca.crt", certs_d / "ca.crt")
        config = tmp_path / "docker-config"
        config.mkdir()
        argv = [DOCKER, "--config", str(config)]
        user, _, password = creds.partition(":")
        run([*argv, "login", "--username", user, "--password-stdin", host], input=password)
        yield argv, tagged
    finally:
        for ref in tagged:
            subprocess.run([DOCKER, "rmi", ref], capture_output=True, timeout=120)
        shutil.rmtree(certs_d, ignore_errors=True)


@pytest.mark.spec(PUSH_DOC, "docker push uploads an image; podman and skopeo pull the digest docker reported")
def test_docker_push_then_podman_and_skopeo_pull(tls_auth_registry, docker_client, archives, repo, podman):
    registry, host, certs, creds = tls_auth_registry
    argv, tagged = docker_client
    images, docker_tar, _ = archives
    run([DOCKER, "load", "-i", str(docker_tar)])  # the shared test tags; their content is fixed
    ref = f"{host}/{repo}:base"
    run([DOCKER, "tag", images["base"].ref, ref])
    tagged.append(ref)
    pushed = run([*argv, "push", ref])
    m = re.search(r"digest: (sha256:[0-9a-f]{64})", pushed)
    assert m, f"docker push printed no digest:\n{pushed}"
    raw = skopeo_raw(ref, certs, creds)
    assert sha256(raw) == m.group(1), f"registry serves {sha256(raw)}, docker pushed {m.group(1)}"
    assert json.loads(raw)["config"]["digest"] == images["base"].id, "the image config changed on the way"
    assert f"{host}/{repo}@{m.group(1)}" in podman.pull_digests(ref, certs, creds)
    repo_digests = run([DOCKER, "image", "inspect", "--format", "{{json .RepoDigests}}", ref])
    assert f"{host}/{repo}@{m.group(1)}" in repo_digests, repo_digests

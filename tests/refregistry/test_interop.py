"""Real clients against refregistry: skopeo pushes the offline test image over
TLS with htpasswd and with token auth, and pulls it back with the same digests."""
import json
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from conformance import pki, testimage
from conformance.profile import profile_by_name
from conformance.htpasswd import write_htpasswd

from refregistry_testlib import start_server, stop_server

pytestmark = pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not installed")
USER, PASSWORD = "pusher", "interop-Secret-9"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def archives(tmp_path_factory):
    return testimage.write_archives(tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="module", params=["htpasswd", "token"])
def secured(request, tmp_path_factory):
    directory = tmp_path_factory.mktemp(f"interop-{request.param}")
    ca = pki.make_ca()
    cert, key = pki.write_pem(pki.issue(ca, "refregistry", ips=["127.0.0.1"]), directory, "server")
    certs = directory / "certs.d"
    certs.mkdir()
    (certs / "ca.crt").write_bytes(ca.cert_pem)
    htpasswd = write_htpasswd(directory / "htpasswd", {USER: PASSWORD})
    port = free_port()
    settings = {"http": {"addr": f"127.0.0.1:{port}", "tls": {"certificate": str(cert), "key": str(key)}}}
    if request.param == "htpasswd":
        settings["auth"] = {"htpasswd": {"realm": "interop", "path": str(htpasswd)}}
    else:
        signer_cert, signer_key = pki.write_pem(pki.issue(ca, "token signer"), directory, "signer")
        settings["auth"] = {"token": {"realm": f"https://127.0.0.1:{port}/auth/token", "service": "interop",
                                      "issuer": "interop-issuer", "rootcertbundle": str(certs / "ca.crt"),
                                      "signingkey": str(signer_key), "signingcert": str(signer_cert),
                                      "htpasswd": str(htpasswd)}}
    server = start_server(directory / "srv", settings)
    server.certs = certs
    yield server
    stop_server(server.process)


def skopeo(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    return result


def remote(server, ref: str) -> str:
    return f"docker://{server.url.removeprefix('https://')}/{ref}"


def test_skopeo_oci_archive_roundtrip_keeps_digests(secured, archives, tmp_path):
    images, _docker_tar, oci_tar = archives
    base = images["base"]
    target = remote(secured, "interop/busybox:base")
    skopeo("copy", "--preserve-digests", "--dest-cert-dir", str(secured.certs), "--dest-creds", f"{USER}:{PASSWORD}",
           f"oci-archive:{oci_tar}:base", target)
    raw = skopeo("inspect", "--raw", "--cert-dir", str(secured.certs), "--creds", f"{USER}:{PASSWORD}", target).stdout
    assert testimage.sha256(raw.encode()) == base.manifest_digest
    skopeo("copy", "--src-cert-dir", str(secured.certs), "--src-creds", f"{USER}:{PASSWORD}", target,
           f"dir:{tmp_path / 'pulled'}")
    pulled = json.loads((tmp_path / "pulled" / "manifest.json").read_text())
    assert pulled["config"]["digest"] == base.id
    assert testimage.sha256((tmp_path / "pulled" / "manifest.json").read_bytes()) == base.manifest_digest
    assert [layer["digest"] for layer in pulled["layers"]] == [images.diff_id]
    assert testimage.sha256((tmp_path / "pulled" / images.diff_id.split(":")[1]).read_bytes()) == images.diff_id


def test_skopeo_docker_archive_push_and_pull(secured, archives, tmp_path):
    images, docker_tar, _oci_tar = archives
    target = remote(secured, "interop/docker:stopsignal")
    skopeo("copy", "--dest-cert-dir", str(secured.certs), "--dest-creds", f"{USER}:{PASSWORD}",
           f"docker-archive:{docker_tar}:{testimage.REPOSITORY}:stopsignal", target)
    inspected = json.loads(skopeo("inspect", "--cert-dir", str(secured.certs), "--creds", f"{USER}:{PASSWORD}",
                                  target).stdout)
    assert inspected["Digest"].startswith("sha256:")
    skopeo("copy", "--src-cert-dir", str(secured.certs), "--src-creds", f"{USER}:{PASSWORD}", target,
           f"docker-archive:{tmp_path / 'back.tar'}:back:latest")
    out = subprocess.run(["tar", "-xOf", str(tmp_path / "back.tar"), "manifest.json"], capture_output=True,
                         check=True).stdout
    config_name = json.loads(out)[0]["Config"]
    assert images["stopsignal"].id.split(":")[1] in config_name


def test_skopeo_without_credentials_is_refused(secured, archives):
    result = subprocess.run(["skopeo", "inspect", "--cert-dir", str(secured.certs),
                             remote(secured, "interop/busybox:base")], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "unauthorized" in result.stderr.lower() or "authentication required" in result.stderr.lower()


DOCKER = "/usr/bin/docker"


def docker_available() -> bool:
    return Path(DOCKER).exists() and subprocess.run([DOCKER, "info"], capture_output=True,
                                                     timeout=60).returncode == 0


@pytest.fixture
def docker_trusts(secured):
    """dockerd reads /etc/docker/certs.d/HOST:PORT/ca.crt per registry; this one is ours alone."""
    if not docker_available():
        pytest.skip("dockerd is not running")
    directory = Path("/etc/docker/certs.d") / secured.url.removeprefix("https://")
    directory.mkdir(parents=True)
    try:
        shutil.copy(secured.certs / "ca.crt", directory / "ca.crt")
        yield
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.parametrize("secured", ["htpasswd"], indirect=True)
def test_docker_push_then_podman_and_skopeo_pull(secured, archives, docker_trusts, tmp_path):
    images, docker_tar, _oci_tar = archives
    base = images["base"]
    host = secured.url.removeprefix("https://")
    ref = f"{host}/interop/busybox:docker"
    env = {**os.environ, "DOCKER_CONFIG": str(tmp_path / "docker-config")}  # credentials stay in tmp_path

    def docker(*args, input=None):
        result = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=300, env=env, input=input)
        assert result.returncode == 0, result.stderr
        return result

    docker("load", "-i", str(docker_tar))
    docker("tag", base.id, ref)
    try:
        docker("login", "--username", USER, "--password-stdin", host, input=PASSWORD)
        pushed = docker("push", ref).stdout
        digest = pushed.split("digest: ", 1)[1].split()[0]
    finally:
        subprocess.run([DOCKER, "rmi", ref], capture_output=True, timeout=120, env=env)
    inspected = json.loads(skopeo("inspect", "--cert-dir", str(secured.certs), "--creds", f"{USER}:{PASSWORD}",
                                  f"docker://{ref}").stdout)
    assert inspected["Digest"] == digest
    raw_config = skopeo("inspect", "--config", "--raw", "--cert-dir", str(secured.certs), "--creds",
                        f"{USER}:{PASSWORD}", f"docker://{ref}").stdout
    assert testimage.sha256(raw_config.encode()) == base.id

    root = Path(tempfile.mkdtemp(prefix="rr-podman-"))  # podman wants a short runroot
    podman = ["podman", "--root", str(root / "root"), "--runroot", str(root / "run"), "--storage-driver", "vfs"]
    podman_env = {**os.environ, **profile_by_name("podman").env}
    try:
        result = subprocess.run([*podman, "pull", "--cert-dir", str(secured.certs), "--creds", f"{USER}:{PASSWORD}",
                                 ref], capture_output=True, text=True, timeout=300, env=podman_env)
        assert result.returncode == 0, result.stderr
        result = subprocess.run([*podman, "image", "inspect", ref], capture_output=True, text=True, timeout=120,
                                env=podman_env)
        assert result.returncode == 0, result.stderr
        image = json.loads(result.stdout)[0]
        assert "sha256:" + image["Id"] == base.id and image["Digest"] == digest
    finally:
        subprocess.run([*podman, "rmi", "--all", "--force"], capture_output=True, timeout=120, env=podman_env)
        shutil.rmtree(root, ignore_errors=True)

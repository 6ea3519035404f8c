"""``docker cp`` against a hostile container: the engine copies as root on the
host, so nothing of the container may run in its process (CVE-2019-14271: a
planted name-service module loaded by the copy helper) and no link of the
container may send a copy to the host (CVE-2018-15664: symlinks resolved
outside the container's root). Both directions, running and stopped."""

from __future__ import annotations

import pytest

from .conftest import CP, CVE_2018_15664, CVE_2019_14271, PROBES, nss_module

LIBDIRS = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu",
           "/usr/lib/aarch64-linux-gnu", "/lib", "/usr/lib", "/lib64")


def _wait_ready(engine, name: str) -> None:
    engine.wait_for(lambda: engine.cli("exec", name, "test", "-e", "/ready").ok, timeout=30,
                    what=f"{name} to finish its setup")


@pytest.mark.spec(CVE_2019_14271, "docker cp must not load libraries of the container (a libnss module named by "
                  "the container's /etc/nsswitch.conf) into the host process that copies")
@pytest.mark.spec(CP, "docker cp copies files between a container and the local filesystem; ownership is numeric "
                  "(root in the container, the caller on the host, or the source's with -a)")
def test_cp_never_loads_the_containers_name_service(engine, image, tmp_path):
    probes = tmp_path / "probes"
    probes.mkdir()
    host_marker = tmp_path / "host-marker"
    nss_module(probes, host_marker)
    plant = " ; ".join(f"mkdir -p {d} && cp {PROBES}/libnss_cft.so.2 {d}/" for d in LIBDIRS)
    setup = (f"{plant} ; printf 'passwd: cft\\ngroup: cft\\n' > /etc/nsswitch.conf ; mkdir -p /srv/data ; "
             "echo data > /srv/data/f ; chown -R 4242:4242 /srv/data ; touch /ready ; exec sleep 300")
    name = engine.new_name()
    engine.cli("run", "-d", "--name", name, "--label", engine.label, "-v", f"{probes}:{PROBES}:ro", image,
               "sh", "-c", setup, check=True)
    _wait_ready(engine, name)
    source = tmp_path / "in.txt"
    source.write_text("from the host\n")
    results = []
    for phase in ("running", "stopped"):
        if phase == "stopped":
            engine.cli("stop", "-t", "1", name, check=True)
        for i, args in enumerate(([f"{name}:/srv/data", str(tmp_path / f"out-{phase}")],
                                  ["-a", f"{name}:/srv/data", str(tmp_path / f"out-a-{phase}")],
                                  [str(source), f"{name}:/srv/in-{phase}.txt"],
                                  ["-a", str(source), f"{name}:/srv/in-a-{phase}.txt"])):
            results.append(engine.cli("cp", *args))
    loaded = [str(r) for r in results if "CFT-NSS-LOADED" in r.stderr]
    assert not loaded, f"{engine.name}: docker cp loaded the container's libnss module:\n" + "\n".join(loaded)
    assert not host_marker.exists(), \
        f"{engine.name}: docker cp ran the container's libnss module as host root (it wrote {host_marker})"
    failed = [str(r) for r in results if r.returncode != 0]
    assert not failed, f"{engine.name}: docker cp failed:\n" + "\n".join(failed)
    engine.cli("start", name, check=True)
    _wait_ready(engine, name)
    r = engine.cli("exec", name, "test", "-e", "/cft-nss-loaded")
    assert r.returncode != 0, \
        f"{engine.name}: docker cp loaded the container's libnss module (it wrote /cft-nss-loaded)"


@pytest.mark.parametrize("phase", ["running", "stopped"])
@pytest.mark.spec(CVE_2018_15664, "docker cp resolves the container's symlinks inside the container's root: a "
                  "link to a host path never sends a copy to the host")
@pytest.mark.spec(CP, "The docker cp command assumes container paths are relative to the container's / (root) "
                  "directory: a container path, links in it included, names a file of the container")
def test_cp_into_a_link_lands_in_the_container(engine, image, tmp_path, phase):
    hostdir = tmp_path / "hostdir"
    hostdir.mkdir()
    name = engine.new_name()
    engine.cli("run", "-d", "--name", name, "--label", engine.label, image, "sh", "-c",
               f"mkdir -p {hostdir} && ln -sfn {hostdir} /escape && ln -sfn / /x && touch /ready && exec sleep 300",
               check=True)
    _wait_ready(engine, name)
    if phase == "stopped":
        engine.cli("stop", "-t", "1", name, check=True)
    source = tmp_path / "payload.txt"
    source.write_text("payload\n")
    for target in ("/escape/payload.txt", "/x/tmp/payload.txt"):
        r = engine.cli("cp", str(source), f"{name}:{target}")
        assert r.returncode == 0, f"{engine.name}: cp into {target} of a {phase} container failed:\n{r}"
    assert not (hostdir / "payload.txt").exists(), \
        f"{engine.name}: cp into the container's link /escape -> {hostdir} wrote to the host's {hostdir}"
    if phase == "stopped":
        engine.cli("start", name, check=True)
        _wait_ready(engine, name)
    r = engine.cli("exec", name, "cat", f"{hostdir}/payload.txt", "/tmp/payload.txt")
    assert r.stdout == "payload\n" * 2, \
        f"{engine.name}: the copies through the links did not land in the container:\n{r}"


@pytest.mark.parametrize("phase", ["running", "stopped"])
@pytest.mark.spec(CVE_2018_15664, "docker cp resolves the container's symlinks inside the container's root: a "
                  "link to a host path never reads the host")
@pytest.mark.spec(CP, "The docker cp command assumes container paths are relative to the container's / (root) "
                  "directory: a container path, links in it included, names a file of the container")
def test_cp_out_of_a_link_reads_the_container(engine, image, tmp_path, phase):
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "f").write_text("host secret\n")
    name = engine.new_name()
    engine.cli("run", "-d", "--name", name, "--label", engine.label, image, "sh", "-c",
               f"mkdir -p {secret} && echo container > {secret}/f && ln -s {secret} /leak && touch /ready "
               "&& exec sleep 300", check=True)
    _wait_ready(engine, name)
    if phase == "stopped":
        engine.cli("stop", "-t", "1", name, check=True)
    out = tmp_path / "out.txt"
    r = engine.cli("cp", f"{name}:/leak/f", str(out))
    assert r.returncode == 0, f"{engine.name}: cp out of /leak/f of a {phase} container failed:\n{r}"
    assert out.read_text() == "container\n", \
        f"{engine.name}: cp out through the container's link /leak -> {secret} read {out.read_text()!r}"

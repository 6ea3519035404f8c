"""Archives written by the store are accepted by real docker and podman with the
same image IDs, and their `save` output loads back into the store unchanged.

Each test tags its own unique reference and removes only that from the engine.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import uuid
from pathlib import Path

import pytest

from conformance.profile import profile_by_name
from conformance.testimage import REPOSITORY
from reference_runtime.image.store import ImageStore

DOCKER = "/usr/bin/docker"


def _engine(name: str) -> list[str]:
    if name == "docker":
        if not os.path.exists(DOCKER) or subprocess.run([DOCKER, "info"], capture_output=True).returncode != 0:
            pytest.skip("dockerd is not running")
        return [DOCKER]
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed")
    return ["podman"]


def _env() -> dict:
    return {**os.environ, **profile_by_name("podman").env, "DOCKER_BUILDKIT": "0"}


def _run(argv: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, env=_env(), timeout=300, **kw)


@pytest.fixture
def committed(loaded, tmp_path):
    """A two-layer image (the test image plus a layer with a whiteout) under a unique tag."""
    upper = tmp_path / "upper"
    (upper / "etc").mkdir(parents=True)
    (upper / "etc" / "motd").write_text("from the reference store\n")
    os.mknod(upper / "etc" / "group", stat.S_IFCHR, os.makedev(0, 0))
    ref = f"localhost/refstore-interop-{uuid.uuid4().hex[:12]}:t"
    base = loaded.resolve(f"{REPOSITORY}:base")
    image = loaded.commit(base, upper, config=base.config["config"], created_by="interop test", ref=ref)
    return loaded, image, ref


@pytest.mark.parametrize("engine", ["docker", "podman"])
def test_engine_loads_our_save_and_we_load_its_save(committed, tmp_path, engine):
    argv = _engine(engine)
    store, image, ref = committed
    archive = tmp_path / "ours.tar"
    with open(archive, "wb") as f:
        store.save([ref], f)
    try:
        loaded = _run(argv + ["load", "-i", str(archive)])
        assert loaded.returncode == 0, loaded.stderr
        info = _run(argv + ["image", "inspect", ref])
        assert info.returncode == 0, info.stderr
        (data,) = json.loads(info.stdout)
        assert data["Id"].removeprefix("sha256:") == image.id[7:]
        assert data["RootFS"]["Layers"] == image.diff_ids
        # and back: the engine's own save format(s) load into a fresh store with the same ID
        formats = [[]] if engine == "docker" else [["--format", "docker-archive"], ["--format", "oci-archive"]]
        for fmt in formats:
            theirs = tmp_path / "theirs.tar"
            saved = _run(argv + ["save", *fmt, "-o", str(theirs), ref])
            assert saved.returncode == 0, saved.stderr
            fresh = ImageStore(tmp_path / f"fresh-{len(fmt)}-{fmt[-1] if fmt else 'x'}")
            fresh.load(theirs)
            (back,) = fresh.images()
            assert back.id == image.id
            assert back.diff_ids == image.diff_ids
            # podman's OCI archive carries the whole reference in org.opencontainers.image.ref.name
            assert back.repo_tags == [ref]
            top = fresh.layer_dirs(back)[-1]
            assert (top / "etc" / "motd").read_text() == "from the reference store\n"
            assert stat.S_ISCHR(os.lstat(top / "etc" / "group").st_mode)
            theirs.unlink()
    finally:
        _run(argv + ["rmi", ref])


def test_skopeo_reads_our_oci_layout(committed, tmp_path):
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed")
    store, image, ref = committed
    archive = tmp_path / "ours.tar"
    with open(archive, "wb") as f:
        store.save([ref], f)
    out = _run(["skopeo", "inspect", "--config", f"oci-archive:{archive}"])
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["rootfs"]["diff_ids"] == image.diff_ids
    copied = _run(["skopeo", "copy", f"oci-archive:{archive}", f"oci:{tmp_path / 'layout'}:x"])
    assert copied.returncode == 0, copied.stderr

"""Data persistence: bind mounts, named and anonymous volumes,
--volumes-from, and commit."""

from __future__ import annotations

import pytest

from .conftest import BIND_MOUNTS, VOLUMES

pytestmark = [pytest.mark.requires("volumes")]

VOLUMES_FROM = "https://docs.docker.com/reference/cli/docker/container/run/#volumes-from"
RM_VOLUMES = "https://docs.docker.com/reference/cli/docker/container/rm/#volumes"
COMMIT = "https://docs.docker.com/reference/cli/docker/container/commit/"
SEED = "seeded from the image"


def run_ok(engine, args):
    result = engine.run(["--rm", *args])
    assert result.ok, str(result)
    return result.stdout


@pytest.mark.spec(BIND_MOUNTS, "a bind mount shares a host directory read-write with the container")
def test_bind_mount_is_read_write(engine, image, tmp_path):
    (tmp_path / "from-host").write_text("host\n")
    out = run_ok(engine, ["-v", f"{tmp_path}:/mnt", image, "sh", "-c", "cat /mnt/from-host; echo container > /mnt/from-container"])
    assert out == "host\n"
    assert (tmp_path / "from-container").read_text() == "container\n"


@pytest.mark.spec(BIND_MOUNTS, ":ro mounts the bind mount read-only: writes fail")
def test_read_only_bind_mount_refuses_writes(engine, image, tmp_path):
    (tmp_path / "file").write_text("original\n")
    result = engine.run(["--rm", "-v", f"{tmp_path}:/mnt:ro", image, "sh", "-c", "echo changed > /mnt/file"])
    assert result.returncode != 0, str(result)
    assert "read-only" in result.stderr.lower(), str(result)
    result = engine.run(["--rm", "-v", f"{tmp_path}:/mnt:ro", image, "touch", "/mnt/new"])
    assert result.returncode != 0, str(result)
    assert (tmp_path / "file").read_text() == "original\n"
    assert not (tmp_path / "new").exists()


@pytest.mark.spec(VOLUMES, "a named volume is created on first use and populated with the image's content at the mount point")
def test_named_volume_is_created_and_filled_from_the_image(engine, image):
    volume = engine.new_name("v")
    assert not engine.cli("volume", "inspect", volume).ok
    out = run_ok(engine, ["-v", f"{volume}:/data", image, "cat", "/data/seed.txt"])
    assert out.strip() == SEED
    assert engine.cli("volume", "inspect", volume).ok


@pytest.mark.spec(VOLUMES, "a volume outlives the container and is shared by the next container that mounts it")
def test_named_volume_survives_removal_and_is_shared(engine, image):
    volume = engine.new_name("v")
    writer = engine.create(["-v", f"{volume}:/data", image, "sh", "-c", "echo written > /data/new.txt"])
    engine.cli("start", "-a", writer, check=True)
    engine.cli("rm", writer, check=True)
    assert engine.cli("volume", "inspect", volume).ok, "the volume went with its container"
    out = run_ok(engine, ["-v", f"{volume}:/data", image, "cat", "/data/new.txt", "/data/seed.txt"])
    assert out.split("\n")[:2] == ["written", SEED]


@pytest.mark.spec(VOLUMES, "several containers can mount the same volume at once")
def test_named_volume_is_shared_by_running_containers(engine, image):
    volume = engine.new_name("v")
    reader = engine.create(["-v", f"{volume}:/data", image, "sh", "-c",
                            "i=0; while [ ! -f /data/ping ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; cat /data/ping"])
    engine.cli("start", reader, check=True)
    run_ok(engine, ["-v", f"{volume}:/data", image, "sh", "-c", "echo pong > /data/ping"])
    assert engine.cli("wait", reader, check=True, timeout=60).stdout.strip() == "0"
    assert engine.cli("logs", reader, check=True).stdout == "pong\n"


@pytest.mark.spec(VOLUMES_FROM, "--volumes-from mounts all the volumes of another container")
def test_volumes_from_mounts_the_other_containers_volumes(engine, image):
    volume = engine.new_name("v")
    source = engine.create(["-v", f"{volume}:/data", image, "sh", "-c", "echo from-source > /data/mark"])
    engine.cli("start", "-a", source, check=True)
    out = run_ok(engine, ["--volumes-from", source, image, "cat", "/data/mark", "/data/seed.txt"])
    assert out.split("\n")[:2] == ["from-source", SEED]


@pytest.mark.spec(RM_VOLUMES, "an image's VOLUME gives the container an anonymous volume; rm -v removes it")
def test_image_volume_is_anonymous_and_removed_with_rm_v(engine, test_image):
    name = engine.create([test_image.volume, "sh", "-c", "cat /data/seed.txt; echo x > /data/x"])
    engine.cli("start", "-a", name, check=True)
    mounts = [m for m in engine.inspect(name)["Mounts"] if m["Destination"] == "/data"]
    assert len(mounts) == 1 and mounts[0]["Type"] == "volume", mounts
    anonymous = mounts[0]["Name"]
    engine.track_volume(anonymous)
    assert engine.cli("logs", name, check=True).stdout.strip() == SEED
    assert engine.cli("volume", "inspect", anonymous).ok
    engine.cli("rm", "-v", name, check=True)
    assert not engine.cli("volume", "inspect", anonymous).ok, "rm -v left the anonymous volume"


@pytest.mark.spec(RM_VOLUMES, "rm without -v keeps a named volume")
def test_rm_v_keeps_named_volumes(engine, image):
    volume = engine.new_name("v")
    name = engine.create(["-v", f"{volume}:/data", image, "true"])
    engine.cli("start", "-a", name, check=True)
    engine.cli("rm", "-v", name, check=True)
    assert engine.cli("volume", "inspect", volume).ok, "rm -v removed a named volume"


@pytest.mark.requires("commit")
@pytest.mark.spec(COMMIT, "commit creates an image from the container's changes")
def test_commit_keeps_what_was_written_to_the_container_layer(engine, image):
    name = engine.create([image, "sh", "-c", "echo kept > /kept.txt; rm /data/seed.txt"])
    engine.cli("start", "-a", name, check=True)
    ref = engine.track_image(f"localhost/conformance/{engine.new_name('img')}:committed")
    engine.cli("commit", name, ref, check=True)
    out = run_ok(engine, [ref, "sh", "-c", "cat /kept.txt; ls /data"])
    assert out == "kept\n"

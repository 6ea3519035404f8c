"""The exit status and message of commands that cannot do what they are asked:
a missing container or object, removing what is still in use.

Docker documents no wording for most of these, so the message is matched
loosely (what it names, not how it says it); the exit status is exact."""

from __future__ import annotations

import json
import re

import pytest

from .conftest import INSPECT, KILL, LOGS, PAUSE, RM, RMI, START, STOP, VOLUME_RM, WAIT

#: docker 20.10's CLI exits 1 when the daemon refuses a request (no such container, conflict, ...):
#: observed on this machine; the references document no status for these.
REFUSED = 1


def missing_name(engine) -> str:
    """A container name of this run that no container has."""
    return engine.new_name(track=False)


def assert_no_such_container(engine, result, ref: str, what: str) -> None:
    assert result.returncode == REFUSED, \
        f"{engine.name}: {what} of a missing container exited {result.returncode}; docker exits {REFUSED}\n{result}"
    assert ref in result.stderr and re.search(r"(?i)no such container", result.stderr), \
        f"{engine.name}: {what} of a missing container said {result.stderr.strip()!r}; no 'No such container' {ref}"
    assert result.stdout == "", f"{engine.name}: {what} of a missing container printed {result.stdout!r}"


# -- a missing container --------------------------------------------------------


@pytest.mark.spec(START, "docker start of a missing container fails: 'No such container', docker 20.10 exits 1 (observed; the reference documents no status)")
def test_start_of_a_missing_container(engine):
    ref = missing_name(engine)
    assert_no_such_container(engine, engine.cli("start", ref), ref, "start")


@pytest.mark.spec(STOP, "docker stop of a missing container fails: 'No such container', docker 20.10 exits 1 (observed; the reference documents no status)")
def test_stop_of_a_missing_container(engine):
    ref = missing_name(engine)
    assert_no_such_container(engine, engine.cli("stop", ref), ref, "stop")


@pytest.mark.spec(KILL, "docker kill of a missing container fails: 'No such container', docker 20.10 exits 1 (observed; the reference documents no status)")
def test_kill_of_a_missing_container(engine):
    ref = missing_name(engine)
    assert_no_such_container(engine, engine.cli("kill", ref), ref, "kill")


@pytest.mark.spec(RM, "docker rm of a missing container fails: 'No such container', docker 20.10 exits 1 (observed; the reference documents no status)")
def test_rm_of_a_missing_container(engine):
    ref = missing_name(engine)
    assert_no_such_container(engine, engine.cli("rm", ref), ref, "rm")


@pytest.mark.spec(LOGS, "docker logs of a missing container fails: 'No such container', docker 20.10 exits 1 (observed; the reference documents no status)")
def test_logs_of_a_missing_container(engine):
    ref = missing_name(engine)
    assert_no_such_container(engine, engine.cli("logs", ref), ref, "logs")


@pytest.mark.spec(WAIT, "docker wait of a missing container fails: 'No such container', docker 20.10 exits 1 (observed; the reference documents no status)")
def test_wait_of_a_missing_container(engine):
    ref = missing_name(engine)
    assert_no_such_container(engine, engine.cli("wait", ref, timeout=30), ref, "wait")


@pytest.mark.spec(PAUSE, "docker pause of a missing container fails: 'No such container', docker 20.10 exits 1 (observed; the reference documents no status)")
def test_pause_of_a_missing_container(engine):
    ref = missing_name(engine)
    assert_no_such_container(engine, engine.cli("pause", ref), ref, "pause")


# -- inspect of missing objects -------------------------------------------------


@pytest.mark.spec(INSPECT, "docker inspect renders its results as a JSON array: [] for a missing object, "
                           "'No such object' on stderr, docker 20.10 exits 1 (observed; the reference documents no status)")
def test_inspect_of_a_missing_object(engine):
    ref = missing_name(engine)
    result = engine.cli("inspect", ref)
    assert result.returncode == REFUSED, \
        f"{engine.name}: inspect of a missing object exited {result.returncode}; docker exits {REFUSED}\n{result}"
    assert json.loads(result.stdout or "null") == [], \
        f"{engine.name}: inspect of a missing object printed {result.stdout!r}; docker prints []"
    assert ref in result.stderr and re.search(r"(?i)no such object", result.stderr), \
        f"{engine.name}: inspect of a missing object said {result.stderr.strip()!r}"


@pytest.mark.spec(INSPECT, "docker inspect of existing and missing objects prints the existing ones (JSON array or "
                           "--format per result), reports each missing one on stderr, docker 20.10 exits 1 (observed; the reference documents no status)")
def test_inspect_of_missing_among_existing_objects(engine, image):
    first, second = engine.create([image, "true"]), engine.create([image, "true"])
    ref = missing_name(engine)
    result = engine.cli("inspect", first, ref, second)
    assert result.returncode == REFUSED, \
        f"{engine.name}: inspect with a missing object exited {result.returncode}; docker exits {REFUSED}\n{result}"
    docs = json.loads(result.stdout or "null")
    assert isinstance(docs, list) and [d.get("Name") for d in docs] == [f"/{first}", f"/{second}"], \
        f"{engine.name}: inspect with a missing object printed {result.stdout[:500]!r}"
    assert ref in result.stderr and re.search(r"(?i)no such object", result.stderr), \
        f"{engine.name}: inspect with a missing object said {result.stderr.strip()!r}"
    formatted = engine.cli("inspect", "--format", "{{.Name}}", first, ref, second)
    assert formatted.returncode == REFUSED, \
        f"{engine.name}: inspect --format with a missing object exited {formatted.returncode}; docker exits {REFUSED}\n{formatted}"
    assert formatted.stdout.splitlines() == [f"/{first}", f"/{second}"], \
        f"{engine.name}: inspect --format with a missing object printed {formatted.stdout!r}"


# -- removing what is in use ------------------------------------------------------


@pytest.mark.spec(RM, "docker rm of a running container is refused without --force (docker 20.10 exits 1: observed; the reference documents no status); "
                      "it keeps running")
def test_rm_of_a_running_container_is_refused(engine, image):
    name = engine.create([image, "sleep", "1000"])
    engine.cli("start", name, check=True)
    engine.wait_running(name)
    result = engine.cli("rm", name)
    # the effect first, so that a deviating exit status cannot hide it
    assert engine.state(name)["Running"] is True, f"{engine.name}: the container stopped after a refused rm\n{result}"
    assert result.returncode == REFUSED, \
        f"{engine.name}: rm of a running container exited {result.returncode}; docker exits {REFUSED}\n{result}"
    assert re.search(r"(?i)running", result.stderr) and re.search(r"(?i)force", result.stderr), \
        f"{engine.name}: rm of a running container said {result.stderr.strip()!r}; not that it runs, nor to force"
    assert result.stdout == "", f"{engine.name}: a refused rm printed {result.stdout!r}"


@pytest.mark.requires("volumes")
@pytest.mark.spec(VOLUME_RM, "You can't remove a volume that's in use by a container: refused (docker 20.10 exits 1: observed; the reference documents no status), "
                             "the volume stays")
def test_volume_rm_of_a_volume_in_use_is_refused(engine, image):
    volume = engine.new_name("v")
    engine.cli("volume", "create", volume, check=True)
    name = engine.create(["-v", f"{volume}:/data", image, "sh", "-c", "echo kept > /data/f; sleep 1000"])
    engine.cli("start", name, check=True)
    engine.wait_running(name)
    result = engine.cli("volume", "rm", volume)
    # the effects first, so that a deviating exit status cannot hide them
    assert engine.cli("volume", "inspect", volume).ok, \
        f"{engine.name}: the volume is gone after a refused volume rm\n{result}"
    assert engine.cli("exec", name, "cat", "/data/f", timeout=30).stdout == "kept\n"
    assert result.returncode == REFUSED, \
        f"{engine.name}: volume rm of a volume in use exited {result.returncode}; docker exits {REFUSED}\n{result}"
    assert volume in result.stderr and re.search(r"(?i)in use|being used", result.stderr), \
        f"{engine.name}: volume rm of a volume in use said {result.stderr.strip()!r}"


# -- removing an image a container uses -------------------------------------------


def own_image(engine, image) -> str:
    """An image only this check uses, under one tag (commit gives it its own ID)."""
    ref = engine.track_image(f"localhost/{engine.new_name('img', track=False)}:x")
    source = engine.create([image, "true"])
    engine.cli("commit", "--change", f"LABEL io.conformance.copy={ref}", source, ref, check=True)
    return ref


def image_id(engine, ref: str) -> str | None:
    """The ID ``ref`` names, or None. Retried (Engine.query): podman's store fails
    a lookup that races another check's rmi, and a lookup of a missing image
    fails every time anyway."""
    result = engine.query("inspect", "--type", "image", "--format", "{{.Id}}", ref)
    return result.stdout.strip() if result.ok else None


@pytest.mark.spec(RMI, "If an image has multiple tags, docker rmi with the tag as a parameter only removes the tag "
                       "(\"Untagged: TAG\"), also while a container uses the image")
def test_rmi_of_one_of_several_tags_only_untags(engine, image):
    ref = engine.track_image(f"localhost/{engine.new_name('img', track=False)}:x")
    engine.cli("tag", image, ref, check=True)
    name = engine.create([ref, "sleep", "1000"])
    engine.cli("start", name, check=True)
    engine.wait_running(name)
    result = engine.cli("rmi", ref)
    assert result.ok, f"{engine.name}: rmi of one of several tags failed\n{result}"
    assert result.stdout.splitlines() == [f"Untagged: {ref}"], \
        f"{engine.name}: rmi of one of several tags printed {result.stdout!r}"
    assert image_id(engine, ref) is None, f"{engine.name}: {ref} still resolves after rmi"
    assert image_id(engine, image), f"{engine.name}: the image's other tag {image} is gone"
    assert engine.state(name)["Running"] is True, f"{engine.name}: the container stopped after rmi of its image's tag"


@pytest.mark.requires("commit")
@pytest.mark.spec(RMI, "You cannot remove an image of a running container unless you use the -f option: refused "
                       "(docker 20.10 exits 1: observed; the reference documents no status), the image and its tag stay")
def test_rmi_of_an_image_a_container_uses_is_refused(engine, image):
    ref = own_image(engine, image)
    before = image_id(engine, ref)
    name = engine.create([ref, "sleep", "1000"])
    engine.cli("start", name, check=True)
    engine.wait_running(name)
    result = engine.cli("rmi", ref)
    # the effects first, so that a deviating exit status cannot hide them
    assert image_id(engine, ref) == before, f"{engine.name}: {ref} no longer names its image after a refused rmi\n{result}"
    assert engine.state(name)["Running"] is True, f"{engine.name}: the container stopped after a refused rmi\n{result}"
    assert result.returncode == REFUSED, \
        f"{engine.name}: rmi of a running container's image exited {result.returncode}; docker exits {REFUSED}\n{result}"
    assert re.search(r"(?i)conflict|in use|being used|using", result.stderr), \
        f"{engine.name}: rmi of a running container's image said {result.stderr.strip()!r}"
    assert result.stdout == "", f"{engine.name}: a refused rmi printed {result.stdout!r}"


@pytest.mark.requires("commit")
@pytest.mark.spec(RMI, "docker rmi -f of the image of a running container: untagged (\"Untagged: TAG\", exit 0); "
                       "the container keeps running and its image stays until it is removed (observed with "
                       "docker 20.10; the reference does not describe -f of an image in use)")
def test_rmi_force_of_a_running_containers_image_untags_it(engine, image):
    ref = own_image(engine, image)
    before = image_id(engine, ref)
    name = engine.create([ref, "sleep", "1000"])
    engine.cli("start", name, check=True)
    engine.wait_running(name)
    result = engine.cli("rmi", "-f", ref)
    assert result.ok, f"{engine.name}: rmi -f of a running container's image failed\n{result}"
    assert engine.cli("inspect", "--type", "container", name).ok, f"{engine.name}: rmi -f removed the container {name}"
    state = engine.state(name)
    assert state["Running"] is True, f"{engine.name}: the container is {state['Status']} after rmi -f of its image"
    assert result.stdout.splitlines() == [f"Untagged: {ref}"], \
        f"{engine.name}: rmi -f of a running container's image printed {result.stdout!r}; docker 20.10 only untags it"
    assert image_id(engine, ref) is None, f"{engine.name}: {ref} still resolves after rmi -f"
    assert image_id(engine, before) == before, f"{engine.name}: the running container's image {before} was deleted"
    assert engine.inspect(name)["Image"] == before


@pytest.mark.requires("commit")
@pytest.mark.spec(RMI, "docker rmi -f of the image of a stopped container removes the image (\"Untagged\", "
                       "\"Deleted\", exit 0); the container stays")
def test_rmi_force_of_a_stopped_containers_image_removes_it(engine, image):
    ref = own_image(engine, image)
    before = image_id(engine, ref)
    name = engine.create([ref, "true"])
    result = engine.cli("rmi", "-f", ref)
    assert result.ok, f"{engine.name}: rmi -f of a stopped container's image failed\n{result}"
    assert engine.cli("inspect", "--type", "container", name).ok, f"{engine.name}: rmi -f removed the container {name}"
    lines = result.stdout.splitlines()
    assert lines[:1] == [f"Untagged: {ref}"] and f"Deleted: {before}" in lines, \
        f"{engine.name}: rmi -f of a stopped container's image printed {result.stdout!r}"
    assert image_id(engine, before) is None, f"{engine.name}: the image {before} is still there after rmi -f"

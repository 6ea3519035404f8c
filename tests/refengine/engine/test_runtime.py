"""create -> config.json -> inspect document, without starting anything: the
shape of docker's inspect, the resolve cache, volume specs."""

from __future__ import annotations

import json

import pytest

from reference_runtime.engine import runtime
from reference_runtime.engine import spec as specs
from reference_runtime.engine.flags import parse_command
from reference_runtime.engine.state import Root
from reference_runtime.errors import ContainerError

BASE = "localhost/conformance/busybox:base"


def _create(root: Root, *argv: str) -> str:
    p = parse_command("create", list(argv))
    return runtime.create(root, p.opts, p.args)


def test_inspect_document_has_dockers_keys(root):
    cid = _create(root, "--name", "web", "--label", "a=1", "-e", "X=1", "--restart", "on-failure:3", "-m", "16m",
                  "--pids-limit", "50", "--stop-signal", "SIGINT", "--stop-timeout", "7", "--init", "-w", "/w",
                  "-u", "nobody", "--hostname", "h", BASE, "sleep", "1")
    doc = runtime.inspect_document(root, root.read_config(cid), root.read_state(cid))
    json.dumps(doc)  # serialisable
    assert doc["Id"] == cid and doc["Name"] == "/web" and doc["Path"] == "sleep" and doc["Args"] == ["1"]
    assert set(doc["State"]) == {"Status", "Running", "Paused", "Restarting", "OOMKilled", "Dead", "Pid", "ExitCode",
                                 "Error", "StartedAt", "FinishedAt"}
    assert doc["State"]["Status"] == "created" and doc["State"]["StartedAt"] == "0001-01-01T00:00:00Z"
    cfg = doc["Config"]
    assert cfg["Hostname"] == "h" and cfg["Labels"] == {"a": "1"} and cfg["StopSignal"] == "SIGINT"
    assert cfg["StopTimeout"] == 7 and cfg["User"] == "nobody" and cfg["WorkingDir"] == "/w"
    assert cfg["Env"][0].startswith("PATH=") and "X=1" in cfg["Env"] and cfg["Image"] == BASE
    host = doc["HostConfig"]
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert host["Memory"] == 16 << 20 and host["PidsLimit"] == 50 and host["Init"] is True
    assert host["NetworkMode"] == "default" and list(doc["NetworkSettings"]["Networks"]) == ["bridge"]
    assert doc["RestartCount"] == 0 and doc["Image"].startswith("sha256:")


def test_image_volume_becomes_an_anonymous_volume_mount(root, tmp_path):
    cid = _create(root, "-v", "named:/n", "-v", f"{tmp_path}/hostdir:/b:ro", "localhost/conformance/busybox:volume", "true")
    mounts = {m["Destination"]: m for m in runtime.inspect_document(root, root.read_config(cid),
                                                                     root.read_state(cid))["Mounts"]}
    assert mounts["/n"]["Type"] == "volume" and mounts["/n"]["Name"] == "named" and mounts["/n"]["RW"] is True
    assert mounts["/b"]["Type"] == "bind" and mounts["/b"]["RW"] is False and mounts["/b"]["Mode"] == "ro"
    anon = mounts["/data"]
    assert anon["Type"] == "volume" and len(anon["Name"]) == 64


def test_name_conflict_keeps_the_first(root):
    first = _create(root, "--name", "dup", BASE, "true")
    with pytest.raises(ContainerError, match="dup"):
        _create(root, "--name", "dup", BASE, "true")
    assert root.find("dup") == first
    assert len(root.container_ids()) == 1


def test_resolve_cache_follows_the_store(root):
    from reference_runtime.image.store import ImageStore

    store = ImageStore(root.image)
    base = runtime.resolve_image(root, BASE)
    assert runtime.resolve_image(root, BASE) == base  # served from the cache
    store.tag(BASE, "localhost/moving:1")
    assert runtime.resolve_image(root, "localhost/moving:1")["id"] == base["id"]
    store.tag("localhost/conformance/busybox:stopsignal", "localhost/moving:1")
    moved = runtime.resolve_image(root, "localhost/moving:1")
    assert moved["id"] == store.resolve("localhost/conformance/busybox:stopsignal").id
    assert moved["config"]["StopSignal"] == "SIGINT"
    store.remove("localhost/moving:1")
    with pytest.raises(Exception, match="moving"):
        runtime.resolve_image(root, "localhost/moving:1")


@pytest.mark.parametrize("spec", ["relative:/x:rw:extra", "/h:relative", "v:/d:bogus", ":/d"])
def test_bad_volume_specs(spec):
    with pytest.raises(ContainerError):
        specs.parse_volume_spec(spec)


def test_env_merge_and_missing_host_variables(monkeypatch):
    monkeypatch.setenv("FROM_HOST", "yes")
    monkeypatch.delenv("NOT_SET", raising=False)
    env = specs.env_flags({"env": ["FROM_HOST", "NOT_SET", "A=b=c"]})
    assert env == ["FROM_HOST=yes", "A=b=c"]
    assert specs.merge_env(["PATH=/bin", "A=1"], ["A=2"]) == ["PATH=/bin", "A=2"]

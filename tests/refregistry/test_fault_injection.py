"""refregistry killed (SIGKILL) during uploads, manifest PUTs and garbage
collection, and run out of disk during a push: ``refregistry check`` then
finds every blob whole and every visible manifest complete, everything the
registry acknowledged before the crash is still served, and it works on.

Kills come after seeded random delays (bounded in number); the storage of
the full-disk test is a 64 MiB tmpfs under tmp_path, unmounted afterwards.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from refregistry_testlib import OCI_MANIFEST, REFREGISTRY, Pusher, error_codes, sha256
from test_crash import stored_objects_match_their_digests


def check(config: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*REFREGISTRY, "check", str(config)], capture_output=True, text=True, timeout=120)


def assert_clean(config: Path, when: str) -> None:
    r = check(config)
    assert (r.returncode, r.stdout) == (0, ""), f"refregistry check after {when} exited {r.returncode}:\n" \
                                                f"{r.stdout}{r.stderr}"


def assert_whole(root: Path, when: str) -> None:
    """:func:`assert_clean` in this process (no interpreter start per check)."""
    from reference_runtime.registry.check import problems
    from reference_runtime.registry.storage import Storage

    found = problems(Storage(root))
    assert not found, f"refregistry check after {when}:\n" + "\n".join(found)


def assert_served(c: httpx.Client, acknowledged: dict[str, tuple[str, dict]]) -> None:
    """Every tag acknowledged (201) still names its manifest, and each of its blobs is served whole."""
    for ref, (digest, body) in acknowledged.items():
        name, tag = ref.rsplit(":", 1)
        r = c.get(f"/v2/{name}/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
        assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == digest == sha256(r.content), (
            f"{ref}, acknowledged as {digest}, now answers {r.status_code} {r.headers.get('Docker-Content-Digest')}")
        for desc in [body["config"], *body["layers"]]:
            blob = c.get(f"/v2/{name}/blobs/{desc['digest']}")
            assert blob.status_code == 200 and sha256(blob.content) == desc["digest"], (
                f"{ref}: blob {desc['digest']} answers {blob.status_code}")


def assert_stored(root: Path, acknowledged: dict[str, tuple[str, dict]]) -> None:
    """:func:`assert_served` without a server: read the storage as the server would."""
    from reference_runtime.registry.reference import parse_digest
    from reference_runtime.registry.storage import Storage

    storage = Storage(root)
    for ref, (digest, body) in acknowledged.items():
        name, tag = ref.rsplit(":", 1)
        assert str(storage.resolve_tag(name, tag)) == digest, f"{ref} no longer names {digest}"
        for d in [digest, body["config"]["digest"], *(layer["digest"] for layer in body["layers"])]:
            data = storage.layout.blob_data(parse_digest(d))
            assert data.exists() and sha256(data.read_bytes()) == d, f"{ref}: blob {d} lost"


# ---------------------------------------------------------------- check itself


def test_check_reports_a_corrupt_blob_and_a_half_visible_manifest(tmp_path, server_factory):
    server = server_factory()
    with httpx.Client(base_url=server.url, timeout=30) as c:
        digest, body = Pusher(c).image("shop/app", "v1", [b"layer one", b"layer two"])
    assert_clean(server.config, "a push")
    layer = body["layers"][1]["digest"]
    data = server.root / "blobs" / "sha256" / layer[7:9] / layer[7:] / "data"
    data.write_bytes(b"tampered")
    r = check(server.config)
    assert r.returncode == 1 and f"blob {layer}: its content does not match its digest" in r.stdout, r.stdout
    data.unlink()
    r = check(server.config)
    assert r.returncode == 1 and f"shop/app@{digest}: names blob {layer}, which the repository cannot serve" \
        in r.stdout, r.stdout


# ---------------------------------------------------------------- uploads and manifest PUTs


def test_sigkill_during_uploads_and_manifest_puts(tmp_path, server_factory):
    storage = {"filesystem": {"rootdirectory": str(tmp_path / "root")}, "delete": {"enabled": True}}
    rnd = random.Random(4)
    acknowledged: dict[str, tuple[str, dict]] = {}
    for round_ in range(3):
        server = server_factory({"storage": storage}, name=f"round{round_}")
        stop = threading.Event()

        def pusher(round_=round_, url=server.url) -> None:
            i = 0
            try:
                with httpx.Client(base_url=url, timeout=30) as c:
                    push = Pusher(c)
                    while not stop.is_set():
                        layers = [os.urandom(rnd.choice((1 << 10, 256 << 10, 2 << 20))) for _ in range(2)]
                        ref = f"crash/r{round_}:t{i}"
                        digest, body = push.image("crash/r%d" % round_, f"t{i}", layers)
                        acknowledged[ref] = (digest, body)
                        i += 1
            except (httpx.HTTPError, AssertionError):
                pass  # the server is killed under it

        thread = threading.Thread(target=pusher)
        thread.start()
        time.sleep(rnd.uniform(0.3, 1.5))
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait(10)
        stop.set()
        thread.join(60)
        assert_clean(server.config, f"a kill during pushes (round {round_})")
    assert acknowledged, "no push was acknowledged before the kills: the test killed too early"
    assert stored_objects_match_their_digests(tmp_path / "root") >= 3 * len(acknowledged) // 2
    restarted = server_factory({"storage": storage}, name="after")
    with httpx.Client(base_url=restarted.url, timeout=30) as c:
        assert_served(c, acknowledged)
        Pusher(c).image("crash/after", "ok", [b"after the crashes"])
    assert_clean(restarted.config, "pushes after the crashes")


# ---------------------------------------------------------------- garbage collection


def _age(root: Path) -> None:
    """Make every stored blob look unused for an hour, so GC (grace 0) may take any garbage."""
    old = time.time() - 3600
    for data in (root / "blobs").rglob("data"):
        os.utime(data, (old, old))


def _garbage(root: Path, count: int) -> None:
    """*count* blobs no manifest names, written as the registry stores them."""
    for i in range(count):
        data = f"garbage {i}".encode()
        hex_ = sha256(data)[7:]
        path = root / "blobs" / "sha256" / hex_[:2] / hex_ / "data"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def test_sigkill_during_garbage_collection(tmp_path, server_factory):
    template = tmp_path / "template"
    server = server_factory({"storage": {"filesystem": {"rootdirectory": str(template / "root")}}}, name="template")
    kept: dict[str, tuple[str, dict]] = {}
    with httpx.Client(base_url=server.url, timeout=30) as c:
        push = Pusher(c)
        for i in range(3):
            kept[f"gc/app:v{i}"] = push.image("gc/app", f"v{i}", [f"kept layer {i}".encode(), b"shared"])
        for i in range(30):  # untagged: --delete-untagged removes them and their own layers
            push.image("gc/app", None, [f"untagged layer {i}".encode()])
    os.killpg(server.process.pid, signal.SIGTERM)
    server.process.wait(10)
    _garbage(template / "root", 600)
    _age(template / "root")

    def gc(root: Path) -> subprocess.Popen:
        config = root.parent / "config.yml"
        config.write_text(json.dumps({"version": 0.1, "http": {"addr": "127.0.0.1:0"}, "storage": {
            "filesystem": {"rootdirectory": str(root)}, "delete": {"enabled": True}}}))
        return subprocess.Popen([*REFREGISTRY, "garbage-collect", str(config), "--delete-untagged",
                                 "--grace-period", "0"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    full = tmp_path / "full" / "root"
    shutil.copytree(template / "root", full, symlinks=True)
    start = time.monotonic()
    proc = gc(full)
    assert proc.wait(120) == 0, proc.stderr.read()
    took = time.monotonic() - start
    assert_clean(full.parent / "config.yml", "a whole garbage collection")  # once through the CLI
    remaining = sum(1 for _ in (full / "blobs").rglob("data"))
    needed = {d for digest, body in kept.values() for d in [digest, body["config"]["digest"],
                                                            *(layer["digest"] for layer in body["layers"])]}
    assert remaining == len(needed), f"GC kept {remaining} blobs; the 3 tagged images need {len(needed)}"

    rnd = random.Random(7)
    for round_ in range(3):
        root = tmp_path / f"killed{round_}" / "root"
        shutil.copytree(template / "root", root, symlinks=True)
        proc = gc(root)
        try:
            time.sleep(rnd.uniform(0.05, took))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        assert_whole(root, f"a kill {round_} during garbage collection")
        assert_stored(root, kept)
        proc = gc(root)  # and a GC run to the end finishes the job
        assert proc.wait(120) == 0, proc.stderr.read()
        assert_whole(root, f"the GC after kill {round_}")
        assert sum(1 for _ in (root / "blobs").rglob("data")) == remaining
        shutil.rmtree(root.parent)


# ---------------------------------------------------------------- a full disk


def test_full_disk_during_a_push(small_disk, server_factory):
    storage = {"filesystem": {"rootdirectory": str(small_disk / "root")}, "delete": {"enabled": True}}
    server = server_factory({"storage": storage}, name="full")
    big = os.urandom(12 << 20)
    with httpx.Client(base_url=server.url, timeout=60) as c:
        push = Pusher(c)
        kept = {"full/app:before": push.image("full/app", "before", [b"pushed with room to spare"])}
        st = os.statvfs(small_disk)
        filler = small_disk / "filler"
        with open(filler, "wb") as f:
            left = st.f_bavail * st.f_frsize - (6 << 20)
            while left > 0:
                f.write(b"\0" * min(left, 1 << 20))
                left -= 1 << 20
        r = c.post("/v2/full/app/blobs/uploads/", params={"digest": sha256(big)}, content=big)
        assert r.status_code == 500, f"a push on a full disk answered {r.status_code}: {r.text}"
        assert error_codes(r) == ["UNKNOWN"] and "no space left on device" in str(r.json()).lower(), (
            f"a push on a full disk: not a clear error: {r.text}")
        assert c.head(f"/v2/full/app/blobs/{sha256(big)}").status_code == 404
        filler.unlink()
        assert_clean(server.config, "a push on a full disk")
        assert_served(c, kept)
        kept["full/app:after"] = push.image("full/app", "after", [big])
        assert_served(c, kept)
    log = server.log_text()
    assert "Traceback" not in log, f"the server logged a traceback for a full disk:\n{log[-2000:]}"

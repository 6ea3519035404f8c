"""``refregistry garbage-collect``: what it keeps (tagged manifests, index
children, referrers, recently used blobs), what it deletes, ``--dry-run``,
and that pushes running alongside it lose nothing."""
import json
import os
import shutil
import subprocess
import threading
import time

import httpx
import pytest

from refregistry_testlib import OCI_INDEX, OCI_MANIFEST, REFREGISTRY, Pusher, sha256

HOUR = 3600


def gc(server, *args):
    result = subprocess.run([*REFREGISTRY, "garbage-collect", str(server.config), *args], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result
    return result.stdout


def age_all_blobs(server, seconds=2 * HOUR):
    """Make every stored blob look unused for ``seconds`` (as if pushed long ago)."""
    past = time.time() - seconds
    for path in (server.root / "blobs").rglob("data"):
        os.utime(path, (past, past))


def blob_stored(server, digest: str) -> bool:
    algorithm, hex_ = digest.split(":")
    return (server.root / "blobs" / algorithm / hex_[:2] / hex_ / "data").exists()


@pytest.fixture
def registry(server_factory):
    server = server_factory()
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield server, c, Pusher(c)


def test_keeps_tagged_deletes_orphans_and_dry_run_deletes_nothing(registry):
    server, c, push = registry
    tagged, tagged_body = push.image("gc/app", "v1", [b"tagged layer"])
    untagged, untagged_body = push.image("gc/app", None, [b"untagged-only layer"])
    orphan = push.blob("gc/app", b"orphan blob")
    age_all_blobs(server)

    out = gc(server, "--dry-run", "--delete-untagged")
    assert f"would delete blob {orphan}" in out and f"would delete manifest gc/app@{untagged}" in out
    assert f"would delete blob {untagged_body['layers'][0]['digest']}" in out
    assert tagged not in out
    assert blob_stored(server, orphan) and c.get(f"/v2/gc/app/manifests/{untagged}").status_code == 200

    out = gc(server, "--grace-period", "0")
    assert not blob_stored(server, orphan)
    assert c.head(f"/v2/gc/app/blobs/{orphan}").status_code == 404
    # without --delete-untagged, untagged manifests and their blobs stay
    assert c.get(f"/v2/gc/app/manifests/{untagged}").status_code == 200
    assert blob_stored(server, untagged_body["layers"][0]["digest"])

    age_all_blobs(server)
    gc(server, "--delete-untagged", "--grace-period", "0")
    assert c.get(f"/v2/gc/app/manifests/{untagged}").status_code == 404
    assert not blob_stored(server, untagged_body["layers"][0]["digest"])
    assert not blob_stored(server, untagged)
    r = c.get("/v2/gc/app/manifests/v1")
    assert r.headers["Docker-Content-Digest"] == tagged
    for descriptor in tagged_body["layers"] + [tagged_body["config"]]:
        assert sha256(c.get(f"/v2/gc/app/blobs/{descriptor['digest']}").content) == descriptor["digest"]


def test_children_of_tagged_indexes_survive_delete_untagged(registry):
    """distribution #3004/#3178: --delete-untagged removed children of manifest lists."""
    server, c, push = registry
    children = [push.image("gc/multi", None, [f"{arch} layer".encode()]) for arch in ("amd64", "arm64")]
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": d, "size": len(json.dumps(body))} for d, body in children]}
    push.manifest("gc/multi", "latest", index, OCI_INDEX)
    lonely_child = push.image("gc/multi", None, [b"lonely layer"])
    lonely = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": lonely_child[0], "size": 1}]}
    lonely_index = push.manifest("gc/multi", sha256(json.dumps(lonely).encode()), lonely, OCI_INDEX)
    age_all_blobs(server)
    gc(server, "--delete-untagged", "--grace-period", "0")
    for digest, body in children:
        assert c.get(f"/v2/gc/multi/manifests/{digest}").status_code == 200
        for descriptor in body["layers"] + [body["config"]]:
            assert sha256(c.get(f"/v2/gc/multi/blobs/{descriptor['digest']}").content) == descriptor["digest"]
    assert c.get(f"/v2/gc/multi/manifests/{lonely_index}").status_code == 404
    assert c.get(f"/v2/gc/multi/manifests/{lonely_child[0]}").status_code == 404
    assert not blob_stored(server, lonely_child[1]["layers"][0]["digest"])


def test_referrers_of_tagged_manifests_survive(registry):
    server, c, push = registry
    subject, _ = push.image("gc/signed", "v1", [b"signed layer"])
    signature, sig_body = push.image("gc/signed", None, [b"signature bytes"],
                                     subject={"mediaType": OCI_MANIFEST, "digest": subject, "size": 1})
    age_all_blobs(server)
    gc(server, "--delete-untagged", "--grace-period", "0")
    assert c.get(f"/v2/gc/signed/manifests/{signature}").status_code == 200
    assert blob_stored(server, sig_body["layers"][0]["digest"])
    assert [d["digest"] for d in c.get(f"/v2/gc/signed/referrers/{subject}").json()["manifests"]] == [signature]


def test_recently_used_blobs_are_spared(registry):
    server, c, push = registry
    fresh = push.blob("gc/fresh", b"just pushed, manifest not yet")
    old = push.blob("gc/fresh", b"pushed long ago, checked just now")
    gone = push.blob("gc/fresh", b"pushed long ago, never checked")
    age_all_blobs(server)
    # an upload committed a moment ago
    os.utime(server.root / "blobs" / "sha256" / fresh[7:9] / fresh[7:] / "data")
    # a client HEADs a blob to skip uploading it: GC must leave it for the push to finish
    assert c.head(f"/v2/gc/fresh/blobs/{old}").status_code == 200
    out = gc(server)  # default grace period
    assert blob_stored(server, fresh) and blob_stored(server, old) and not blob_stored(server, gone)
    assert f"delete blob {gone}" in out and "spared 2" in out
    # the push finishes with both blobs
    config = push.blob("gc/fresh", b"{}")
    body = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": 1}
                       for d in (fresh, old)]}
    push.manifest("gc/fresh", "v1", body)


def test_pushes_during_gc_lose_nothing(registry):
    """Pushes (sharing layers, HEAD-skipping what exists) run in threads while
    garbage-collect --delete-untagged runs again and again with no grace period:
    the lock + touch scheme alone must keep every completed push whole. A push
    may fail cleanly (MANIFEST_BLOB_UNKNOWN) if GC removed an unreferenced blob
    before the manifest arrived; the pusher then uploads again."""
    server, c, push = registry
    shared = [os.urandom(200_000) for _ in range(3)]
    garbage = [push.blob("gc/busy", os.urandom(1000)) for _ in range(5)]
    age_all_blobs(server)
    pushed: list[tuple[str, str, str]] = []
    clean_failures: list[str] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def pusher(worker: int):
        try:
            with httpx.Client(base_url=server.url, timeout=60) as client:
                n = 0
                while not stop.is_set() and n < 60:
                    n += 1
                    name, tag = f"gc/busy{worker % 2}", f"w{worker}-{n}"
                    layers = shared + [f"{worker}-{n}".encode() * 100]
                    for attempt in range(5):
                        blobs = []
                        for layer in [json.dumps({"w": worker, "n": n}).encode()] + layers:
                            digest = sha256(layer)
                            if client.head(f"/v2/{name}/blobs/{digest}").status_code != 200:
                                r = client.post(f"/v2/{name}/blobs/uploads/", params={"digest": digest},
                                                content=layer)
                                assert r.status_code == 201, r.text
                            blobs.append((digest, len(layer)))
                        body = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                           "digest": blobs[0][0], "size": blobs[0][1]},
                                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d,
                                            "size": s} for d, s in blobs[1:]]}
                        r = client.put(f"/v2/{name}/manifests/{tag}", content=json.dumps(body),
                                       headers={"Content-Type": OCI_MANIFEST})
                        if r.status_code == 201:
                            pushed.append((name, tag, r.headers["Docker-Content-Digest"]))
                            break
                        assert r.status_code == 400, r.text
                        assert {e["code"] for e in r.json()["errors"]} == {"MANIFEST_BLOB_UNKNOWN"}, r.text
                        clean_failures.append(tag)
        except BaseException as exc:  # surfaced by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=pusher, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    try:
        for _ in range(5):
            gc(server, "--delete-untagged", "--grace-period", "0")
    finally:
        stop.set()
        for t in threads:
            t.join(120)
    assert not errors, errors
    gc(server, "--delete-untagged", "--grace-period", "0")  # once more, after the pushes
    assert pushed, "no push completed"
    print(f"{len(pushed)} pushes completed, {len(clean_failures)} refused cleanly during GC")
    for digest in garbage:
        assert not blob_stored(server, digest)
    for name, tag, digest in pushed:
        r = c.get(f"/v2/{name}/manifests/{tag}")
        assert r.status_code == 200 and sha256(r.content) == digest == r.headers["Docker-Content-Digest"]
        manifest = r.json()
        for descriptor in [manifest["config"]] + manifest["layers"]:
            blob = c.get(f"/v2/{name}/blobs/{descriptor['digest']}")
            assert blob.status_code == 200, (name, tag, descriptor)
            assert sha256(blob.content) == descriptor["digest"] and len(blob.content) == descriptor["size"]


def test_a_gc_killed_between_its_steps_leaves_nothing_the_next_gc_does_not_finish(registry):
    """The two half-done states a SIGKILL can leave (seen in CI's random-kill test): a layer
    link removed but not its directory, and blob data removed but not its directory."""
    server, c, push = registry
    orphan_linked = push.blob("gc/app", b"orphan whose link dir stays")
    orphan_emptied = push.blob("gc/app", b"orphan whose data is gone")
    algorithm, hex_ = orphan_linked.split(":")
    (server.root / "repositories" / "gc" / "app" / "_layers" / algorithm / hex_ / "link").unlink()
    algorithm, hex_ = orphan_emptied.split(":")
    shutil.rmtree(server.root / "repositories" / "gc" / "app" / "_layers" / algorithm / hex_)  # links go first
    (server.root / "blobs" / algorithm / hex_[:2] / hex_ / "data").unlink()
    age_all_blobs(server)
    gc(server, "--grace-period", "0")
    assert not (server.root / "repositories" / "gc" / "app" / "_layers" / orphan_linked.replace(":", "/")).exists()
    assert not (server.root / "blobs" / algorithm / hex_[:2] / hex_).exists()
    check = subprocess.run([*REFREGISTRY, "check", str(server.config)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0 and check.stdout == "", check

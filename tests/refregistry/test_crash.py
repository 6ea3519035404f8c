"""A server killed (SIGKILL) in the middle of pushes leaves no blob or manifest
visible under a digest its bytes do not hash to, and the registry works on."""
import hashlib
import os
import signal
import threading
import time

import httpx

from refregistry_testlib import OCI_MANIFEST, Pusher, sha256, stop_server


def stored_objects_match_their_digests(root) -> int:
    count = 0
    for data in (root / "blobs").rglob("data"):
        algorithm, hex_ = data.parent.parent.parent.name, data.parent.name
        assert hashlib.new(algorithm, data.read_bytes()).hexdigest() == hex_, data
        count += 1
    return count


def test_kill_during_pushes(tmp_path, server_factory):
    storage = {"filesystem": {"rootdirectory": str(tmp_path / "root")}, "delete": {"enabled": True}}
    server = server_factory({"storage": storage}, name="first")
    payload = os.urandom(8 << 20)
    started = threading.Event()

    def slow_body():
        for i in range(0, len(payload), 256 << 10):
            started.set()
            yield payload[i:i + (256 << 10)]
            time.sleep(0.01)

    def pusher():
        try:
            with httpx.Client(base_url=server.url, timeout=30) as c:
                c.post("/v2/crash/blobs/uploads/", params={"digest": sha256(payload)}, content=slow_body())
        except httpx.HTTPError:
            pass  # the server is killed under it

    with httpx.Client(base_url=server.url, timeout=30) as c:
        kept, _ = Pusher(c).image("crash", "kept", [b"pushed before the crash"])
    thread = threading.Thread(target=pusher)
    thread.start()
    assert started.wait(30)
    time.sleep(0.3)
    os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait(10)
    thread.join(60)

    assert stored_objects_match_their_digests(tmp_path / "root") >= 3
    restarted = server_factory({"storage": storage}, name="second")
    with httpx.Client(base_url=restarted.url, timeout=30) as c:
        assert c.head(f"/v2/crash/blobs/{sha256(payload)}").status_code == 404
        r = c.get("/v2/crash/manifests/kept", headers={"Accept": OCI_MANIFEST})
        assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == kept == sha256(r.content)
        Pusher(c).image("crash", "after", [payload])
        assert sha256(c.get(f"/v2/crash/blobs/{sha256(payload)}").content) == sha256(payload)
    stop_server(restarted.process)
    assert stored_objects_match_their_digests(tmp_path / "root") >= 5

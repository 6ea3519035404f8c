"""Garbage collection: ``garbage-collect CONFIG [--delete-untagged]`` never
deletes what a tagged manifest, an index's children or a push in flight still
needs. Each check runs GC on a registry instance of its own."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from conformance.registry_client import (DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, config_blob, digest,
                                         image_manifest, index_manifest)

from .conftest import GC, blob, describe
from .test_concurrency import verify_image

pytestmark = [pytest.mark.requires("garbage-collect")]


def collect(reg, *flags: str) -> None:
    done = reg.running.garbage_collect(*flags)
    assert done.returncode == 0, f"garbage-collect {' '.join(flags)} exited {done.returncode}: {done.stderr[-500:]}"


@pytest.mark.spec(GC, "a tagged image is complete after garbage-collect, with and without --delete-untagged")
@pytest.mark.parametrize("flags", [(), ("--delete-untagged",)], ids=["plain", "delete-untagged"])
def test_gc_keeps_tagged_images(registry_factory, flags):
    reg = registry_factory("plain")
    with reg.client() as c:
        images = []
        for i in range(2):
            layers = [blob(50_000, f"gc-tagged-{i}"), blob(1000, "gc-shared")]
            manifest, _ = c.push_image(f"gc/tagged{i}", "v1", label=f"gc-tagged-{i}", layers=layers)
            images.append((f"gc/tagged{i}", manifest, [config_blob(f"gc-tagged-{i}"), *layers]))
        collect(reg, *flags)
        for name, manifest, blobs in images:
            verify_image(c, name, "v1", manifest, blobs)


@pytest.mark.spec(GC, "GC never deletes blobs a push still needs: blobs uploaded before GC, manifest PUT after it")
@pytest.mark.requires("online-gc")  # offline GC may sweep them: they are unreferenced until the manifest lands
def test_gc_keeps_blobs_of_a_push_in_flight(registry_factory):
    reg = registry_factory("plain")
    config, layer = config_blob("in-flight"), blob(200_000, "in-flight")
    with reg.client() as c:
        c.push_image("gc/other", "v1", label="other", layers=[blob(1000, "other")])
        for data in (config, layer):
            c.push_blob("gc/in-flight", data)
        collect(reg)  # the push's blobs are not yet referenced by any manifest
        manifest = image_manifest(config, [layer])
        r = c.push_manifest("gc/in-flight", "v1", manifest, OCI_MANIFEST)
        assert r.status_code == 201, f"manifest PUT after GC: {describe(r)}"
        verify_image(c, "gc/in-flight", "v1", manifest, [config, layer])


@pytest.mark.spec(GC, "--delete-untagged keeps the untagged children of a tagged index or manifest list (and their blobs)")
@pytest.mark.parametrize("index_type,child_type", [(OCI_INDEX, OCI_MANIFEST), (DOCKER_LIST, DOCKER_MANIFEST)],
                         ids=["oci-index", "docker-list"])
def test_gc_delete_untagged_keeps_children_of_tagged_index(registry_factory, index_type, child_type):
    reg = registry_factory("plain")
    name = "gc/multi"
    with reg.client() as c:
        children, blobs = [], []
        for arch in range(2):
            config, layer = config_blob(f"child-{arch}"), blob(30_000, f"child-{arch}")
            for data in (config, layer):
                c.push_blob(name, data)
            body = image_manifest(config, [layer], media_type=child_type)
            r = c.push_manifest(name, digest(body), body, child_type)  # children are untagged
            assert r.status_code == 201, describe(r)
            children.append((body, child_type))
            blobs.append((body, [config, layer]))
        index = index_manifest(children, media_type=index_type)
        r = c.push_manifest(name, "multi", index, index_type)
        assert r.status_code == 201, describe(r)
        collect(reg, "--delete-untagged")
        got = c.get_manifest(name, "multi")
        assert got.status_code == 200 and got.content == index, describe(got)
        for body, child_blobs in blobs:
            verify_image(c, name, digest(body), body, child_blobs)


@pytest.mark.spec(GC, "garbage-collect while pushes run: every push succeeds and every pushed image stays complete")
@pytest.mark.requires("online-gc")
def test_gc_while_pushes_run_loses_nothing(registry_factory):
    reg = registry_factory("plain")
    stop = threading.Event()
    runs: list[int] = []

    def gc_loop() -> None:
        for _ in range(20):  # bounded; stops early when the pushes are done
            runs.append(reg.running.garbage_collect("--delete-untagged").returncode)
            if stop.is_set():
                return

    def push(i: int):
        with reg.client() as c:
            layers = [blob(100_000, f"online-{i}"), blob(50_000, "online-shared")]
            manifest, _ = c.push_image(f"gc/online{i % 3}", f"t{i}", label=f"online-{i}", layers=layers)
            return f"gc/online{i % 3}", f"t{i}", manifest, [config_blob(f"online-{i}"), *layers]

    with ThreadPoolExecutor(4) as pool:
        collector = pool.submit(gc_loop)
        try:
            pushed = list(pool.map(push, range(16)))
        finally:
            stop.set()
        collector.result()
    assert runs and all(code == 0 for code in runs), f"garbage-collect exit statuses: {runs}"
    collect(reg, "--delete-untagged")
    with reg.client() as c:
        for name, tag, manifest, blobs in pushed:
            verify_image(c, name, tag, manifest, blobs)

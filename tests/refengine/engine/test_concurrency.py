"""refengine's image store read by one process while another writes it.

Readers take no lock: they read ``index.json`` (replaced atomically) and then
each image's config blob. A concurrent ``rmi`` of an unrelated image unlinks
that image's config right after it replaces the index, so a listing that
read the old index must skip the image, not fail the way podman 4.3's
builder does ("getting top layer info: layer not known"; see
suites/runtime/test_concurrency.py).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from conformance.testimage import REPOSITORY, write_archives
from reference_runtime.errors import StoreError
from reference_runtime.image.store import ImageStore

BASE = f"{REPOSITORY}:base"


@pytest.fixture(scope="module")
def archives(tmp_path_factory):
    return write_archives(tmp_path_factory.mktemp("archives"))


@pytest.fixture
def store(tmp_path, archives) -> ImageStore:
    store = ImageStore(tmp_path / "image")
    store.load(archives[1])
    return store


def child_of_base(store: ImageStore, n: int) -> str:
    """A config-only child of the base image (what a builder's ENV step makes); its ID."""
    base = store.resolve(BASE)
    return store.commit(base, None, config={"Env": [f"N={n}"]}, ref=f"localhost/child:{n}").id


def remove_after_reading_the_index(monkeypatch, reader: ImageStore, ref: str) -> None:
    """Make the reader's first index read race another process's ``rmi ref``:
    the removal lands after the index was read, before the configs are."""
    writer = ImageStore(reader.root)
    original = reader._read_index
    calls = []

    def read_then_lose_the_race():
        index = original()
        if not calls:
            writer.remove(ref)
        calls.append(1)
        return index

    monkeypatch.setattr(reader, "_read_index", read_then_lose_the_race)


def test_children_skip_an_image_removed_after_the_index_was_read(store, monkeypatch):
    kept, gone = child_of_base(store, 1), child_of_base(store, 2)
    base = store.resolve(BASE).id
    reader = ImageStore(store.root)
    remove_after_reading_the_index(monkeypatch, reader, "localhost/child:2")
    assert [i.id for i in reader.children(base)] == [kept]
    assert gone not in [i.id for i in store.images(all=True)]


def test_images_skip_an_image_removed_after_the_index_was_read(store, monkeypatch):
    gone = child_of_base(store, 1)
    reader = ImageStore(store.root)
    remove_after_reading_the_index(monkeypatch, reader, "localhost/child:1")
    listed = [i.id for i in reader.images(all=True)]
    assert gone not in listed and store.resolve(BASE).id in listed


def test_an_image_whose_config_is_missing_is_still_an_error(store):
    image_id = child_of_base(store, 1)
    (store.blob_dir / image_id[7:]).unlink()
    with pytest.raises(StoreError, match="is damaged: its config blob is missing"):
        store.images(all=True)


CHURN = """
import sys
from pathlib import Path
from reference_runtime.image.store import ImageStore
store, base = ImageStore(Path(sys.argv[1])), None
for n in range(int(sys.argv[2])):
    base = base or store.resolve("{base}")
    for k in range(8):
        store.commit(base, None, config={{"Env": [f"N={{n}}-{{k}}"]}}, ref=f"localhost/churn:{{k}}")
    for k in range(8):
        store.remove(f"localhost/churn:{{k}}")
""".format(base=BASE)


def test_listings_never_fail_while_another_process_commits_and_removes(store, archives):
    """A bounded stress of the same race, across real processes."""
    base = store.resolve(BASE).id
    churn = subprocess.Popen([sys.executable, "-c", CHURN, str(store.root), "40"],
                             stderr=subprocess.PIPE, text=True)
    listings = 0
    deadline = time.monotonic() + 60
    try:
        while churn.poll() is None and time.monotonic() < deadline:
            store.images(all=True)
            store.children(base)
            listings += 1
    finally:
        churn.kill() if churn.poll() is None else None
        _, err = churn.communicate(timeout=30)
    assert churn.returncode == 0, err
    assert listings > 10
    assert sorted(t for i in store.images() for t in i.repo_tags) == sorted(i.ref for i in archives[0].images)

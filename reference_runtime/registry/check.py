"""``refregistry check CONFIG.yml``: is every stored object whole and every
visible one complete? Read-only, safe beside a running server.

A crash (SIGKILL during an upload, a manifest PUT or garbage collection)
may leave invisible leftovers -- ``.tmp-*`` files, an upload session, an
empty blob directory -- which this check does not count: they are never
served, and GC purges old sessions. What it reports, one line each:

- a blob whose bytes do not hash to its digest (never served: writes are
  staged and verified before the rename);
- a tag naming a manifest the repository no longer has;
- a manifest revision whose bytes are gone or are not a manifest;
- a manifest naming a blob (config, layer) or child manifest that its
  repository cannot serve: half-visible, the image cannot be pulled;
- a repository's layer link whose blob is gone (a HEAD says 404, but a
  link must never outlive its blob: GC unlinks first).

>>> problems(Storage(Path("/var/lib/registry")))    # doctest: +SKIP
[]
"""
from __future__ import annotations

import os

from reference_runtime.registry import manifests
from reference_runtime.registry.reference import Digest
from reference_runtime.registry.storage import Storage


def _hashes_to(path: os.PathLike, digest: Digest) -> bool:
    hasher = digest.hasher()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            hasher.update(chunk)
    return hasher.hexdigest() == digest.hex


def problems(storage: Storage) -> list[str]:
    """One line per problem, sorted by where it is."""
    out: list[str] = []
    for digest in storage.all_blobs():
        data = storage.layout.blob_data(digest)
        try:
            if not _hashes_to(data, digest):
                out.append(f"blob {digest}: its content does not match its digest")
        except FileNotFoundError:
            continue  # a directory left by a delete cut short: invisible
    for name in storage.repositories():
        out.extend(_repository(storage, name))
    return out


def _manifest_present(storage: Storage, name: str, digest: Digest) -> bool:
    return storage.has_manifest(name, digest) and os.path.exists(storage.layout.blob_data(digest))


def _repository(storage: Storage, name: str) -> list[str]:
    out = []
    for tag in storage.list_tags(name) or []:
        digest = storage.resolve_tag(name, tag)
        if digest is None or not _manifest_present(storage, name, digest):
            out.append(f"{name}:{tag}: the tag names manifest {digest}, which the repository does not have")
    for digest in sorted(storage.revisions(name), key=str):
        try:
            data = storage.layout.blob_data(digest).read_bytes()
        except FileNotFoundError:
            out.append(f"{name}@{digest}: manifest revision whose bytes are gone")
            continue
        try:
            manifest = manifests.parse_manifest(data, None)
        except manifests.ManifestError as exc:
            out.append(f"{name}@{digest}: stored manifest is not valid: {exc}")
            continue
        for blob in manifest.blobs:
            if storage.blob_size(name, blob) is None:
                out.append(f"{name}@{digest}: names blob {blob}, which the repository cannot serve")
        for child in manifest.children:
            if not _manifest_present(storage, name, child):
                out.append(f"{name}@{digest}: names manifest {child}, which the repository does not have")
    for digest in storage.layer_links(name):
        if not os.path.exists(storage.layout.blob_data(digest)):
            out.append(f"{name}: layer link to blob {digest}, whose data is gone")
    return out

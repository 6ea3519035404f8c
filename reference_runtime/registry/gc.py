"""Garbage collection: delete blobs (and, with ``--delete-untagged``,
manifests) that nothing tagged needs, safely while the server takes pushes.

Mark: per repository, every manifest a tag reaches, recursively through the
children of indexes and manifest lists (never deleted: distribution #3004,
#3178), plus the manifests whose ``subject`` is one of those (referrers such
as signatures). Without ``--delete-untagged`` every manifest of a repository
is kept. The kept manifests' configs and layers, and the manifests
themselves, are the marked blobs; every other blob is a candidate.

Why deleting a candidate is safe while pushes run -- the *touch + lock* scheme:

* The server touches a blob (sets its mtime to now) whenever it makes it
  reachable or tells a client it exists: committing an upload, mounting,
  a manifest PUT (for the manifest and every blob and child it names), and a
  blob HEAD (the check a client makes before skipping an upload). It does so
  while holding ``gc.lock`` *shared*, together with the existence check.
* GC takes ``cutoff = start - grace - 1 s`` (1 s for coarse filesystem
  timestamps) and deletes a candidate only while holding ``gc.lock``
  *exclusively*, and only if the blob's mtime is older than ``cutoff``.
* So for a deleted blob no reachability-creating operation completed after
  ``cutoff``: every reference to it already existed before GC started, and
  the mark phase (which lists tags and manifests after the start) saw it, or
  it is garbage. An operation that runs after the deletion finds the blob
  missing (the lock orders the two) and fails cleanly: a 404 on HEAD, a new
  upload, or ``MANIFEST_BLOB_UNKNOWN`` on a manifest PUT -- never a stored
  manifest whose blobs are gone.
* Upload sessions are private to their session directory; GC never touches
  their bytes (it only removes sessions idle for a week, like distribution's
  upload purging). A push that HEADs a blob and PUTs its manifest more than
  ``grace`` seconds later may see ``MANIFEST_BLOB_UNKNOWN`` and must push
  the blob again; it cannot end up with a broken image.

Untagged manifests are removed under the same rule (exclusive lock, mtime of
the manifest blob older than ``cutoff``, and no tag names it now), so a tag
or index pushed during the run keeps what it references.
"""
from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass, field

from reference_runtime.errors import RegistryError
from reference_runtime.registry import manifests
from reference_runtime.registry.reference import Digest
from reference_runtime.registry.storage import Storage, read_link

TIMESTAMP_SLACK = 1.0
UPLOAD_MAX_AGE = 7 * 24 * 3600
BATCH = 256


@dataclass
class Report:
    manifests_deleted: list[tuple[str, Digest]] = field(default_factory=list)
    blobs_deleted: list[Digest] = field(default_factory=list)
    blobs_spared: list[Digest] = field(default_factory=list)
    uploads_deleted: list[tuple[str, str]] = field(default_factory=list)
    marked: int = 0


def _parse(storage: Storage, digest: Digest) -> manifests.Manifest | None:
    try:
        data = storage.layout.blob_data(digest).read_bytes()
        return manifests.parse_manifest(data, None)
    except (OSError, manifests.ManifestError):
        return None


def tagged_closure(storage: Storage, name: str) -> set[Digest]:
    """Manifests of ``name`` reached from its tags, through index children and referrers."""
    revisions = set(storage.revisions(name))
    reached: set[Digest] = set()
    queue = [d for t in storage.list_tags(name) or [] if (d := storage.resolve_tag(name, t)) is not None]
    subjects: dict[Digest, list[Digest]] = {}
    for digest in revisions:
        parsed = _parse(storage, digest)
        if parsed is not None and parsed.subject is not None:
            subjects.setdefault(parsed.subject, []).append(digest)
    while queue:
        digest = queue.pop()
        if digest in reached:
            continue
        reached.add(digest)
        parsed = _parse(storage, digest)
        if parsed is not None:
            queue.extend(c for c in parsed.children if c in revisions)
        queue.extend(subjects.get(digest, []))
    return reached


def collect(storage: Storage, *, delete_untagged: bool = False, dry_run: bool = False, grace: float = 600.0,
            out=sys.stdout) -> Report:
    """One GC run, in the phases the module docstring describes, in order."""
    run = _Run(storage, dry_run, time.time(), grace, out)
    repositories = storage.repositories()
    removed = _delete_untagged_manifests(run, repositories) if delete_untagged else set()
    marked, links = _mark(run, repositories, removed)
    _sweep_blobs(run, marked, links)
    if not dry_run:
        with storage.exclusive_lock():
            _prune_referrers(storage, repositories)
    _purge_stale_uploads(run, repositories)
    report = run.report
    verb = "would delete" if dry_run else "deleted"
    print(f"{report.marked} blobs marked, {verb} {len(report.blobs_deleted)} blobs and "
          f"{len(report.manifests_deleted)} manifests, spared {len(report.blobs_spared)} recently used blobs",
          file=out)
    return report


class _Run:
    """What every phase of one run shares: the storage, the cutoff, the report, the output."""

    def __init__(self, storage: Storage, dry_run: bool, start: float, grace: float, out):
        self.storage, self.dry_run, self.start, self.out = storage, dry_run, start, out
        self.cutoff = start - grace - TIMESTAMP_SLACK
        self.report = Report()

    def say(self, line: str) -> None:
        print(f"would {line}" if self.dry_run else line, file=self.out)


def _delete_untagged_manifests(run: _Run, repositories: list[str]) -> set[tuple[str, Digest]]:
    """``--delete-untagged``: manifests no tag reaches, older than the cutoff, under the lock."""
    storage = run.storage
    removed: set[tuple[str, Digest]] = set()
    for name in repositories:
        keep = tagged_closure(storage, name)
        candidates = [d for d in storage.revisions(name) if d not in keep]
        if not candidates:
            continue
        with storage.exclusive_lock():
            tagged_now = {d for t in storage.list_tags(name) or [] if (d := storage.resolve_tag(name, t))}
            for digest in candidates:
                mtime = storage.blob_mtime(digest)
                if digest in tagged_now or (mtime is not None and mtime >= run.cutoff):
                    continue
                run.say(f"delete manifest {name}@{digest}")
                removed.add((name, digest))
                run.report.manifests_deleted.append((name, digest))
                if not run.dry_run:
                    storage.remove_revision(name, digest)
    return removed


def _mark(run: _Run, repositories: list[str], removed: set[tuple[str, Digest]]
          ) -> tuple[set[Digest], dict[Digest, list[str]]]:
    """The kept manifests and every blob they name; and which repositories link each blob."""
    storage = run.storage
    marked: set[Digest] = set()
    links: dict[Digest, list[str]] = {}
    for name in repositories:
        for digest in storage.revisions(name):
            if (name, digest) in removed:
                continue
            marked.add(digest)
            try:
                data = storage.layout.blob_data(digest).read_bytes()
            except FileNotFoundError:
                continue
            try:
                marked.update(manifests.parse_manifest(data, None).blobs)
            except manifests.ManifestError:
                # Its blobs are unknown, so no blob can be shown unneeded.
                raise RegistryError(f"cannot parse manifest {name}@{digest}; refusing to collect") from None
        for digest in storage.layer_links(name):
            links.setdefault(digest, []).append(name)
    run.report.marked = len(marked)
    return marked, links


def _sweep_blobs(run: _Run, marked: set[Digest], links: dict[Digest, list[str]]) -> None:
    """Delete unmarked blobs older than the cutoff, a batch per hold of the exclusive lock."""
    storage = run.storage
    candidates = [d for d in storage.all_blobs() if d not in marked]
    for i in range(0, len(candidates), BATCH):
        with storage.exclusive_lock():
            for digest in candidates[i:i + BATCH]:
                mtime = storage.blob_mtime(digest)
                if mtime is None:  # a run killed inside delete_blob_data left the empty directory
                    if not run.dry_run:
                        storage.delete_blob_data(digest)
                    continue
                if mtime >= run.cutoff:
                    run.report.blobs_spared.append(digest)
                    continue
                run.say(f"delete blob {digest}")
                run.report.blobs_deleted.append(digest)
                if not run.dry_run:
                    for name in links.get(digest, []):
                        storage.unlink_blob(name, digest)
                    storage.delete_blob_data(digest)


def _purge_stale_uploads(run: _Run, repositories: list[str]) -> None:
    """Upload sessions idle for :data:`UPLOAD_MAX_AGE` (distribution's upload purging)."""
    for name in repositories:
        for uuid in run.storage.stale_uploads(name, run.start - UPLOAD_MAX_AGE):
            run.say(f"delete upload {name} {uuid}")
            run.report.uploads_deleted.append((name, uuid))
            if not run.dry_run:
                shutil.rmtree(run.storage.layout.upload_dir(name, uuid), ignore_errors=True)


def _prune_referrers(storage: Storage, repositories: list[str]) -> None:
    """Referrer entries whose manifest is gone (called under the exclusive lock)."""
    for name in repositories:
        root = storage.layout.manifests(name) / "referrers"
        if not root.is_dir():
            continue
        for entry in root.glob("*/*/*"):
            algorithm, _, hex_ = entry.name.partition("-")
            link = storage.layout.revisions(name) / algorithm / hex_ / "link"
            if read_link(link) is None:
                entry.unlink(missing_ok=True)

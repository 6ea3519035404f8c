"""Filesystem storage: blobs, upload sessions, manifests, tags and referrers.

Every write is atomic (a temporary file beside the target, fsync, rename,
fsync of the directory), so a crash never leaves a blob or manifest visible
under a digest its bytes do not hash to: upload bytes live in the session
until they are verified, and only then renamed into ``blobs/``.

Operations that make a blob reachable (committing an upload, mounting,
a manifest PUT checking what it references, a HEAD telling a client it may
skip an upload) run under the *shared* GC lock and "touch" the blob (set its
mtime to now); garbage collection deletes only under the *exclusive* lock and
only blobs not touched recently. See gc.py for why that is safe.

All methods are blocking; the server calls the slow ones in a thread.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import threading
import time
import uuid as uuidlib
from collections import OrderedDict
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from reference_runtime.atomicfile import fsync_dir, write_atomic
from reference_runtime.errors import RegistryError
from reference_runtime.registry.manifests import Manifest
from reference_runtime.registry.paths import Layout
from reference_runtime.registry.reference import Digest, DigestError, parse_digest

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class BlobUnknown(RegistryError):
    """The blob is not in the repository."""


class UploadUnknown(RegistryError):
    """No such upload session."""


class DigestMismatch(RegistryError):
    """The uploaded bytes do not hash to the digest the client named."""


class MissingReferences(RegistryError):
    """A manifest names blobs or child manifests the repository lacks."""

    def __init__(self, blobs: list[Digest], manifests: list[Digest]):
        self.blobs, self.manifests = blobs, manifests
        super().__init__("manifest references unknown blobs or manifests")




def read_link(path: Path) -> Digest | None:
    try:
        text = path.read_text()
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        return parse_digest(text.strip())
    except DigestError:
        return None


def listdir(path: Path) -> list[str]:
    try:
        return [n for n in os.listdir(path) if not n.startswith(".")]
    except (FileNotFoundError, NotADirectoryError):
        return []


def remove_empty_parents(path: Path, stop: Path) -> None:
    """rmdir ``path`` and its empty parents up to (not including) ``stop``."""
    while path != stop and stop in path.parents:
        try:
            path.rmdir()
        except OSError:
            return
        path = path.parent


class Storage:
    """One registry's files under ``root`` (layout: paths.py)."""

    def __init__(self, root: Path):
        self.layout = Layout(Path(root))
        # Manifests are immutable by digest: keep recently read ones (bounded in bytes).
        self._manifest_cache: OrderedDict[Digest, bytes] = OrderedDict()
        self._manifest_cache_bytes = 0
        self._manifest_cache_limit = 32 << 20
        self._manifest_cache_lock = threading.Lock()  # read from the loop and from worker threads
        try:
            self.layout.blobs.mkdir(parents=True, exist_ok=True)
            self.layout.repositories.mkdir(parents=True, exist_ok=True)
            self.layout.gc_lock.touch(exist_ok=True)
        except OSError as exc:
            raise RegistryError(f"cannot use storage directory {root}: {exc.strerror}") from None

    # -- the GC lock ------------------------------------------------------
    @contextmanager
    def shared_lock(self):
        """Held while a blob is made reachable; GC sweeps hold it exclusively."""
        fd = os.open(self.layout.gc_lock, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    @contextmanager
    def exclusive_lock(self):
        fd = os.open(self.layout.gc_lock, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # -- blobs ------------------------------------------------------------
    def blob_size(self, name: str, digest: Digest) -> int | None:
        """The blob's size if the repository has it, else None."""
        if not os.path.exists(self.layout.layer_link(name, digest)):
            return None
        try:
            return os.stat(self.layout.blob_data(digest)).st_size
        except FileNotFoundError:
            return None

    def blob_path(self, digest: Digest) -> Path:
        return self.layout.blob_data(digest)

    def touch(self, digest: Digest) -> bool:
        try:
            os.utime(self.layout.blob_data(digest))
            return True
        except FileNotFoundError:
            return False

    def claim_blob(self, name: str, digest: Digest) -> int | None:
        """A HEAD from a pushing client: the size, and the blob touched so GC spares it a while."""
        with self.shared_lock():
            size = self.blob_size(name, digest)
            if size is not None:
                self.touch(digest)
            return size

    def mount_blob(self, source: str, target: str, digest: Digest) -> bool:
        """Link ``source``'s blob into ``target``; False when source lacks it."""
        with self.shared_lock():
            if self.blob_size(source, digest) is None or not self.touch(digest):
                return False
            self._link_layer(target, digest)
            return True

    def _link_layer(self, name: str, digest: Digest) -> None:
        link = self.layout.layer_link(name, digest)
        if read_link(link) != digest:
            write_atomic(link, str(digest).encode())

    def unlink_blob(self, name: str, digest: Digest) -> bool:
        link = self.layout.layer_link(name, digest)
        try:
            link.unlink()
        except FileNotFoundError:
            existed = False
        else:
            existed = True
        # also when the link is gone: a process killed between the two steps left its
        # directory, which layer_links() still lists (and the checker reports as dangling)
        remove_empty_parents(link.parent, self.layout.layers(name))
        return existed

    # -- uploads ----------------------------------------------------------
    def start_upload(self, name: str) -> str:
        uuid = str(uuidlib.uuid4())
        directory = self.layout.upload_dir(name, uuid)
        directory.mkdir(parents=True)
        self.layout.upload_data(name, uuid).touch()
        # Informational only (nothing trusts it after a crash), so no fsync.
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.layout.upload_startedat(name, uuid).write_text(stamp)
        return uuid

    def upload_size(self, name: str, uuid: str) -> int:
        if not UUID_RE.fullmatch(uuid):
            raise UploadUnknown(uuid)
        try:
            return os.stat(self.layout.upload_data(name, uuid)).st_size
        except (FileNotFoundError, NotADirectoryError):
            raise UploadUnknown(uuid) from None

    def upload_file(self, name: str, uuid: str) -> Path:
        return self.layout.upload_data(name, uuid)

    def cancel_upload(self, name: str, uuid: str) -> None:
        self.upload_size(name, uuid)
        shutil.rmtree(self.layout.upload_dir(name, uuid), ignore_errors=True)

    def commit_upload(self, name: str, uuid: str, digest: Digest, hashed: "hashlib._Hash | None" = None) -> int:
        """Verify the session's bytes against ``digest`` and make them the blob.

        ``hashed`` is the server's running hash of the whole session (sha256),
        saving a second read. On a mismatch the session is discarded and
        nothing is stored.
        """
        data = self.layout.upload_data(name, uuid)
        size = self.upload_size(name, uuid)
        if hashed is None or hashed.name != digest.algorithm:
            hashed = hashlib.new(digest.algorithm)
            with open(data, "rb") as f:
                while chunk := f.read(1 << 20):
                    hashed.update(chunk)
        if hashed.hexdigest() != digest.hex:
            shutil.rmtree(self.layout.upload_dir(name, uuid), ignore_errors=True)
            raise DigestMismatch(f"upload does not hash to {digest}")
        with open(data, "rb+") as f:
            os.fsync(f.fileno())
        with self.shared_lock():
            target = self.layout.blob_data(digest)
            if not os.path.exists(target):
                target.parent.mkdir(parents=True, exist_ok=True)
                os.rename(data, target)
                fsync_dir(target.parent)
            self.touch(digest)
            self._link_layer(name, digest)
        shutil.rmtree(self.layout.upload_dir(name, uuid), ignore_errors=True)
        return size

    # -- manifests --------------------------------------------------------
    def resolve_tag(self, name: str, tag: str) -> Digest | None:
        return read_link(self.layout.tag_link(name, tag))

    def has_manifest(self, name: str, digest: Digest) -> bool:
        return os.path.exists(self.layout.revision_link(name, digest))

    def read_manifest(self, name: str, digest: Digest) -> bytes | None:
        """The manifest's bytes if the repository has it."""
        if not self.has_manifest(name, digest):
            return None
        with self._manifest_cache_lock:
            data = self._manifest_cache.get(digest)
            if data is not None:
                self._manifest_cache.move_to_end(digest)
                return data
        try:
            data = self.layout.blob_data(digest).read_bytes()
        except FileNotFoundError:
            return None
        with self._manifest_cache_lock:
            if digest not in self._manifest_cache:
                self._manifest_cache[digest] = data
                self._manifest_cache_bytes += len(data)
            while self._manifest_cache_bytes > self._manifest_cache_limit:
                self._manifest_cache_bytes -= len(self._manifest_cache.popitem(last=False)[1])
        return data

    def put_manifest(self, name: str, data: bytes, digest: Digest, manifest: Manifest, tag: str | None) -> None:
        """Store a verified manifest; every blob and child it names must be in the repository."""
        with self.shared_lock():
            missing_blobs = [d for d in manifest.blobs if self.blob_size(name, d) is None]
            missing_children = [d for d in manifest.children
                                if not self.has_manifest(name, d) or not os.path.exists(self.layout.blob_data(d))]
            if missing_blobs or missing_children:
                raise MissingReferences(missing_blobs, missing_children)
            for referenced in (*manifest.blobs, *manifest.children):
                self.touch(referenced)
            target = self.layout.blob_data(digest)
            if os.path.exists(target):
                self.touch(digest)
            else:
                write_atomic(target, data)
            link = self.layout.revision_link(name, digest)
            if not link.exists():
                write_atomic(link, str(digest).encode())
            if manifest.subject is not None:
                entry = self.layout.referrer_entry(name, manifest.subject, digest)
                if not entry.exists():
                    write_atomic(entry, b"")
            if tag is not None:
                tag_link = self.layout.tag_link(name, tag)
                if read_link(tag_link) != digest:
                    write_atomic(tag_link, str(digest).encode())

    def list_tags(self, name: str) -> list[str] | None:
        """Sorted tags, or None when the repository does not exist."""
        if not self.layout.repository(name).is_dir() or not (
                self.layout.manifests(name).is_dir() or self.layout.layers(name).is_dir()):
            return None
        tags = self.layout.tags(name)
        return sorted(t for t in listdir(tags) if os.path.exists(tags / t / "current" / "link"))

    def tags_of(self, name: str, digest: Digest) -> list[str]:
        return [t for t in self.list_tags(name) or [] if self.resolve_tag(name, t) == digest]

    def delete_tag(self, name: str, tag: str) -> bool:
        directory = self.layout.tag_dir(name, tag)
        if self.resolve_tag(name, tag) is None:
            return False
        shutil.rmtree(directory, ignore_errors=True)
        return True

    def delete_manifest(self, name: str, digest: Digest) -> bool:
        """Remove the manifest from the repository with every tag naming it (as distribution)."""
        link = self.layout.revision_link(name, digest)
        if not link.exists():
            return False
        for tag in self.tags_of(name, digest):
            self.delete_tag(name, tag)
        self.remove_revision(name, digest)
        return True

    def remove_revision(self, name: str, digest: Digest) -> None:
        link = self.layout.revision_link(name, digest)
        link.unlink(missing_ok=True)
        remove_empty_parents(link.parent, self.layout.revisions(name))

    def revisions(self, name: str) -> list[Digest]:
        found = []
        for algorithm in listdir(self.layout.revisions(name)):
            for hex_ in listdir(self.layout.revisions(name) / algorithm):
                try:
                    found.append(parse_digest(f"{algorithm}:{hex_}"))
                except DigestError:
                    continue
        return found

    def referrers(self, name: str, subject: Digest) -> list[Digest]:
        """Manifests of the repository whose subject is ``subject`` (still present)."""
        found = []
        for entry in sorted(listdir(self.layout.referrers(name, subject))):
            algorithm, _, hex_ = entry.partition("-")
            try:
                digest = parse_digest(f"{algorithm}:{hex_}")
            except DigestError:
                continue
            if self.has_manifest(name, digest):
                found.append(digest)
        return found

    # -- repositories -----------------------------------------------------
    def repositories(self) -> list[str]:
        """Every repository name, sorted lexically."""
        root = self.layout.repositories
        names = []
        for directory, subdirs, _files in os.walk(root):
            if "_manifests" in subdirs or "_layers" in subdirs:
                names.append(os.path.relpath(directory, root))
            subdirs[:] = [d for d in subdirs if not d.startswith(("_", "."))]
        return sorted(names)

    def all_blobs(self) -> list[Digest]:
        found = []
        for algorithm in listdir(self.layout.blobs):
            for prefix in listdir(self.layout.blobs / algorithm):
                for hex_ in listdir(self.layout.blobs / algorithm / prefix):
                    try:
                        found.append(parse_digest(f"{algorithm}:{hex_}"))
                    except DigestError:
                        continue
        return found

    def blob_mtime(self, digest: Digest) -> float | None:
        try:
            return os.stat(self.layout.blob_data(digest)).st_mtime
        except FileNotFoundError:
            return None

    def delete_blob_data(self, digest: Digest) -> None:
        data = self.layout.blob_data(digest)
        data.unlink(missing_ok=True)
        remove_empty_parents(data.parent, self.layout.blobs)

    def layer_links(self, name: str) -> list[Digest]:
        found = []
        for algorithm in listdir(self.layout.layers(name)):
            for hex_ in listdir(self.layout.layers(name) / algorithm):
                try:
                    found.append(parse_digest(f"{algorithm}:{hex_}"))
                except DigestError:
                    continue
        return found

    def stale_uploads(self, name: str, older_than: float) -> list[str]:
        stale = []
        for uuid in listdir(self.layout.uploads(name)):
            try:
                if os.stat(self.layout.upload_dir(name, uuid)).st_mtime < older_than and \
                        os.stat(self.layout.upload_data(name, uuid)).st_mtime < older_than:
                    stale.append(uuid)
            except FileNotFoundError:
                continue
        return stale

    def now(self) -> float:
        return time.time()

"""Where everything lives under ``storage.filesystem.rootdirectory``, pure.

The layout follows distribution's (``registry/storage/paths.go``) closely
enough to be familiar; it is not meant to be shared with distribution::

    <root>/
    ├── gc.lock                                   flock: shared by commits, exclusive by GC sweeps
    ├── blobs/
    │   └── <alg>/<hex[:2]>/<hex>/data            content, immutable; mtime = last "use" (see gc.py)
    └── repositories/
        └── <name...>/                            the name's components as directories
            ├── _layers/<alg>/<hex>/link          the blob is part of this repository
            ├── _uploads/<uuid>/data              an upload session's bytes so far
            │                  /startedat         when the session began (RFC 3339)
            └── _manifests/
                ├── revisions/<alg>/<hex>/link    the manifest (a blob) is in this repository
                ├── tags/<tag>/current/link       the tag's digest
                └── referrers/<alg>/<hex>/<alg>-<hex>
                                                  a manifest of this repository whose subject
                                                  is <alg>:<hex> (empty file; the name says it)

Names of repositories never start with ``_`` (the name grammar forbids it),
so ``_layers``, ``_uploads`` and ``_manifests`` cannot collide with a name
component. Temporary files start with ``.tmp-`` and sit beside their target
(same filesystem, so ``rename`` is atomic); listings skip dot names.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reference_runtime.registry.reference import Digest


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def gc_lock(self) -> Path:
        return self.root / "gc.lock"

    @property
    def blobs(self) -> Path:
        return self.root / "blobs"

    @property
    def repositories(self) -> Path:
        return self.root / "repositories"

    def blob_dir(self, digest: Digest) -> Path:
        return self.blobs / digest.algorithm / digest.hex[:2] / digest.hex

    def blob_data(self, digest: Digest) -> Path:
        return self.blob_dir(digest) / "data"

    def repository(self, name: str) -> Path:
        return self.repositories / name

    def layer_link(self, name: str, digest: Digest) -> Path:
        return self.repository(name) / "_layers" / digest.algorithm / digest.hex / "link"

    def layers(self, name: str) -> Path:
        return self.repository(name) / "_layers"

    def uploads(self, name: str) -> Path:
        return self.repository(name) / "_uploads"

    def upload_dir(self, name: str, uuid: str) -> Path:
        return self.uploads(name) / uuid

    def upload_data(self, name: str, uuid: str) -> Path:
        return self.upload_dir(name, uuid) / "data"

    def upload_startedat(self, name: str, uuid: str) -> Path:
        return self.upload_dir(name, uuid) / "startedat"

    def manifests(self, name: str) -> Path:
        return self.repository(name) / "_manifests"

    def revisions(self, name: str) -> Path:
        return self.manifests(name) / "revisions"

    def revision_link(self, name: str, digest: Digest) -> Path:
        return self.revisions(name) / digest.algorithm / digest.hex / "link"

    def tags(self, name: str) -> Path:
        return self.manifests(name) / "tags"

    def tag_dir(self, name: str, tag: str) -> Path:
        return self.tags(name) / tag

    def tag_link(self, name: str, tag: str) -> Path:
        return self.tag_dir(name, tag) / "current" / "link"

    def referrers(self, name: str, subject: Digest) -> Path:
        return self.manifests(name) / "referrers" / subject.algorithm / subject.hex

    def referrer_entry(self, name: str, subject: Digest, referrer: Digest) -> Path:
        return self.referrers(name, subject) / f"{referrer.algorithm}-{referrer.hex}"

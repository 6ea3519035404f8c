"""Fixtures for the image store's unit tests: the offline test image's
archives, throwaway stores, and a tar builder for hand-made layers."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from conformance.testimage import write_archives
from reference_runtime.image.store import ImageStore


@pytest.fixture(scope="session")
def archives(tmp_path_factory):
    """(ImageSet, docker-archive path, OCI-archive path) of the offline test image."""
    return write_archives(tmp_path_factory.mktemp("archives"))


@pytest.fixture
def store(tmp_path) -> ImageStore:
    return ImageStore(tmp_path / "root" / "image")


@pytest.fixture
def loaded(store, archives) -> ImageStore:
    store.load(archives[1])
    return store


def make_tar(*entries: tuple, gzip: bool = False) -> bytes:
    """A tar from (name, kind[, payload]) tuples; kind: file, dir, symlink, hardlink, chr, fifo.

    payload is the data of a file and the target of a link.
    """
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gzip else "w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, *rest in entries:
            payload = rest[0] if rest else b""
            info = tarfile.TarInfo(name)
            info.mtime, info.mode = 946684800, 0o644
            data = None
            if kind == "file":
                data = payload if isinstance(payload, bytes) else payload.encode()
                info.size = len(data)
            elif kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif kind == "symlink":
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, payload, 0o777
            elif kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, payload
            elif kind == "chr":
                info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
            else:
                raise ValueError(kind)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def tree(root: Path) -> list[str]:
    """Every path under *root*, relative, sorted (the 'nothing written' witness)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))

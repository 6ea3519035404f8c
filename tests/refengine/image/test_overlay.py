"""The unpacked layers work as overlayfs lower dirs: the kernel honours the
whiteouts the store writes, and a commit of the upper dir records deletions.

Mounts are made in the test's own directory and always unmounted."""

from __future__ import annotations

import io
import os
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest

from conformance.testimage import REPOSITORY

from .conftest import make_tar

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="overlay mounts need root")


@contextmanager
def overlay(lower: list[Path], target: Path, upper: Path | None = None, work: Path | None = None):
    """Mount overlayfs at *target*; *lower* lowest first, as layer_dirs returns it."""
    target.mkdir(parents=True, exist_ok=True)
    opts = "lowerdir=" + ":".join(str(d) for d in reversed(lower))
    if upper is not None:
        upper.mkdir(parents=True, exist_ok=True)
        work.mkdir(parents=True, exist_ok=True)
        opts += f",upperdir={upper},workdir={work}"
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(target)], check=True, capture_output=True)
    try:
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=True, capture_output=True)


def test_kernel_honours_whiteouts_and_commit_records_deletions(loaded, tmp_path):
    base = loaded.resolve(f"{REPOSITORY}:base")
    layer = make_tar(("etc", "dir"), ("etc/.wh.group", "file"), ("data", "dir"), ("data/.wh..wh..opq", "file"),
                     ("data/new.txt", "file", "new\n"))
    image = loaded.commit_tar(base, io.BytesIO(layer), config=base.config["config"], created_by="whiteouts")
    upper, work = tmp_path / "upper", tmp_path / "work"
    with overlay(loaded.layer_dirs(image), tmp_path / "merged", upper, work) as merged:
        assert (merged / "etc" / "passwd").is_file()
        assert not (merged / "etc" / "group").exists()            # .wh.group
        assert os.listdir(merged / "data") == ["new.txt"]           # opaque: seed.txt hidden
        assert (merged / "bin" / "busybox").is_file()
        (merged / "etc" / "passwd").unlink()
        (merged / "etc" / "hostname").write_text("box\n")
    committed = loaded.commit(image, upper, config=image.config["config"], created_by="rm passwd")
    dirs = loaded.layer_dirs(committed)
    assert len(dirs) == 3 and dirs[:2] == loaded.layer_dirs(image)
    with overlay(dirs, tmp_path / "again") as merged:
        assert not (merged / "etc" / "passwd").exists()
        assert not (merged / "etc" / "group").exists()
        assert (merged / "etc" / "hostname").read_text() == "box\n"
        assert os.listdir(merged / "data") == ["new.txt"]
    # and the saved layer carries the deletion in OCI form
    import tarfile
    blob = loaded.root / "blobs" / "sha256" / committed.diff_ids[-1][7:]
    with tarfile.open(blob) as tar:
        assert "etc/.wh.passwd" in tar.getnames()

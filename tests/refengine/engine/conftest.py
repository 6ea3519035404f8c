"""Fixtures of refengine's tests: a throwaway state root with the offline test
image loaded, and a ``refengine`` runner bound to it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REFENGINE = str(Path(sys.executable).with_name("refengine"))
BASE = "localhost/conformance/busybox:base"


def kernel_ready() -> bool:
    return os.geteuid() == 0 and Path("/sys/fs/cgroup").is_dir() and Path("/bin/busybox").exists()


needs_kernel = pytest.mark.skipif(not kernel_ready(), reason="needs root, cgroups and /bin/busybox")


@pytest.fixture(scope="session")
def image_archive(tmp_path_factory) -> Path:
    from conformance import testimage

    _, docker_path, _ = testimage.write_archives(tmp_path_factory.mktemp("img"))
    return docker_path


@pytest.fixture
def root(tmp_path, image_archive):
    """A state root (``Root``) with the test image loaded, for tests that call
    refengine's functions directly."""
    from reference_runtime.engine.state import Root
    from reference_runtime.image.store import ImageStore

    ImageStore(tmp_path / "image").load(image_archive)
    r = Root(str(tmp_path))
    r.ensure()
    yield r
    _remove_networking(tmp_path)


def _remove_networking(root: Path) -> None:
    """A throwaway root's bridges, rules and DNS servers (its default bridge would stay, like docker0)."""
    if (root / "networks").is_dir():
        from reference_runtime.net.cleanup import remove_all

        remove_all(str(root))


class Refengine:
    """``refengine --root ROOT ...`` as a subprocess."""

    def __init__(self, root: Path):
        self.root = root

    def __call__(self, *args: str, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([REFENGINE, "--root", str(self.root), *args], capture_output=True, text=True,
                              input=input, timeout=timeout)


@pytest.fixture
def refengine(tmp_path, image_archive):
    """A refengine with its own root and the test image; everything it made is removed after."""
    root = tmp_path / "root"
    engine = Refengine(root)
    loaded = engine("load", "-i", str(image_archive))
    assert loaded.returncode == 0, loaded.stderr
    yield engine
    listed = engine("ps", "-a", "-q", "--no-trunc")
    for cid in listed.stdout.split():
        engine("rm", "-f", "-v", cid)
    _remove_networking(root)
    shutil.rmtree(root, ignore_errors=True)

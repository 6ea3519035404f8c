"""Fixtures of refengine compose's tests: a throwaway state root with the offline
test image loaded, and ``refengine --root ROOT compose`` bound to it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REFENGINE = str(Path(sys.executable).with_name("refengine"))
BASE = "localhost/conformance/busybox:base"

needs_kernel = pytest.mark.skipif(
    not (os.geteuid() == 0 and Path("/sys/fs/cgroup").is_dir() and Path("/bin/busybox").exists()),
    reason="needs root, cgroups and /bin/busybox")


@pytest.fixture(scope="session")
def image_archive(tmp_path_factory) -> Path:
    from conformance import testimage

    _, docker_path, _ = testimage.write_archives(tmp_path_factory.mktemp("img"))
    return docker_path


class Compose:
    """``refengine --root ROOT compose -p PROJECT ...`` from a project directory."""

    def __init__(self, root: Path, directory: Path, project: str):
        self.root, self.directory, self.project = root, directory, project

    def __call__(self, *args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
        environ.pop("REFENGINE_ROOT", None)
        result = subprocess.run([REFENGINE, "--root", str(self.root), "compose", "-p", self.project, *args],
                                cwd=self.directory, capture_output=True, text=True, timeout=120,
                                env={**environ, **(env or {})}, stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise AssertionError(f"compose {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
        return result

    def engine(self, *args: str) -> str:
        return subprocess.run([REFENGINE, "--root", str(self.root), *args], capture_output=True, text=True,
                              timeout=60, check=True).stdout

    def write(self, text: str, name: str = "compose.yaml") -> None:
        (self.directory / name).write_text(text)


@pytest.fixture
def compose(tmp_path, image_archive):
    from reference_runtime.image.store import ImageStore

    root = tmp_path / "root"
    ImageStore(root / "image").load(image_archive)
    directory = tmp_path / "proj"
    directory.mkdir()
    runner = Compose(root, directory, "demo")
    yield runner
    runner("down", "-v", "-t", "0", check=False)
    if (root / "networks").is_dir():
        from reference_runtime.net.cleanup import remove_all

        remove_all(str(root))

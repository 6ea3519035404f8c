# pytester restores sys.modules after each of its tests, dropping modules that
# were first imported during one. httpx imports httpcore lazily, so a later
# import made fresh httpcore exception classes that httpx no longer mapped
# (httpcore.ConnectError escaped where httpx.ConnectError was expected).
# Importing them here puts them in every snapshot.
import os
import subprocess

import httpcore  # noqa: F401
import httpx  # noqa: F401
import pytest

pytest_plugins = ["pytester"]


@pytest.fixture
def small_disk(tmp_path):
    """A 64 MiB tmpfs under tmp_path, unmounted afterwards whatever happens: the full
    disk of refengine's and refregistry's fault-injection tests."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,mode=0755", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)

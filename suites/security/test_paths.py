"""Masked and read-only paths in /proc and /sys: what the kernel exposes there
about the host is hidden (masked: empty or unreadable) or cannot be written."""

from __future__ import annotations

import os

import pytest

from .conftest import SECURITY_OPT

#: The lists are not in docker's documentation (it names only "masked paths, read-only
#: paths"): they are MaskedPaths and ReadonlyPaths of every non-privileged container in
#: moby's oci/defaults.go (DEFAULTS_GO), here those a host's kernel may have.
DEFAULTS_GO = "https://github.com/moby/moby/blob/v20.10.24/oci/defaults.go"
MASKED = ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/proc/scsi", "/proc/acpi",
          "/sys/firmware")
READ_ONLY = ("/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs")
SPEC = ("--security-opt systempaths=unconfined turns off the confinement of system paths (masked paths, "
        "read-only paths); the default lists are moby's oci/defaults.go (" + DEFAULTS_GO + "): masked "
        + ", ".join(MASKED) + "; read-only " + ", ".join(READ_ONLY))


def _host_has(path: str) -> None:
    if not os.path.exists(path):
        pytest.skip(f"{path} does not exist on this host's kernel: nothing to mask")


def _host_shows_something(path: str) -> None:
    """A check that an empty path stays empty proves nothing."""
    try:
        if os.path.isdir(path):
            empty = not os.listdir(path)
        else:
            with open(path, "rb") as f:
                empty = not f.read(1)
    except OSError:
        empty = True
    if empty:
        pytest.skip(f"{path} shows nothing on this host either: masking it cannot be observed")


@pytest.mark.parametrize("path", MASKED)
@pytest.mark.spec(SECURITY_OPT, SPEC)
def test_masked_path_shows_nothing(engine, image, path):
    _host_has(path)
    _host_shows_something(path)
    if os.path.isdir(path):
        script = f"ls -A {path} 2>/dev/null | wc -l"
        what = "entries"
    else:
        script = f"cat {path} 2>/dev/null | head -c 65536 | wc -c"
        what = "bytes"
    r = engine.run(["--rm", image, "sh", "-c", script])
    assert r.returncode == 0 and r.stdout.strip() == "0", \
        f"{engine.name}: masked {path} shows {r.stdout.strip()} {what} in a container (want 0):\n{r}"


def _mount_options(mountinfo: str) -> dict[str, set[str]]:
    """mount point -> per-mount options, the last mount on each point winning."""
    out = {}
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 5:
            out[fields[4]] = set(fields[5].split(","))
    return out


@pytest.mark.parametrize("path", READ_ONLY)
@pytest.mark.spec(SECURITY_OPT, SPEC)
def test_read_only_path_is_mounted_read_only(engine, image, path):
    _host_has(path)
    r = engine.run(["--rm", image, "cat", "/proc/self/mountinfo"])
    assert r.returncode == 0, f"{engine.name}: cannot read mountinfo:\n{r}"
    mounts = _mount_options(r.stdout)
    assert path in mounts, \
        f"{engine.name}: {path} is not a mount of its own in the container (not read-only):\n{r.stdout}"
    assert "ro" in mounts[path], f"{engine.name}: {path} is mounted {sorted(mounts[path])}, not ro"


@pytest.mark.spec(SECURITY_OPT, SPEC)
def test_proc_sys_cannot_be_written(engine, image):
    # Opening for writing and writing nothing changes nothing, even where the mount is writable.
    r = engine.run(["--rm", image, "sh", "-c", ": > /proc/sys/kernel/domainname"])
    assert r.returncode != 0, f"{engine.name}: /proc/sys/kernel/domainname was opened for writing:\n{r}"
    assert "Read-only file system" in r.stderr, f"{engine.name}: /proc/sys refused a write, but not as read-only:\n{r}"

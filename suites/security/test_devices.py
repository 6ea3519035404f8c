"""Devices: CAP_MKNOD is in docker's default set, so a container can create a
device node, but it cannot open one it was not given (docker's devices
cgroup allows only the standard few: null, zero, full, random, urandom, tty,
console, ptmx, pts)."""

from __future__ import annotations

import os
import stat

import pytest

from .conftest import PRIVILEGE

#: /dev/loop-control: outside docker's allowed devices, and opening it (without an
#: ioctl) changes nothing even where the open is wrongly allowed.
MAJOR, MINOR = 10, 237
SCRIPT = f"mknod /tmp/cft-dev c {MAJOR} {MINOR} && echo created; (exec 3< /tmp/cft-dev) && echo opened"


@pytest.mark.spec(PRIVILEGE, "by default a container is not allowed to access any devices (only the standard "
                  "ones it is given); CAP_MKNOD is kept, so device nodes can be created")
def test_device_node_can_be_made_but_not_opened(engine, image):
    try:
        st = os.stat("/dev/loop-control")
    except FileNotFoundError:
        pytest.skip("no /dev/loop-control on this host: opening the node would fail whatever the engine does")
    if not stat.S_ISCHR(st.st_mode) or st.st_rdev != os.makedev(MAJOR, MINOR):
        pytest.skip(f"/dev/loop-control is not {MAJOR}:{MINOR} here")
    r = engine.run(["--rm", image, "sh", "-c", SCRIPT])
    lines = r.stdout.split()
    assert lines[:1] == ["created"], f"{engine.name}: mknod of a character device failed (CAP_MKNOD is default):\n{r}"
    assert "opened" not in lines, \
        f"{engine.name}: a device node ({MAJOR}:{MINOR}) made in the container could be opened:\n{r}"

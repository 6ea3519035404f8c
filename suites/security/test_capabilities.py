"""The capability set of a container: docker's documented default of 14
capabilities, ``--cap-add``/``--cap-drop`` changing exactly what they name,
``--privileged`` giving every capability and lifting seccomp."""

from __future__ import annotations

import pytest

from .conftest import DEFAULT_CAPABILITIES, PRIVILEGE, cap_mask, proc_status


def _status(engine, args: list[str]) -> dict[str, str]:
    r = engine.run(["--rm", *args, "cat", "/proc/1/status"])
    assert r.returncode == 0, f"{engine.name}: reading /proc/1/status failed:\n{r}"
    return proc_status(r.stdout)


@pytest.mark.spec(PRIVILEGE, "By default, Docker has a default list of capabilities that are kept "
                  "(the 14 listed: CHOWN, DAC_OVERRIDE, FSETID, FOWNER, MKNOD, NET_RAW, SETGID, SETUID, SETFCAP, "
                  "SETPCAP, NET_BIND_SERVICE, SYS_CHROOT, KILL, AUDIT_WRITE)")
def test_default_capability_set_is_dockers_fourteen(engine, image):
    status = _status(engine, [image])
    want = cap_mask(DEFAULT_CAPABILITIES)
    for field in ("CapEff", "CapBnd", "CapPrm"):
        got = int(status[field], 16)
        assert got == want, (f"{engine.name}: PID 1 {field} is {got:#x}; docker's default 14 capabilities are "
                             f"{want:#x} (extra bits {got & ~want:#x}, missing {want & ~got:#x})")
    assert int(status["CapAmb"], 16) == 0, f"{engine.name}: PID 1 has ambient capabilities {status['CapAmb']}"


@pytest.mark.spec(PRIVILEGE, "--cap-add: Add Linux capabilities; --cap-drop: Drop Linux capabilities")
def test_cap_add_and_cap_drop_change_exactly_what_they_name(engine, image):
    status = _status(engine, ["--cap-add", "SYS_ADMIN", "--cap-drop", "NET_RAW", image])
    want = (cap_mask(DEFAULT_CAPABILITIES) | cap_mask(["SYS_ADMIN"])) & ~cap_mask(["NET_RAW"])
    got = int(status["CapEff"], 16)
    assert got == want, f"{engine.name}: --cap-add SYS_ADMIN --cap-drop NET_RAW gave CapEff {got:#x}, want {want:#x}"


@pytest.mark.spec(PRIVILEGE, "--cap-drop ALL: the container keeps no capability")
def test_cap_drop_all_leaves_none(engine, image):
    status = _status(engine, ["--cap-drop", "ALL", image])
    for field in ("CapEff", "CapBnd"):
        assert int(status[field], 16) == 0, f"{engine.name}: --cap-drop ALL left {field} {status[field]}"


@pytest.mark.spec(PRIVILEGE, "The --privileged flag gives all capabilities to the container ... the container "
                  "can then do almost everything that the host can do (no default seccomp profile either)")
def test_privileged_gives_every_capability_and_no_seccomp(engine, image):
    with open("/proc/self/status") as f:
        host_bounding = int(proc_status(f.read())["CapBnd"], 16)
    with open("/proc/sys/kernel/cap_last_cap") as f:
        every = (1 << (int(f.read()) + 1)) - 1
    if host_bounding != every:
        # runc asks for every capability it knows and cannot start the container
        # (docker 20.10: "unable to apply caps"): a property of the host, not of the engine.
        pytest.skip(f"this host's own bounding set is {host_bounding:#x}, not every capability ({every:#x}; "
                    f"missing {every & ~host_bounding:#x}): --privileged cannot be observed here")
    r = engine.run(["--rm", "--privileged", image, "cat", "/proc/1/status"])
    assert r.returncode == 0, f"{engine.name}: a --privileged container did not start:\n{r}"
    status = proc_status(r.stdout)
    got = int(status["CapEff"], 16)
    assert got == host_bounding, (f"{engine.name}: --privileged PID 1 has CapEff {got:#x}; every capability this host "
                                  f"can give is {host_bounding:#x} (missing {host_bounding & ~got:#x})")
    assert status.get("Seccomp") == "0", f"{engine.name}: --privileged PID 1 has Seccomp: {status.get('Seccomp')}"

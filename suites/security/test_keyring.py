"""The kernel keyring is not namespaced: a container must neither use it
(docker's seccomp profile refuses keyctl/add_key) nor, even unconfined, share
the session keyring of whoever started it (runc joins a fresh session keyring
for every container). A child process of the check puts a key in a fresh
session keyring of its own and runs the engine; the container looks for it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import pytest

from conformance.engine import CommandResult

from .conftest import PROBES, SECCOMP, probe_results

#: Run in a child process, so that the pytest worker never changes its own session
#: keyring: join a fresh session keyring, add a key to it, run the engine call given
#: as argv[3:] (which inherits the keyring), then revoke the key. What the child did
#: is written as JSON to argv[2] before the engine call: {"session": N} or {"skip": why}.
_CHILD = r"""
import ctypes, json, os, subprocess, sys
libc = ctypes.CDLL(None, use_errno=True)
nr = {"x86_64": {"add_key": 248, "keyctl": 250}, "aarch64": {"add_key": 217, "keyctl": 219}}[os.uname().machine]
description, report, argv = sys.argv[1].encode(), sys.argv[2], sys.argv[3:]
def done(**what):
    with open(report, "w") as f:
        json.dump(what, f)
session = libc.syscall(nr["keyctl"], 1, None, 0, 0, 0)  # KEYCTL_JOIN_SESSION_KEYRING, anonymous
if session == -1:
    done(skip="this kernel has no usable keyrings: " + os.strerror(ctypes.get_errno()))
    sys.exit(0)
key = libc.syscall(nr["add_key"], b"user", description, b"secret", 6, -3)  # KEY_SPEC_SESSION_KEYRING
if key == -1:
    done(skip="add_key failed on the host: " + os.strerror(ctypes.get_errno()))
    sys.exit(0)
done(session=session)
try:
    code = subprocess.run(argv).returncode
finally:
    libc.syscall(nr["keyctl"], 3, key, 0, 0, 0)  # KEYCTL_REVOKE
sys.exit(code)
"""


def _key_description() -> str:
    return f"cft-{uuid.uuid4().hex[:12]}"


def _run_with_a_key(engine, tmp_path, description: str, args: list[str]) -> tuple[CommandResult, int]:
    """``run ARGS`` started from a child process holding the key DESCRIPTION in a fresh
    session keyring of its own: (the call, that keyring's serial)."""
    report = tmp_path / "keyring.json"
    argv = (sys.executable, "-c", _CHILD, description, str(report), *engine.profile.command,
            "run", "--name", engine.new_name(), "--label", engine.label, *args)
    start = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, errors="replace", timeout=120,
                          env={**os.environ, **engine.profile.env}, cwd=engine.workdir)
    result = CommandResult(argv, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)
    if not report.exists():
        raise AssertionError(f"{engine.name}: the keyring helper did not run:\n{result}")
    child = json.loads(report.read_text())
    if "skip" in child:
        pytest.skip(child["skip"])
    return result, child["session"]


@pytest.mark.spec(SECCOMP, "keyctl: Prevent containers from using the kernel keyring, which is not namespaced")
def test_callers_key_is_not_reachable(engine, image, probes, tmp_path):
    description = _key_description()
    r, _ = _run_with_a_key(engine, tmp_path, description, ["--rm", "-v", f"{probes}:{PROBES}:ro", image,
                                                           f"{PROBES}/sysprobe", "keysearch", description])
    got = probe_results(r.stdout).get("keysearch")
    assert got is not None, f"{engine.name}: the key probe did not run:\n{r}"
    assert got[0] == -1, f"{engine.name}: a container found the caller's key {description!r} (serial {got[0]})"


@pytest.mark.spec(SECCOMP, "keyctl: ... the kernel keyring, which is not namespaced: even without the seccomp "
                  "profile, the container gets a session keyring of its own, not its caller's")
def test_unconfined_container_has_its_own_session_keyring(engine, image, probes, tmp_path):
    description = _key_description()
    script = f"{PROBES}/sysprobe keyctl; {PROBES}/sysprobe keysearch {description}"
    r, session = _run_with_a_key(engine, tmp_path, description,
                                 ["--rm", "--security-opt", "seccomp=unconfined", "-v", f"{probes}:{PROBES}:ro",
                                  image, "sh", "-c", script])
    got = probe_results(r.stdout)
    assert set(got) == {"keyctl", "keysearch"}, f"{engine.name}: the key probes did not run:\n{r}"
    assert got["keyctl"][0] > 0, \
        f"{engine.name}: an unconfined container could not read its session keyring: keyctl gave {got['keyctl']}"
    assert got["keyctl"][0] != session, \
        f"{engine.name}: the container's session keyring is its caller's ({session})"
    assert got["keysearch"][0] == -1, \
        f"{engine.name}: an unconfined container found the caller's key {description!r} (serial {got['keysearch'][0]})"

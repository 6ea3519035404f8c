"""The kernel keyring is not namespaced: a container must neither use it
(docker's seccomp profile refuses keyctl/add_key) nor, even unconfined, share
the session keyring of whoever started it (runc joins a fresh session keyring
for every container). The check puts a key in its own session keyring and
looks for it from inside."""

from __future__ import annotations

import ctypes
import os
import uuid

import pytest

from .conftest import PROBES, SECCOMP, probe_results

_libc = ctypes.CDLL(None, use_errno=True)
_NR = {"x86_64": {"add_key": 248, "keyctl": 250}, "aarch64": {"add_key": 217, "keyctl": 219}}[os.uname().machine]
KEY_SPEC_SESSION_KEYRING = -3
KEYCTL_GET_KEYRING_ID, KEYCTL_JOIN_SESSION_KEYRING, KEYCTL_REVOKE = 0, 1, 3


def _keyctl(*args) -> int:
    result = _libc.syscall(_NR["keyctl"], *args)
    if result == -1:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return result


@pytest.fixture
def host_key():
    """(description, session keyring serial): a key in a fresh session keyring of this
    process, which the engine process then inherits; revoked afterwards."""
    try:
        session = _keyctl(KEYCTL_JOIN_SESSION_KEYRING, None, 0, 0, 0)
    except OSError as exc:
        pytest.skip(f"this kernel has no usable keyrings: {exc}")
    description = f"cft-{uuid.uuid4().hex[:12]}".encode()
    key = _libc.syscall(_NR["add_key"], b"user", description, b"secret", 6, KEY_SPEC_SESSION_KEYRING)
    if key == -1:
        pytest.skip(f"add_key failed on the host: {os.strerror(ctypes.get_errno())}")
    yield description.decode(), session
    try:
        _keyctl(KEYCTL_REVOKE, key, 0, 0, 0)
    except OSError:
        pass


@pytest.mark.spec(SECCOMP, "keyctl: Prevent containers from using the kernel keyring, which is not namespaced")
def test_callers_key_is_not_reachable(engine, image, probes, host_key):
    description, _ = host_key
    r = engine.run(["--rm", "-v", f"{probes}:{PROBES}:ro", image, f"{PROBES}/sysprobe", "keysearch", description])
    got = probe_results(r.stdout).get("keysearch")
    assert got is not None, f"{engine.name}: the key probe did not run:\n{r}"
    assert got[0] == -1, f"{engine.name}: a container found the caller's key {description!r} (serial {got[0]})"


@pytest.mark.spec(SECCOMP, "keyctl: ... the kernel keyring, which is not namespaced: even without the seccomp "
                  "profile, the container gets a session keyring of its own, not its caller's")
def test_unconfined_container_has_its_own_session_keyring(engine, image, probes, host_key):
    description, session = host_key
    script = f"{PROBES}/sysprobe keyctl; {PROBES}/sysprobe keysearch {description}"
    r = engine.run(["--rm", "--security-opt", "seccomp=unconfined", "-v", f"{probes}:{PROBES}:ro", image,
                    "sh", "-c", script])
    got = probe_results(r.stdout)
    assert set(got) == {"keyctl", "keysearch"}, f"{engine.name}: the key probes did not run:\n{r}"
    assert got["keyctl"][0] != session, \
        f"{engine.name}: the container's session keyring is its caller's ({session})"
    assert got["keysearch"][0] == -1, \
        f"{engine.name}: an unconfined container found the caller's key {description!r} (serial {got['keysearch'][0]})"

"""The session keyring of a container process.

Keyrings are not namespaced: a process inherits its parent's session keyring,
so a container started from a shell would share the caller's keys. Like runc,
every process entering a container first joins a new anonymous session
keyring (keyctl(2) KEYCTL_JOIN_SESSION_KEYRING with no name). Python has no
keyctl wrapper, hence the raw syscall.
"""

from __future__ import annotations

import ctypes
import errno
import os

_libc = ctypes.CDLL(None, use_errno=True)
_KEYCTL = {"x86_64": 250, "aarch64": 219}[os.uname().machine]
KEYCTL_GET_KEYRING_ID = 0
KEYCTL_JOIN_SESSION_KEYRING = 1
KEY_SPEC_SESSION_KEYRING = -3


def join_new_session_keyring() -> int:
    """Join a fresh anonymous session keyring; its serial, or 0 on a kernel without keys."""
    serial = _libc.syscall(_KEYCTL, KEYCTL_JOIN_SESSION_KEYRING, None, 0, 0, 0)
    if serial == -1:
        err = ctypes.get_errno()
        if err == errno.ENOSYS:
            return 0
        raise OSError(err, f"keyctl(JOIN_SESSION_KEYRING): {os.strerror(err)}")
    return serial


def session_keyring_id() -> int:
    """The serial of the caller's session keyring (without creating one)."""
    serial = _libc.syscall(_KEYCTL, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0, 0, 0)
    if serial == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"keyctl(GET_KEYRING_ID): {os.strerror(err)}")
    return serial

"""The container's terminal (``-t``): a pseudo-terminal made inside the
container's own devpts instance, the way runc does it with its console
socket, so that the container sees /dev/pts/N of its own /dev/pts (``tty``
names it) and no terminal of the host is ever reachable from inside.

The container's first process (:func:`attach_in_container`, after
pivot_root, before it drops privileges) opens the pair from /dev/ptmx,
makes the terminal its controlling terminal and its stdin/stdout/stderr,
and sends the master side to the supervisor over a unix socket
(:func:`receive_master`). The supervisor reads the container's output from
the master (one stream, "stdout", as docker logs it) and types the caller's
input into it; the terminal itself does the rest (echo, CRLF, ^C).

Imported before pivot_root: nothing here may load a module afterwards.
"""

from __future__ import annotations

import fcntl
import os
import sys
import termios

import _socket  # not socket: its import (enum, ...) costs milliseconds

#: 24 rows, 80 columns: a terminal's size when the caller has none to copy.
DEFAULT_SIZE = b"\x18\x00\x50\x00\x00\x00\x00\x00"


def socketpair() -> tuple[_socket.socket, _socket.socket]:
    """(supervisor's end, container's end) of the socket the master travels on."""
    return _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)


def caller_size(*fds: int) -> bytes:
    """The window size (struct winsize) of the first of ``fds`` that is a terminal."""
    for fd in fds:
        if fd >= 0 and os.isatty(fd):
            try:
                return fcntl.ioctl(fd, termios.TIOCGWINSZ, DEFAULT_SIZE)
            except OSError:
                pass
    return DEFAULT_SIZE


def attach_in_container(sock_fd: int, size: bytes, owner: int) -> None:
    """In the container, after pivot_root: make the terminal (owned by the uid the
    command will run as, as runc does, so a ``--user`` can use it), hand its
    master to the supervisor over ``sock_fd`` and make the terminal this
    process's controlling terminal and stdio (which replaces ``sock_fd`` if it
    sat there)."""
    master, slave = os.openpty()  # /dev/ptmx here is the container's devpts (newinstance)
    fcntl.ioctl(slave, termios.TIOCSWINSZ, size)
    os.fchown(slave, owner, -1)
    sock = _socket.socket(fileno=sock_fd)
    try:
        sock.sendmsg([b"pty"], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, master.to_bytes(4, sys.byteorder, signed=True))])
    finally:
        sock.detach()
    os.close(master)
    os.setsid()  # a new session, whose controlling terminal this one becomes
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)


def receive_master(sock: _socket.socket) -> int:
    """The supervisor's side: the master of the terminal the container made."""
    _, ancillary, _, _ = sock.recvmsg(16, _socket.CMSG_SPACE(4), _socket.MSG_CMSG_CLOEXEC)
    for level, kind, data in ancillary:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS and len(data) >= 4:
            return int.from_bytes(data[:4], sys.byteorder, signed=True)
    raise OSError("the container sent no terminal")

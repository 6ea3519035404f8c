"""The status pipe from a container's supervisor to the CLI that started it:
one line per message, in this order:

- ``started PID``: the container runs (a detached CLI stops reading here);
- ``exit CODE``: it stopped for good (attached CLIs only); or, instead of both,
- ``error CODE MESSAGE``: it could not start (125 setup, 126/127 the command).

End of file before ``exit``/``error`` means the supervisor died: :data:`LOST`.
"""

from __future__ import annotations

STARTED, EXIT, ERROR = "started", "exit", "error"
LOST = "lost"


def started(pid: int) -> bytes:
    return f"{STARTED} {pid}\n".encode()


def exited(code: int) -> bytes:
    return f"{EXIT} {code}\n".encode()


def failed(code: int, message: str) -> bytes:
    """One line, whatever the message holds."""
    return f"{ERROR} {code} {' '.join(message.splitlines())}\n".encode()


def decode(line: bytes) -> tuple[str, int, str]:
    """``(kind, number, message)``: the pid for STARTED, the status for EXIT and ERROR.

    >>> decode(started(42)), decode(exited(3)), decode(failed(127, "not found"))
    (('started', 42, ''), ('exit', 3, ''), ('error', 127, 'not found'))
    """
    kind, _, rest = line.decode(errors="replace").rstrip("\n").partition(" ")
    if kind == ERROR:
        code, _, message = rest.partition(" ")
        return kind, int(code), message
    return kind, int(rest), ""

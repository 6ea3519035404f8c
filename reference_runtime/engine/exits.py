"""The one mapping from an error to refengine's exit status, for every command
line entry point (:mod:`.cli` and the builder's :mod:`..build.cli`):

- flag and usage errors (:class:`UsageError`): 125 (docker's cobra errors);
- engine errors of ``run``/``create``/``start``: 125 (docker's "Error response from daemon");
- other commands' errors: 1 (docker's CLI exits 1 for "No such container" ..., ``build``,
  and ``exec`` too: a missing, stopped or paused container exits 1);
- Ctrl-C: 130; a closed output pipe: 1.

Each error is reported as one line on stderr, ``refengine: MESSAGE``; never a traceback.
"""

from __future__ import annotations

import sys

from ..errors import RefError

#: Commands whose engine errors exit 125 like docker run's "Error response from daemon".
ENGINE_125 = frozenset({"run", "create", "start"})


class UsageError(RefError):
    """A bad flag or argument: always 125."""


class StatusExit(Exception):
    """Leave with this status (already reported)."""

    def __init__(self, status: int):
        self.status = status


#: What :func:`status_of` maps; anything else is a bug and propagates.
HANDLED = (StatusExit, RefError, KeyboardInterrupt, OSError)


def status_of(exc: BaseException, command: str) -> int:
    """Report ``exc`` (one of :data:`HANDLED`), which ended ``command``; its exit status."""
    if isinstance(exc, StatusExit):
        return exc.status
    if isinstance(exc, KeyboardInterrupt):
        return 130
    if isinstance(exc, BrokenPipeError):
        return 1
    if isinstance(exc, UsageError):
        report(str(exc))
        return 125
    if isinstance(exc, RefError):
        message = str(exc)
    elif isinstance(exc, OSError):
        message = f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
    else:
        raise exc
    report(message)
    return 125 if command in ENGINE_125 else 1


def report(message: str) -> None:
    """One line on stderr, whatever the message holds."""
    line = " ".join(str(message).split("\n")).strip()
    try:
        sys.stderr.write(f"refengine: {line}\n")
        sys.stderr.flush()
    except OSError:
        pass

"""Signal names and numbers, from the interpreter's ``signal`` (its C half,
``_signal``: the ``signal`` module imports ``enum``, milliseconds of every start).

The names are docker's (moby/sys/signal, Linux): ``parse_signal`` and
``--stop-signal`` accept them with or without ``SIG``.
"""

from __future__ import annotations

import _signal

#: docker's signal names (without SIG) -> this machine's numbers.
SIGNALS = {name: getattr(_signal, "SIG" + name) for name in (
    "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "IOT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2", "PIPE",
    "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG", "XCPU", "XFSZ", "VTALRM",
    "PROF", "WINCH", "IO", "POLL", "PWR", "SYS")}

SIGHUP, SIGINT, SIGQUIT = _signal.SIGHUP, _signal.SIGINT, _signal.SIGQUIT
SIGKILL, SIGTERM, SIGUSR1, SIGUSR2 = _signal.SIGKILL, _signal.SIGTERM, _signal.SIGUSR1, _signal.SIGUSR2
SIGWINCH = _signal.SIGWINCH

#: ``signal.pidfd_send_signal`` without importing ``signal`` (and ``enum``).
pidfd_send_signal = _signal.pidfd_send_signal

#: What an attached CLI forwards to its container (docker's sig-proxy; not SIGCHLD, SIGPIPE,
#: SIGURG, SIGWINCH... which concern the CLI itself).
PROXIED = (SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGTERM, SIGWINCH)

#: What ``--init`` forwards to its child: every asynchronous signal but SIGCHLD (the
#: synchronous ones, SIGKILL and SIGSTOP cannot be caught).
FORWARDED = tuple(SIGNALS[n] for n in ("HUP", "INT", "QUIT", "USR1", "USR2", "ALRM", "TERM", "CONT", "TSTP",
                                       "TTIN", "TTOU", "URG", "WINCH", "IO", "PWR"))

"""``run -t`` and ``-it`` on a real terminal: the engine's CLI runs on a
pseudo-terminal this check opens (``pty.openpty``), as it would under a
user's terminal, and the check reads and types on the other side with
bounded waits.

The check's terminal is put in raw mode before the CLI starts, so it
translates nothing itself: a CRLF seen here was made by the container's
terminal, and a bare LF means the container had none.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import subprocess
import termios
import time
import tty
from dataclasses import dataclass

import pytest

from .conftest import RUN, RUN_EXIT_STATUS

TTY_FLAG = f"{RUN}#tty"
INTERACTIVE_FLAG = f"{RUN}#interactive"

#: How long one terminal session may take before the check gives up.
SESSION_TIMEOUT = 60.0


@dataclass(frozen=True)
class Session:
    """What a CLI call on a terminal did: its status and every byte it wrote."""

    argv: tuple[str, ...]
    returncode: int
    output: bytes

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace")

    def __str__(self) -> str:
        return f"$ {' '.join(self.argv)}\n-> exit {self.returncode}\nterminal: {self.output[-2000:]!r}"


def run_on_terminal(engine, args: list[str], *, typed: list[tuple[bytes | None, bytes]] = (),
                    timeout: float = SESSION_TIMEOUT) -> Session:
    """Run ``<engine> run --name N --label RUN ARGS`` with a pseudo-terminal as its
    controlling terminal and stdin/stdout/stderr; each ``(wait_for, data)`` of
    ``typed`` is typed once ``wait_for`` has appeared in the output (None: at once).
    Reads until the CLI closes the terminal and exits; fails after ``timeout``."""
    name = engine.new_name()
    argv = (*engine.profile.command, "run", "--name", name, "--label", engine.label, *args)
    master, slave = pty.openpty()
    tty.setraw(slave)
    fcntl.ioctl(slave, termios.TIOCSWINSZ, b"\x18\x00\x50\x00\x00\x00\x00\x00")  # 24 rows, 80 columns

    def controlling_terminal() -> None:  # in the child, after setsid: the pty becomes its terminal
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    try:
        proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env={**os.environ, **engine.profile.env},
                                start_new_session=True, preexec_fn=controlling_terminal, close_fds=True)
    finally:
        os.close(slave)
    output = b""
    pending = list(typed)
    deadline = time.monotonic() + timeout
    try:
        while True:
            while pending and (pending[0][0] is None or pending[0][0] in output):
                os.write(master, pending.pop(0)[1])
            left = deadline - time.monotonic()
            if left <= 0:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
                raise AssertionError(f"{engine.name}: the terminal session did not end within {timeout}s "
                                     f"(still waiting to type {pending[:1]!r})\n$ {' '.join(argv)}\nterminal: {output[-2000:]!r}")
            ready, _, _ = select.select([master], [], [], min(left, 0.5))
            if not ready:
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every holder of the terminal's other side is gone
                break
            if not data:
                break
            output += data
        returncode = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        os.close(master)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    return Session(argv, returncode, output)


@pytest.mark.spec(TTY_FLAG, "-it gives the container a pseudo-terminal as its standard input and output")
def test_it_gives_the_container_a_terminal(engine, image):
    s = run_on_terminal(engine, ["-it", image, "sh", "-c", "tty; test -t 0 && echo stdin=tty; test -t 1 && echo stdout=tty"])
    assert s.returncode == 0, f"{engine.name}: {s}"
    lines = s.text.replace("\r", "").split("\n")
    assert lines[0].startswith("/dev/pts/"), f"{engine.name}: `tty` in a -it container printed {lines[0]!r}, not a /dev/pts path\n{s}"
    assert "stdin=tty" in lines and "stdout=tty" in lines, f"{engine.name}: stdin or stdout is not a terminal under -it\n{s}"


@pytest.mark.spec(TTY_FLAG, "-t without -i still allocates a pseudo-terminal for the container")
def test_t_without_i_still_gives_a_terminal(engine, image):
    s = run_on_terminal(engine, ["-t", image, "sh", "-c", "tty; test -t 1 && echo stdout=tty"])
    assert s.returncode == 0, f"{engine.name}: {s}"
    lines = s.text.replace("\r", "").split("\n")
    assert lines[0].startswith("/dev/pts/") and "stdout=tty" in lines, \
        f"{engine.name}: a -t container has no terminal (`tty` said {lines[0]!r})\n{s}"


@pytest.mark.spec(RUN_EXIT_STATUS, "the container's exit status is run's exit status, with -it as without")
def test_exit_status_propagates_through_it(engine, image):
    s = run_on_terminal(engine, ["-it", image, "sh", "-c", "exit 3"])
    assert s.returncode == 3, f"{engine.name}: `sh -c 'exit 3'` under -it exited {s.returncode}; docker 3\n{s}"


@pytest.mark.spec(INTERACTIVE_FLAG, "-i keeps STDIN open: what is typed on the terminal reaches the container's shell")
def test_typed_input_reaches_the_shell(engine, image):
    # The answer is computed by the shell: the terminal's echo of the typed line cannot fake it.
    s = run_on_terminal(engine, ["-it", image, "sh"],
                        typed=[(b"# ", b"echo hi-$((6*7))\r"), (b"hi-42", b"exit 5\r")])
    assert b"hi-42" in s.output, f"{engine.name}: the typed command did not run in the container's shell\n{s}"
    assert s.returncode == 5, f"{engine.name}: the shell left with `exit 5` but run exited {s.returncode}\n{s}"


@pytest.mark.spec(TTY_FLAG, "under -t the container's terminal ends lines with CRLF (a terminal's output processing)")
def test_terminal_output_has_crlf_line_endings(engine, image):
    s = run_on_terminal(engine, ["-t", image, "sh", "-c", "echo one; echo two"])
    assert s.returncode == 0, f"{engine.name}: {s}"
    assert s.output == b"one\r\ntwo\r\n", f"{engine.name}: -t output is {s.output!r}; a terminal writes b'one\\r\\ntwo\\r\\n'"


@pytest.mark.spec(TTY_FLAG, "without -t the container has no terminal, even when the caller runs on one")
def test_without_t_there_is_no_terminal(engine, image):
    s = run_on_terminal(engine, [image, "sh", "-c", "tty; echo status=$?"])
    assert s.returncode == 0, f"{engine.name}: {s}"
    assert s.output == b"not a tty\nstatus=1\n", \
        f"{engine.name}: without -t `tty` wrote {s.output!r}; with no terminal it says b'not a tty\\n' and fails with 1"


@pytest.mark.spec(TTY_FLAG, "-it needs the client's standard input to be a terminal: from a pipe, run refuses with "
                            "'the input device is not a TTY' and exit status 1, before creating anything")
def test_it_refuses_piped_input(engine, image):
    result = engine.run(["--rm", "-it", image, "echo", "ran"], input="typed\n", timeout=60)
    assert result.returncode == 1, f"{engine.name}: -it with piped stdin exited {result.returncode}; docker refuses with 1\n{result}"
    assert "the input device is not a TTY" in result.stderr, f"{engine.name}: docker says 'the input device is not a TTY'\n{result}"
    assert "ran" not in result.stdout, f"{engine.name}: the container ran although -it was refused\n{result}"

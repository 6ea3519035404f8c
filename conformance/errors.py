"""The harness's one error type.

Everything the harness rejects (a malformed profile, an unknown engine, an
unreadable results file) raises :class:`ConformanceError` with a message that
says what to do; the CLI prints it as one line and exits 2, pytest shows it as
a usage error.
"""


class ConformanceError(Exception):
    """Bad input to the harness: the message is shown to the user as is."""

"""Known deviations: the exact failure a subject is recorded to show.

A profile (engine or registry) lists each deviation as a table keyed by the
check id::

    [deviations."runtime/test_signals.py::test_oom_kill_exits_137_and_is_reported"]
    raises = "AssertionError"          # optional; the exception type's name
    match = "OOMKilled"                # required; re.search on the failure message
    evidence = '''podman 4.3.1 ... (what was seen, where, how to reproduce)'''

A check with a deviation is a strict expected failure *for that failure
only*: it counts as the deviation when it fails in its call phase with an
exception of type ``raises`` (by name, along the exception's MRO) whose
message matches ``match``. Any other failure (an engine error, a fixture
error, another assertion) is a failure, and a pass is a failure too (the
deviation no longer happens: remove it from the profile).

A race in a subject fails its check in some runs only. Such a deviation says
``intermittent = true`` (its evidence saying how often it was seen): a pass
is then a pass, and a failure is still excused only when it is the one named.

Pure: no pytest, no I/O.

>>> d = parse_deviation("s/t.py::test_x", {"match": "exit 2", "evidence": "fake 1.0 exits 2"}, source="p.toml")
>>> d.expects(AssertionError("assert exit 2 == 0"))
True
>>> d.expects(AssertionError("assert exit 3 == 0")), d.expects(OSError("exit 2"))
(False, False)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import ConformanceError

_KEYS = {"raises", "match", "evidence", "intermittent"}

#: How much of an actual failure message the results keep.
MESSAGE_LIMIT = 2000


@dataclass(frozen=True)
class Deviation:
    """A recorded deviation of one subject on one check."""

    check_id: str
    match: str
    evidence: str
    raises: str = "AssertionError"
    #: a race: the check may pass; when it fails, only with this failure
    intermittent: bool = False

    def expects(self, exc: BaseException) -> bool:
        """Whether ``exc`` is the failure this deviation names."""
        names = {cls.__name__ for cls in type(exc).__mro__}
        qualified = {f"{cls.__module__}.{cls.__qualname__}" for cls in type(exc).__mro__}
        if self.raises not in names and self.raises not in qualified:
            return False
        return re.search(self.match, failure_message(exc)) is not None

    def describe(self) -> str:
        """One line for a report: what is expected, then the evidence."""
        how = "expects, in some runs," if self.intermittent else "expects"
        return f"{how} {self.raises} matching /{self.match}/: {self.evidence}"


def failure_message(exc: BaseException) -> str:
    """The text a deviation's ``match`` is searched in: ``str(exc)`` (for an
    assertion, pytest's explanation of it), or the type name when empty."""
    try:
        text = str(exc)
    except Exception:  # an exception whose __str__ fails still has a type
        text = ""
    return text if text.strip() else type(exc).__name__


def parse_deviation(check_id: str, value: object, *, source: str) -> Deviation:
    """One ``[deviations."<check id>"]`` table, validated. Pure."""
    where = f"{source}: deviation {check_id!r}"
    if "::" not in check_id:
        raise ConformanceError(f"{where}: the key is not a check id like 'suite/test_file.py::test_name'")
    if isinstance(value, str):
        raise ConformanceError(
            f"{where}: a deviation names the failure it expects; write a table with "
            f"match = \"<regex of the failure message>\" and evidence = \"<what was seen>\" "
            f"(optional raises = \"<exception type>\", default AssertionError)")
    if not isinstance(value, dict):
        raise ConformanceError(f"{where}: must be a table with match and evidence")
    unknown = set(value) - _KEYS
    if unknown:
        raise ConformanceError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(_KEYS))}")
    match, evidence = value.get("match"), value.get("evidence")
    raises = value.get("raises", "AssertionError")
    if not isinstance(match, str) or not match.strip():
        raise ConformanceError(f"{where}: 'match' must be a non-empty regex of the expected failure message")
    try:
        re.compile(match)
    except re.error as exc:
        raise ConformanceError(f"{where}: 'match' is not a valid regex: {exc}") from None
    if not isinstance(evidence, str) or not evidence.strip():
        raise ConformanceError(f"{where}: 'evidence' must say what was seen (versions, commands, output)")
    if not isinstance(raises, str) or not re.fullmatch(r"[A-Za-z_][\w.]*", raises):
        raise ConformanceError(f"{where}: 'raises' must be an exception type name such as AssertionError")
    intermittent = value.get("intermittent", False)
    if not isinstance(intermittent, bool):
        raise ConformanceError(f"{where}: 'intermittent' must be true or false")
    return Deviation(check_id, match, evidence.strip(), raises, intermittent)


def parse_deviations(table: object, *, source: str) -> dict[str, Deviation]:
    """A profile's whole ``[deviations]`` table. Pure."""
    if not isinstance(table, dict):
        raise ConformanceError(f"{source}: [deviations] maps check ids to tables with match and evidence")
    return {check_id: parse_deviation(check_id, value, source=source) for check_id, value in table.items()}


def lookup(deviations: dict[str, Deviation], check_id: str) -> Deviation | None:
    """The deviation for a check id, or for its parametrised base.

    ``runtime/t.py::test_x[3]`` matches an entry for ``runtime/t.py::test_x``
    so one entry can cover every parameter of a check.
    """
    if check_id in deviations:
        return deviations[check_id]
    return deviations.get(check_id.split("[", 1)[0])

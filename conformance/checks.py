"""Check identity and the markers every check carries.

A *check id* names a check the same way in profiles, results and reports,
wherever pytest was started: the test's path relative to ``suites/`` plus its
name and parameters, e.g. ``runtime/test_exit_status.py::test_exit_status[3]``.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import pytest

from . import SUITES_DIR
from .deviation import MESSAGE_LIMIT, Deviation, failure_message


def check_id(item: pytest.Item) -> str:
    path = Path(item.path)
    try:
        rel = path.resolve().relative_to(SUITES_DIR.resolve()).as_posix()
    except ValueError:
        return item.nodeid
    return rel + "::" + item.nodeid.split("::", 1)[1] if "::" in item.nodeid else rel


@dataclass(frozen=True)
class Spec:
    """The documented behaviour a check verifies."""

    url: str
    text: str = ""


def spec_of(item: pytest.Item) -> Spec | None:
    """The ``@pytest.mark.spec(url, text)`` nearest to the test."""
    marker = item.get_closest_marker("spec")
    if marker is None:
        return None
    url = marker.args[0] if marker.args else marker.kwargs.get("url", "")
    text = marker.args[1] if len(marker.args) > 1 else marker.kwargs.get("text", "")
    return Spec(str(url), str(text))


def required_capabilities(item: pytest.Item) -> list[str]:
    return [cap for marker in item.iter_markers("requires") for cap in marker.args]


def capabilities_required_in(paths: Iterable[Path]) -> set[str]:
    """Every capability named by a ``requires`` marker in these Python files,
    read from their syntax (nothing is imported or collected).

    >>> import tempfile; d = Path(tempfile.mkdtemp()); f = d / "test_x.py"
    >>> _ = f.write_text("import pytest\\n@pytest.mark.requires('pause', 'swarm')\\ndef test_x(engine): pass\\n")
    >>> sorted(capabilities_required_in([f]))
    ['pause', 'swarm']
    """
    found: set[str] = set()
    for path in paths:
        try:
            tree = ast.parse(Path(path).read_text(), filename=str(path))
        except (OSError, SyntaxError):
            continue
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "requires"):
                found |= {a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)}
    return found


def unrequired_capabilities(profile, suites_dir: Path = SUITES_DIR) -> list[str]:
    """Capabilities a profile declares that no check of the suites requires:
    a profile could claim anything there, and nothing would tell."""
    required = capabilities_required_in(sorted(Path(suites_dir).rglob("*.py")))
    return sorted(set(profile.capabilities) - required)


#: The deviation a check is run under, with the subject's name (set by mark_for_subject).
DEVIATION_KEY = pytest.StashKey[tuple[str, Deviation]]()


def mark_for_subject(item: pytest.Item, kind: str, profile) -> None:
    """Tie a check to the subject it runs against (``kind:name`` in its results),
    skip it when the profile lacks a capability it needs, and run it under the
    profile's known deviation for it, if any (see :func:`pytest_runtest_makereport`).

    ``profile`` is an engine or registry profile: ``name``, ``has(cap)``,
    ``deviation(check_id) -> Deviation | None``.
    """
    item.user_properties.append(("subject", f"{kind}:{profile.name}"))
    missing = [cap for cap in required_capabilities(item) if not profile.has(cap)]
    if missing:
        item.add_marker(pytest.mark.skip(reason=f"{kind} {profile.name} lacks capability {', '.join(missing)}"))
        return
    deviation = profile.deviation(check_id(item))
    if deviation:
        item.stash[DEVIATION_KEY] = (profile.name, deviation)
        item.user_properties.append(("deviation", deviation.describe()))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A known deviation is a strict expected failure of exactly the failure it
    names: the call phase failing with that exception type and a matching
    message. Anything else keeps its own outcome, and a pass fails (the
    deviation no longer happens) unless the deviation is an intermittent one
    (a race). Setup and teardown are never excused.

    The actual failure message travels in ``user_properties`` so the results
    show it next to the recorded evidence.
    """
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    recorded = item.stash.get(DEVIATION_KEY, None)
    if report.failed:
        report.user_properties.append(("failure_message", _message(call)))
    if recorded is None or report.when != "call" or hasattr(report, "wasxfail"):
        return
    subject, deviation = recorded
    if report.failed and call.excinfo is not None and deviation.expects(call.excinfo.value):
        report.outcome = "skipped"
        report.wasxfail = f"known deviation of {subject}: {deviation.evidence}"
    elif report.failed:
        report.sections.append((
            "known deviation not matched",
            f"{subject} is recorded to fail this check with {deviation.raises} matching "
            f"/{deviation.match}/; it failed otherwise, so this is a failure.",
        ))
    elif report.passed and not deviation.intermittent:
        report.outcome = "failed"
        report.longrepr = (f"[XPASS(strict)] known deviation of {subject} no longer happens; "
                           f"remove it from the profile: {deviation.evidence}")


def _message(call: pytest.CallInfo) -> str:
    if call.excinfo is None:
        return ""
    return failure_message(call.excinfo.value)[:MESSAGE_LIMIT]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "spec(url, text): the documented behaviour a check verifies")
    config.addinivalue_line(
        "markers", "requires(*capabilities): capabilities a check needs; skipped when the subject lacks one"
    )

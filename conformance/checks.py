"""Check identity and the markers every check carries.

A *check id* names a check the same way in profiles, results and reports,
wherever pytest was started: the test's path relative to ``suites/`` plus its
name and parameters, e.g. ``runtime/test_exit_status.py::test_exit_status[3]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from . import SUITES_DIR


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


def mark_for_subject(item: pytest.Item, kind: str, profile) -> None:
    """Tie a check to the subject it runs against (``kind:name`` in its results),
    skip it when the profile lacks a capability it needs, and make a known
    deviation of the profile a strict xfail carrying the evidence.

    ``profile`` is an engine or registry profile: ``name``, ``has(cap)``,
    ``deviation(check_id)``.
    """
    item.user_properties.append(("subject", f"{kind}:{profile.name}"))
    missing = [cap for cap in required_capabilities(item) if not profile.has(cap)]
    if missing:
        item.add_marker(pytest.mark.skip(reason=f"{kind} {profile.name} lacks capability {', '.join(missing)}"))
        return
    reason = profile.deviation(check_id(item))
    if reason:
        item.add_marker(pytest.mark.xfail(reason=f"known deviation of {profile.name}: {reason}", strict=True))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "spec(url, text): the documented behaviour a check verifies")
    config.addinivalue_line(
        "markers", "requires(*capabilities): capabilities a check needs; skipped when the subject lacks one"
    )

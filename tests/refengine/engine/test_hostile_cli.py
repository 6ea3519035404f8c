"""refengine's own rule for a refused ``load`` or ``import``: one line on stderr, exit status 1.

docker documents no format for these refusals (docker 20.10 happens to print
one ``Error ...`` line; podman 4.3 prints its progress and a line per
transport it tried), so ``suites/image/test_hostile.py`` checks only that an
engine says why. refengine promises more (reference_runtime/engine/exits.py:
every error is one line, ``refengine: MESSAGE``, never a traceback; commands
other than run/create/start exit 1, as docker 20.10's load and import do):
every case of the hostile corpus that docker refuses goes through the real
``refengine load`` / ``refengine import`` here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance import hostile

from .conftest import Refengine

REFUSED = [pytest.param(case, form, id=f"{form}-{case.name}")
           for case in hostile.CASES if case.docker is None for form in case.forms]


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> Refengine:
    """One store for the whole corpus, as a suite run has."""
    return Refengine(tmp_path_factory.mktemp("hostile") / "root")


@pytest.mark.parametrize("case,form", REFUSED)
def test_a_refused_archive_is_one_error_line_and_status_1(engine, tmp_path: Path, case: hostile.Case, form: str):
    canary = hostile.make_canary(tmp_path)
    ref = f"localhost/hostile/{case.name}:{form}"
    if form == "load":
        result = engine("load", "-i", str(hostile.write_load(case, tmp_path, canary, ref)), timeout=120)
    else:
        result = engine("import", str(hostile.write_import(case, tmp_path, canary)), ref, timeout=120)
    what = f"refengine {form} of {case.name}"
    assert result.returncode == 1, f"{what} exited {result.returncode}, not 1: {result.stderr[-600:]!r}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"{what} was refused with {len(lines)} lines on stderr, not one: {lines[:6]}"
    assert lines[0].startswith("refengine: "), f"{what}: the refusal does not start with 'refengine: ': " \
                                               f"{lines[0][:300]!r}"
    assert len(lines[0]) < 600, f"{what}: the refusal is {len(lines[0])} characters long"
    assert "Traceback" not in result.stderr
    assert engine("image", "inspect", ref).returncode != 0, f"{what} was refused but left the image {ref}"

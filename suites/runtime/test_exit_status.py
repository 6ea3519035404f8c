"""Exit status of ``run``: the container's own status, or docker's reserved
125/126/127 when the engine or the command fails."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from .conftest import RUN_EXIT_STATUS

pytestmark = pytest.mark.spec(RUN_EXIT_STATUS, "docker run exits with the container's status, or 125/126/127")

# One container per example: bounded, and fixtures are per test, not per example.
EXAMPLES = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.spec(RUN_EXIT_STATUS, "the exit code of docker run is the exit code of the contained command")
def test_every_exit_status_0_to_255_is_propagated(engine, image):
    wrong = {}
    for n in range(256):
        result = engine.run(["--rm", image, "sh", "-c", f"exit {n}"])
        if result.returncode != n:
            wrong[n] = (result.returncode, result.stderr.strip()[-200:])
    assert not wrong, f"{engine.name}: exit status not propagated for {len(wrong)} values: {dict(list(wrong.items())[:8])}"


@pytest.mark.spec(RUN_EXIT_STATUS, "the exit code of docker run is the exit code of the contained command")
@EXAMPLES
@given(n=st.integers(0, 255), wraps=st.integers(0, 3))
@example(n=0, wraps=1)
@example(n=255, wraps=1)
def test_exit_status_is_taken_modulo_256(engine, image, n, wraps):
    result = engine.run(["--rm", image, "sh", "-c", f"exit {256 * wraps + n}"])
    assert result.returncode == n, str(result)


@pytest.mark.spec(RUN_EXIT_STATUS, "125: the error is with the Docker daemon itself (unknown flag)")
def test_unknown_flag_exits_125(engine, image):
    result = engine.run(["--no-such-flag", image, "true"])
    assert result.returncode == 125, str(result)
    assert "no-such-flag" in result.stderr, str(result)


@pytest.mark.spec(RUN_EXIT_STATUS, "125: the error is with the Docker daemon itself (invalid flag value)")
@pytest.mark.parametrize("flag,value", [("--memory", "lots"), ("--restart", "sometimes"), ("--pids-limit", "many")])
def test_invalid_flag_value_exits_125(engine, image, flag, value):
    result = engine.run([flag, value, image, "true"])
    assert result.returncode == 125, str(result)
    assert value in result.stderr, str(result)


@pytest.mark.spec(RUN_EXIT_STATUS, "125: the error is with the Docker daemon itself (no such image, --pull=never)")
def test_missing_image_with_pull_never_exits_125(engine):
    missing = f"localhost/conformance/absent-{engine.run_id}:none"
    result = engine.run(["--pull=never", missing, "true"])
    assert result.returncode == 125, str(result)
    assert f"absent-{engine.run_id}" in result.stderr, str(result)


@pytest.mark.spec(RUN_EXIT_STATUS, "125: the error is with the Docker daemon itself (container name in use)")
def test_name_conflict_exits_125_and_keeps_the_first(engine, image):
    first = engine.create([image, "true"])
    result = engine.run([image, "true"], name=first)
    assert result.returncode == 125, str(result)
    assert first in result.stderr, str(result)
    assert engine.state(first)["Status"] == "created"


@pytest.mark.spec(RUN_EXIT_STATUS, "126: the contained command cannot be invoked")
@pytest.mark.parametrize("command", ["/etc/passwd", "/tmp"], ids=["not-executable", "directory"])
def test_command_that_cannot_be_invoked_exits_126(engine, image, command):
    result = engine.run(["--rm", image, command])
    assert result.returncode == 126, str(result)
    assert result.stderr.strip(), str(result)


@pytest.mark.spec(RUN_EXIT_STATUS, "127: the contained command cannot be found")
@pytest.mark.parametrize("command", ["no-such-command", "/no/such/path"], ids=["not-in-path", "absolute"])
def test_command_that_cannot_be_found_exits_127(engine, image, command):
    result = engine.run(["--rm", image, command])
    assert result.returncode == 127, str(result)
    assert result.stderr.strip(), str(result)

"""The caller's environment stays outside: a container sees the image's
variables and those given with ``-e``/``--env-file``, never the environment of
the shell that ran the engine (secrets live there)."""

from __future__ import annotations

import uuid

import pytest

from .conftest import ENV, EXEC, raw_cli


@pytest.fixture
def secret() -> tuple[str, str]:
    return f"CFT_SECRET_{uuid.uuid4().hex[:8].upper()}", uuid.uuid4().hex


@pytest.mark.spec(ENV, "-e, --env: Set environment variables; a variable without a value (-e NAME) is taken from "
                  "the caller's environment, and only then")
def test_run_sees_no_caller_variable_without_e(engine, image, secret):
    name, value = secret
    r = raw_cli(engine, "run", "--rm", "--name", engine.new_name(), "--label", engine.label, image, "env",
                env={name: value})
    assert r.returncode == 0, f"{engine.name}: run failed:\n{r}"
    assert value not in r.stdout, f"{engine.name}: the caller's {name} reached the container without -e:\n{r.stdout}"
    r = raw_cli(engine, "run", "--rm", "--name", engine.new_name(), "--label", engine.label, "-e", name, image, "env",
                env={name: value})
    assert f"{name}={value}" in r.stdout.splitlines(), f"{engine.name}: -e {name} did not pass the caller's value:\n{r}"


@pytest.mark.spec(EXEC, "docker exec: the command runs with the container's environment plus -e, not the caller's")
def test_exec_sees_no_caller_variable_without_e(engine, image, secret):
    name, value = secret
    container = engine.new_name()
    engine.cli("run", "-d", "--name", container, "--label", engine.label, image, "sleep", "300", check=True)
    r = raw_cli(engine, "exec", container, "env", env={name: value})
    assert r.returncode == 0, f"{engine.name}: exec failed:\n{r}"
    assert value not in r.stdout, \
        f"{engine.name}: the caller's {name} reached an exec'd process without -e:\n{r.stdout}"

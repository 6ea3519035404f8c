"""No descriptor of the caller reaches a container: a process in a container
that scans /proc/*/fd must not find a handle on the host's filesystem (the
CVE-2024-21626 class: a leaked directory descriptor of the host is a way out
of the container's root). The check hands the engine process an inheritable
descriptor of a host directory, as a careless caller would."""

from __future__ import annotations

import os

import pytest

from .conftest import EXEC, RUN, SECURITY, START, raw_cli

#: In the container: the descriptors of process $1 and where they point ("N -> TARGET" lines).
LIST_FDS = 'ls -l /proc/$1/fd'


@pytest.fixture
def leaked_fd(tmp_path):
    """An inheritable descriptor of a host directory, closed after the check."""
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    os.set_inheritable(fd, True)
    yield fd
    os.close(fd)


def _check(engine, output: str, tmp_path, how: str) -> None:
    fds = {}
    for line in output.splitlines():
        left, arrow, target = line.partition(" -> ")
        num = left.split()[-1] if left.split() else ""
        if arrow and num.isdigit():
            fds[int(num)] = target
    assert fds, f"{engine.name}: no descriptor listed ({how}): {output!r}"
    leaked = {n: t for n, t in fds.items() if str(tmp_path) in t}
    assert not leaked, f"{engine.name}: the caller's descriptor of {tmp_path} reached the container ({how}): {leaked}"
    assert set(fds) == {0, 1, 2}, f"{engine.name}: the container process has descriptors beyond stdio ({how}): {fds}"


@pytest.mark.spec(SECURITY, "containers are isolated from the host: no descriptor of the caller of docker run "
                  "is inherited by the container (only stdin, stdout, stderr)")
def test_run_inherits_no_descriptor(engine, image, tmp_path, leaked_fd):
    name = engine.new_name()
    r = raw_cli(engine, "run", "--name", name, "--label", engine.label, image, "sh", "-c", LIST_FDS, "sh", "1",
                pass_fds=(leaked_fd,))
    assert r.returncode == 0, f"{engine.name}: run failed:\n{r}"
    _check(engine, r.stdout, tmp_path, "docker run")


@pytest.mark.spec(START, "docker start -a: the started container inherits no descriptor of the caller")
def test_start_inherits_no_descriptor(engine, image, tmp_path, leaked_fd):
    name = engine.create([image, "sh", "-c", LIST_FDS, "sh", "1"])
    r = raw_cli(engine, "start", "-a", name, pass_fds=(leaked_fd,))
    assert r.returncode == 0, f"{engine.name}: start -a failed:\n{r}"
    _check(engine, r.stdout, tmp_path, "docker start")


@pytest.mark.spec(EXEC, "docker exec runs a new command in a running container: it inherits no descriptor "
                  "of the caller")
def test_exec_inherits_no_descriptor(engine, image, tmp_path, leaked_fd):
    name = engine.new_name()
    engine.cli("run", "-d", "--name", name, "--label", engine.label, image, "sleep", "300", check=True)
    r = raw_cli(engine, "exec", name, "sh", "-c", LIST_FDS.replace("$1", "$$"), pass_fds=(leaked_fd,))
    assert r.returncode == 0, f"{engine.name}: exec failed:\n{r}"
    _check(engine, r.stdout, tmp_path, "docker exec")

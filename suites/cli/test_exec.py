"""``exec``: a new process in a running container, its exit status, its
working directory, user, environment and stdin, ``-d``, and the errors for a
container that is not running, paused or missing.

Exit statuses (verified with docker 20.10.24 on this machine): a command that
exits is exec's status; a command that cannot be invoked is 126 (as for
``run``); a command that cannot be found is 127 for ``run`` but 126 for
``exec`` in docker 20.10 (its daemon gives 126 to every failed exec start),
although docker-container-exec(1) documents 127: a known deviation of docker
(which also prints that error on stdout, not stderr: no document says which).
An exec the daemon refuses (container created, exited, paused, or missing)
exits 1 with a message naming the container: the status is observed with docker
20.10.24 (the exec reference shows the paused message, but no status).
"""

from __future__ import annotations

import time

import pytest

from .conftest import EXEC, EXEC_EXIT_STATUS

pytestmark = pytest.mark.spec(EXEC, "docker exec runs a new command in a running container")

#: A main process that idles and ends at SIGTERM at once (a bare `sleep` as PID 1
#: ignores it, and engines whose `rm -f` stops before killing would wait 10 s).
IDLE = ["sh", "-c", "trap 'exit 0' TERM; sleep 600 & wait"]


@pytest.fixture
def running(engine, image) -> str:
    """A running container that stays up for the check's lifetime."""
    name = engine.new_name()
    engine.cli("run", "-d", "--name", name, "--label", engine.label, image, *IDLE, check=True)
    engine.wait_running(name)
    return name


@pytest.mark.spec(EXEC_EXIT_STATUS, "the exit code of docker exec is the exit code of the contained command")
@pytest.mark.parametrize("status", [0, 1, 3, 42, 255])
def test_exit_status_is_the_commands(engine, running, status):
    result = engine.cli("exec", running, "sh", "-c", f"exit {status}")
    assert result.returncode == status, (
        f"{engine.name}: exec of `exit {status}` exited {result.returncode}; docker documents the command's status\n{result}")


@pytest.mark.spec(EXEC_EXIT_STATUS, "the exit code of docker exec is the exit code of the contained command "
                  "(a command killed by signal N: 128+N, as the shell reports it)")
def test_command_killed_by_a_signal_exits_128_plus_the_signal(engine, running):
    result = engine.cli("exec", running, "sh", "-c", "kill -KILL $$")
    assert result.returncode == 137, (
        f"{engine.name}: exec of a command killed by SIGKILL exited {result.returncode}; expected 128+9\n{result}")


@pytest.mark.spec(EXEC_EXIT_STATUS, "127 if the contained command cannot be found")
@pytest.mark.parametrize("command", ["no-such-command", "/no/such/path"], ids=["not-in-path", "absolute"])
def test_command_that_cannot_be_found_exits_127(engine, running, command):
    """docker-container-exec(1): 127 when the command cannot be found, as for
    ``run``. docker 20.10's daemon answers 126 for every exec that fails to
    start, so ``run`` (127) and ``exec`` (126) differ there: recorded as a
    deviation of docker."""
    result = engine.cli("exec", running, command)
    assert result.returncode == 127, (
        f"{engine.name}: exec of a missing command {command!r} exited {result.returncode}; "
        f"docker-container-exec(1) documents 127\n{result}")
    assert command in result.stdout + result.stderr, f"{engine.name}: the error does not name {command!r}\n{result}"


@pytest.mark.spec(EXEC_EXIT_STATUS, "126 if the contained command cannot be invoked")
@pytest.mark.parametrize("command", ["/etc/passwd", "/tmp"], ids=["not-executable", "directory"])
def test_command_that_cannot_be_invoked_exits_126(engine, running, command):
    result = engine.cli("exec", running, command)
    assert result.returncode == 126, (
        f"{engine.name}: exec of {command!r}, which cannot be invoked, exited {result.returncode}; "
        f"docker-container-exec(1) documents 126\n{result}")
    assert command in result.stdout + result.stderr, f"{engine.name}: the error does not name {command!r}\n{result}"


@pytest.mark.spec(EXEC, "exec runs in the working directory the container was created with; "
                  "--workdir/-w sets another one for the exec process")
def test_workdir(engine, image):
    name = engine.new_name()
    engine.cli("run", "-d", "--name", name, "--label", engine.label, "-w", "/tmp", image, *IDLE, check=True)
    engine.wait_running(name)
    default = engine.cli("exec", name, "pwd")
    assert (default.returncode, default.stdout) == (0, "/tmp\n"), (
        f"{engine.name}: exec without -w in a container created with -w /tmp ran in {default.stdout.strip()!r}\n{default}")
    chosen = engine.cli("exec", "-w", "/etc", name, "pwd")
    assert (chosen.returncode, chosen.stdout) == (0, "/etc\n"), (
        f"{engine.name}: exec -w /etc ran in {chosen.stdout.strip()!r}\n{chosen}")


@pytest.mark.spec(EXEC, "--user/-u: username or UID (format: <name|uid>[:<group|gid>])")
@pytest.mark.parametrize("user,uid,gid,name", [
    ("1234", 1234, 0, None),          # a uid not in /etc/passwd: its group is root's
    ("nobody", 65534, 65534, "nobody"),  # a name: uid and primary group from /etc/passwd
    ("1234:5678", 1234, 5678, None),
    ("nobody:0", 65534, 0, "nobody"),
], ids=["uid", "name", "uid-gid", "name-gid"])
def test_user(engine, running, user, uid, gid, name):
    result = engine.cli("exec", "-u", user, running, "sh", "-c", "id -u; id -g; id -un || true")
    assert result.returncode == 0, f"{engine.name}: exec -u {user} failed\n{result}"
    seen = result.stdout.split()
    assert seen[:2] == [str(uid), str(gid)], (
        f"{engine.name}: exec -u {user} ran as uid, gid {seen[:2]}, expected {uid}, {gid}\n{result}")
    if name is not None:
        assert seen[2:] == [name], f"{engine.name}: exec -u {user} ran as user {seen[2:]}, expected {name!r}\n{result}"


@pytest.mark.spec(EXEC, "--env/-e overrides the container's environment variables or sets additional ones, "
                  "only for the process started by that exec")
def test_env(engine, image):
    name = engine.new_name()
    engine.cli("run", "-d", "--name", name, "--label", engine.label, "-e", "FROM_RUN=run", "-e", "SHARED=run",
               image, *IDLE, check=True)
    engine.wait_running(name)
    probe = 'echo "$FROM_RUN|$SHARED|$ADDED"'
    result = engine.cli("exec", "-e", "SHARED=exec", "-e", "ADDED=new value", name, "sh", "-c", probe)
    assert (result.returncode, result.stdout) == (0, "run|exec|new value\n"), (
        f"{engine.name}: exec -e saw FROM_RUN|SHARED|ADDED = {result.stdout.strip()!r}, "
        f"expected 'run|exec|new value'\n{result}")
    later = engine.cli("exec", name, "sh", "-c", probe)
    assert (later.returncode, later.stdout) == (0, "run|run|\n"), (
        f"{engine.name}: a later exec without -e saw {later.stdout.strip()!r}, expected 'run|run|' "
        f"(-e applies to one exec only)\n{later}")


@pytest.mark.spec(EXEC, "--interactive/-i keeps STDIN open: the command reads what is piped into exec")
def test_interactive_reads_stdin(engine, running):
    text = "first line\nsecond line\n"
    result = engine.cli("exec", "-i", running, "cat", input=text)
    assert (result.returncode, result.stdout) == (0, text), (
        f"{engine.name}: exec -i cat echoed {result.stdout!r} for {text!r}\n{result}")
    closed = engine.cli("exec", running, "cat", input=text, timeout=30)
    assert (closed.returncode, closed.stdout) == (0, ""), (
        f"{engine.name}: exec without -i passed stdin to the command: cat printed {closed.stdout!r}\n{closed}")


@pytest.mark.spec(EXEC, "--detach/-d: run the command in the background (docker exec -d mycontainer touch /tmp/execWorks)")
def test_detach_returns_at_once_and_the_command_runs(engine, running):
    # The detached command waits for a file this check creates only after exec -d
    # has returned: an exec -d that waited for its command would never return
    # (the call's timeout), and no wall-clock bound is needed on a loaded machine.
    script = "while [ ! -e /tmp/go ]; do sleep 0.1; done; echo done > /tmp/detached"
    result = engine.cli("exec", "-d", running, "sh", "-c", script, timeout=60)
    assert result.returncode == 0, f"{engine.name}: exec -d failed\n{result}"
    early = engine.cli("exec", running, "cat", "/tmp/detached")
    assert early.returncode != 0, f"{engine.name}: the detached command finished before it was released: {early}"
    engine.cli("exec", running, "touch", "/tmp/go", check=True)

    def written():
        probe = engine.cli("exec", running, "cat", "/tmp/detached")
        return probe.ok and probe.stdout == "done\n"

    engine.wait_for(written, timeout=30, interval=0.5, what="the released detached exec to write /tmp/detached")


def _not_running_message_names(engine, name: str, stderr: str) -> bool:
    """docker names a not-running container by its full ID, a paused one by the name given."""
    cid = engine.inspect(name, kind="container")["Id"]
    return name in stderr or cid in stderr


@pytest.mark.spec(EXEC, "the command runs only in a running container; an exec the daemon refuses: docker 20.10 exits 1 (observed; the reference documents no status), "
                  "with an error naming the container (the documented paused case)")
@pytest.mark.parametrize("how", ["created", "exited"])
def test_exec_in_a_stopped_container_fails_with_1(engine, image, how):
    if how == "created":
        name = engine.create([image, *IDLE])
    else:
        name = engine.new_name()
        engine.cli("run", "--name", name, "--label", engine.label, image, "true", check=True)
    result = engine.cli("exec", name, "touch", "/tmp/ran")
    assert result.returncode == 1, (
        f"{engine.name}: exec into the {how} container exited {result.returncode}; docker exits 1\n{result}")
    assert _not_running_message_names(engine, name, result.stderr), (
        f"{engine.name}: the error for a {how} container does not name it\n{result}")


@pytest.mark.requires("pause")
@pytest.mark.spec(EXEC, "If the container is paused, then the docker exec command fails with an error: "
                  "Error response from daemon: Container mycontainer is paused, unpause the container before exec; "
                  "docker 20.10 exits 1 (observed; the reference documents no status)")
def test_exec_in_a_paused_container_fails_with_1(engine, running):
    engine.cli("pause", running, check=True)
    try:
        result = engine.cli("exec", running, "touch", "/tmp/ran", timeout=30)
    finally:
        engine.cli("unpause", running)
    assert result.returncode == 1, (
        f"{engine.name}: exec into a paused container exited {result.returncode}; docker 20.10 exits 1\n{result}")
    expected = f"Container {running} is paused, unpause the container before exec"
    assert expected in result.stderr, (
        f"{engine.name}: exec into a paused container said {result.stderr.strip()!r}; docker documents {expected!r}")
    ran = engine.cli("exec", running, "test", "-e", "/tmp/ran")
    assert ran.returncode == 1, f"{engine.name}: the refused command ran after unpause (it must not wait)\n{ran}"


@pytest.mark.spec(EXEC, "exec needs an existing container: a missing one is an error (docker 20.10 exits 1: observed; the reference documents no status) naming it")
def test_exec_in_a_missing_container_fails_with_1(engine):
    missing = engine.new_name(track=False)
    result = engine.cli("exec", missing, "true")
    assert result.returncode == 1, (
        f"{engine.name}: exec into a missing container exited {result.returncode}; docker exits 1\n{result}")
    assert missing in result.stderr, f"{engine.name}: the error does not name {missing}\n{result}"

"""Signals and the statuses they leave: 128 + signal number for a process
killed by a signal (130 SIGINT, 137 SIGKILL, 143 SIGTERM), stop's escalation
to SIGKILL, and the OOM killer."""

from __future__ import annotations

import signal
import subprocess

import pytest

from .conftest import DOCS, INSPECT, KILL, RESOURCES, STOP, wait_exited
STOPSIGNAL = f"{DOCS}/reference/dockerfile/#stopsignal"
STOP_SIGNAL_FLAG = f"{DOCS}/reference/cli/docker/container/run/#stop-signal"
SIG_PROXY = f"{DOCS}/reference/cli/docker/container/run/#attach"

# A PID 1 that installs no handler: the kernel drops SIGTERM/SIGINT sent to a
# namespace's init, so only SIGKILL ends it.
SLEEPER = ["sleep", "1000"]

# docker stop's default grace period is 10 s: an engine that ignores -t waits
# that long. Durations that must not include a wait for it stay under 6 s,
# which leaves 4 s either side for engine overhead on a loaded machine.
DEFAULT_STOP_TIMEOUT = 10.0
WELL_UNDER_DEFAULT = DEFAULT_STOP_TIMEOUT - 4.0


def exit_code(engine, name: str) -> int:
    result = engine.cli("wait", name, check=True, timeout=60)
    return int(result.stdout.strip().splitlines()[-1])


@pytest.mark.spec(KILL, "docker kill sends SIGKILL by default: status 137 = 128 + 9")
def test_kill_exits_137(engine, image):
    name = engine.create([image, *SLEEPER])
    engine.cli("start", name, check=True)
    engine.cli("kill", name, check=True)
    assert exit_code(engine, name) == 137
    assert engine.state(name)["ExitCode"] == 137


@pytest.mark.requires("oom-kill")
@pytest.mark.spec(RESOURCES, "a container over its --memory limit is killed by the kernel OOM killer: 137, OOMKilled")
def test_oom_kill_exits_137_and_is_reported(engine, image):
    # tail buffers a line that never ends: memory grows until the cgroup limit.
    result = engine.run(["--memory", "16m", image, "tail", "/dev/zero"], timeout=120)
    name = result.argv[result.argv.index("--name") + 1]
    assert result.returncode == 137, f"{engine.name}: run over --memory 16m exited {result.returncode}; docker documents 137\n{result}"
    state = engine.state(name)
    assert state["OOMKilled"] is True, (
        f"{engine.name}: after an OOM kill (ExitCode {state['ExitCode']}) State.OOMKilled is {state['OOMKilled']!r}; "
        f"docker reports true. State: {state}")
    assert state["ExitCode"] == 137, f"{engine.name}: inspect shows State.ExitCode {state['ExitCode']} after an OOM kill; docker shows 137"


@pytest.mark.requires("init")
@pytest.mark.spec(STOP, "docker stop sends SIGTERM; a process that dies of it exits 143 = 128 + 15")
def test_stop_of_a_process_dying_of_sigterm_exits_143(engine, image):
    name = engine.create(["--init", image, *SLEEPER])
    engine.cli("start", name, check=True)
    result = engine.cli("stop", "-t", "30", name, timeout=90)
    assert result.ok, str(result)
    # A process dying of SIGTERM ends at once: neither -t 30 nor the 10 s
    # default may have been waited out.
    assert result.duration < WELL_UNDER_DEFAULT, (
        f"{engine.name}: stop -t 30 took {result.duration:.2f}s: it waited for a grace period although SIGTERM ends the process")
    assert exit_code(engine, name) == 143


@pytest.mark.spec(STOP, "after the grace period (-t) docker stop sends SIGKILL: status 137")
def test_stop_escalates_to_sigkill_after_the_timeout(engine, image):
    name = engine.create([image, *SLEEPER])
    engine.cli("start", name, check=True)
    engine.wait_running(name)
    result = engine.cli("stop", "-t", "2", name, timeout=90)
    assert result.ok, str(result)
    # At least the 2 s grace period (SIGTERM is ignored, so nothing ends the
    # process sooner), and well under the 10 s default that an engine
    # ignoring -t waits (see WELL_UNDER_DEFAULT).
    assert 1.9 <= result.duration < WELL_UNDER_DEFAULT, (
        f"{engine.name}: stop -t 2 of a process ignoring SIGTERM took {result.duration:.2f}s; "
        f"docker waits the 2 s grace period, then sends SIGKILL")
    assert exit_code(engine, name) == 137


@pytest.mark.requires("init")
@pytest.mark.spec(KILL, "docker kill -s SIGINT delivers SIGINT: status 130 = 128 + 2")
@pytest.mark.parametrize("sig", ["SIGINT", "INT", "2"])
def test_kill_with_signal_exits_128_plus_signal(engine, image, sig):
    name = engine.create(["--init", image, *SLEEPER])
    engine.cli("start", name, check=True)
    engine.wait_running(name)
    engine.cli("kill", "-s", sig, name, check=True)
    assert exit_code(engine, name) == 130


@pytest.mark.requires("init")
@pytest.mark.spec(STOP_SIGNAL_FLAG, "--stop-signal sets the signal docker stop sends")
def test_stop_signal_flag_is_sent_by_stop(engine, image):
    name = engine.create(["--init", "--stop-signal", "SIGINT", image, *SLEEPER])
    engine.cli("start", name, check=True)
    result = engine.cli("stop", "-t", "30", name, timeout=90)
    assert result.ok, str(result)
    assert exit_code(engine, name) == 130


@pytest.mark.spec(INSPECT, "inspect shows the stop signal as Config.StopSignal, a signal name such as SIGINT")
def test_stop_signal_is_shown_by_inspect(engine, image):
    name = engine.create(["--stop-signal", "SIGINT", image, "true"])
    shown = engine.inspect(name)["Config"].get("StopSignal")
    assert shown == "SIGINT", f"{engine.name}: inspect shows Config.StopSignal {shown!r} for --stop-signal SIGINT; docker shows 'SIGINT'"


@pytest.mark.requires("init")
@pytest.mark.spec(STOPSIGNAL, "the image's STOPSIGNAL is the signal docker stop sends")
def test_image_stopsignal_is_sent_by_stop(engine, test_image):
    name = engine.create(["--init", test_image.stopsignal, *SLEEPER])
    engine.cli("start", name, check=True)
    result = engine.cli("stop", "-t", "30", name, timeout=90)
    assert result.ok, str(result)
    assert exit_code(engine, name) == 130


@pytest.mark.requires("init")
@pytest.mark.spec(SIG_PROXY, "an attached docker run proxies the signals it receives (SIGINT) to the container: 130")
def test_sigint_to_attached_run_is_proxied_and_exits_130(engine, image):
    name = engine.new_name()
    proc = engine.popen("run", "--name", name, "--label", engine.label, "--init", image, *SLEEPER,
                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        engine.wait_for(lambda: proc.poll() is None and engine.cli("inspect", name).ok and engine.state(name)["Running"],
                        timeout=30, what=f"{name} to run")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130, proc.stderr.read().decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close(), proc.stderr.close()
    assert wait_exited(engine, name)["ExitCode"] == 130

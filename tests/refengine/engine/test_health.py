"""refengine's healthchecks: the pure rules of reference_runtime/engine/health.py
(docker's client flags, the daemon's merge with the image and its checks, one
probe's result into State.Health), and, on the kernel, that probes stop with
their container and leave no process behind, a SIGKILLed supervisor included."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from reference_runtime.engine import health
from reference_runtime.engine.flags import parse_command
from reference_runtime.errors import ContainerError

from .conftest import BASE, needs_kernel

SECOND = 1_000_000_000
STARTED = "2026-01-01T00:00:00Z"


def result(exit_code: int, at: str = "2026-01-01T00:00:10Z", output: str = "") -> dict:
    return {"Start": at, "End": at, "ExitCode": exit_code, "Output": output}


def fresh() -> dict:
    state: dict = {}
    health.starting(state)
    return state["Health"]


# -- flags: docker's client ---------------------------------------------------------


def test_health_flags_parse_as_docker_durations():
    p = parse_command("run", ["--health-cmd", "curl -f x", "--health-interval", "1.5s", "--health-timeout=250ms",
                              "--health-start-period", "1m", "--health-retries", "4", BASE])
    assert health.from_flags(p.opts) == {"Test": ["CMD-SHELL", "curl -f x"], "Interval": 1_500_000_000,
                                         "Timeout": 250_000_000, "StartPeriod": 60 * SECOND, "Retries": 4}


def test_a_bad_duration_is_refused_with_pflags_message():
    with pytest.raises(ContainerError, match=r'^invalid argument "abc" for "--health-interval" flag: '
                                             r'time: invalid duration "abc"$'):
        parse_command("run", ["--health-interval", "abc", BASE])


def test_no_flags_ask_for_nothing():
    assert health.from_flags(parse_command("run", [BASE]).opts) is None


def test_flags_without_a_command_keep_the_images_test():
    opts = parse_command("run", ["--health-retries", "5", BASE]).opts
    assert health.from_flags(opts) == {"Retries": 5}


def test_no_healthcheck_is_test_none():
    assert health.from_flags(parse_command("run", ["--no-healthcheck", BASE]).opts) == {"Test": ["NONE"]}


def test_no_healthcheck_conflicts_with_health_flags():
    opts = parse_command("run", ["--no-healthcheck", "--health-cmd", "true", BASE]).opts
    with pytest.raises(ContainerError, match="^--no-healthcheck conflicts with --health-\\* options$"):
        health.from_flags(opts)


@pytest.mark.parametrize("flag, value", [("--health-interval", "-1s"), ("--health-timeout", "-1s"),
                                         ("--health-start-period", "-1s"), ("--health-retries", "-1")])
def test_negative_values_are_refused(flag, value):
    opts = parse_command("run", ["--health-cmd", "true", flag, value, BASE]).opts
    with pytest.raises(ContainerError, match=f"^{flag} cannot be negative$"):
        health.from_flags(opts)


# -- the daemon: merge with the image, checks ------------------------------------


IMAGE = {"Test": ["CMD", "/bin/check"], "Interval": 2 * SECOND, "Timeout": 3 * SECOND, "Retries": 7}


def test_the_images_healthcheck_is_the_default():
    assert health.merge(None, IMAGE) == IMAGE


def test_flags_override_the_image_field_by_field():
    assert health.merge({"Test": ["CMD-SHELL", "true"], "Retries": 2}, IMAGE) == {
        "Test": ["CMD-SHELL", "true"], "Interval": 2 * SECOND, "Timeout": 3 * SECOND, "Retries": 2}


def test_no_healthcheck_overrides_the_image():
    assert health.merge({"Test": ["NONE"]}, IMAGE)["Test"] == ["NONE"]
    assert health.probe_argv(health.merge({"Test": ["NONE"]}, IMAGE)) is None


def test_without_an_image_healthcheck_the_flags_stand():
    assert health.merge({"Test": ["CMD-SHELL", "true"]}, None) == {"Test": ["CMD-SHELL", "true"]}


@pytest.mark.parametrize("config, message", [
    ({"Interval": 999_999}, "Interval in Healthcheck cannot be less than 1ms"),
    ({"Timeout": 1}, "Timeout in Healthcheck cannot be less than 1ms"),
    ({"StartPeriod": 10}, "StartPeriod in Healthcheck cannot be less than 1ms"),
    ({"Retries": -1}, "Retries in Healthcheck cannot be negative"),
])
def test_the_daemon_refuses_durations_under_a_millisecond(config, message):
    with pytest.raises(ContainerError, match=f"^{message}$"):
        health.check(config)


def test_a_millisecond_is_allowed():
    health.check({"Test": ["CMD-SHELL", "true"], "Interval": 1_000_000, "Timeout": 1_000_000, "StartPeriod": 1_000_000})


@pytest.mark.parametrize("test, argv", [
    (["CMD", "/bin/check", "-v"], ["/bin/check", "-v"]),
    (["CMD-SHELL", "exit 1"], ["/bin/sh", "-c", "exit 1"]),
    (["NONE"], None), ([], None), (["CMD"], None), (["WHATEVER", "x"], None),
])
def test_probe_command(test, argv):
    assert health.probe_argv({"Test": test}) == argv


def test_zero_fields_take_dockers_defaults():
    assert health.timings({"Test": ["CMD", "x"]}) == (30 * SECOND, 30 * SECOND, 0, 3)


# -- State.Health ---------------------------------------------------------------------


def test_a_start_resets_status_and_streak_but_keeps_the_log():
    state = {"Health": {"Status": "unhealthy", "FailingStreak": 4, "Log": [result(1)]}}
    health.starting(state)
    assert state["Health"] == {"Status": "starting", "FailingStreak": 0, "Log": [result(1)]}


def test_a_pass_makes_it_healthy_and_is_a_change():
    h = fresh()
    assert health.record(h, result(0), retries=3, start_period_ns=0, started_at=STARTED) == "healthy"
    assert health.record(h, result(0), retries=3, start_period_ns=0, started_at=STARTED) is None
    assert h["Status"] == "healthy" and h["FailingStreak"] == 0


def test_unhealthy_after_retries_consecutive_failures():
    h = fresh()
    assert health.record(h, result(1), retries=2, start_period_ns=0, started_at=STARTED) is None
    assert (h["Status"], h["FailingStreak"]) == ("starting", 1)
    assert health.record(h, result(1), retries=2, start_period_ns=0, started_at=STARTED) == "unhealthy"
    assert health.record(h, result(1), retries=2, start_period_ns=0, started_at=STARTED) is None
    assert h["FailingStreak"] == 3


def test_a_pass_resets_the_streak():
    h = fresh()
    health.record(h, result(1), retries=3, start_period_ns=0, started_at=STARTED)
    health.record(h, result(0), retries=3, start_period_ns=0, started_at=STARTED)
    health.record(h, result(1), retries=3, start_period_ns=0, started_at=STARTED)
    assert (h["Status"], h["FailingStreak"]) == ("healthy", 1)


def test_failures_within_the_start_period_do_not_count():
    h = fresh()
    for second in range(1, 5):
        health.record(h, result(1, f"2026-01-01T00:00:0{second}Z"), retries=1, start_period_ns=5 * SECOND,
                      started_at=STARTED)
    assert (h["Status"], h["FailingStreak"], len(h["Log"])) == ("starting", 0, 4)
    assert health.record(h, result(1, "2026-01-01T00:00:05Z"), retries=1, start_period_ns=5 * SECOND,
                         started_at=STARTED) == "unhealthy"


def test_after_a_pass_failures_in_the_start_period_count():
    h = fresh()
    health.record(h, result(0, "2026-01-01T00:00:01Z"), retries=1, start_period_ns=60 * SECOND, started_at=STARTED)
    assert health.record(h, result(1, "2026-01-01T00:00:02Z"), retries=1, start_period_ns=60 * SECOND,
                         started_at=STARTED) == "unhealthy"


def test_the_log_keeps_the_last_five():
    h = fresh()
    for i in range(8):
        health.record(h, result(i % 2, output=str(i)), retries=100, start_period_ns=0, started_at=STARTED)
    assert [r["Output"] for r in h["Log"]] == ["3", "4", "5", "6", "7"]


def test_output_keeps_the_first_4096_bytes():
    assert health.output_text(b"a" * 4096, True) == "a" * 4096 + "..."
    assert health.output_text(b"\xff ok", False) == "\ufffd ok"  # invalid UTF-8, as Go's JSON writes it


def test_timeout_output_names_the_timeout_as_go_does():
    assert health.timeout_message(300_000_000) == "Health check exceeded timeout (300ms)"
    assert health.timeout_message(30 * SECOND) == "Health check exceeded timeout (30s)"
    assert health.timeout_message(90 * SECOND) == "Health check exceeded timeout (1m30s)"


@pytest.mark.parametrize("status, suffix", [("starting", " (health: starting)"), ("healthy", " (healthy)"),
                                            ("unhealthy", " (unhealthy)")])
def test_ps_status_suffix(status, suffix):
    assert health.suffix({"Health": {"Status": status}}) == suffix
    assert health.status_of({"Health": {"Status": status}}) == status


def test_no_health_is_none_and_no_suffix():
    assert health.suffix({}) == "" and health.status_of({}) == "none"


def test_stopping_reports_unhealthy():
    state = {"Health": {"Status": "healthy", "FailingStreak": 0, "Log": []}}
    health.stopped(state)
    assert state["Health"]["Status"] == "unhealthy"
    empty: dict = {}
    health.stopped(empty)
    assert empty == {}


# -- on the kernel: the prober's processes ---------------------------------------------


def _processes() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent, state, command line) of every process (a zombie has no command line)."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        comm = stat[stat.find(b"(") + 1:stat.rfind(b")")].decode(errors="replace")
        out[int(entry)] = (int(fields[1]), fields[0].decode(), f"[{comm}] {cmdline}")
    return out


def _live_with(marker: str) -> list[str]:
    return [f"{pid} {cmd}" for pid, (_, st, cmd) in _processes().items() if marker in cmd and st != "Z"]


def _state(refengine, name: str) -> dict:
    return json.loads(refengine("inspect", "--format", "{{json .State}}", name).stdout)


def _wait(predicate, what: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.1)


def _probing(refengine, marker: str) -> str:
    """A container whose slow probe (``sleep`` with a marker argument) is under way."""
    name = f"hc-{os.urandom(3).hex()}"
    run = refengine("run", "-d", "--name", name, "--health-cmd", f"sleep {marker}", "--health-interval", "100ms",
                    "--health-timeout", "30s", BASE, "sleep", "300")
    assert run.returncode == 0, run.stderr
    _wait(lambda: _live_with(f"sleep {marker}"), "the probe to run")
    return name


@needs_kernel
def test_stop_ends_the_probe_under_way(refengine):
    marker = "86401"
    name = _probing(refengine, marker)
    stopped = refengine("stop", "-t", "0", name)
    assert stopped.returncode == 0, stopped.stderr
    _wait(lambda: not _live_with(f"sleep {marker}"), "the probe to end with its container", timeout=10)
    state = _state(refengine, name)
    assert state["Health"]["Status"] == "unhealthy", state
    assert state["Health"]["Log"] == [], f"a probe killed with its container was recorded: {state['Health']}"


@needs_kernel
def test_a_sigkilled_supervisor_leaves_no_prober_or_probe(refengine):
    marker = "86402"
    name = _probing(refengine, marker)
    cid = refengine("inspect", "--format", "{{.Id}}", name).stdout.strip()
    with open(refengine.root / "containers" / cid / "state.json") as f:
        supervisor = json.load(f)["Supervisor"]["Pid"]
    probers = [pid for pid, (parent, st, cmd) in _processes().items()
               if parent == supervisor and st != "Z" and cmd.startswith("[refengine-hc]")]
    assert probers, f"no prober process under the supervisor {supervisor}"
    os.kill(supervisor, signal.SIGKILL)
    _wait(lambda: not _live_with(f"sleep {marker}"), "the probe to die with the supervisor", timeout=10)
    _wait(lambda: not [p for p in probers if p in _processes() and _processes()[p][1] != "Z"],
          f"the prober to die with the supervisor: {[_processes().get(p) for p in probers]}", timeout=10)
    assert _state(refengine, name)["Status"] == "exited"

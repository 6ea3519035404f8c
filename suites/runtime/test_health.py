"""Healthchecks: ``--health-*`` and the image's HEALTHCHECK, the health status
they give (starting, healthy, unhealthy) in ``State.Health``, ``ps`` and the
``health_status`` event.

An engine runs the probes itself (capability ``healthcheck``): podman 4.3 runs
them from systemd timers only, and without systemd it never probes. Checks of
what a container is configured with run on every engine.
"""

from __future__ import annotations

import json
import re
import secrets
import time

import pytest

from conformance.engine import EngineCallFailed
from conformance.suite_support import BUILD_LABEL, DOCS, remove_built_images

from .conftest import INSPECT, parse_time

HEALTHCHECK = f"{DOCS}/reference/dockerfile/#healthcheck"
#: "Healthchecks" of the run reference (docs.docker.com/engine/reference/run/#healthcheck before the docs moved).
RUN_HEALTH = f"{DOCS}/engine/containers/run/#healthchecks"
PS_FILTER_HEALTH = f"{DOCS}/reference/cli/docker/container/ls/#health"
PS_STATUS = f"{DOCS}/reference/cli/docker/container/ls/"
EVENTS = f"{DOCS}/reference/cli/docker/system/events/#containers"

MS = 1_000_000
SECOND = 1000 * MS
#: How long any expected health status may take to show up (probes every 200 ms or 1 s).
SETTLE = 30.0

#: A container that sleeps while its probes run.
SLEEPER = ["sleep", "300"]


def health_of(engine, name: str) -> dict | None:
    return engine.state(name).get("Health")


def wait_health(engine, name: str, predicate, what: str, timeout: float = SETTLE) -> dict:
    """Poll State.Health until ``predicate(health)``; the failure names the last one seen."""
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        seen = health_of(engine, name)
        if seen and predicate(seen):
            return seen
        time.sleep(0.2)
    raise AssertionError(f"{engine.name}: {name}: no {what} within {timeout}s; last State.Health: {seen}")


def status_is(status: str):
    return lambda health: health["Status"] == status


def start(engine, image: str, *flags: str) -> str:
    """``run -d`` (which returns once the container started): its name."""
    name = engine.new_name()
    result = engine.run(["-d", *flags, image, *SLEEPER], name=name)
    if not result.ok:
        raise EngineCallFailed(str(result))
    return name


def ps_status(engine, name: str) -> str:
    result = engine.cli("ps", "--filter", f"name={name}", "--format", "{{.Names}}\t{{.Status}}", check=True)
    rows = dict(line.split("\t", 1) for line in result.stdout.splitlines() if "\t" in line)
    assert name in rows, f"{engine.name}: ps --filter name={name} does not list the running container: {result.stdout!r}"
    return rows[name]


# -- configuration: every engine -------------------------------------------------------


@pytest.mark.spec(RUN_HEALTH, "--health-cmd, --health-interval, --health-timeout, --health-start-period and "
                              "--health-retries set the container's healthcheck, shown by inspect as Config.Healthcheck")
def test_health_flags_are_the_containers_healthcheck(engine, image):
    name = engine.create(["--health-cmd", "exit 0", "--health-interval", "1500ms", "--health-timeout", "2s",
                          "--health-start-period", "3s", "--health-retries", "4", image, *SLEEPER])
    shown = engine.inspect(name)["Config"].get("Healthcheck")
    expected = {"Test": ["CMD-SHELL", "exit 0"], "Interval": 1500 * MS, "Timeout": 2 * SECOND,
                "StartPeriod": 3 * SECOND, "Retries": 4}
    assert shown == expected, f"{engine.name}: inspect shows Config.Healthcheck {shown!r}; docker shows {expected!r}"


@pytest.mark.spec(PS_STATUS, "ps STATUS of a running container with a healthcheck adds its health: "
                             "'Up 2 seconds (health: starting)' until the first probe")
def test_ps_status_shows_health_starting(engine, image):
    # no probe runs within the first minute: the status stays "starting" whatever the engine's speed
    name = start(engine, image, "--health-cmd", "true", "--health-interval", "60s")
    status = ps_status(engine, name)
    assert re.fullmatch(r"Up .+ \(health: starting\)", status), (
        f"{engine.name}: ps shows STATUS {status!r} for a running container whose first probe is a minute away; "
        f"docker shows 'Up <duration> (health: starting)'")


@pytest.fixture(scope="module")
def healthcheck_image(engine_session, test_image, tmp_path_factory):
    """An image whose HEALTHCHECK probes every 200 ms and prints ``from-image``; built
    once per module and removed with what its build left."""
    engine = engine_session
    if not engine.has("build"):
        pytest.skip(f"{engine.name} lacks capability 'build'")
    nonce = secrets.token_hex(6)
    ctx = tmp_path_factory.mktemp("healthcheck-image")
    (ctx / "Dockerfile").write_text(
        f"FROM {test_image.base}\nLABEL {BUILD_LABEL}={nonce}\n"
        'HEALTHCHECK --interval=200ms --timeout=5s --retries=2 CMD ["/bin/sh", "-c", "echo from-image"]\n')
    ref = f"localhost/conformance/cft-{engine.run_id}-health:{nonce}"
    result = engine.cli("build", "-t", ref, "--label", engine.label, str(ctx), timeout=300)
    try:
        assert result.ok, f"{engine.name}: could not build the image with a HEALTHCHECK\n{result}"
        yield ref
    finally:
        remove_built_images(engine, nonce, attempts=4)


#: The image's HEALTHCHECK as docker stores it (an exec form: CMD).
IMAGE_HEALTHCHECK = {"Test": ["CMD", "/bin/sh", "-c", "echo from-image"], "Interval": 200 * MS,
                     "Timeout": 5 * SECOND, "Retries": 2}


@pytest.mark.requires("build")
@pytest.mark.spec(HEALTHCHECK, "HEALTHCHECK [OPTIONS] CMD command in the image is the healthcheck of its "
                               "containers; --health-* options override it field by field")
def test_health_flags_override_the_images_healthcheck(engine, healthcheck_image):
    plain = engine.create([healthcheck_image])
    shown = engine.inspect(plain)["Config"].get("Healthcheck")
    assert shown == IMAGE_HEALTHCHECK, (
        f"{engine.name}: a container of an image with a HEALTHCHECK shows Config.Healthcheck {shown!r}; "
        f"docker shows the image's {IMAGE_HEALTHCHECK!r}")
    overridden = engine.create(["--health-retries", "5", "--health-timeout", "1s", healthcheck_image])
    shown = engine.inspect(overridden)["Config"].get("Healthcheck")
    expected = {**IMAGE_HEALTHCHECK, "Retries": 5, "Timeout": 1 * SECOND}
    assert shown == expected, (
        f"{engine.name}: --health-retries 5 --health-timeout 1s over the image's HEALTHCHECK shows "
        f"Config.Healthcheck {shown!r}; docker keeps the image's test and interval: {expected!r}")


@pytest.mark.requires("build")
@pytest.mark.spec(RUN_HEALTH, "--no-healthcheck disables any container-specified HEALTHCHECK: no probe runs "
                              "and the container has no health status")
def test_no_healthcheck_disables_the_images(engine, healthcheck_image):
    name = start(engine, healthcheck_image, "--no-healthcheck")
    shown = engine.inspect(name)["Config"].get("Healthcheck") or {}
    assert shown.get("Test") == ["NONE"], (
        f"{engine.name}: --no-healthcheck shows Config.Healthcheck {shown!r}; docker's test is ['NONE'] "
        f"(the image's other fields stay)")
    time.sleep(1.2)  # six of the image's 200 ms intervals
    state = engine.state(name)
    assert state.get("Health") is None, (
        f"{engine.name}: a container run with --no-healthcheck has State.Health {state.get('Health')!r} "
        f"after six of its image's probe intervals; docker has none")


# -- probes: engines that run them -------------------------------------------------------


@pytest.mark.requires("healthcheck")
@pytest.mark.spec(HEALTHCHECK, "the health status is initially starting; the first check runs interval seconds "
                               "after the container is started; whenever a check passes it becomes healthy")
def test_health_goes_from_starting_to_healthy(engine, image):
    name = start(engine, image, "--health-cmd", "echo probe-ok", "--health-interval", "1s")
    first = health_of(engine, name)
    assert first is not None and first["Status"] == "starting" and not first["Log"], (
        f"{engine.name}: right after the start, within the 1s interval before the first probe, "
        f"State.Health is {first!r}; docker shows Status 'starting' and an empty Log")
    health = wait_health(engine, name, status_is("healthy"), "healthy status")
    entry = health["Log"][0]
    assert (entry["ExitCode"], entry["Output"], health["FailingStreak"]) == (0, "probe-ok\n", 0), (
        f"{engine.name}: a healthy container's first probe is logged as {entry!r} with FailingStreak "
        f"{health['FailingStreak']}; docker logs ExitCode 0 and the probe's output 'probe-ok\\n'")
    started = parse_time(engine.state(name)["StartedAt"])
    waited = (parse_time(entry["Start"]) - started).total_seconds()
    assert waited >= 0.9, f"{engine.name}: the first probe started {waited:.3f}s after the container; the interval is 1s"


@pytest.mark.requires("healthcheck")
@pytest.mark.spec(HEALTHCHECK, "after --retries consecutive failures the status is unhealthy; the probe's exit "
                               "code and output (stdout and stderr) are stored in the health status, shown by inspect")
def test_failing_probe_makes_it_unhealthy_after_retries(engine, image):
    name = start(engine, image, "--health-cmd", "echo probe-out; echo probe-err >&2; exit 3",
                 "--health-interval", "200ms", "--health-retries", "2")
    seen = []

    def unhealthy(health: dict) -> bool:
        seen.append((health["Status"], health["FailingStreak"]))
        return health["Status"] == "unhealthy"

    health = wait_health(engine, name, unhealthy, "unhealthy status")
    early = [s for s in seen if s[0] == "unhealthy" and s[1] < 2] + [s for s in seen if s[0] == "healthy"]
    assert not early, f"{engine.name}: with --health-retries 2 and a failing probe, inspect showed {early}"
    assert health["FailingStreak"] >= 2, f"{engine.name}: unhealthy with FailingStreak {health['FailingStreak']}; retries is 2"
    assert health["Log"], f"{engine.name}: an unhealthy container has an empty health Log: {health}"
    for entry in health["Log"]:
        assert entry["ExitCode"] == 3, f"{engine.name}: a probe exiting 3 is logged with ExitCode {entry['ExitCode']}: {entry}"
        assert sorted(entry["Output"].splitlines()) == ["probe-err", "probe-out"], (
            f"{engine.name}: the probe's stdout and stderr are logged as Output {entry['Output']!r}")
        assert parse_time(entry["Start"]) <= parse_time(entry["End"]), f"{engine.name}: a probe ended before it started: {entry}"


@pytest.mark.requires("healthcheck")
@pytest.mark.spec(HEALTHCHECK, "the health status keeps the probes' results (docker inspect shows the last five)")
def test_health_log_keeps_the_last_five_probes(engine, image):
    count = 'n=$(($(cat /tmp/n 2>/dev/null || echo 0) + 1)); echo $n > /tmp/n; echo "probe $n"'
    name = start(engine, image, "--health-cmd", count, "--health-interval", "100ms")

    def numbers(health: dict) -> list[int]:
        """Each logged probe's number (-1 for an output that is not "probe N")."""
        return [int(m.group(1)) if (m := re.fullmatch(r"probe (\d+)\n", e["Output"])) else -1 for e in health["Log"]]

    health = wait_health(engine, name, lambda h: h["Log"] and numbers(h)[-1] >= 7, "seventh probe")
    logged = numbers(health)
    last = logged[-1]
    assert logged == list(range(last - 4, last + 1)), (
        f"{engine.name}: after {last} probes State.Health.Log holds probes {logged} (outputs "
        f"{[e['Output'] for e in health['Log']]}); docker keeps the last five")


@pytest.mark.requires("healthcheck")
@pytest.mark.spec(HEALTHCHECK, "output the probe writes is stored in the health status; "
                               "only the first 4096 bytes are stored")
def test_probe_output_is_cut_at_4096_bytes(engine, image):
    name = start(engine, image, "--health-cmd", "head -c 5000 /dev/zero | tr '\\0' a", "--health-interval", "200ms")
    health = wait_health(engine, name, status_is("healthy"), "healthy status")
    output = health["Log"][0]["Output"]
    assert output.startswith("a" * 4096) and output.count("a") == 4096, (
        f"{engine.name}: a probe printing 5000 bytes is logged with {output.count('a')} of them "
        f"(Output of {len(output)} characters, ending {output[-8:]!r}); docker stores the first 4096")


@pytest.mark.requires("healthcheck")
@pytest.mark.spec(HEALTHCHECK, "probe failures during the start period are not counted towards the maximum "
                               "number of retries")
def test_failures_in_the_start_period_do_not_count(engine, image):
    name = start(engine, image, "--health-cmd", "exit 1", "--health-interval", "200ms", "--health-retries", "1",
                 "--health-start-period", "5s")
    window = time.monotonic() + 2.5  # well inside the 5 s start period, which began before `run` returned
    health = None
    while time.monotonic() < window:
        health = health_of(engine, name)
        assert health is not None and (health["Status"], health["FailingStreak"]) == ("starting", 0), (
            f"{engine.name}: within the 5s start period, with failing probes and --health-retries 1, "
            f"State.Health is {health!r}; docker keeps Status 'starting' and FailingStreak 0")
        time.sleep(0.2)
    failures = [e for e in health["Log"] if e["ExitCode"] == 1]
    assert len(failures) >= 2, f"{engine.name}: in 2.5s of 200ms intervals only {len(failures)} failing probes ran: {health}"
    health = wait_health(engine, name, status_is("unhealthy"), "unhealthy status after the start period")
    assert health["FailingStreak"] >= 1, f"{engine.name}: unhealthy with FailingStreak {health['FailingStreak']}"


@pytest.mark.requires("healthcheck")
@pytest.mark.spec(HEALTHCHECK, "if a single run of the check takes longer than --timeout, the check is "
                               "considered to have failed")
def test_a_probe_over_its_timeout_fails_and_is_ended(engine, image):
    name = start(engine, image, "--health-cmd", "sleep 86399", "--health-interval", "200ms",
                 "--health-timeout", "500ms", "--health-retries", "2")
    health = wait_health(engine, name, status_is("unhealthy"), "unhealthy status")
    for entry in health["Log"]:
        took = (parse_time(entry["End"]) - parse_time(entry["Start"])).total_seconds()
        assert entry["ExitCode"] != 0 and took < 5, (
            f"{engine.name}: a probe sleeping past its 500ms timeout is logged as {entry!r} ({took:.2f}s); "
            f"docker ends it at the timeout and counts it as failed")
    listing = engine.cli("exec", name, "ps", check=True).stdout
    sleepers = [line for line in listing.splitlines() if "sleep 86399" in line]
    assert len(sleepers) <= 1, (
        f"{engine.name}: after {health['FailingStreak']} timed-out probes, {len(sleepers)} of them still run "
        f"in the container:\n{listing}")


@pytest.mark.requires("healthcheck")
@pytest.mark.spec(PS_STATUS, "ps STATUS of a running container shows its health: (healthy) or (unhealthy)")
def test_ps_status_shows_healthy_and_unhealthy(engine, image):
    healthy = start(engine, image, "--health-cmd", "true", "--health-interval", "200ms")
    unhealthy = start(engine, image, "--health-cmd", "false", "--health-interval", "200ms", "--health-retries", "1")
    wait_health(engine, healthy, status_is("healthy"), "healthy status")
    wait_health(engine, unhealthy, status_is("unhealthy"), "unhealthy status")
    for name, word in ((healthy, "healthy"), (unhealthy, "unhealthy")):
        status = ps_status(engine, name)
        assert re.fullmatch(rf"Up .+ \({word}\)", status), (
            f"{engine.name}: ps shows STATUS {status!r} for a {word} container; docker shows 'Up <duration> ({word})'")


@pytest.mark.requires("healthcheck")
@pytest.mark.spec(PS_FILTER_HEALTH, "ps --filter health=starting|healthy|unhealthy|none lists the containers "
                                    "of that health status (none: no healthcheck)")
def test_ps_filter_health(engine, image):
    names = {
        "healthy": start(engine, image, "--health-cmd", "true", "--health-interval", "200ms"),
        "unhealthy": start(engine, image, "--health-cmd", "false", "--health-interval", "200ms",
                           "--health-retries", "1"),
        "starting": start(engine, image, "--health-cmd", "true", "--health-interval", "60s"),
        "none": start(engine, image),
    }
    wait_health(engine, names["healthy"], status_is("healthy"), "healthy status")
    wait_health(engine, names["unhealthy"], status_is("unhealthy"), "unhealthy status")
    for status, name in names.items():
        listed = engine.cli("ps", "--filter", f"health={status}", "--format", "{{.Names}}", check=True).stdout.split()
        mine = sorted(n for n in listed if n in names.values())
        assert mine == [name], (
            f"{engine.name}: ps --filter health={status} lists {mine} of this check's containers; "
            f"docker lists only the {status} one, {name}")


@pytest.mark.requires("healthcheck")
@pytest.mark.spec(EVENTS, "a container reports a health_status event when its health status changes: "
                          "'health_status: healthy'")
def test_health_status_event(engine, image):
    since = f"{time.time() - 1:.3f}"  # the engine's clock is this machine's
    name = start(engine, image, "--health-cmd", "true", "--health-interval", "200ms")
    wait_health(engine, name, lambda h: h["Status"] == "healthy" and len(h["Log"]) >= 4,
                "healthy status and three more passing probes")
    until = f"{time.time() + 0.5:.3f}"
    cid = engine.inspect(name)["Id"]
    result = engine.cli("events", "--since", since, "--until", until, "--filter", f"container={name}",
                        "--format", "{{json .}}", check=True, timeout=60)
    events = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    health_events = [e.get("Action") for e in events if str(e.get("Action", "")).startswith("health_status")]
    assert health_events == ["health_status: healthy"], (
        f"{engine.name}: the events of a container that turned healthy and stayed so hold the health events "
        f"{health_events}; docker reports one 'health_status: healthy' (a change, not every probe)")
    event = next(e for e in events if e.get("Action") == "health_status: healthy")
    assert event.get("Type") == "container" and event.get("Actor", {}).get("ID") == cid, (
        f"{engine.name}: the health_status event is {event}; docker's is a container event of {cid}")


@pytest.mark.requires("healthcheck")
@pytest.mark.spec(HEALTHCHECK, "the health status is initially starting: a restarted container starts over "
                               "as starting with no failing streak")
def test_restart_resets_health_to_starting(engine, image):
    name = start(engine, image, "--health-cmd", "exit 1", "--health-interval", "1s", "--health-retries", "1")
    wait_health(engine, name, status_is("unhealthy"), "unhealthy status")
    engine.cli("restart", "-t", "0", name, check=True, timeout=60)
    health = health_of(engine, name)
    assert health is not None and (health["Status"], health["FailingStreak"]) == ("starting", 0), (
        f"{engine.name}: right after restart, within the 1s interval before the first probe, State.Health is "
        f"{health!r}; docker shows Status 'starting' and FailingStreak 0")
    wait_health(engine, name, status_is("unhealthy"), "unhealthy status again after the restart")


@pytest.mark.requires("healthcheck", "build")
@pytest.mark.spec(HEALTHCHECK, "the image's HEALTHCHECK runs in its containers: the status becomes healthy "
                               "when its command exits 0")
def test_images_healthcheck_runs(engine, healthcheck_image):
    name = start(engine, healthcheck_image)
    health = wait_health(engine, name, status_is("healthy"), "healthy status from the image's HEALTHCHECK")
    assert health["Log"][-1]["Output"] == "from-image\n", (
        f"{engine.name}: the image's HEALTHCHECK probe is logged as {health['Log'][-1]!r}; it prints 'from-image'")


@pytest.mark.spec(INSPECT, "a container that has no healthcheck has no Health in its State")
def test_no_health_without_a_healthcheck(engine, image):
    name = start(engine, image)
    state = engine.state(name)
    assert state.get("Health") is None, f"{engine.name}: a container without a healthcheck has State.Health {state.get('Health')!r}"

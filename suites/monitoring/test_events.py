"""``events``: the documented container events and their attributes, the
filters, the time window (``--since``/``--until`` in each documented time
format) and the output formats.

Every query is bounded (``--until`` just ahead, or a timeout) and filtered
to the check's own containers: docker's events are global to the daemon.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone

import pytest

from .conftest import (EVENTS, Streaming, action, actions, attributes, event_docs, events, name_of, summary, unix)

#: A main process that keeps running until it is killed.
SLEEPER = ["sleep", "300"]


def exited_and_removed(engine, image, command: list[str], *flags: str) -> tuple[str, str, float]:
    """Run ``command`` to its end, then ``rm`` it: (name, full id, the moment before the run)."""
    t0 = time.time() - 0.5  # a little slack for a clock read in another process
    name = engine.new_name()
    engine.create([*flags, image, *command], name=name)
    cid = engine.inspect(name)["Id"]
    engine.cli("start", "-a", name, timeout=120)
    engine.cli("rm", name, check=True)
    return name, cid, t0


# -- the sequence of a container's life ------------------------------------------


@pytest.mark.spec(EVENTS, "containers report create, start, die and destroy; a container that is created, "
                          "started, exits and is removed reports them in that order, each once")
def test_life_of_a_container_is_create_start_die_destroy(engine, image):
    name, _, t0 = exited_and_removed(engine, image, ["sh", "-c", "exit 3"])
    docs = event_docs(engine, events(engine, f"container={name}", since=t0))
    seen = actions(docs)
    lifecycle = [a for a in seen if a in ("create", "start", "die", "destroy")]
    assert lifecycle == ["create", "start", "die", "destroy"], (
        f"{engine.name}: the events of a container that was created, started, exited and removed: {seen}; "
        f"docker reports create, start, die, destroy in that order, each once ({summary(docs)})")


@pytest.mark.spec(EVENTS, "the die event of a container carries its exit status as the attribute exitCode")
def test_die_carries_the_exit_code(engine, image):
    name, _, t0 = exited_and_removed(engine, image, ["sh", "-c", "exit 3"])
    docs = [d for d in event_docs(engine, events(engine, f"container={name}", since=t0)) if action(d) == "die"]
    assert len(docs) == 1, f"{engine.name}: {len(docs)} die events for one exit of {name}: {summary(docs)}"
    assert attributes(docs[0]).get("exitCode") == "3", (
        f"{engine.name}: die of a container that exited 3 has attributes {attributes(docs[0])}; "
        "docker sets exitCode \"3\"")


@pytest.mark.spec(EVENTS, "a container's events name it by its ID (Actor.ID) and carry the attributes image "
                          "(as given to run), name, and the container's labels")
def test_container_events_carry_image_name_and_labels(engine, image):
    name, cid, t0 = exited_and_removed(engine, image, ["true"], "--label", "io.conformance.monitor=events")
    docs = event_docs(engine, events(engine, f"container={name}", since=t0))
    assert docs, f"{engine.name}: no events for {name}"
    for doc in docs:
        attrs = attributes(doc)
        what = f"{doc.get('Action', doc)!r} event of {name}"
        assert (doc.get("Actor") or {}).get("ID") == cid, \
            f"{engine.name}: the {what} has Actor.ID {(doc.get('Actor') or {}).get('ID')!r}; docker names the container id {cid}"
        assert attrs.get("name") == name, f"{engine.name}: the {what} has attributes {attrs}; no name={name}"
        assert attrs.get("image") == image, f"{engine.name}: the {what} has attributes {attrs}; no image={image}"
        assert attrs.get("io.conformance.monitor") == "events", \
            f"{engine.name}: the {what} has attributes {attrs}; docker adds the container's label io.conformance.monitor=events"


# -- output formats ---------------------------------------------------------------


@pytest.mark.spec(EVENTS, "with --format '{{json .}}' events are streamed as JSON Lines: Type, Action, Actor "
                          "(ID, Attributes), and status, id, from, scope, time, timeNano")
def test_json_lines_have_the_documented_fields(engine, image):
    name, cid, t0 = exited_and_removed(engine, image, ["true"])
    docs = event_docs(engine, events(engine, f"container={name}", f"event=create", since=t0))
    assert len(docs) == 1, f"{engine.name}: {len(docs)} create events for {name}: {summary(docs)}"
    doc = docs[0]
    expected = {"Type": "container", "Action": "create", "status": "create", "id": cid, "from": image,
                "scope": "local"}
    wrong = {k: doc.get(k, "<missing>") for k, v in expected.items() if doc.get(k) != v}
    assert not wrong, f"{engine.name}: the create event's JSON differs from docker's in {wrong}; expected {expected}\n{doc}"
    assert (doc.get("Actor") or {}).get("ID") == cid, f"{engine.name}: Actor of the create event: {doc.get('Actor')}"
    assert isinstance(doc.get("time"), int) and isinstance(doc.get("timeNano"), int), \
        f"{engine.name}: time/timeNano are not integers: {doc}"
    assert doc["time"] == doc["timeNano"] // 1_000_000_000, f"{engine.name}: time and timeNano disagree: {doc}"
    assert t0 - 5 <= doc["time"] <= time.time() + 5, \
        f"{engine.name}: the create event's time {doc['time']} is not the moment of the create (~{t0:.0f})"


@pytest.mark.spec(EVENTS, "the default output: one line per event, the time (RFC 3339 with nanoseconds), the "
                          "object type, the action, the actor's ID and its attributes in parentheses, sorted "
                          "(e.g. 2017-01-05T00:35:58.859401177+08:00 container create 0fdb... (image=alpine:latest, name=test))")
def test_default_output_is_one_line_per_event(engine, image):
    name, cid, t0 = exited_and_removed(engine, image, ["true"])
    result = events(engine, f"container={name}", "event=create", since=t0, fmt=None)
    assert result.ok, str(result)
    lines = result.stdout.splitlines()
    assert len(lines) == 1, f"{engine.name}: {len(lines)} lines for one create event: {result.stdout!r}"
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(?:Z|[+-]\d\d:\d\d)) container create ([0-9a-f]{64}) \((.*)\)",
                     lines[0])
    assert m, (f"{engine.name}: the create event printed {lines[0]!r}; docker prints "
               f"'<RFC 3339 time with nanoseconds> container create <id> (image=..., name=...)'")
    assert m.group(2) == cid, f"{engine.name}: the line names {m.group(2)}, not the container {cid}"
    pairs = m.group(3).split(", ")
    assert pairs == sorted(pairs) and f"image={image}" in pairs and f"name={name}" in pairs, \
        f"{engine.name}: the attributes are {m.group(3)!r}; docker prints image=... and name=..., sorted by key"


@pytest.mark.spec(EVENTS, "--format takes a Go template over the event: {{.Type}}, {{.Action}}, {{.Actor.ID}}, "
                          "{{.Actor.Attributes.name}}, {{.Status}}, {{.ID}} (the docs' example: "
                          "--format 'Type={{.Type}}  Status={{.Status}}  ID={{.ID}}')")
def test_format_template_reads_the_event_fields(engine, image):
    name, cid, t0 = exited_and_removed(engine, image, ["true"])
    result = events(engine, f"container={name}", "event=destroy", since=t0,
                    fmt="Type={{.Type}} Action={{.Action}} Actor={{.Actor.ID}} Name={{.Actor.Attributes.name}} "
                        "Status={{.Status}} ID={{.ID}}")
    assert result.ok, str(result)
    expected = f"Type=container Action=destroy Actor={cid} Name={name} Status=destroy ID={cid}"
    assert result.stdout.splitlines() == [expected], \
        f"{engine.name}: the template printed {result.stdout!r}; docker prints {expected!r}\n{result}"


# -- filters ------------------------------------------------------------------------


@pytest.mark.spec(EVENTS, "--filter event=<action> keeps only the events of that action")
def test_event_filter_keeps_only_that_action(engine, image):
    name, _, t0 = exited_and_removed(engine, image, ["sh", "-c", "exit 3"])
    docs = event_docs(engine, events(engine, f"container={name}", "event=die", since=t0))
    assert actions(docs) == ["die"], f"{engine.name}: --filter event=die gave {summary(docs)}; docker gives the one die"


@pytest.mark.spec(EVENTS, "the same filter key twice is an OR (container=A, container=B: the events of A or B); "
                          "different keys are an AND (container=A, event=stop: A's stop events)")
def test_repeated_filter_is_or_and_different_filters_are_and(engine, image):
    first, first_id, t0 = exited_and_removed(engine, image, ["sh", "-c", "exit 1"])
    second, second_id, _ = exited_and_removed(engine, image, ["sh", "-c", "exit 2"])
    docs = event_docs(engine, events(engine, f"container={first}", f"container={second}", "event=die", since=t0))
    got = sorted((attributes(d).get("name"), attributes(d).get("exitCode"), action(d)) for d in docs)
    assert got == [(first, "1", "die"), (second, "2", "die")], (
        f"{engine.name}: --filter container={first} --filter container={second} --filter event=die gave "
        f"{summary(docs)}; docker gives the die of each (exitCode 1 and 2) and nothing else")


@pytest.mark.spec(EVENTS, "--filter label=<key>=<value> keeps the events of the containers with that label")
def test_label_filter_selects_the_labelled_container(engine, image):
    nonce = f"{engine.run_id}-{time.time_ns()}"
    name, cid, t0 = exited_and_removed(engine, image, ["true"], "--label", f"io.conformance.monitor={nonce}")
    exited_and_removed(engine, image, ["true"], "--label", "io.conformance.monitor=other")
    docs = event_docs(engine, events(engine, f"label=io.conformance.monitor={nonce}", since=t0))
    ids = {(d.get("Actor") or {}).get("ID") for d in docs}
    assert ids == {cid}, (f"{engine.name}: --filter label=io.conformance.monitor={nonce} gave the events of {ids}; "
                          f"docker gives those of {name} ({cid}) only: {summary(docs)}")
    assert {"create", "start", "die", "destroy"} <= set(actions(docs)), \
        f"{engine.name}: the labelled container's events miss some of create, start, die, destroy: {summary(docs)}"


@pytest.mark.spec(EVENTS, "--filter type=<object> keeps the events of that object type (container, image, "
                          "volume, network, ...)")
def test_type_filter_selects_the_object_type(engine, image):
    name, _, t0 = exited_and_removed(engine, image, ["true"])
    until = time.time() + 1.0
    containers = event_docs(engine, events(engine, f"container={name}", "type=container", since=t0, until=until))
    others = event_docs(engine, events(engine, f"container={name}", "type=image", since=t0, until=until))
    assert containers and {d.get("Type") for d in containers} == {"container"}, \
        f"{engine.name}: --filter type=container gave {summary(containers)}"
    assert not others, f"{engine.name}: --filter type=image --filter container={name} gave {summary(others)}; " \
                       "a container's events are of type container"


# -- kill, stop, oom ---------------------------------------------------------------------


@pytest.mark.spec(EVENTS, "docker kill reports a kill event whose attribute signal is the signal's number "
                          "(SIGUSR1: \"10\"; the default, SIGKILL: \"9\"); the container's end is its die")
def test_kill_reports_the_signal(engine, image):
    t0 = time.time() - 0.5
    result = engine.run(["-d", image, *SLEEPER])
    assert result.ok, str(result)
    name = name_of(result)
    engine.wait_running(name)
    # sleep is the namespace's init without a handler: SIGUSR1 leaves it running
    engine.cli("kill", "-s", "SIGUSR1", name, check=True)
    engine.cli("kill", name, check=True)
    engine.wait_for(lambda: not engine.state(name)["Running"], timeout=30, what=f"{name} to die of SIGKILL")
    docs = event_docs(engine, events(engine, f"container={name}", "event=kill", "event=die", since=t0))
    got = [(action(d), attributes(d).get("signal") if action(d) == "kill" else attributes(d).get("exitCode"))
           for d in docs]
    assert got == [("kill", "10"), ("kill", "9"), ("die", "137")], (
        f"{engine.name}: kill -s SIGUSR1, then kill, of {name} reported {got}; docker reports kill with "
        f"signal \"10\", kill with signal \"9\", then die with exitCode \"137\" ({summary(docs)})")


@pytest.mark.spec(EVENTS, "docker stop reports kill (signal \"15\", SIGTERM), die and stop, in that order")
def test_stop_reports_kill_die_stop(engine, image):
    t0 = time.time() - 0.5
    result = engine.run(["-d", image, "sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"])
    assert result.ok, str(result)
    name = name_of(result)
    engine.wait_running(name)
    time.sleep(0.3)  # the trap is set once the shell runs its loop
    engine.cli("stop", "-t", "30", name, check=True, timeout=90)
    docs = event_docs(engine, events(engine, f"container={name}", "event=kill", "event=die", "event=stop", since=t0))
    got = [(action(d), attributes(d).get("signal") if action(d) == "kill" else attributes(d).get("exitCode"))
           for d in docs]
    assert got == [("kill", "15"), ("die", "0"), ("stop", None)], (
        f"{engine.name}: stop of a container that exits 0 on SIGTERM reported {got}; docker reports "
        f"kill (signal \"15\"), die (exitCode \"0\"), stop ({summary(docs)})")


@pytest.mark.requires("oom-kill")
@pytest.mark.spec(EVENTS, "containers report oom when the kernel's OOM killer ends their process: "
                          "oom, then die (exitCode \"137\")")
def test_oom_is_reported_before_die(engine, image):
    # tail buffers a line that never ends: memory grows until the cgroup limit.
    name, _, t0 = exited_and_removed(engine, image, ["tail", "/dev/zero"], "--memory", "16m")
    docs = event_docs(engine, events(engine, f"container={name}", "event=oom", "event=die", since=t0))
    got = [(action(d), attributes(d).get("exitCode")) for d in docs]
    assert got == [("oom", None), ("die", "137")], (
        f"{engine.name}: a container killed over --memory 16m reported {got}; docker reports oom, then "
        f"die with exitCode \"137\" ({summary(docs)})")


# -- the time window -----------------------------------------------------------------------


def _since_forms(t0: float) -> dict[str, str]:
    stamp = datetime.fromtimestamp(t0, timezone.utc)
    return {
        "unix": unix(t0),
        "rfc3339": stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond:06d}000Z",
        "duration": "10m",
    }


#: The documented template of the reference's example, for checks about which
#: events come rather than about their JSON (a check of its own).
STATUS_ID = "{{.Status}} {{.ID}}"


@pytest.mark.parametrize("form", ["unix", "rfc3339", "duration"])
@pytest.mark.spec(EVENTS, "--since and --until take Unix timestamps (seconds[.nanoseconds]), date formatted "
                          "timestamps (RFC 3339 with nanoseconds) or Go durations (10m) relative to now")
def test_since_takes_each_documented_time_format(engine, image, form):
    name, cid, t0 = exited_and_removed(engine, image, ["true"])
    since = _since_forms(t0)[form]
    result = events(engine, f"container={name}", since=since, fmt=STATUS_ID)
    assert result.ok, str(result)
    assert f"create {cid}" in result.stdout.splitlines(), \
        f"{engine.name}: events --since {since} (--format '{STATUS_ID}') missed the create of {name}:\n{result}"


@pytest.mark.spec(EVENTS, "a duration given to --until is relative to now, into the past: --until 30s ends "
                          "the window 30 seconds ago")
def test_relative_until_lies_in_the_past(engine, image):
    name, _, t0 = exited_and_removed(engine, image, ["true"])
    since = unix(t0 - 120)
    before = events(engine, f"container={name}", since=since, until="30s")
    shown = event_docs(engine, before)
    assert not shown, (f"{engine.name}: events --until 30s showed events of a container made just now: "
                       f"{summary(shown)}; docker's window ended 30 s ago")
    control = event_docs(engine, events(engine, f"container={name}", since=since))
    assert "create" in actions(control), f"{engine.name}: the same window up to now misses the create: {summary(control)}"


@pytest.mark.spec(EVENTS, "--until: stream events until this timestamp; a window wholly in the past is "
                          "printed and the command ends (status 0)")
def test_until_in_the_past_returns_at_once(engine, image):
    name, _, t0 = exited_and_removed(engine, image, ["sh", "-c", "exit 3"])
    t1 = time.time()
    time.sleep(0.2)
    result = events(engine, f"container={name}", since=t0, until=t1, timeout=30)
    docs = event_docs(engine, result)
    assert {"create", "start", "die", "destroy"} <= set(actions(docs)), (
        f"{engine.name}: events --since {unix(t0)} --until {unix(t1)} (a past window) printed "
        f"{len(docs)} of {name}'s events: {summary(docs)}; docker prints create, start, die, destroy")


@pytest.mark.spec(EVENTS, "without --since, events returns only new and/or live events")
def test_without_since_only_new_events_are_streamed(engine, image):
    old, old_id, _ = exited_and_removed(engine, image, ["true"])
    new = engine.new_name()
    # No --until either: docker 20.10 replays the past for a window with an end.
    with Streaming(engine, "events", "--filter", f"container={old}", "--filter", f"container={new}",
                   "--format", STATUS_ID) as stream:
        time.sleep(2.0)  # the stream is open before the new container appears
        engine.create([image, "true"], name=new)
        new_id = engine.inspect(new)["Id"]
        out = stream.stop(after=3.0)  # a live stream never ends by itself: ended after 3 s
    lines = out.splitlines()
    assert not [line for line in lines if line.endswith(old_id)], \
        f"{engine.name}: events without --since replayed past events of {old}: {out!r}"
    assert f"create {new_id}" in lines, \
        f"{engine.name}: the live stream did not show the create of {new}: {out!r}\nstderr: {stream.err!r}"

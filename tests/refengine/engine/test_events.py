"""``refengine events``' pure part: dockerd's filters, its default line, the
template view, the event JSON and the container attributes."""

from __future__ import annotations

import json

import pytest

from reference_runtime.engine.events import default_line, matches, parse_filters, template_view
from reference_runtime.engine.flags import parse_timestamp
from reference_runtime.engine.format import render
from reference_runtime.engine.state import Root, container_attributes
from reference_runtime.errors import ContainerError

CID = "ab" * 32
DIE = {"status": "die", "id": CID, "from": "busybox:1", "Type": "container", "Action": "die",
       "Actor": {"ID": CID, "Attributes": {"exitCode": "3", "image": "busybox:1", "name": "web", "tier": "front"}},
       "scope": "local", "time": 1_700_000_000, "timeNano": 1_700_000_000_123_456_789}
CONNECT = {"Type": "network", "Action": "connect",
           "Actor": {"ID": "cd" * 32, "Attributes": {"container": CID, "name": "front-net", "type": "bridge"}},
           "scope": "local", "time": 1_700_000_000, "timeNano": 1_700_000_000_000_000_000}


@pytest.mark.parametrize("filters,expected", [
    ([], True),
    (["container=web"], True), (["container=we"], True), (["container=" + CID[:12]], True),
    (["container=other"], False),
    (["container=other", "container=web"], True),            # one key twice: OR
    (["container=web", "event=die"], True), (["container=web", "event=start"], False),  # keys: AND
    (["event=start", "event=die"], True),
    (["type=container"], True), (["type=image"], False),
    (["label=tier"], True), (["label=tier=front"], True), (["label=tier=back"], False), (["label=nope"], False),
    (["image=busybox:1"], True), (["image=busybox"], True), (["image=alpine"], False),
    (["network=front-net"], False),
])
def test_filters_of_a_container_event(filters, expected):
    assert matches(DIE, parse_filters(filters)) is expected


def test_container_filter_does_not_take_a_network_event_of_the_container():
    # dockerd matches the actor (the network) and its name, not the container attribute
    assert not matches(CONNECT, parse_filters(["container=web"]))
    assert matches(CONNECT, parse_filters(["network=front-net", "type=network"]))


@pytest.mark.parametrize("bad,message", [("color=red", "Invalid filter 'color'"), ("event", "bad format")])
def test_unknown_or_malformed_filters_are_refused(bad, message):
    with pytest.raises(ContainerError, match=message):
        parse_filters([bad])


def test_default_line_is_docker_s():
    assert default_line(DIE) == (f"2023-11-14T22:13:20.123456789Z container die {CID} "
                                 "(exitCode=3, image=busybox:1, name=web, tier=front)")
    assert default_line({**CONNECT, "Actor": {"ID": "x", "Attributes": {}}}).endswith("network connect x")


def test_templates_see_docker_s_go_fields_and_json_keeps_the_json():
    view = template_view(DIE)
    assert render("{{.Status}} {{.ID}} {{.From}} {{.Action}} {{.Actor.Attributes.exitCode}}", view) == \
        f"die {CID} busybox:1 die 3"
    assert json.loads(render("{{json .}}", view)) == DIE


@pytest.mark.parametrize("value,expected", [
    ("1700000000.5", 1_700_000_000.5),
    ("2023-11-14T22:13:20Z", 1_700_000_000.0),
    ("2023-11-14T22:13:20.250000000Z", 1_700_000_000.25),
    ("10m", 1_700_000_000.0 - 600),
    ("1h30m", 1_700_000_000.0 - 5400),
])
def test_since_and_until_time_formats(value, expected):
    assert parse_timestamp(value, 1_700_000_000.0) == pytest.approx(expected)


def test_container_attributes_are_labels_image_name_then_extra():
    config = {"Name": "/web", "Config": {"Image": "busybox:1", "Labels": {"tier": "front", "name": "label-loses"}}}
    assert container_attributes(config, exitCode="3") == {"tier": "front", "name": "web", "image": "busybox:1",
                                                          "exitCode": "3"}


def test_event_json_is_docker_s_shape(tmp_path):
    root = Root(str(tmp_path))
    root.container_event("kill", CID, {"Name": "/web", "Config": {"Image": "busybox:1", "Labels": {}}}, signal="9")
    root.event("network", "create", "cd" * 32, {"name": "n", "type": "bridge"})
    kill, create = [json.loads(line) for line in (tmp_path / "events.log").read_text().splitlines()]
    assert list(kill) == ["status", "id", "from", "Type", "Action", "Actor", "scope", "time", "timeNano"]
    assert (kill["status"], kill["id"], kill["from"], kill["Actor"]["Attributes"]) == \
        ("kill", CID, "busybox:1", {"image": "busybox:1", "name": "web", "signal": "9"})
    assert kill["time"] == kill["timeNano"] // 1_000_000_000
    assert list(create) == ["Type", "Action", "Actor", "scope", "time", "timeNano"]  # legacy keys: containers only


def test_a_container_event_reads_the_config_when_not_given(tmp_path):
    root = Root(str(tmp_path))
    root.ensure()
    (tmp_path / "containers" / CID).mkdir()
    (tmp_path / "containers" / CID / "config.json").write_text(
        json.dumps({"Name": "/db", "Config": {"Image": "busybox:1", "Labels": {"a": "b"}}}))
    root.container_event("start", CID)
    root.container_event("destroy", "ef" * 32)  # gone: no attributes to read, still one event
    start, destroy = [json.loads(line) for line in (tmp_path / "events.log").read_text().splitlines()]
    assert start["Actor"]["Attributes"] == {"a": "b", "image": "busybox:1", "name": "db"}
    assert destroy["Action"] == "destroy"


def test_the_past_is_skipped_by_the_stamp_alone():
    from reference_runtime.engine.systemcmds import _stamp

    line = json.dumps(DIE, separators=(",", ":")).encode()
    assert _stamp(line) == pytest.approx(1_700_000_000.123456789)
    assert _stamp(b'{"Type":"container"}') == float("inf")      # unreadable: parsed, never skipped
    assert _stamp(b'{"timeNano":12x}') == float("inf")


def test_a_torn_or_hand_written_log_is_skipped_not_a_traceback(tmp_path, capsys):
    from reference_runtime.engine.flags import parse_command
    from reference_runtime.engine.systemcmds import cmd_system_events

    root = Root(str(tmp_path))
    good = {**DIE, "timeNano": 1_000_000_000}
    (tmp_path / "events.log").write_text("\n".join([
        "garbage", '{"timeNano": "x"}', "[1, 2]", "null", '{"timeNano": 1e400}', '{"Type": 5, "timeNano": 1}',
        json.dumps(good)]) + "\n")
    assert cmd_system_events(root, parse_command("system events", ["--since", "0", "--until", "2"])) == 0
    assert capsys.readouterr().out.splitlines() == [default_line(good)]

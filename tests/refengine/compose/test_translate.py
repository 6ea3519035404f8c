"""A service as refengine's create flags: names, labels, networks, ports, mounts,
healthcheck (pure)."""

from __future__ import annotations

from reference_runtime.compose.labels import CONFIG_HASH, NUMBER, ONEOFF, PROJECT, SERVICE
from reference_runtime.compose.normalise import normalise_service
from reference_runtime.compose.project import Project
from reference_runtime.compose.translate import create_argv, entrypoint_of, health_test_of
from reference_runtime.engine import health
from reference_runtime.engine.flags import parse_command


def build(services: dict, **top) -> Project:
    document = {"services": {n: normalise_service(s, "/w", n) for n, s in services.items()}, **top}
    return Project.build(name="demo", working_dir="/w", config_files=["/w/compose.yaml"], document=document,
                         environment={"FROM_SHELL": "s"})


def parsed(project: Project, service: str, number: int = 1, **kw):
    """What refengine's own parser makes of the flags (they must all be refengine's)."""
    return parse_command("create", create_argv(project, project.services[service], number, **kw))


def test_name_labels_network_and_aliases():
    p = build({"web": {"image": "img", "networks": {"default": {"aliases": ["www"]}, "back": None}}},
              networks={"back": {}})
    opts = parsed(p, "web", 2).opts
    labels = dict(item.split("=", 1) for item in opts["label"])
    assert opts["name"] == "demo-web-2"
    assert (labels[PROJECT], labels[SERVICE], labels[NUMBER], labels[ONEOFF]) == ("demo", "web", "2", "False")
    assert labels[CONFIG_HASH] == p.services["web"].config_hash()
    assert opts["network"] == "demo_back" and opts["network_alias"] == ["web"]


def test_config_hash_follows_the_container_not_the_replica_count():
    one = build({"web": {"image": "img", "scale": 1}}).services["web"].config_hash()
    three = build({"web": {"image": "img", "scale": 3}}).services["web"].config_hash()
    other = build({"web": {"image": "img2"}}).services["web"].config_hash()
    assert one == three != other


def test_ports_mounts_and_plain_flags():
    p = build({"web": {
        "image": "img", "ports": ["8080:80", "127.0.0.1::81/udp", "90"], "volumes": ["data:/d:ro", "./src:/s", "/anon"],
        "environment": {"A": "1"}, "restart": "on-failure:2", "stop_grace_period": "1500ms", "working_dir": "/x",
        "container_name": "fixed", "command": "echo 'a b'",
    }}, volumes={"data": {}})
    args = parsed(p, "web")
    o = args.opts
    assert o["name"] == "fixed"
    assert o["publish"] == ["8080:80/tcp", "127.0.0.1::81/udp", "90/tcp"]
    assert o["mount"][0]["Source"] == "demo_data" and o["mount"][0]["ReadOnly"] is True
    assert o["volume"] == ["/w/src:/s", "/anon"]
    assert o["env"] == ["A=1"] and o["restart"] == ("on-failure", 2) and o["stop_timeout"] == 2
    assert o["workdir"] == "/x"
    assert args.args == ["img", "echo", "a b"]


def test_a_one_off_container_has_no_ports_and_no_restart_policy():
    p = build({"web": {"image": "img", "ports": ["80:80"], "restart": "always"}})
    o = parsed(p, "web", name="demo-web-run-1", oneoff=True, ports=False).opts
    assert o["publish"] == [] and o["restart"] is None
    assert f"{ONEOFF}=True" in o["label"]


def test_healthcheck_flags():
    p = build({"db": {"image": "img", "healthcheck": {"test": ["CMD", "test", "-f", "/ready"], "interval": "1s",
                                                      "retries": 3}},
               "sh": {"image": "img", "healthcheck": {"test": "test -f /ready"}},
               "off": {"image": "img", "healthcheck": {"disable": True}}})
    o = parsed(p, "db").opts
    # the exec form stays a list, as docker compose gives it to the engine's API
    assert o["health_cmd"] is None and health_test_of(p.services["db"]) == ["CMD", "test", "-f", "/ready"]
    assert health.from_flags({**o, "health_test": health_test_of(p.services["db"])}) == {
        "Test": ["CMD", "test", "-f", "/ready"], "Interval": 1_000_000_000, "Retries": 3}
    assert o["health_interval"] == 1_000_000_000 and o["health_retries"] == 3
    assert parsed(p, "sh").opts["health_cmd"] == "test -f /ready" and health_test_of(p.services["sh"]) is None
    assert parsed(p, "off").opts["no_healthcheck"] is True and health_test_of(p.services["off"]) is None


def test_entrypoint_is_the_apis_list():
    p = build({"web": {"image": "img", "entrypoint": ["/bin/echo", "x"]}, "plain": {"image": "img"}})
    assert entrypoint_of(p.services["web"]) == ["/bin/echo", "x"]
    assert entrypoint_of(p.services["plain"]) is None
    assert entrypoint_of(p.services["plain"], ["sh"]) == ["sh"]


def test_network_mode_of_another_service():
    p = build({"web": {"image": "img"}, "side": {"image": "img", "network_mode": "service:web"}})
    o = parsed(p, "side", network_mode_container=lambda s: f"demo-{s}-1").opts
    assert o["network"] == "container:demo-web-1" and o["network_alias"] == []


def test_links_and_volumes_from_name_the_first_container_and_order_the_start():
    p = build({"db": {"image": "img"}, "web": {"image": "img", "links": ["db:database"],
                                                "volumes_from": ["db:ro", "container:other"]}})
    o = parsed(p, "web").opts
    assert o["link"] == ["demo-db-1:database"]
    assert o["volumes_from"] == ["demo-db-1:ro", "other"]
    assert [s.name for s in p.ordered(["web"])] == ["db", "web"]


def test_keys_refengine_cannot_apply_are_reported():
    from reference_runtime.compose.translate import unsupported

    p = build({"web": {"image": "img", "ulimits": {"nofile": 10}, "x-mine": 1, "ports": ["80"]}})
    assert unsupported(p.services["web"]) == ["ulimits"]


def test_file_secrets_and_configs_are_read_only_binds():
    p = build({"web": {"image": "img", "secrets": ["token", {"source": "token", "target": "other"}],
                       "configs": [{"source": "conf", "target": "/etc/app.conf"}]}},
              secrets={"token": {"file": "/w/token.txt"}}, configs={"conf": {"file": "/w/app.conf"}})
    mounts = [(m["Source"], m["Target"], m.get("ReadOnly")) for m in parsed(p, "web").opts["mount"]]
    assert mounts == [("/w/token.txt", "/run/secrets/token", True), ("/w/token.txt", "/run/secrets/other", True),
                      ("/w/app.conf", "/etc/app.conf", True)]

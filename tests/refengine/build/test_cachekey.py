"""What goes into a step's cache key: docker's created_by strings and the
build-arg rules (moby#20136, predefined proxy args)."""

from __future__ import annotations

from reference_runtime.build import cachekey as ck
from reference_runtime.build.cachekey import BuildArgs, cache_key, run_created_by

SHELL = ["/bin/sh", "-c"]
CMD = ["/bin/sh", "-c", "make"]


def created_by(args: BuildArgs, env=()) -> str:
    return run_created_by(CMD, args.key_env(args.run_env(list(env))))


def test_no_args_records_the_bare_command():
    assert created_by(BuildArgs({})) == "/bin/sh -c make"


def test_declared_arg_with_a_value_is_in_every_run_after_it():
    args = BuildArgs({"VERSION": "1"})
    assert created_by(args) == "/bin/sh -c make"  # before the ARG: not yet
    args.declare("VERSION", None)
    assert created_by(args) == "|1 VERSION=1 /bin/sh -c make"
    changed = BuildArgs({"VERSION": "2"})
    changed.declare("VERSION", None)
    assert created_by(changed) != created_by(args)


def test_declared_default_and_override():
    args = BuildArgs({})
    args.declare("A", "dflt")
    assert created_by(args) == "|1 A=dflt /bin/sh -c make"
    args = BuildArgs({"A": "given"})
    args.declare("A", "dflt")
    assert created_by(args) == "|1 A=given /bin/sh -c make"


def test_declared_without_value_is_absent():
    args = BuildArgs({})
    args.declare("A", None)
    assert created_by(args) == "/bin/sh -c make"


def test_undeclared_build_arg_changes_nothing_and_is_reported_unused():
    args = BuildArgs({"UNDECLARED": "1"})
    assert created_by(args) == "/bin/sh -c make"
    assert args.unused() == ["UNDECLARED"]


def test_env_overrides_an_arg_of_the_same_name():
    args = BuildArgs({"A": "1"})
    args.declare("A", None)
    assert args.run_env(["A=env"]) == []
    assert created_by(args, ["A=env"]) == "/bin/sh -c make"


def test_proxy_args_reach_run_but_stay_out_of_the_key_unless_declared():
    one, two = BuildArgs({"HTTP_PROXY": "http://a"}), BuildArgs({"HTTP_PROXY": "http://b"})
    assert one.run_env([]) == ["HTTP_PROXY=http://a"]
    assert created_by(one) == created_by(two) == "|0 /bin/sh -c make"
    assert one.unused() == []
    one.declare("HTTP_PROXY", None)
    two.declare("HTTP_PROXY", None)
    assert created_by(one) == "|1 HTTP_PROXY=http://a /bin/sh -c make"
    assert created_by(one) != created_by(two)


def test_several_args_are_sorted():
    args = BuildArgs({"B": "2", "A": "1"})
    args.declare("B", None)
    args.declare("A", None)
    assert created_by(args) == "|2 A=1 B=2 /bin/sh -c make"


def test_meta_args_need_a_redeclaration_in_the_stage():
    meta = BuildArgs({"V": "opt"})
    meta.add_meta("V", "meta-default")
    meta.add_meta("W", "w-default")
    assert meta.meta_values() == {"V": "opt", "W": "w-default"}
    stage = meta.for_stage()
    assert created_by(stage) == "/bin/sh -c make"
    stage.declare("W", None)
    assert created_by(stage) == "|1 W=w-default /bin/sh -c make"


def test_nop_and_copy_formats_are_dockers():
    assert ck.nop(SHELL, "LABEL a=b") == "/bin/sh -c #(nop)  LABEL a=b"
    assert ck.nop(["/bin/bash", "-c"], "USER x") == "/bin/bash -c #(nop)  USER x"
    comment = ck.copy_comment("COPY", "file:abc", "/dst")
    assert ck.nop_joined(SHELL, comment) == "/bin/sh -c #(nop) COPY file:abc in /dst "
    assert ck.nop_joined(SHELL, "WORKDIR /w") == "/bin/sh -c #(nop) WORKDIR /w"
    assert ck.copy_comment("ADD", "dir:x", "/d/", chown="1:2", chmod="755") == "ADD --chown=1:2 --chmod=755 dir:x in /d/ "


def test_go_formats():
    assert ck.go_quote_list(["echo", "a b", 'q"']) == '["echo" "a b" "q\\""]'
    assert ck.go_quote("tab\there\x01") == '"tab\\there\\x01"'
    assert [ck.go_duration(s) for s in (0, 7, 90, 0.5, 3725)] == ["0s", "7s", "1m30s", "500ms", "1h2m5s"]
    assert ck.healthcheck_comment(["CMD-SHELL", "true"], 7, 0, 0, 0) == \
        "HEALTHCHECK &{[\"CMD-SHELL\" \"true\"] \"7s\" \"0s\" \"0s\" '\\x00'}"


def test_cache_key_covers_parent_command_and_config():
    base = cache_key("sha256:p", "/bin/sh -c make", {"Env": ["A=1"]})
    assert base == cache_key("sha256:p", "/bin/sh -c make", {"Env": ["A=1"]})
    assert base != cache_key("sha256:q", "/bin/sh -c make", {"Env": ["A=1"]})
    assert base != cache_key("sha256:p", "/bin/sh -c make2", {"Env": ["A=1"]})
    assert base != cache_key("sha256:p", "/bin/sh -c make", {"Env": ["A=2"]})

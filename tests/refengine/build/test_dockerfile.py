"""The Dockerfile parser: every instruction, directives, continuations,
JSON versus shell form, and every error with its line number."""

from __future__ import annotations

import pytest

from reference_runtime.build.dockerfile import logical_lines, parse, parse_instruction, parse_words
from reference_runtime.build.errors import BuildError


def one(text: str):
    return parse_instruction(1, text, "\\")


def test_stages_names_and_meta_args():
    df = parse("ARG BASE=busybox\nARG V\nFROM $BASE AS Build\nRUN true\nFROM build\nCOPY --from=build /a /b\n")
    assert [(a.args) for a in df.meta_args] == [("BASE", "busybox"), ("V", None)]
    assert [(s.index, s.base, s.name, s.line) for s in df.stages] == [(0, "$BASE", "build", 3), (1, "build", None, 5)]
    assert df.stage_index("BUILD") == 0 and df.stage_index("0") == 0 and df.stage_index("nope") is None
    assert [i.keyword for i in df.stages[1].steps] == ["COPY"]


def test_from_scratch_and_platform_warning():
    df = parse("FROM --platform=linux/arm64 scratch\n")
    assert df.stages[0].base == "scratch"
    assert any("--platform is ignored" in w for w in df.warnings)


@pytest.mark.parametrize("text, args, as_json", [
    ('RUN ["echo", "a b"]', ("echo", "a b"), True),
    ("RUN echo a b", ("echo a b",), False),
    ('CMD ["sh"]', ("sh",), True),
    ("CMD sh -c 'x'", ("sh -c 'x'",), False),
    ('ENTRYPOINT ["/bin/app", "--x"]', ("/bin/app", "--x"), True),
    ("ENTRYPOINT exec app", ("exec app",), False),
    ('SHELL ["/bin/sh", "-ec"]', ("/bin/sh", "-ec"), True),
    ("RUN [notjson", ("[notjson",), False),
    # not JSON at all: shell form, as docker parses it (a shell test is common)
    ("RUN [ -f /etc/passwd ]", ("[ -f /etc/passwd ]",), False),
    ('RUN [ "$A" = "b" ]', ('[ "$A" = "b" ]',), False),
    ("CMD ['sh']", ("['sh']",), False),
])
def test_exec_and_shell_forms(text, args, as_json):
    ins = one(text)
    assert (ins.args, ins.json) == (args, as_json)


def test_every_other_instruction():
    assert one('ENV A=1 B="x y"').args == ("A", "1", "B", '"x y"')
    assert one("ENV GREETING hello world").args == ("GREETING", "hello world")
    assert one("LABEL a=b c=d").args == ("a", "b", "c", "d")
    assert one("MAINTAINER Jane Doe <j@d>").args == ("Jane Doe <j@d>",)
    assert one("ARG A B=2").args == ("A", None, "B", "2")
    assert one("WORKDIR /a b").args == ("/a b",)
    assert one("USER nobody:nogroup").args == ("nobody:nogroup",)
    assert one("STOPSIGNAL SIGINT").args == ("SIGINT",)
    assert one("EXPOSE 80 443/tcp").args == ("80", "443/tcp")
    assert one("VOLUME /a /b").args == ("/a", "/b")
    assert one('VOLUME ["/a", "/b"]').args == ("/a", "/b")
    copy = one("COPY --from=build --chown=1:2 --chmod=0755 a b /dst/")
    assert copy.args == ("a", "b", "/dst/")
    assert (copy.flag("from"), copy.flag("chown"), copy.flag("chmod")) == ("build", "1:2", "0755")
    assert one('ADD ["a b", "/c"]').args == ("a b", "/c")
    hc = one("HEALTHCHECK --interval=7s --retries=3 CMD curl -f http://x/")
    assert hc.args == ("curl -f http://x/",) and hc.flag("interval") == "7s" and hc.flag("retries") == "3"
    assert one("HEALTHCHECK NONE").args == ("NONE",)
    onbuild = one("ONBUILD RUN make")
    assert onbuild.args == ("RUN make",) and onbuild.trigger.keyword == "RUN"
    assert one("run echo lower-case keyword").keyword == "RUN"


def test_escape_directive_and_continuations():
    text = "# escape=`\nFROM scratch\nRUN echo a `\n  # a comment inside\n\n  b\nCOPY C:\\dir\\file /x\n"
    escape, lines, warnings = logical_lines(text)
    assert escape == "`"
    assert lines[1] == (3, "RUN echo a   b")
    assert lines[2] == (7, "COPY C:\\dir\\file /x")
    assert warnings and "empty continuation" in warnings[0]
    df = parse(text)
    assert df.stages[0].steps[0].args == ("echo a   b",)


def test_backslash_continuation_and_crlf():
    df = parse("FROM scratch\r\nLABEL a=1 \\\r\n      b=2\r\n")
    assert df.stages[0].steps[0].args == ("a", "1", "b", "2")
    assert df.stages[0].steps[0].line == 2


def test_directive_only_at_the_top():
    escape, lines, _ = logical_lines("FROM scratch\n# escape=`\nRUN a \\\n b\n")
    assert escape == "\\" and lines[1][1] == "RUN a  b"


def test_parse_words_keeps_quotes_like_buildkit():
    assert parse_words('a "b c" d\\ e \'f g\'', "\\") == ["a", '"b c"', "d\\ e", "'f g'"]


@pytest.mark.parametrize("text, line, message", [
    ("FROM scratch\nFOO bar\n", 2, "unknown instruction: FOO"),
    ("RUN true\nFROM scratch\n", 1, "RUN before the first FROM"),
    ("ARG A\n", 1, "missing FROM"),
    ("", 1, "file with no instructions"),
    ("# only a comment\n", 1, "file with no instructions"),
    ("FROM scratch\nSHELL /bin/sh -c\n", 2, "SHELL requires the arguments to be in JSON form"),
    ("FROM scratch\nRUN [\"a\", 1]\n", 2, "is not a JSON array of strings"),
    ("FROM scratch\nCMD [[\"sh\"]]\n", 2, "is not a JSON array of strings"),
    ("FROM scratch\nVOLUME [1]\n", 2, "is not a JSON array of strings"),
    ("FROM scratch\n\nCOPY a\n", 3, "COPY requires at least two arguments"),
    ("FROM scratch\nCOPY --from=0 a /b\n", 2, "refers to current build stage"),
    ("FROM scratch AS a\nCOPY --from=b /x /y\nFROM scratch AS b\n", 2, "refers to a later build stage"),
    ("FROM scratch\nCOPY --form=x a /b\n", 2, "Unknown flag: form"),
    ("FROM scratch\nADD --from=x a /b\n", 2, "Unknown flag: from"),
    ("FROM scratch\nRUN --mount=type=cache true\n", 2, "Unknown flag: mount"),
    ("FROM a b\n", 1, "FROM requires either one or three arguments"),
    ("FROM a AS 1x\n", 1, "invalid name for build stage"),
    ("FROM a AS x\nFROM b AS x\n", 2, "duplicate name for build stage: x"),
    ("FROM scratch\nENV\n", 2, "ENV requires at least one argument"),
    ("FROM scratch\nENV A\n", 2, "ENV must have two arguments"),
    ("FROM scratch\nLABEL a=1 b\n", 2, "can't find = in \"b\""),
    ("FROM scratch\nLABEL =x\n", 2, "LABEL names can not be blank"),
    ("FROM scratch\nWORKDIR\n", 2, "WORKDIR requires exactly one argument"),
    ("FROM scratch\nSTOPSIGNAL A B\n", 2, "STOPSIGNAL requires exactly one argument"),
    ("FROM scratch\nEXPOSE\n", 2, "EXPOSE requires at least one argument"),
    ("FROM scratch\nVOLUME [\"\"]\n", 2, "VOLUME specified can not be an empty string"),
    ("FROM scratch\nHEALTHCHECK --interval=5x CMD true\n", 2, "invalid argument \"5x\" for --interval"),
    ("FROM scratch\nHEALTHCHECK --retries=-1 CMD true\n", 2, "--retries cannot be negative"),
    ("FROM scratch\nHEALTHCHECK GET /\n", 2, "Unknown type \"GET\" in HEALTHCHECK"),
    ("FROM scratch\nHEALTHCHECK NONE x\n", 2, "HEALTHCHECK NONE takes no arguments"),
    ("FROM scratch\nONBUILD ONBUILD RUN x\n", 2, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
    ("FROM scratch\nONBUILD FROM x\n", 2, "FROM isn't allowed as an ONBUILD trigger"),
    ("FROM scratch\nONBUILD NOPE x\n", 2, "unknown instruction: NOPE"),
    ("FROM scratch\nRUN\n", 2, "RUN requires at least one argument"),
    ("FROM scratch\nRUN \\\n", 2, "unexpected end of file after the line continuation"),
    ("FROM scratch\nLABEL a=1\nRUN \\\n\n", 3, "unexpected end of file after the line continuation"),
    ("# escape=x\nFROM scratch\n", 1, "invalid ESCAPE 'x'"),
    ("# escape=`\n# escape=\\\nFROM scratch\n", 2, "only one escape parser directive"),
    ("FROM scratch\nARG =x\n", 2, "ARG names can not be blank"),
])
def test_errors_name_the_line(text, line, message):
    with pytest.raises(BuildError) as info:
        parse(text)
    text_ = str(info.value)
    assert text_.startswith(f"Dockerfile parse error line {line}: "), text_
    assert message in text_
    assert "\n" not in text_


def test_continuation_at_eof_with_arguments_is_accepted_like_docker():
    df = parse("FROM scratch\nLABEL a=1 \\\n")
    assert df.stages[0].steps[0].args == ("a", "1")


def test_every_keyword_has_an_argument_parser():
    from reference_runtime.build import dockerfile

    assert set(dockerfile._ARGUMENTS) == set(dockerfile.KEYWORDS)

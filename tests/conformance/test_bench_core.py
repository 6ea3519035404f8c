from conformance.bench import format_table
from conformance.bench.core import Case, Unavailable, run_case


def test_subjects_alternate_and_medians_and_ratios_are_computed():
    calls = []
    values = {"a": iter([10, 30, 20, 99]), "b": iter([5, 5, 50, 5])}

    def subject(name):
        def once():
            calls.append(name)
            return next(values[name])
        return once

    result = run_case(Case("c", "ms", False, {"a": subject("a"), "b": subject("b")}, baseline="a"), rounds=3, warmup=1)
    assert calls == ["a", "b", "b", "a", "a", "b", "b", "a"]  # order rotates every round
    assert result.subjects["a"].values == [30, 20, 99] and result.subjects["a"].median == 30
    assert result.subjects["b"].median == 5
    assert result.ratio("b") == 5 / 30


def test_an_unavailable_subject_is_reported_and_the_others_still_run():
    def missing():
        raise Unavailable("nerdctl is not installed")

    result = run_case(Case("c", "ms", False, {"x": lambda: 1.0, "y": missing}, baseline="x"), rounds=2, warmup=0)
    assert result.subjects["y"].unavailable == "nerdctl is not installed"
    assert result.subjects["x"].values == [1.0, 1.0]
    assert result.ratio("y") is None
    table = "\n".join(format_table(result))
    assert "| y | unavailable: nerdctl is not installed |" in table
    assert "| x | 1.0 | 1.0 | 1.0 | 2 | 1.000 |" in table


def test_teardown_runs_even_when_a_subject_crashes():
    torn = []

    def crash():
        raise RuntimeError("boom")

    try:
        run_case(Case("c", "ms", False, {"x": crash}, baseline="x", teardown=lambda: torn.append(1)), rounds=1, warmup=0)
    except RuntimeError:
        pass
    assert torn == [1]


def test_a_case_caps_its_rounds_and_warmup():
    calls = []
    case = Case("1 GiB", "MB/s", True, {"a": lambda: calls.append("a") or 1.0}, baseline="a", max_rounds=2, max_warmup=0)
    assert case.plan(15, 2) == (2, 0) and case.plan(1, 2) == (1, 0)
    assert Case("c", "ms", False, {}, baseline="a").plan(15, 2) == (15, 2)
    assert run_case(case, rounds=15, warmup=2).subjects["a"].values == [1.0, 1.0] and len(calls) == 2

"""The ``conformance`` command: ``run``, ``report`` and ``bench``.

Exit statuses: 0 when nothing failed, 1 when a check (or a benchmark subject
that should run) failed, 2 for bad input (one line, no traceback), pytest's
own status otherwise (5: no check was collected — never a silent pass).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from . import REPORTS_DIR, SUITES_DIR
from .errors import ConformanceError

REGISTRY_SUITES = ("registry",)


def engine_suites() -> list[str]:
    return sorted(p.name for p in SUITES_DIR.iterdir()
                  if p.is_dir() and (p / "__init__.py").exists() and p.name not in REGISTRY_SUITES)


def _plain() -> bool:
    return bool(os.environ.get("CI")) or not sys.stdout.isatty()


def cmd_run(args: argparse.Namespace) -> int:
    subject: list[str] = []
    if args.engine_profile:
        subject += ["--engine-profile", args.engine_profile]
    elif args.engine:
        subject += ["--engine", args.engine]
    registry = [f"--registry={args.registry}"] if args.registry else []
    registry += [f"--registry-impl={args.registry_impl}"] if args.registry_impl else []
    suites = args.suites or ((list(REGISTRY_SUITES) if registry and not subject else [])
                             + (engine_suites() if subject or not registry else []))
    paths = []
    for suite in suites:
        path = SUITES_DIR / suite
        if not path.exists():
            raise ConformanceError(f"unknown suite {suite!r}; known: {', '.join(sorted(p.name for p in SUITES_DIR.iterdir() if p.is_dir()))}")
        paths.append(str(path))
    if not subject and not registry:
        from .engine_plugin import DEFAULT_ENGINE

        subject = ["--engine", os.environ.get("CONFORMANCE_ENGINE") or DEFAULT_ENGINE]
    warn_unrequired_capabilities(args)
    report_dir = Path(args.report_dir or REPORTS_DIR)
    argv = [sys.executable, "-m", "pytest", *paths, *subject, *registry, "--report-dir", str(report_dir),
            "-p", "xdist", "-n", str(args.jobs), "-rfEsx", "--rootdir", str(SUITES_DIR.parent)]
    argv += ["-v"] if _plain() else []
    argv += args.pytest_args
    print("$ " + " ".join(argv), flush=True)
    status = subprocess.call(argv, cwd=SUITES_DIR.parent)
    try:
        from .report import latest_runs, write_report

        runs = latest_runs(report_dir)
        if runs:
            print(f"conformance report: {write_report(runs, report_dir / 'index.html')}")
    except ConformanceError as exc:
        print(f"conformance: report not written: {exc}", file=sys.stderr)
    return status


def warn_unrequired_capabilities(args: argparse.Namespace) -> None:
    """A capability that no check requires is a claim nothing verifies: say so."""
    from .checks import unrequired_capabilities
    from .engine_plugin import DEFAULT_ENGINE
    from .profile import load_profile, profile_by_name
    from .registry_profile import registry_profile_by_name

    profiles = []
    if args.engine_profile:
        profiles.append(load_profile(Path(args.engine_profile)))
    elif args.engine or not (args.registry or args.registry_impl):
        profiles.append(profile_by_name(args.engine or os.environ.get("CONFORMANCE_ENGINE") or DEFAULT_ENGINE))
    if args.registry_impl:
        profiles.append(registry_profile_by_name(args.registry_impl))
    for profile in profiles:
        unrequired = unrequired_capabilities(profile)
        if unrequired:
            print(f"conformance: warning: profile {profile.name} declares capabilit{'y' if len(unrequired) == 1 else 'ies'} "
                  f"that no check requires: {', '.join(unrequired)}", file=sys.stderr)


def cmd_report(args: argparse.Namespace) -> int:
    from .report import latest_runs, write_report
    from .results import load_run

    runs = [load_run(Path(p)) for p in args.results] if args.results else latest_runs(Path(args.dir))
    if not runs:
        raise ConformanceError(f"no results files in {args.dir}; run `conformance run` first or name the files")
    out = write_report(runs, Path(args.out or Path(args.dir) / "index.html"))
    print(out)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from . import bench

    areas = tuple(a.strip() for a in args.only.split(",")) if args.only else tuple(bench.CASE_MODULES)
    unknown = set(areas) - set(bench.CASE_MODULES)
    if unknown:
        raise ConformanceError(f"unknown bench area(s) {', '.join(sorted(unknown))}; known: {', '.join(bench.CASE_MODULES)}")
    options = bench.Options(rounds=args.rounds, warmup=args.warmup, areas=areas)
    progress = (lambda s: print(s, flush=True)) if _plain() else _live_progress()
    results, notes = bench.run_all(options, progress)
    for note in notes:
        print(f"note: {note}")
    for result in results:
        print()
        print("\n".join(bench.format_table(result)))
    json_path, svg_path = bench.write_results(results, Path(args.out or REPORTS_DIR))
    print(f"\nbench results: {json_path}\nbench chart: {svg_path}")
    return 0


def _live_progress():
    from rich.console import Console

    console = Console(stderr=True)
    return lambda s: console.print(f"[dim]{s}[/dim]", end="\r")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="conformance", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run suites against an engine or a registry")
    run.add_argument("--engine", help="engine profile name (fixtures/engines/NAME.toml)")
    run.add_argument("--engine-profile", help="engine profile file")
    run.add_argument("--registry", help="registry URL to check")
    run.add_argument("--registry-impl", help="registry the suite starts itself (fixtures/registries/NAME.toml)")
    run.add_argument("-n", "--jobs", type=int, default=2, help="parallel pytest workers (default 2)")
    run.add_argument("--report-dir", help=f"results directory (default {REPORTS_DIR})")
    run.add_argument("suites", nargs="*", help="suite names (default: every suite for the subject)")
    run.add_argument("--pytest-args", dest="pytest_args", nargs=argparse.REMAINDER, default=[],
                     help="everything after this goes to pytest")
    run.set_defaults(func=cmd_run)
    rep = sub.add_parser("report", help="merge results of several runs into one HTML matrix")
    rep.add_argument("results", nargs="*", help="results JSON files (default: all in --dir)")
    rep.add_argument("--dir", default=str(REPORTS_DIR), help="where results are (default reports/)")
    rep.add_argument("--out", help="HTML file to write (default DIR/index.html)")
    rep.set_defaults(func=cmd_report)
    ben = sub.add_parser("bench", help="benchmark engines and registries side by side")
    ben.add_argument("--rounds", type=int, default=15)
    ben.add_argument("--warmup", type=int, default=2)
    ben.add_argument("--only", help="comma-separated areas: start,build,registry")
    ben.add_argument("--out", help=f"where bench JSON/SVG go (default {REPORTS_DIR})")
    ben.set_defaults(func=cmd_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except ConformanceError as exc:
        print(f"conformance: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

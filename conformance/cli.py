"""The ``conformance`` command: run, report, bench, list, diff, bundle, verify, keygen.

Exit statuses: 0 when nothing failed, 1 when a check (or a benchmark subject
that should run) failed, 2 for bad input (one line, no traceback), pytest's
own status otherwise (5: no check was collected — never a silent pass).
With `run --baseline FILE` and `diff`: 0 when nothing regressed against
the baseline (known failures may remain), 1 on a regression, 2 for bad input
(also: the run wrote no results for the baseline's subject), pytest's status
when the run itself did not complete. `verify`: 0 when the bundle is intact
and signed by the key, 1 when it is refused, 2 for bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from . import REPORTS_DIR, SUITES_DIR
from .errors import ConformanceError
from .progress import BenchProgress, plain_output, run_with_progress
from .results import load_run

REGISTRY_SUITES = ("registry",)
#: Checked with --balancer (a load balancer in front of replicas), not against an engine.
BALANCER_SUITES = ("ingress",)


def engine_suites() -> list[str]:
    return sorted(p.name for p in SUITES_DIR.iterdir()
                  if p.is_dir() and (p / "__init__.py").exists() and p.name not in REGISTRY_SUITES + BALANCER_SUITES)


def cmd_run(args: argparse.Namespace) -> int:
    subject: list[str] = []
    if args.engine_profile:
        subject += ["--engine-profile", args.engine_profile]
    elif args.engine:
        subject += ["--engine", args.engine]
    if args.cluster:  # a cluster is one set of daemons for the session: every worker would start its own
        subject += ["--cluster", args.cluster]
        args.jobs = 1
    if args.balancer:  # one worker: the load runs must not compete for the 2 cores
        subject += ["--balancer", args.balancer]
        args.jobs = 1
    registry = [f"--registry={args.registry}"] if args.registry else []
    registry += [f"--registry-impl={args.registry_impl}"] if args.registry_impl else []
    suites = args.suites or (["swarm"] if args.cluster and not args.engine else [])
    suites = suites or (list(BALANCER_SUITES) if args.balancer and not args.engine else [])
    suites = suites or ((list(REGISTRY_SUITES) if registry and not subject else [])
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
    # Read before running: a bad baseline is exit 2 at once, not after the run.
    baselines = [load_run(Path(p)) for p in args.baseline]
    earlier = set(report_dir.glob("*.json"))
    argv = [sys.executable, "-m", "pytest", *paths, *subject, *registry, "--report-dir", str(report_dir),
            "-p", "xdist", "-n", str(args.jobs), "-rfEsx", "--rootdir", str(SUITES_DIR.parent),
            # an installed wheel's rootdir is site-packages: no pyproject.toml, nothing written there
            "-p", "no:cacheprovider",
            # locust's plugin imports locust, which gevent-patches the process (pyproject's addopts
            # say the same, but a wheel's run reads no pyproject)
            "-p", "no:locust"]
    argv += ["-v"] if plain_output() else []
    print("$ " + " ".join(argv + args.pytest_args), flush=True)
    # CI: pytest -v's plain lines; a terminal: a live line per suite (conformance.progress)
    status = (subprocess.call(argv + args.pytest_args, cwd=SUITES_DIR.parent) if plain_output()
              else run_with_progress(argv, SUITES_DIR.parent, args.pytest_args))
    try:
        from .report import latest_bench, latest_runs, write_report

        runs = latest_runs(report_dir)
        if runs:
            print(f"conformance report: {write_report(runs, report_dir / 'index.html', bench=latest_bench(report_dir))}")
    except ConformanceError as exc:
        print(f"conformance: report not written: {exc}", file=sys.stderr)
    return gate_on_baselines(baselines, report_dir, earlier, tuple(suites), status) if baselines else status


def gate_on_baselines(baselines: list, report_dir: Path, earlier: set[Path], suites: tuple[str, ...], status: int) -> int:
    """``run --baseline``: the exit status is the comparison's (0: no
    regression, 1: regressions), unless the run itself did not complete."""
    from .baseline import gate

    if status not in (0, 1):
        print(f"conformance: the run did not complete (pytest exit {status}); nothing compared with the baseline",
              file=sys.stderr)
        return status
    runs = [load_run(p) for p in sorted(set(report_dir.glob("*.json")) - earlier) if not p.name.startswith("bench-")]
    status, lines = gate(baselines, runs, suites=suites)
    print("\n".join(lines))
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
    if args.balancer:
        from .balancer_profile import balancer_profile_by_name

        profiles.append(balancer_profile_by_name(args.balancer))
    for profile in profiles:
        unrequired = unrequired_capabilities(profile)
        if unrequired:
            print(f"conformance: warning: profile {profile.name} declares capabilit{'y' if len(unrequired) == 1 else 'ies'} "
                  f"that no check requires: {', '.join(unrequired)}", file=sys.stderr)


def cmd_report(args: argparse.Namespace) -> int:
    from .report import latest_bench, latest_runs, write_report
    from .results import load_run

    runs = [load_run(Path(p)) for p in args.results] if args.results else latest_runs(Path(args.dir))
    if not runs:
        raise ConformanceError(f"no results files in {args.dir}; run `conformance run` first or name the files")
    # the latest bench-*.json of --dir, if any, follows the matrix
    out = write_report(runs, Path(args.out or Path(args.dir) / "index.html"), bench=latest_bench(Path(args.dir)))
    print(out)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from . import bench

    areas = tuple(a.strip() for a in args.only.split(",")) if args.only else tuple(bench.CASE_MODULES)
    unknown = set(areas) - set(bench.CASE_MODULES)
    if unknown:
        raise ConformanceError(f"unknown bench area(s) {', '.join(sorted(unknown))}; known: {', '.join(bench.CASE_MODULES)}")
    options = bench.Options(rounds=args.rounds, warmup=args.warmup, areas=areas)
    progress = BenchProgress(plain=plain_output())
    try:
        results, notes = bench.run_all(options, progress)
    finally:
        progress.close()
    for note in notes:
        print(f"note: {note}")
    for result in results:
        print()
        print("\n".join(bench.format_table(result)))
    json_path, svg_path = bench.write_results(results, Path(args.out or REPORTS_DIR))
    print(f"\nbench results: {json_path}\nbench chart: {svg_path}")
    failed = bench.reference_failures(results)
    for line in failed:
        print(f"conformance bench: not measured: {line}", file=sys.stderr)
    return 1 if failed else 0


def cmd_diff(args: argparse.Namespace) -> int:
    from .baseline import compare, format_comparison

    comparison = compare(load_run(Path(args.baseline)), load_run(Path(args.current)))
    print("\n".join(format_comparison(comparison)))
    return 0 if comparison.ok else 1


def cmd_keygen(args: argparse.Namespace) -> int:
    from .bundle import generate_keypair

    public = generate_keypair(Path(args.private_key))
    print(f"private key: {args.private_key} (keep it secret)\npublic key: {public} (hand it to who verifies)")
    return 0


def cmd_bundle(args: argparse.Namespace) -> int:
    from .bundle import find_sources, load_private_key, make_bundle

    key = load_private_key(Path(args.key))
    if args.results:
        results = Path(args.results)
    else:
        candidates = sorted((p for p in Path(args.dir).glob("*.json") if not p.name.startswith("bench-")),
                            key=lambda p: p.stem.rsplit("-", 1)[-1])
        if not candidates:
            raise ConformanceError(f"no results files in {args.dir}; run `conformance run` first or name the file")
        results = candidates[-1]
    sources = find_sources(results, Path(args.junit) if args.junit else None,
                           Path(args.profile) if args.profile else None)
    out = Path(args.out or results.with_name("bundle-" + results.stem + ".tar.gz"))
    print(f"conformance bundle: {make_bundle(sources, key, out)} (results {results}, JUnit {sources.junit}, "
          f"profile {sources.profile})")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from . import SUITES_DIR
    from .bundle import load_public_key, read_tar, summary, verify
    from .provenance import suite_files

    key = load_public_key(Path(args.key))
    members, problems = read_tar(Path(args.bundle))
    problems = problems or verify(members, key, installed=suite_files(SUITES_DIR))
    if problems:
        for problem in problems:
            print(f"conformance: refused: {problem}", file=sys.stderr)
        return 1
    print(f"verified: {args.bundle}")
    print("\n".join("  " + line for line in summary(members)))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from . import listing

    if args.compose_table:
        print("\n".join(listing.compose_table()))
        return 0
    known = listing.suites()
    unknown = sorted(set(args.suites) - set(known))
    if unknown:
        raise ConformanceError(f"unknown suite(s) {', '.join(unknown)}; known: {', '.join(known)}")
    checks = listing.collect_checks(args.suites or known)
    if args.json:
        print(json.dumps({"suites_dir": str(SUITES_DIR), "checks": [c.__dict__ for c in checks],
                          "profiles": [{"kind": k, "name": n, "path": str(p), "description": d}
                                       for k, n, p, d in listing.profiles()]}, indent=1))
    else:
        print("\n".join(listing.format_listing(checks, listing.profiles())))
    return 0


def parser() -> argparse.ArgumentParser:
    exits = "\n".join(__doc__.strip().splitlines()[2:])  # the exit statuses, in every --help
    p = argparse.ArgumentParser(prog="conformance", description=__doc__.splitlines()[0], epilog=exits,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run suites against an engine or a registry", epilog=exits,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("--engine", help="engine profile name (fixtures/engines/NAME.toml)")
    run.add_argument("--engine-profile", help="engine profile file")
    run.add_argument("--registry", help="registry URL to check")
    run.add_argument("--registry-impl", help="registry the suite starts itself (fixtures/registries/NAME.toml)")
    run.add_argument("--cluster", help="a multi-node cluster the swarm suite starts itself (docker); one worker")
    run.add_argument("--balancer", help="load balancer for suites/ingress (fixtures/balancers/NAME.toml); one worker")
    run.add_argument("-n", "--jobs", type=int, default=2, help="parallel pytest workers (default 2)")
    run.add_argument("--report-dir", help=f"results directory (default {REPORTS_DIR})")
    run.add_argument("suites", nargs="*", help="suite names (default: every suite for the subject)")
    run.add_argument("--baseline", action="append", default=[], metavar="FILE",
                     help="results JSON of an earlier run to gate on (repeatable, one per subject): exit 1 only "
                          "on regressions (a check that passed and now fails or errors, a new deviation, a check "
                          "that disappeared, a passing check now skipped); improvements are listed")
    run.add_argument("--pytest-args", dest="pytest_args", nargs=argparse.REMAINDER, default=[],
                     help="everything after this goes to pytest")
    run.set_defaults(func=cmd_run)
    rep = sub.add_parser("report", help="merge results of several runs into one HTML matrix")
    rep.add_argument("results", nargs="*", help="results JSON files (default: all in --dir)")
    rep.add_argument("--dir", default=str(REPORTS_DIR),
                     help="where results are (default reports/); its latest bench-*.json is shown too")
    rep.add_argument("--out", help="HTML file to write (default DIR/index.html)")
    rep.set_defaults(func=cmd_report)
    ben = sub.add_parser("bench", help="benchmark engines and registries side by side")
    ben.add_argument("--rounds", type=int, default=15)
    ben.add_argument("--warmup", type=int, default=2)
    ben.add_argument("--only", help="comma-separated areas: start,build,registry,network,swarm,ingress")
    ben.add_argument("--out", help=f"where bench JSON/SVG go (default {REPORTS_DIR})")
    ben.set_defaults(func=cmd_bench)
    dif = sub.add_parser("diff", help="compare two results files: regressions, improvements, other changes",
                         description="Compare a baseline results JSON (A) with a later one (B). Exit 0: no "
                                     "regression; 1: regressions; 2: a file is not a results file.")
    dif.add_argument("baseline", help="results JSON of the earlier run (A)")
    dif.add_argument("current", help="results JSON of the later run (B)")
    dif.set_defaults(func=cmd_diff)
    bun = sub.add_parser("bundle", help="a signed tarball of one run's results, report, profile and suite digests")
    bun.add_argument("results", nargs="?", help="results JSON (default: the latest in --dir)")
    bun.add_argument("--key", required=True, help="Ed25519 private key, PEM (`conformance keygen` makes one)")
    bun.add_argument("--dir", default=str(REPORTS_DIR), help=f"where results are (default {REPORTS_DIR})")
    bun.add_argument("--junit", help="the run's JUnit XML (default: the one beside the results, same stamp)")
    bun.add_argument("--profile", help="the profile the run used (default: the path the results record)")
    bun.add_argument("--out", help="bundle file (default: bundle-<results name>.tar.gz beside the results)")
    bun.set_defaults(func=cmd_bundle)
    ver = sub.add_parser("verify", help="check a bundle's signature, digests and suites; exit 1 when refused")
    ver.add_argument("bundle", help="bundle file (.tar.gz)")
    ver.add_argument("--key", required=True, help="the signer's Ed25519 public key, PEM")
    ver.set_defaults(func=cmd_verify)
    key = sub.add_parser("keygen", help="make an Ed25519 key pair for bundles: PRIVATE and PRIVATE.pub")
    key.add_argument("private_key", metavar="PRIVATE", help="where the private key goes (PEM, mode 0600)")
    key.set_defaults(func=cmd_keygen)
    lst = sub.add_parser("list", help="the suites, their checks with spec references, and the profiles")
    lst.add_argument("suites", nargs="*", help="suite names (default: every suite)")
    lst.add_argument("--json", action="store_true", help="one JSON document instead of text")
    lst.add_argument("--compose-table", action="store_true",
                     help="only the Markdown table of the Compose implementations the engine profiles name "
                          "(name scheme, recorded deviations), as in suites/compose/README.md")
    lst.set_defaults(func=cmd_list)
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

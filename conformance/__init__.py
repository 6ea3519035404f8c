"""Conformance harness: drive any Docker-compatible engine and any OCI
registry through the same pytest suites, and report where each deviates
from Docker's documented behaviour."""

import os
from pathlib import Path

__version__ = "0.1.0"

_PARENT = Path(__file__).resolve().parent.parent

#: True in a source checkout (also an editable install); False in an
#: installed wheel, where the suites and the profiles are the sibling
#: packages ``conformance_suites`` and ``conformance_fixtures`` (pyproject.toml
#: maps suites/ and fixtures/ to them).
IN_CHECKOUT = (_PARENT / "pyproject.toml").is_file() and (_PARENT / "suites").is_dir()

#: The source tree, or site-packages for an installed wheel.
PROJECT_ROOT = _PARENT
#: $CONFORMANCE_SUITES and $CONFORMANCE_FIXTURES point the harness at other
#: suites and profiles (a vendor's own; the harness's own tests use them).
#: (Paths from the environment are made absolute: `conformance run` starts
#: pytest in another directory.)
SUITES_DIR = Path(os.path.abspath(os.environ.get("CONFORMANCE_SUITES")
                                  or _PARENT / ("suites" if IN_CHECKOUT else "conformance_suites")))
FIXTURES_DIR = Path(os.path.abspath(os.environ.get("CONFORMANCE_FIXTURES")
                                    or _PARENT / ("fixtures" if IN_CHECKOUT else "conformance_fixtures")))
#: $CONFORMANCE_REPORTS, else reports/ of the checkout, else ./reports of the
#: current directory (never site-packages).
REPORTS_DIR = Path(os.path.abspath(os.environ.get("CONFORMANCE_REPORTS")
                                   or (_PARENT / "reports" if IN_CHECKOUT else "reports")))

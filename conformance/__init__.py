"""Conformance harness: drive any Docker-compatible engine and any OCI
registry through the same pytest suites, and report where each deviates
from Docker's documented behaviour."""

from pathlib import Path

__version__ = "0.1.0"

#: The source tree; suites/ and fixtures/ live beside the package.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
SUITES_DIR = PROJECT_ROOT / "suites"
FIXTURES_DIR = PROJECT_ROOT / "fixtures"
REPORTS_DIR = PROJECT_ROOT / "reports"

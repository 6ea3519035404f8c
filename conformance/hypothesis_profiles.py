"""Hypothesis settings profiles for the suites.

``ci`` (chosen by ``HYPOTHESIS_PROFILE=ci``, as tox does) derandomizes every
property so a CI run is repeatable, keeps no example database in the
checkout, and prints the reproduction blob on failure. Each check still
bounds its own ``max_examples``: every example costs a container or a build.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", derandomize=True, database=None, print_blob=True, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile(
    "dev", deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def pytest_configure(config) -> None:
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

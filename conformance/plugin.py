"""The pytest plugin, registered through the ``pytest11`` entry point.

Like pytest's own features, each concern is a small plugin of its own; this
module only lists them.
"""

pytest_plugins = [
    "conformance.checks",  # check ids, spec/requires markers
    "conformance.hypothesis_profiles",  # repeatable properties in CI
    "conformance.report_plugin",  # results JSON + JUnit XML in reports/
    "conformance.engine_plugin",  # --engine, the engine and test_image fixtures
    "conformance.registry_plugin",  # --registry/--registry-impl, the registry fixtures
    "conformance.cluster",  # --cluster/--cluster-nodes, the cluster fixture (suites/swarm)
    "conformance.balancer_plugin",  # --balancer/--balancer-profile, the balancer fixture (suites/ingress)
]

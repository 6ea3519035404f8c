"""pytest's collection inside the harness package (``pytest --doctest-modules conformance``,
tox's unit environment): the locustfile is loaded by locust's own process only, because
importing locust gevent-patches the importing process (tests/conformance/test_load.py)."""

collect_ignore = ["locustfile_ingress.py"]

"""Unit tests: ``conformance`` (the harness), ``refengine`` (engine, builder, image store),
``refregistry``. A package, so that ``tests/conformance`` is ``tests.conformance`` and never
shadows the harness package ``conformance``."""

"""Unit tests of refengine's bridge networking (reference_runtime/net)."""

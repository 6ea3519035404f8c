"""The reference implementation: ``refengine`` (a daemonless docker-compatible
engine on namespaces and overlayfs) and ``refregistry`` (an OCI distribution
registry). Small enough to read, exact enough to pass every suite."""

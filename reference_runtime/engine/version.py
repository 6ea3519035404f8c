"""refengine's version and the Engine API version it answers for (``version``, ``info``)."""

VERSION = "0.1.0"
API_VERSION = "1.41"

"""Bridge networking of refengine: address management, links, packet filter, embedded DNS."""

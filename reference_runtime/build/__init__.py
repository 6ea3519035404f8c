"""refengine's Dockerfile builder: the classic builder's grammar, cache and
output on refengine's image store and runtime.

Pure parts (no I/O, unit-tested directly): :mod:`.dockerfile` (parser),
:mod:`.shellexpand` (variable substitution), :mod:`.dockerignore`,
:mod:`.cachekey` (what a step's cache key is made of), and the hashing in
:mod:`.contexthash`. The rest drives the store and the kernel:
:mod:`.context` (the build context), :mod:`.fsops` (COPY/ADD into an overlay
snapshot), :mod:`.runstep` (RUN in a container), :mod:`.builder` (stages and
steps), :mod:`.cli` (``build``, ``image prune``, ``builder prune``).
"""

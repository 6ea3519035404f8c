"""refregistry: an OCI distribution registry (spec v1.1) on aiohttp.

Modules, each owning one thing:

- ``cli``: ``refregistry serve|garbage-collect`` and the mapping of errors to exit statuses;
- ``config``: the YAML configuration (distribution's keys plus the token endpoint's);
- ``app``: the HTTP handlers and the one error middleware;
- ``uploadbody``: an upload's request body into its session file (written, hashed, flushed);
- ``routes``, ``reference``, ``httpranges``, ``pagination``, ``manifests``, ``tokens``: pure parsing;
- ``errcodes``: the registered error descriptors;
- ``auth``: htpasswd and token access control, the token endpoint;
- ``paths`` (the on-disk layout) and ``storage`` (atomic filesystem storage);
- ``gc``: garbage collection that is safe while pushes run.
"""

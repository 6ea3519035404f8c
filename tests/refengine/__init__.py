"""refengine's unit tests: ``engine`` (runtime and CLI), ``build`` (the builder), ``image`` (the store)."""

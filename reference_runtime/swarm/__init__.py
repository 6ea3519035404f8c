"""refengine swarm: a multi-node orchestrator in the shape of docker's swarm mode.

The design (processes, modules, wire, store) is in ``swarmd``'s docstring;
each module's docstring says what it owns.
"""

"""``refengine compose``: the Compose specification on refengine.

Pipeline: files + environment --loader--> one merged mapping (interpolated per
file, checked against the Compose schema per file, ``extends`` resolved,
profiles applied) --project--> :class:`project.Project` --commands--> refengine's
own command layer in-process (no docker API).
"""

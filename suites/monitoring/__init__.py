"""Monitoring: ``events`` (the documented sequence, attributes, filters, time
windows and formats), ``stats`` (columns, memory, CPU, PIDs) and ``system df``."""

"""The engine CLI beyond ``run``: exec, logs, cp, inspect and ps templates,
pause, rename, top, port, wait, the error statuses of every command, and the
``run`` flags that scripts use."""

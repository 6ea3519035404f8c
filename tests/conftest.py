# pytester restores sys.modules after each of its tests, dropping modules that
# were first imported during one. httpx imports httpcore lazily, so a later
# import made fresh httpcore exception classes that httpx no longer mapped
# (httpcore.ConnectError escaped where httpx.ConnectError was expected).
# Importing them here puts them in every snapshot.
import httpcore  # noqa: F401
import httpx  # noqa: F401

pytest_plugins = ["pytester"]

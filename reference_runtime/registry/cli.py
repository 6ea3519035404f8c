"""``refregistry``: ``serve CONFIG.yml``, ``garbage-collect CONFIG.yml`` and
``check CONFIG.yml``.

The one place that maps errors to exit statuses: 0 on success, 1 for a bad
configuration, unusable storage, a failed collection or a check that found
problems (one line each on stdout; errors a one-line message on stderr,
never a traceback), 2 for bad usage (argparse).
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import ssl
import sys

from reference_runtime.errors import RegistryError

# Bytes of request body aiohttp buffers before it stops reading the socket:
# big enough that a blob upload keeps flowing while a chunk is written.
READ_BUFSIZE = 1 << 20
ACCESS_LOG_FORMAT = '%a "%r" %s %b %Tfs "%{User-Agent}i"'


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("container-conformance")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="refregistry", description="A reference OCI distribution registry.")
    parser.add_argument("--version", action="version", version=f"refregistry {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="serve the registry API")
    serve.add_argument("config", metavar="CONFIG.yml")
    gc = commands.add_parser("garbage-collect", help="delete blobs that no manifest needs")
    gc.add_argument("config", metavar="CONFIG.yml")
    gc.add_argument("-m", "--delete-untagged", action="store_true",
                    help="also delete manifests no tag reaches (never children of tagged indexes)")
    gc.add_argument("-d", "--dry-run", action="store_true", help="print what would be deleted, delete nothing")
    gc.add_argument("--grace-period", type=float, default=600.0, metavar="SECONDS",
                    help="spare blobs used (pushed, linked, checked) in the last SECONDS (default 600)")
    check = commands.add_parser("check", help="verify every blob's digest and every manifest's references")
    check.add_argument("config", metavar="CONFIG.yml")
    return parser


def serve(config) -> None:
    from aiohttp import web

    from reference_runtime.registry.app import Registry

    registry = Registry(config)
    ssl_context = None
    if config.tls:
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            ssl_context.load_cert_chain(config.tls_certificate, config.tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise RegistryError(f"cannot load http.tls certificate/key: {getattr(exc, 'strerror', None) or exc}") from None
    scheme = "https" if config.tls else "http"

    async def main():
        runner = web.AppRunner(registry.application(), access_log=logging.getLogger("refregistry.access")
                               if config.accesslog else None, access_log_format=ACCESS_LOG_FORMAT,
                               handle_signals=True, read_bufsize=READ_BUFSIZE)
        await runner.setup()
        site = web.TCPSite(runner, config.host, config.port, ssl_context=ssl_context, backlog=1024)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise RegistryError(f"cannot listen on {config.host}:{config.port}: {exc.strerror}") from None
        port = runner.addresses[0][1] if runner.addresses else config.port
        print(f"refregistry listening on {scheme}://{config.host}:{port}", file=sys.stderr, flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    # The default asyncio loop, not uvloop: uvloop lacks loop.sendfile(), and
    # aiohttp would then copy blobs through user space.
    try:
        asyncio.run(main())
    except (KeyboardInterrupt, SystemExit):
        pass


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    from reference_runtime.registry.config import load_config

    try:
        config = load_config(args.config)
        for warning in config.warnings:
            print(f"refregistry: warning: {warning}", file=sys.stderr)
        if args.command == "serve":
            serve(config)
        elif args.command == "check":
            from reference_runtime.registry.check import problems
            from reference_runtime.registry.storage import Storage

            found = problems(Storage(config.rootdirectory))
            print("".join(line + "\n" for line in found), end="")
            return 1 if found else 0
        else:
            from reference_runtime.registry import gc
            from reference_runtime.registry.storage import Storage

            if args.grace_period < 0:
                raise RegistryError("--grace-period must not be negative")
            gc.collect(Storage(config.rootdirectory), delete_untagged=args.delete_untagged,
                       dry_run=args.dry_run, grace=args.grace_period)
    except RegistryError as exc:
        print(f"refregistry: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

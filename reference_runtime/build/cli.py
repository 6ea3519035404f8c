"""``refengine build``, ``refengine image prune`` and ``refengine builder prune``.

refengine's CLI hands these commands here (:func:`handles` / :func:`main`);
flags are parsed by refengine's own flag parser (the specs below are added
to its table), so errors read the same as every other command's. Exit
statuses: 125 for flag errors (docker's CLI), 1 for a failed build, like
docker's classic builder.

Imports stay lazy: refengine's hot path (``run``) imports this module's
:func:`handles` only.
"""

from __future__ import annotations

import os
import sys

from ..engine.exits import HANDLED, UsageError, report, status_of

_SPECS = None


def handles(argv: list[str]) -> bool:
    """Whether the command line (after refengine's global flags) is one of ours."""
    return argv[:1] in (["build"], ["builder"]) or argv[:2] in (["image", "build"], ["image", "prune"])


def _specs():
    global _SPECS
    if _SPECS is None:
        from ..engine.flags import flag as _f
        from ..engine.flags import register

        _SPECS = {
            "build": ([_f("-t --tag", "tag", "list"), _f("-f --file", "file"), _f("--no-cache", "no_cache", "bool"),
                       _f("--build-arg", "build_arg", "list"), _f("--target", "target"),
                       _f("--label", "label", "list"), _f("-q --quiet", "quiet", "bool"),
                       _f("--rm", "rm", "bool", default=True), _f("--force-rm", "force_rm", "bool"),
                       _f("--pull", "pull", "bool"), _f("--platform", "platform"), _f("--iidfile", "iidfile"),
                       _f("--network", "network"), _f("--progress", "progress")],
                      True, 1, 1, "PATH | URL | -"),
            "image prune": ([_f("-a --all", "all", "bool"), _f("-f --force", "force", "bool"),
                             _f("--filter", "filter", "list")], True, 0, 0, ""),
            "builder prune": ([_f("-a --all", "all", "bool"), _f("-f --force", "force", "bool"),
                               _f("--filter", "filter", "list"), _f("--keep-storage", "keep_storage")],
                              True, 0, 0, ""),
        }
        register(_SPECS)
    return _SPECS


def main(argv: list[str], root_path: str) -> int:
    """Run one of our commands; *root_path* is refengine's state root."""
    from ..errors import RefError

    _specs()
    if argv[:1] == ["image"] or (argv[:1] == ["builder"] and argv[1:2] != ["build"]):
        if len(argv) < 2:
            report(f'"refengine {argv[0]}" requires a subcommand')
            return 125
        command, rest = f"{argv[0]} {argv[1]}", argv[2:]
        if command == "image build":
            command = "build"
    else:
        command, rest = "build", argv[2:] if argv[:2] == ["builder", "build"] else argv[1:]
    if command not in _SPECS:
        report(f'unknown command: "{command}"; see refengine --help')
        return 125
    from ..engine.flags import parse_command

    if "--help" in rest or "-h" in rest:
        flags, _, _, _, usage = _SPECS[command]
        sys.stdout.write(f"Usage:  refengine {command} [OPTIONS] {usage}\n\nOptions:\n"
                         + "".join(f"  {f.label}\n" for f in flags))
        return 0
    try:
        try:
            parsed = parse_command(command, rest)
        except RefError as exc:
            raise UsageError(str(exc)) from None
        if command == "build":
            return cmd_build(root_path, parsed)
        if command == "image prune":
            return cmd_image_prune(root_path, parsed)
        return cmd_builder_prune(root_path, parsed)
    except HANDLED as exc:
        return status_of(exc, command)


def _build_args(values: list[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for item in values:
        key, eq, value = item.partition("=")
        if not key:
            raise UsageError(f'invalid argument "{item}" for "--build-arg" flag: the name is empty')
        out[key] = value if eq else os.environ.get(key)
    return out


def _labels(values: list[str]) -> dict[str, str]:
    out = {}
    for item in values:
        key, _, value = item.partition("=")
        if not key:
            raise UsageError(f'invalid argument "{item}" for "--label" flag: the label name is empty')
        out[key] = value
    return out


def _source_date_epoch() -> int | None:
    value = os.environ.get("SOURCE_DATE_EPOCH")
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise UsageError(f"SOURCE_DATE_EPOCH must be a non-negative integer (seconds since 1970), not {value!r}")
    return int(value)


def cmd_build(root_path: str, p) -> int:
    from pathlib import Path

    from ..engine.state import Root
    from ..errors import StoreError
    from ..image import reference
    from ..image.store import ImageStore
    from .builder import Builder, BuildOptions, Progress
    from .context import load_context
    from .dockerfile import parse
    from .errors import BuildError

    tags = []
    for tag in p.opts["tag"]:
        try:
            tags.append(reference.normalise_tag(tag))
        except StoreError:
            raise UsageError(f'invalid argument "{tag}" for "-t, --tag" flag: invalid reference format') from None
    options = BuildOptions(tags=tags, no_cache=bool(p.opts["no_cache"]), build_args=_build_args(p.opts["build_arg"]),
                           target=p.opts["target"], labels=_labels(p.opts["label"]), quiet=bool(p.opts["quiet"]),
                           source_date_epoch=_source_date_epoch())
    root = Root(root_path)
    state_dir = Path(root.path) / "build"
    progress = Progress(options.quiet)
    _clean_stale(state_dir / "tmp")
    where = p.args[0]
    if where != "-" and (where.startswith("http://") or where.startswith("https://") or where.startswith("git@")):
        raise BuildError("refengine builds from a local directory or a tar on stdin, not from a URL or git repository")
    from_stdin = where == "-" or p.opts["file"] == "-"
    if where == "-" and p.opts["file"] == "-":
        raise UsageError("invalid argument: can't use stdin for both build context and dockerfile")
    ctx = load_context(where, p.opts["file"], state_dir, sys.stdin.buffer if from_stdin else None)
    try:
        df = parse(ctx.dockerfile)
        for warning in df.warnings:
            progress.line(f"[WARNING]: {warning}")
        if not options.quiet:
            from ..engine.format import human_size
            from .context import context_size

            progress.line(f"Sending build context to Docker daemon  {human_size(context_size(ctx.tree))}")
        store = ImageStore(Path(root.image))
        builder = Builder(store, state_dir, ctx, df, options, progress)
        image = builder.build()
        for tag in tags:
            try:
                current = store.resolve(tag).id
            except StoreError:
                current = None
            if current != image.id:  # an unchanged tag costs no index write (and no fsync)
                store.tag(image.id, tag)
        ctx.tree.hashes.save()
    finally:
        ctx.cleanup()
    if options.quiet:
        sys.stdout.write(image.id + "\n")
    else:
        progress.line(f"Successfully built {image.short_id}")
        for tag in tags:
            progress.line(f"Successfully tagged {reference.familiar(tag)}")
    if p.opts.get("iidfile"):
        with open(p.opts["iidfile"], "w") as f:
            f.write(image.id)
    return 0


def _clean_stale(tmp) -> None:
    """Work directories of builds that died (their pid is in the name)."""
    try:
        names = os.listdir(tmp)
    except FileNotFoundError:
        return
    for name in names:
        parts = name.split("-")
        pid = parts[1] if len(parts) > 2 else ""
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
            continue
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        from pathlib import Path

        from ..image.tarutil import remove_tree

        remove_tree(Path(tmp) / name)


def _confirm(question: str) -> bool:
    sys.stdout.write(question + " [y/N] ")
    sys.stdout.flush()
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")


def _filters(values: list[str]) -> None:
    for item in values:
        key, _, value = item.partition("=")
        if key == "dangling" and value.lower() in ("true", "1"):
            continue
        raise UsageError(f"invalid filter '{item}': refengine's prune understands dangling=true only")


def _layer_sizes(store) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for image in store.images(all=True):
        for chain, size in zip(image.chain_ids, image.layer_sizes):
            sizes[chain] = size
    return sizes


def cmd_image_prune(root_path: str, p) -> int:
    from pathlib import Path

    from ..engine.format import human_size
    from ..engine.imagecmds import images_in_use
    from ..engine.state import Root
    from ..image.store import ImageStore

    _filters(p.opts["filter"])
    warning = ("WARNING! This will remove all images without at least one container associated to them."
               if p.opts["all"] else "WARNING! This will remove all dangling images.")
    if not p.opts["force"] and not _confirm(warning + "\nAre you sure you want to continue?"):
        return 0
    root = Root(root_path)
    store = ImageStore(Path(root.image))
    lines, space = store.prune_report(dangling_only=not p.opts["all"], in_use=images_in_use(root))
    if lines:
        sys.stdout.write("Deleted Images:\n" + "".join(line + "\n" for line in lines) + "\n")
    sys.stdout.write(f"Total reclaimed space: {human_size(space)}\n")
    return 0


def cmd_builder_prune(root_path: str, p) -> int:
    """The build cache: dangling images that builds (or commits) made, i.e. untagged images
    with a parent and no children, with their untagged ancestors; plus the file-hash cache."""
    from pathlib import Path

    from ..engine.format import human_size
    from ..engine.imagecmds import images_in_use
    from ..engine.state import Root
    from ..errors import StoreError
    from ..image.store import ImageStore

    _filters(p.opts["filter"])
    if not p.opts["force"] and not _confirm("WARNING! This will remove all dangling build cache."
                                            "\nAre you sure you want to continue?"):
        return 0
    root = Root(root_path)
    store = ImageStore(Path(root.image))
    in_use = images_in_use(root)
    before = _layer_sizes(store)
    images = store.images(all=True)
    parents = {im.parent for im in images}
    deleted: list[str] = []
    for image in images:
        if image.repo_tags or image.repo_digests or image.id in parents or not image.parent or image.id in in_use:
            continue
        try:
            lines = store.remove(image.id, in_use=in_use)
        except StoreError:
            continue  # used or changed meanwhile: docker skips such cache records too
        deleted += [line.split(": ", 1)[1] for line in lines if line.startswith("Deleted: sha256:")
                    and line.split(": ", 1)[1] in {im.id for im in images}]
    after = _layer_sizes(store)
    space = sum(size for chain, size in before.items() if chain not in after)
    state_dir = Path(root.path) / "build"
    for name in ("hashes.json",):
        try:
            os.unlink(state_dir / name)
        except FileNotFoundError:
            pass
    _clean_stale(state_dir / "tmp")
    if deleted:
        sys.stdout.write("Deleted build cache objects:\n" + "".join(d + "\n" for d in deleted) + "\n")
    sys.stdout.write(f"Total reclaimed space: {human_size(space)}\n")
    return 0

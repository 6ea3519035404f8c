"""Image commands on the image store: load, save, images, rmi, tag,
history, import. The store does the work; this module parses docker's
options and prints docker's output."""

from __future__ import annotations

import sys
import time

from ..errors import ContainerError, RefError
from ..image.store import ImageStore
from .flags import Parsed
from .state import Root, parse_rfc3339


def images_in_use(root: Root) -> dict[str, list[tuple[str, bool]]]:
    """image ID -> [(container ID, running)] for rmi/prune conflict checks."""
    from .runtime import container_records

    uses: dict[str, list[tuple[str, bool]]] = {}
    for config, state in container_records(root):
        if config["Image"]:
            uses.setdefault(config["Image"], []).append((config["Id"], bool(state["Running"])))
    return uses


def _stdin_or_file(path: str | None):
    if path in (None, "-"):
        if sys.stdin.isatty():
            raise ContainerError("requested load from stdin, but stdin is empty")
        return sys.stdin.buffer
    try:
        return open(path, "rb")
    except OSError as exc:
        raise ContainerError(f"open {path}: {exc.strerror.lower()}") from None


def cmd_load(root: Root, store: ImageStore, p: Parsed) -> int:
    source = _stdin_or_file(p.opts.get("input"))
    try:
        lines = store.load(source)
    finally:
        if source is not sys.stdin.buffer:
            source.close()
    # -q only silences progress, which load never prints: docker prints these lines either way.
    sys.stdout.write("".join(line + "\n" for line in lines))
    return 0


def cmd_save(root: Root, store: ImageStore, p: Parsed) -> int:
    out_path = p.opts.get("output")
    if out_path:
        import os

        tmp = f"{out_path}.tmp-{os.getpid()}"
        try:
            with open(tmp, "wb") as out:
                store.save(p.args, out)
            os.replace(tmp, out_path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return 0
    if sys.stdout.isatty():
        raise ContainerError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    store.save(p.args, sys.stdout.buffer)
    sys.stdout.flush()
    return 0


def _has_label(image, selector: str) -> bool:
    """docker's ``label=KEY`` / ``label=KEY=VALUE`` image filter."""
    labels = (image.config.get("config") or {}).get("Labels") or {}
    key, sep, value = selector.partition("=")
    return key in labels and (not sep or labels[key] == value)


def cmd_images(root: Root, store: ImageStore, p: Parsed) -> int:
    from .format import format_rows, human_duration, human_size

    images = store.images(all=bool(p.opts.get("all")))
    for f in p.opts.get("filter") or []:
        key, _, value = f.partition("=")
        if key == "dangling":
            if value.lower() not in ("true", "false", "1", "0"):
                raise ContainerError(f"Invalid filter 'dangling=[{value}]'")
            wanted = value.lower() in ("true", "1")
            images = [i for i in images if i.dangling == wanted]
        elif key == "label":
            images = [i for i in images if _has_label(i, value)]
        elif key in ("before", "since"):
            pivot = store.resolve(value)
            images = [i for i in images if (i.created < pivot.created if key == "before" else i.created > pivot.created)]
        elif key != "reference":
            raise ContainerError(f"Invalid filter '{key}'")
    refs = [f.partition("=")[2] for f in p.opts.get("filter") or [] if f.startswith("reference=")]
    if p.args:
        refs.append(p.args[0])
    now = time.time()
    rows = []
    for img in images:
        tags = img.repo_tags or ["<none>:<none>"]
        digests = img.repo_digests or []
        for tag in tags:
            repo, _, t = tag.rpartition(":")
            if refs and not any(_ref_match(r, repo, t) for r in refs):
                continue
            digest = next((d.split("@", 1)[1] for d in digests if d.split("@")[0] == repo), "<none>")
            created = parse_rfc3339(img.created) if img.created and not img.created.startswith("0001") else 0
            rows.append({
                "Repository": repo, "Tag": t, "Digest": digest,
                "ID": img.id if p.opts.get("no_trunc") else img.short_id,
                "CreatedSince": (human_duration(now - created) + " ago") if created else "N/A",
                "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(created)),
                "Size": human_size(img.size), "VirtualSize": human_size(img.size),
                "SharedSize": "N/A", "UniqueSize": "N/A", "Containers": "N/A",
            })
    if p.opts.get("quiet"):
        seen: list[str] = []
        for r in rows:
            if r["ID"] not in seen:
                seen.append(r["ID"])
        sys.stdout.write("".join(i + "\n" for i in seen))
        return 0
    template = p.opts.get("format")
    if not template:
        cols = ["{{.Repository}}", "{{.Tag}}"] + (["{{.Digest}}"] if p.opts.get("digests") else []) + \
               ["{{.ID}}", "{{.CreatedSince}}", "{{.Size}}"]
        template = "table " + "\t".join(cols)
    headers = {"Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST", "ID": "IMAGE ID",
               "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE"}
    sys.stdout.write("".join(line + "\n" for line in format_rows(template, rows, headers)))
    return 0


def _ref_match(ref: str, repo: str, tag: str) -> bool:
    import fnmatch

    r_repo, sep, r_tag = ref.rpartition(":") if ":" in ref.split("/")[-1] else (ref, "", "")
    names = {repo, repo.split("/")[-1]}
    if repo.startswith("docker.io/library/"):
        names.add(repo[len("docker.io/library/"):])
    return any(fnmatch.fnmatch(n, r_repo) for n in names) and (not sep or fnmatch.fnmatch(tag, r_tag))


def cmd_rmi(root: Root, store: ImageStore, p: Parsed) -> int:
    uses = images_in_use(root)
    failed = False
    for ref in p.args:
        try:
            lines = store.remove(ref, force=bool(p.opts.get("force")), in_use=uses,
                                 prune=not p.opts.get("no_prune"))
            sys.stdout.write("".join(line + "\n" for line in lines))
        except RefError as exc:
            sys.stderr.write(f"refengine: {exc}\n")
            failed = True
    return 1 if failed else 0


def cmd_tag(root: Root, store: ImageStore, p: Parsed) -> int:
    store.tag(p.args[0], p.args[1])
    return 0


def cmd_history(root: Root, store: ImageStore, p: Parsed) -> int:
    from .format import format_rows, human_duration, human_size

    rows = store.history(p.args[0])
    now = time.time()
    out = []
    for r in rows:
        created = parse_rfc3339(r["created"]) if r["created"] else 0
        created_by = r["created_by"]
        if not p.opts.get("no_trunc") and len(created_by) > 45:
            created_by = created_by[:44] + "…"
        rid = r["id"]
        if rid != "<missing>" and not p.opts.get("no_trunc"):
            rid = rid.split(":", 1)[1][:12]
        out.append({"ID": rid, "CreatedSince": (human_duration(now - created) + " ago") if created else "N/A",
                    "CreatedAt": r["created"], "CreatedBy": created_by,
                    "Size": human_size(r["size"]) if p.opts.get("human", True) else str(r["size"]),
                    "Comment": r["comment"]})
    if p.opts.get("quiet"):
        sys.stdout.write("".join(r["ID"] + "\n" for r in out))
        return 0
    template = p.opts.get("format") or "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
    headers = {"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "CreatedBy": "CREATED BY",
               "Size": "SIZE", "Comment": "COMMENT"}
    sys.stdout.write("".join(line + "\n" for line in format_rows(template, out, headers)))
    return 0


def parse_changes(changes: list[str]) -> dict:
    """``--change`` Dockerfile instructions (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME,
    WORKDIR, STOPSIGNAL) applied to an image config section. Pure."""
    import json
    import shlex

    config: dict = {}
    for change in changes:
        instr, _, rest = change.strip().partition(" ")
        instr, rest = instr.upper(), rest.strip()

        def words() -> list[str]:
            if rest.startswith("["):
                try:
                    value = json.loads(rest)
                except ValueError:
                    raise ContainerError(f"invalid --change: {change}") from None
                return [str(v) for v in value]
            return ["/bin/sh", "-c", rest]

        if instr == "CMD":
            config["Cmd"] = words()
        elif instr == "ENTRYPOINT":
            config["Entrypoint"] = words()
        elif instr == "ENV":
            env = config.setdefault("Env", [])
            if "=" in rest.split(" ")[0]:
                env.extend(shlex.split(rest))
            else:
                k, _, v = rest.partition(" ")
                env.append(f"{k}={v.strip()}")
        elif instr == "LABEL":
            for item in shlex.split(rest):
                k, _, v = item.partition("=")
                config.setdefault("Labels", {})[k] = v
        elif instr == "EXPOSE":
            for port in rest.split():
                config.setdefault("ExposedPorts", {})[port if "/" in port else f"{port}/tcp"] = {}
        elif instr == "VOLUME":
            paths = json.loads(rest) if rest.startswith("[") else rest.split()
            for path in paths:
                config.setdefault("Volumes", {})[path] = {}
        elif instr == "USER":
            config["User"] = rest
        elif instr == "WORKDIR":
            config["WorkingDir"] = rest
        elif instr == "STOPSIGNAL":
            config["StopSignal"] = rest
        else:
            raise ContainerError(f"{instr} is not a valid change command")
    return config


def cmd_import(root: Root, store: ImageStore, p: Parsed) -> int:
    source = _stdin_or_file(p.args[0])
    try:
        image = store.import_tar(source, p.args[1] if len(p.args) > 1 else None,
                                 changes=parse_changes(p.opts.get("change") or []), message=p.opts.get("message") or "")
    finally:
        if source is not sys.stdin.buffer:
            source.close()
    sys.stdout.write(image.id + "\n")
    return 0

"""The build itself: stages and steps of a parsed Dockerfile on the image
store, with the classic builder's cache and progress output.

Every step makes an image whose parent is the previous step's (config-only
steps get an empty layer), so a cache hit is "a child of the current image
with the same ``created_by`` and the same config" (moby's probeCache);
``--no-cache`` skips the probe. RUN runs in a container (:mod:`.runstep`),
COPY/ADD/WORKDIR write into an overlay snapshot (:mod:`.fsops`), and the
store commits the snapshot's upper directory as the layer.

Reproducible builds: with ``SOURCE_DATE_EPOCH`` every ``created`` is that
time and every layer mtime is clamped to it; nothing random goes into a
config (container IDs appear only in the progress output).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..engine.etcfiles import DEFAULT_PATH_ENV
from ..errors import RefError
from ..faults import point as fault
from ..image.store import Image, ImageStore
from . import cachekey as ck
from .cachekey import BuildArgs
from .context import BuildContext, FileTree, HashCache, Source
from .contexthash import source_key
from .dockerfile import Dockerfile, Instruction, Stage, parse_duration
from .errors import BuildError
from .shellexpand import ExpandError, env_dict, expand, expand_words


@dataclass
class BuildOptions:
    tags: list[str] = field(default_factory=list)
    no_cache: bool = False
    build_args: dict[str, str | None] = field(default_factory=dict)
    target: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    quiet: bool = False
    source_date_epoch: int | None = None


class Progress:
    """The classic builder's output lines (nothing with ``-q``)."""

    def __init__(self, quiet: bool, stream=None):
        self.quiet = quiet
        self.stream = stream or sys.stdout

    def line(self, text: str) -> None:
        if not self.quiet:
            self.stream.write(text + "\n")
            self.stream.flush()

    @property
    def fd(self) -> int:
        """Where RUN output goes: our stdout, or nowhere with -q."""
        if self.quiet:
            return os.open("/dev/null", os.O_WRONLY | os.O_CLOEXEC)
        return self.stream.fileno()


class StageState:
    """What dispatching a stage's steps changes: the image so far and its config."""

    def __init__(self, image: Image | None, args: BuildArgs):
        self.image = image
        base = (image.config.get("config") if image else None) or {}
        self.config: dict = _deep_copy(base)
        self.shell: list[str] = list(self.config.get("Shell") or ck.DEFAULT_SHELL)
        self.cmd_set = False
        self.args = args
        self.author = (image.config.get("author", "") if image else "") or ""
        env = self.config.get("Env") or []
        if not any(e.startswith("PATH=") for e in env):
            self.config["Env"] = [*env, DEFAULT_PATH_ENV]

    @property
    def image_id(self) -> str:
        return self.image.id if self.image else ""

    def expand_env(self) -> dict[str, str]:
        env = env_dict(self.config.get("Env"))
        for name, value in self.args.allowed_values().items():
            env.setdefault(name, value)
        return env


def _deep_copy(obj):
    import json

    return json.loads(json.dumps(obj))


def _short(image_id: str) -> str:
    return image_id.split(":", 1)[-1][:12]


class Builder:
    def __init__(self, store: ImageStore, state_dir: Path, context: BuildContext, dockerfile: Dockerfile,
                 options: BuildOptions, progress: Progress):
        self.store, self.state_dir, self.ctx, self.df = store, state_dir, context, dockerfile
        self.options, self.out = options, progress
        self.work_root = str(state_dir / "tmp")
        os.makedirs(self.work_root, exist_ok=True)
        self.stage_images: dict[int, Image | None] = {}
        self.step_no = 0
        self.total = 0
        self.created = None
        if options.source_date_epoch is not None:
            self.created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(options.source_date_epoch))

    # -- the whole build -----------------------------------------------------

    def stages_to_build(self) -> list[Stage]:
        stages = list(self.df.stages)
        if self.options.target is not None:
            # docker's --target names a stage; an index is not accepted
            index = next((s.index for s in stages if s.name == self.options.target.lower()), None)
            if index is None:
                raise BuildError(f"failed to reach build target {self.options.target} in Dockerfile")
            stages = stages[:index + 1]
        return stages

    def build(self) -> Image:
        stages = self.stages_to_build()
        label_step = self._label_instruction()
        meta = BuildArgs(self.options.build_args)
        self.total = len(self.df.meta_args) + sum(1 + len(s.steps) for s in stages) + (1 if label_step else 0)
        for ins in self.df.meta_args:
            self._step_header(ins)
            for i in range(0, len(ins.args), 2):
                name, default = ins.args[i], ins.args[i + 1]
                if default is not None:
                    default = self._expand(ins, default, meta.meta_values())
                meta.add_meta(name, default)
        self._prevalidate(stages, meta)
        image: Image | None = None
        for stage in stages:
            steps = list(stage.steps)
            if label_step is not None and stage is stages[-1]:
                steps.append(label_step)
            image = self._build_stage(stage, steps, meta.for_stage())
            self.stage_images[stage.index] = image
        unused = meta.unused()
        if unused:
            self.out.line(f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed")
        if image is None:
            # FROM scratch with no steps: docker refuses to make an image of nothing
            raise BuildError("No image was generated. Is your Dockerfile empty?")
        return image

    def _label_instruction(self) -> Instruction | None:
        labels = self.options.labels
        if not labels:
            return None
        args: list[str] = []
        shown = []
        for key in sorted(labels):
            args += [_single_quote(key), _single_quote(labels[key])]
            shown.append(f"{ck.go_quote(key)}='{labels[key]}'")
        return Instruction("LABEL", tuple(args), 0, "LABEL " + " ".join(shown))

    def _prevalidate(self, stages: list[Stage], meta: BuildArgs) -> None:
        """What can be checked before the first step runs: base images and --from images."""
        names = {s.name for s in self.df.stages if s.name}
        for stage in stages:
            base = self._expand(stage.from_instruction, stage.base, meta.meta_values())
            if not base:
                raise BuildError(f"Dockerfile line {stage.line}: FROM: the base image name is empty")
            if base.lower() in names and self.df.stage_index(base) is not None \
                    and self.df.stage_index(base) < stage.index:
                continue
            if base.lower() == "scratch":
                continue
            self._image_for(stage.from_instruction, base, "FROM")
            for ins in stage.steps:
                ref = ins.flag("from") if ins.keyword == "COPY" else None
                if ref is None or self.df.stage_index(ref) is not None:
                    continue
                self._image_for(ins, ref, "COPY --from")

    def _image_for(self, ins: Instruction, ref: str, what: str) -> Image:
        try:
            return self.store.resolve(ref)
        except RefError:
            raise BuildError(f"Dockerfile line {ins.line}: {what} {ref}: no such image or build stage "
                             "(refengine never pulls: load or build the image first)") from None

    # -- one stage -----------------------------------------------------------

    def _build_stage(self, stage: Stage, steps: list[Instruction], args: BuildArgs) -> Image | None:
        ins = stage.from_instruction
        self._step_header(ins)
        base_ref = self._expand(ins, stage.base, args.meta_values())
        index = self.df.stage_index(base_ref)
        if index is not None and index < stage.index and base_ref.lower() == (self.df.stages[index].name or ""):
            image = self.stage_images.get(index)
        elif base_ref.lower() == "scratch":
            image = None
            self.out.line(" ---> ")
        else:
            image = self._image_for(ins, base_ref, "FROM")
        if image is not None:
            self.out.line(f" ---> {_short(image.id)}")
        state = StageState(image, args)
        triggers = list(state.config.get("OnBuild") or [])
        if triggers:
            state.config["OnBuild"] = None
            self.out.line(f"# Executing {len(triggers)} build trigger{'s' if len(triggers) > 1 else ''}")
            from .dockerfile import parse_instruction

            for text in triggers:
                try:
                    trigger = parse_instruction(ins.line, text, self.df.escape)
                except BuildError as exc:
                    raise BuildError(f"Dockerfile line {ins.line}: ONBUILD trigger of the base image: {exc}") from None
                self._dispatch(state, trigger)
        for step in steps:
            self._step_header(step)
            self._dispatch(state, step)
        return state.image

    def _step_header(self, ins: Instruction) -> None:
        self.step_no += 1
        self.out.line(f"Step {self.step_no}/{self.total} : {ins.original}")

    def _expand(self, ins: Instruction, text: str, env: dict[str, str]) -> str:
        try:
            return expand(text, env, self.df.escape)
        except ExpandError as exc:
            raise BuildError(f"Dockerfile line {ins.line}: {ins.keyword}: {exc}") from None

    def _expand_words(self, ins: Instruction, text: str, env: dict[str, str]) -> list[str]:
        try:
            return expand_words(text, env, self.df.escape)
        except ExpandError as exc:
            raise BuildError(f"Dockerfile line {ins.line}: {ins.keyword}: {exc}") from None

    # -- steps -----------------------------------------------------------------

    def _dispatch(self, state: StageState, ins: Instruction) -> None:
        try:
            handler = getattr(self, "_do_" + ins.keyword.lower())
            handler(state, ins)
        except BuildError as exc:
            message = str(exc)
            if not message.startswith("Dockerfile"):
                message = f"Dockerfile line {ins.line}: {message}" if ins.line else message
            raise BuildError(message) from None
        except RefError as exc:
            raise BuildError(f"Dockerfile line {ins.line}: {exc}") from None
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            raise BuildError(f"Dockerfile line {ins.line}: {ins.keyword} failed: {exc.strerror or exc}{where}") from None

    def _config_step(self, state: StageState, comment: str) -> None:
        """A step that only changes the config: probe the cache, else commit an empty layer."""
        created_by = ck.nop(state.shell, comment)
        if self._probe(state, created_by):
            return
        cid = os.urandom(32).hex()
        self.out.line(f" ---> Running in {cid[:12]}")
        self._commit(state, None, created_by)
        self.out.line(f"Removing intermediate container {cid[:12]}")
        self.out.line(f" ---> {_short(state.image_id)}")

    def _next_config(self, state: StageState) -> dict:
        config = dict(state.config)
        config["Image"] = state.image_id
        return config

    def _probe(self, state: StageState, created_by: str) -> bool:
        """moby's probeCache: the newest child of the current image made by the same step."""
        if self.options.no_cache:
            return False
        parent = state.image_id
        want = ck.cache_key(parent, created_by, {"config": self._next_config(state), "author": state.author})
        base_history = len((state.image.config.get("history") if state.image else None) or [])
        base_diffs = list(state.image.diff_ids) if state.image else []
        best: Image | None = None
        for child in self.store.children(parent):
            history = child.config.get("history") or []
            if len(history) != base_history + 1 or child.diff_ids[:len(base_diffs)] != base_diffs:
                continue
            have = ck.cache_key(child.parent, history[-1].get("created_by", ""),
                                {"config": child.config.get("config"), "author": child.config.get("author") or ""})
            if have == want and (best is None or child.created > best.created):
                best = child
        if best is None:
            return False
        state.image = best
        self.out.line(" ---> Using cache")
        self.out.line(f" ---> {_short(best.id)}")
        return True

    def _commit(self, state: StageState, upper: str | None, created_by: str) -> None:
        image = self.store.commit(state.image, Path(upper) if upper else None, config=self._next_config(state),
                                  author=state.author, created_by=created_by, created=self.created,
                                  clamp_mtime=self.options.source_date_epoch)
        state.image = image
        fault("build:step-committed")

    # config-only instructions

    def _do_env(self, state: StageState, ins: Instruction) -> None:
        env = list(state.config.get("Env") or [])
        shown = []
        for i in range(0, len(ins.args), 2):
            current = state.expand_env()
            key = self._expand(ins, ins.args[i], current)
            value = self._expand(ins, ins.args[i + 1], current)
            if not key:
                raise BuildError("ENV names can not be blank")
            item = f"{key}={value}"
            shown.append(item)
            for j, e in enumerate(env):
                if e.split("=", 1)[0] == key:
                    env[j] = item
                    break
            else:
                env.append(item)
            state.config["Env"] = env
        self._config_step(state, "ENV " + " ".join(shown))

    def _do_label(self, state: StageState, ins: Instruction) -> None:
        env = state.expand_env()
        labels = dict(state.config.get("Labels") or {})
        shown = []
        for i in range(0, len(ins.args), 2):
            key = self._expand(ins, ins.args[i], env)
            value = self._expand(ins, ins.args[i + 1], env)
            if not key:
                raise BuildError("LABEL names can not be blank")
            labels[key] = value
            shown.append(f"{key}={value}")
        state.config["Labels"] = labels
        self._config_step(state, "LABEL " + " ".join(shown))

    def _do_maintainer(self, state: StageState, ins: Instruction) -> None:
        state.author = ins.args[0]
        self._config_step(state, "MAINTAINER " + ins.args[0])

    def _do_arg(self, state: StageState, ins: Instruction) -> None:
        shown = []
        for i in range(0, len(ins.args), 2):
            name, default = ins.args[i], ins.args[i + 1]
            if default is not None:
                default = self._expand(ins, default, state.expand_env())
            state.args.declare(name, default)
            shown.append(name if default is None else f"{name}={default}")
        self._config_step(state, "ARG " + " ".join(shown))

    def _do_user(self, state: StageState, ins: Instruction) -> None:
        user = self._expand(ins, ins.args[0], state.expand_env())
        if not user:
            raise BuildError("USER requires exactly one argument")
        state.config["User"] = user
        self._config_step(state, "USER " + user)

    def _do_stopsignal(self, state: StageState, ins: Instruction) -> None:
        from ..engine.flags import parse_signal

        sig = self._expand(ins, ins.args[0], state.expand_env())
        try:
            parse_signal(sig)
        except ValueError:
            raise BuildError(f"Invalid signal: {sig}") from None
        state.config["StopSignal"] = sig
        self._config_step(state, "STOPSIGNAL " + sig)

    def _do_expose(self, state: StageState, ins: Instruction) -> None:
        env = state.expand_env()
        ports = dict(state.config.get("ExposedPorts") or {})
        words = []
        for word in ins.args:
            for port in self._expand_words(ins, word, env):
                words.append(port)
                for key in _port_keys(port):
                    ports[key] = {}
        state.config["ExposedPorts"] = ports
        self._config_step(state, "EXPOSE " + " ".join(words))

    def _do_volume(self, state: StageState, ins: Instruction) -> None:
        env = state.expand_env()
        volumes = dict(state.config.get("Volumes") or {})
        paths = []
        for word in ins.args:
            path = self._expand(ins, word, env)
            if not path.strip():
                raise BuildError("VOLUME specified can not be an empty string")
            volumes[path] = {}
            paths.append(path)
        state.config["Volumes"] = volumes
        self._config_step(state, "VOLUME [" + " ".join(paths) + "]")

    def _do_shell(self, state: StageState, ins: Instruction) -> None:
        state.shell = list(ins.args)
        state.config["Shell"] = list(ins.args)
        self._config_step(state, "SHELL [" + " ".join(ins.args) + "]")

    def _command(self, state: StageState, ins: Instruction) -> list[str]:
        return list(ins.args) if ins.json else [*state.shell, ins.args[0]]

    def _do_cmd(self, state: StageState, ins: Instruction) -> None:
        cmd = self._command(state, ins)
        state.config["Cmd"] = cmd
        state.cmd_set = True
        self._config_step(state, "CMD " + ck.go_quote_list(cmd))

    def _do_entrypoint(self, state: StageState, ins: Instruction) -> None:
        entrypoint = self._command(state, ins)
        state.config["Entrypoint"] = entrypoint
        if not state.cmd_set:
            state.config["Cmd"] = None
        self._config_step(state, "ENTRYPOINT " + ck.go_quote_list(entrypoint))

    def _do_healthcheck(self, state: StageState, ins: Instruction) -> None:
        if ins.args == ("NONE",) and not ins.json:
            health = {"Test": ["NONE"]}
            times = (0.0, 0.0, 0.0, 0)
        else:
            test = ["CMD", *ins.args] if ins.json else ["CMD-SHELL", ins.args[0]]
            times = tuple(parse_duration(ins.flag(n) or "0") for n in ("interval", "timeout", "start-period"))
            retries = int(ins.flag("retries") or 0)
            health = {"Test": test}
            for key, value in zip(("Interval", "Timeout", "StartPeriod"), times):
                if value:
                    health[key] = round(value * 1e9)
            if retries:
                health["Retries"] = retries
            times = (*times, retries)
        state.config["Healthcheck"] = health
        self._config_step(state, ck.healthcheck_comment(health["Test"], *times))

    def _do_onbuild(self, state: StageState, ins: Instruction) -> None:
        expression = ins.args[0]
        state.config["OnBuild"] = [*(state.config.get("OnBuild") or []), expression]
        self._config_step(state, "ONBUILD " + expression)

    def _do_from(self, state: StageState, ins: Instruction) -> None:  # pragma: no cover - stages split FROM
        raise BuildError("FROM inside a stage")

    # steps with a layer

    def _do_workdir(self, state: StageState, ins: Instruction) -> None:
        path = self._expand(ins, ins.args[0], state.expand_env())
        current = state.config.get("WorkingDir") or "/"
        workdir = os.path.normpath(os.path.join(current, path))
        workdir = "/" + workdir.lstrip("/") if workdir != "/" else "/"
        state.config["WorkingDir"] = workdir
        created_by = ck.nop_joined(state.shell, "WORKDIR " + workdir)
        if self._probe(state, created_by):
            return
        from . import fsops

        snap = fsops.Snapshot(self.work_root, self._layers(state))
        try:
            fsops.mkdir_all(snap.merged, workdir, (0, 0))
            snap.unmount()
            cid = os.urandom(32).hex()
            self.out.line(f" ---> Running in {cid[:12]}")
            self._commit(state, None if snap.empty() else snap.upper, created_by)
            self.out.line(f"Removing intermediate container {cid[:12]}")
        finally:
            snap.close()
        self.out.line(f" ---> {_short(state.image_id)}")

    def _layers(self, state: StageState) -> list[str]:
        if state.image is None:
            return []
        return [str(d) for d in reversed(self.store.layer_dirs(state.image))]

    def _do_run(self, state: StageState, ins: Instruction) -> None:
        from . import runstep

        cmd = self._command(state, ins)
        env = list(state.config.get("Env") or [])
        run_env = state.args.run_env(env)
        created_by = ck.run_created_by(cmd, state.args.key_env(run_env))
        if self._probe(state, created_by):
            return
        cid = os.urandom(32).hex()
        self.out.line(f" ---> Running in {cid[:12]}")
        fd = self.out.fd
        volumes = self._volume_copies(state)
        try:
            result = runstep.run(self.work_root, self._layers(state), cmd, env + run_env,
                                 user=state.config.get("User") or "", workdir=state.config.get("WorkingDir") or "",
                                 container_id=cid, output_fd=fd, volumes=volumes,
                                 root_path=str(self.state_dir.parent))
        finally:
            if self.out.quiet:
                os.close(fd)
            if volumes:
                import shutil

                shutil.rmtree(os.path.dirname(next(iter(volumes.values()))), ignore_errors=True)
        try:
            if result.status != 0:
                shown = " ".join(cmd) if not ins.json else ck.go_quote_list(cmd)
                detail = f" ({result.message})" if result.message else ""
                raise BuildError(f"The command '{shown}' returned a non-zero code: {result.status}{detail}")
            self._commit(state, None if result.empty() else result.upper, created_by)
        finally:
            result.close()
        self.out.line(f"Removing intermediate container {cid[:12]}")
        self.out.line(f" ---> {_short(state.image_id)}")

    def _volume_copies(self, state: StageState) -> dict[str, str]:
        """The image's VOLUMEs for a RUN: throwaway copies of what the image holds there, so
        that, as with docker's anonymous volumes, changes under them stay out of the layer."""
        paths = sorted((state.config.get("Volumes") or {}).keys())
        if not paths:
            return {}
        import tempfile

        from . import fsops

        base = tempfile.mkdtemp(prefix=f"vol-{os.getpid()}-", dir=self.work_root)
        out: dict[str, str] = {}
        view = fsops.Snapshot(self.work_root, self._layers(state), prefix="view")
        try:
            for i, path in enumerate(paths):
                target = os.path.join(base, str(i))
                source = fsops.secure_join(view.merged, path)
                if os.path.isdir(source):
                    fsops.clone_tree(source, target)
                else:
                    os.mkdir(target, 0o755)
                out[os.path.normpath(path)] = target
        finally:
            view.close()
        return out

    def _do_copy(self, state: StageState, ins: Instruction) -> None:
        self._copy(state, ins, "COPY")

    def _do_add(self, state: StageState, ins: Instruction) -> None:
        self._copy(state, ins, "ADD")

    def _copy(self, state: StageState, ins: Instruction, keyword: str) -> None:
        env = state.expand_env()
        words = [self._expand(ins, w, env) for w in ins.args]
        raw_sources, dest = words[:-1], words[-1]
        chown = ins.flag("chown")
        chown = self._expand(ins, chown, env) if chown else None
        chmod_text = ins.flag("chmod")
        chmod = _parse_chmod(chmod_text) if chmod_text else None
        workdir = state.config.get("WorkingDir") or "/"
        dest_path = dest if dest.startswith("/") else os.path.join(workdir, dest)
        dest_is_dir = dest.endswith("/") or dest.endswith("/.") or dest in (".", "")
        if dest_is_dir and not dest_path.endswith("/"):
            dest_path += "/"
        views: list = []
        downloads: list[str] = []
        try:
            sources = self._sources(ins, keyword, raw_sources, views, downloads)
            if len(sources) > 1 and not dest_path.endswith("/"):
                raise BuildError(f"When using {keyword} with more than one source file, the destination must be "
                                 "a directory and end with a /")
            hashed = []
            for src_tree, source, _ in sources:
                hashed.append(src_tree.hash_source(source))
            key = source_key(hashed)
            comment = ck.copy_comment(keyword, key, dest_path.rstrip("/") + "/" if dest_is_dir else dest_path,
                                      chown, chmod_text)
            created_by = ck.nop_joined(state.shell, comment)
            if self._probe(state, created_by):
                return
            from . import fsops  # only on a miss: ctypes and the mount code cost milliseconds

            snap = fsops.Snapshot(self.work_root, self._layers(state))
            try:
                owner = fsops.resolve_chown(snap.merged, chown) if chown else (0, 0)
                for src_tree, source, unpack in sources:
                    self._copy_one(snap.merged, src_tree, source, dest_path, owner if chown else None, chmod, unpack)
                snap.unmount()
                self._commit(state, None if snap.empty() else snap.upper, created_by)
            finally:
                snap.close()
        finally:
            for view in views:
                view.close()
            for d in downloads:
                import shutil

                shutil.rmtree(d, ignore_errors=True)
        self.out.line(f" ---> {_short(state.image_id)}")

    def _sources(self, ins: Instruction, keyword: str, raw_sources: list[str], views: list,
                 downloads: list[str]) -> list[tuple[FileTree, Source, bool]]:
        """(tree, source, unpack) for each COPY/ADD source; *unpack*: a local archive ADD extracts.
        Mounted ``--from`` views and download directories are appended to *views*/*downloads*."""
        ref = ins.flag("from") if keyword == "COPY" else None
        if ref is not None:
            index = self.df.stage_index(ref)
            image = self.stage_images.get(index) if index is not None else self._image_for(ins, ref, "COPY --from")
            if index is not None and index not in self.stage_images:
                raise BuildError(f"COPY --from={ref}: stage {ref} was not built before this one")
            lowers = [str(d) for d in reversed(self.store.layer_dirs(image))] if image else []
            from . import fsops

            view = fsops.Snapshot(self.work_root, lowers, prefix="from")
            views.append(view)
            tree = FileTree(view.merged, None, HashCache(None))
        else:
            tree = self.ctx.tree
        sources: list[tuple[FileTree, Source, bool]] = []
        for raw in raw_sources:
            if keyword == "ADD" and _is_url(raw):
                from . import fsops

                directory = os.path.join(self.work_root, f"dl-{os.getpid()}-{os.urandom(6).hex()}")
                os.makedirs(directory)
                downloads.append(directory)
                path, name, _ = fsops.download(raw, directory)
                final = os.path.join(directory, name)
                os.rename(path, final)
                sources.append((FileTree(directory, None, HashCache(None)), Source(final, name, False), False))
                continue
            for source in tree.resolve(raw, keyword):
                unpack = keyword == "ADD" and not source.is_dir and _is_archive(source.path)
                sources.append((tree, source, unpack))
        return sources

    def _copy_one(self, rootfs: str, tree: FileTree, source: Source, dest: str, owner, chmod, unpack: bool) -> None:
        from . import fsops

        if unpack:
            fsops.extract_archive(source.path, rootfs, dest if dest.endswith("/") else dest + "/", owner, chmod)
            return
        if source.is_dir:
            fsops.copy_tree(tree, source, rootfs, dest.rstrip("/") or "/", owner or (0, 0), chmod)
            return
        st = os.stat(source.path)
        target = dest
        if dest.endswith("/") or fsops.is_dir_in(rootfs, dest):
            target = os.path.join(dest, os.path.basename(source.name or source.path))
        fsops.copy_file(source.path, st, rootfs, target, owner or (0, 0), chmod)


def _is_archive(path: str) -> bool:
    from .fsops import is_archive

    return is_archive(path)


def _parse_chmod(text: str) -> int:
    from .fsops import parse_chmod

    return parse_chmod(text)


def _is_url(text: str) -> bool:
    return text.startswith("http://") or text.startswith("https://")


def _single_quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def _port_keys(spec: str) -> list[str]:
    """``8080``, ``8080/udp``, ``8000-8002/tcp`` -> ExposedPorts keys."""
    port, _, proto = spec.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in ("tcp", "udp", "sctp"):
        raise BuildError(f"invalid proto: {proto}")
    start, _, end = port.partition("-")
    if not start.isdigit() or (end and not end.isdigit()):
        raise BuildError(f"invalid containerPort: {port}")
    lo, hi = int(start), int(end or start)
    if hi < lo or hi > 65535:
        raise BuildError(f"invalid range specified for container port: {port}")
    return [f"{p}/{proto}" for p in range(lo, hi + 1)]

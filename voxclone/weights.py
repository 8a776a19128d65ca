"""Model weights that do not ship on PyPI: what an engine needs on disk (a manifest entry) and where it is.

An engine that needs downloaded weights declares them as `ModelSpec`s: its files, each with the URL
it comes from at a pinned revision, its SHA-256 and size, and the weights' licence. They live in
`settings.weights_dir / NAME` (filled by `voxclone models pull NAME`), or in a folder the user filled
by hand (`settings.model_paths[NAME]`, `--model-path NAME=PATH`). voxclone.models downloads them;
engines only ask whether they are present and where.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .settings import Settings


@dataclass(frozen=True)
class ModelFile:
    """One file of a model: where it goes in the model's folder, where it comes from, what it must hash to."""

    path: str
    url: str
    sha256: str | None = None  # None: no SHA-256 pinned in this release
    size: int | None = None
    md5: str | None = None  # a weaker pin, where the upstream publishes only that (coqui's Bark checkpoints)
    required: bool = True  # False: extras the model runs without (stock speaker prompts)

    @property
    def pinned(self) -> bool:
        return bool(self.sha256 or self.md5)


@dataclass(frozen=True)
class ModelSpec:
    """A model an engine can load: its files, licence, and a notice to show before it is fetched or enabled."""

    name: str
    engine: str
    description: str
    licence: str
    files: tuple[ModelFile, ...]
    notice: str = ""  # e.g. a non-commercial licence's terms, shown by `models pull` and `models list`
    revision: str = ""  # the upstream repository revision the URLs are pinned to
    tags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def size(self) -> int | None:
        sizes = [f.size for f in self.files]
        return None if any(s is None for s in sizes) else sum(s for s in sizes if s is not None)

    def fix(self) -> str:
        return f"voxclone models pull {self.name}"


def model_folder(settings: Settings, name: str) -> Path:
    """Where model `name`'s files are: a folder the user pointed at, else the pulled copy."""
    return settings.model_paths.get(name) or settings.weights_dir / name


def missing_files(spec: ModelSpec, folder: Path, *, exact: bool = True) -> list[str]:
    """Files of `spec` not (fully) in `folder`: absent, or, with `exact`, of another size than pinned."""
    missing = []
    for item in spec.files:
        path = folder / item.path
        if not item.required:
            continue
        if not path.is_file() or (exact and item.size is not None and path.stat().st_size != item.size):
            missing.append(item.path)
    return missing


def locate(settings: Settings, spec: ModelSpec) -> tuple[Path, list[str]]:
    """(folder, missing files) of a model. Weights a user copied in (`model_paths`) may be their own
    fine-tune: they only need every file present; a pulled copy must have the pinned sizes too."""
    folder = model_folder(settings, spec.name)
    return folder, missing_files(spec, folder, exact=spec.name not in settings.model_paths)

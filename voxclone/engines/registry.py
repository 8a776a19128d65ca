"""Which engines this installation has: every `voxclone.engines` entry point, built from the one Settings.

An engine is a module plus one entry-point line (pyproject.toml, or a plugin package's own). An engine
that fails to import, or that the settings disable, is still listed, as unavailable and saying why,
so /health, the model list and a request for one of its voices can tell the user what to do.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from ..errors import BadInput, EngineUnavailable
from ..settings import Settings
from .base import Availability, Engine

log = logging.getLogger("voxclone.engines")
GROUP = "voxclone.engines"


class Engines(Mapping[str, Engine]):
    """The engines that were built (by name), and the availability of every engine known."""

    def __init__(self, built: dict[str, Engine], missing: dict[str, Availability] | None = None) -> None:
        self._built = built
        self._missing = dict(missing or {})

    def __getitem__(self, name: str) -> Engine:
        return self._built[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._built)

    def __len__(self) -> int:
        return len(self._built)

    def availability(self, name: str) -> Availability:
        if name in self._missing:
            return self._missing[name]
        if name not in self._built:
            return Availability("disabled", "no such engine is installed")
        return self._built[name].availability()

    def title(self, name: str) -> str:
        """The engine's name as people write it (an engine that could not be built: its entry-point name)."""
        engine = self._built.get(name)
        return (engine.title if engine is not None else "") or name

    def all_names(self) -> list[str]:
        return sorted({*self._built, *self._missing})

    def usable(self, name: str) -> Engine:
        """The engine by name if it can run here; EngineUnavailable saying how to fix it otherwise."""
        availability = self.availability(name)
        if not availability.ready:
            raise EngineUnavailable(availability.message(name))
        return self._built[name]

    def voice_from_file(self, path: Path) -> tuple[str, dict[str, Any]]:
        """(engine name, voice params) for a voice model file on disk; BadInput if no engine reads it."""
        for name, engine in self._built.items():
            params = engine.voice_from_file(path)
            if params is not None:
                return name, params
        suffixes = sorted({s for e in self._built.values() for s in e.capabilities.voice_files})
        raise BadInput(f"{path}: no installed engine reads this file (voice model files: {', '.join(suffixes)})")


def build_engines(settings: Settings) -> Engines:
    """Every registered engine, built but not loaded; disabled or broken ones are listed as unavailable."""
    built: dict[str, Engine] = {}
    missing: dict[str, Availability] = {}
    for entry in entry_points(group=GROUP):
        if entry.name in settings.disabled_engines:
            missing[entry.name] = Availability("disabled", "disabled by VOXCLONE_DISABLED_ENGINES")
            continue
        try:
            engine_class = entry.load()
            built[entry.name] = engine_class.from_settings(settings)
        except Exception as e:  # a third-party plugin must not stop the server; say why it is missing
            log.warning("engine %s could not be loaded: %s", entry.name, e)
            missing[entry.name] = Availability("disabled", f"it failed to load ({type(e).__name__}: {e})")
    return Engines(built, missing)

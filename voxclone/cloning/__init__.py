"""Voice cloning: the contract (base.py), upload preparation (prepare.py), and the installed cloners.

Cloners are found through the `voxclone.cloners` entry points, each for one engine and tier.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

from ..errors import BadInput
from ..settings import Settings
from .base import ClonedVoice, CloneFailed, CloneJob, Cloner, EngineCalls, NotBetter, Progress, Reference, no_progress

__all__ = [
    "CloneFailed",
    "CloneJob",
    "ClonedVoice",
    "Cloner",
    "Cloners",
    "EngineCalls",
    "NotBetter",
    "Progress",
    "Reference",
    "build_cloners",
    "no_progress",
]
log = logging.getLogger("voxclone.cloning")
GROUP = "voxclone.cloners"


class Cloners:
    """The installed cloners, by (engine, tier)."""

    def __init__(self, cloners: list[Cloner]) -> None:
        self._by_key = {(c.engine, c.tier): c for c in cloners}

    def get(self, engine: str, tier: str) -> Cloner:
        cloner = self._by_key.get((engine, tier))
        if cloner is None:
            offered = ", ".join(f"{e}/{t}" for e, t in sorted(self._by_key)) or "none"
            raise BadInput(f"no {tier!r} cloning for the {engine} engine is installed (installed: {offered})")
        return cloner

    def tiers(self, engine: str) -> list[str]:
        return sorted(t for e, t in self._by_key if e == engine)

    def refining_tiers(self) -> set[str]:
        """Tiers that refine a voice's instant clone (they run after it, as their own jobs)."""
        return {t for (_, t), c in self._by_key.items() if c.refines}


def build_cloners(settings: Settings) -> Cloners:
    cloners = []
    for entry in entry_points(group=GROUP):
        try:
            cloners.append(entry.load().from_settings(settings))
        except Exception as e:  # a broken plugin must not stop the server
            log.warning("cloner %s could not be loaded: %s", entry.name, e)
    return Cloners(cloners)

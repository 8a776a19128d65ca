"""Voice filters (base.py), found through the `voxclone.filters` entry points, built from a voice's specs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from ..errors import BadInput
from .base import Filter, FilterChain

__all__ = ["Filter", "FilterChain", "build_chain", "filter_kinds"]
GROUP = "voxclone.filters"


@cache
def filter_kinds() -> dict[str, type[Filter]]:
    """Every registered filter class by its kind."""
    kinds: dict[str, type[Filter]] = {}
    for entry in entry_points(group=GROUP):
        cls = entry.load()
        kinds[cls.kind] = cls
    return kinds


def build_chain(specs: Sequence[Mapping[str, Any]]) -> FilterChain:
    """The chain a voice's stored specs describe; BadInput naming an unknown or malformed filter."""
    kinds = filter_kinds()
    chain = []
    for spec in specs:
        kind = spec.get("kind")
        if kind not in kinds:
            raise BadInput(f"unknown voice filter {kind!r}; installed: {sorted(kinds)}")
        chain.append(kinds[str(kind)].from_spec(spec))
    return FilterChain(chain)

"""The voice-filter contract: audio in, audio out, after any engine, described by a JSON spec.

A voice carries a chain of filters (an equaliser and a shape mapping fitted when it was cloned; a
tone-colour converter later). The speech core applies the chain to every piece the voice speaks,
whatever engine made it, so engines know nothing of filters.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np


class Filter(ABC):
    """One step of a voice's filter chain. `apply` keeps the length and rate; it may run on any thread."""

    kind: ClassVar[str]

    @classmethod
    @abstractmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Filter:
        """Build from the stored JSON spec; BadInput when the spec is not one of this kind's."""

    @abstractmethod
    def spec(self) -> dict[str, Any]:
        """The JSON stored with the voice (with `kind`), from which `from_spec` rebuilds this filter."""

    @abstractmethod
    def apply(self, audio: np.ndarray, sample_rate: int) -> np.ndarray: ...


class FilterChain:
    """Filters applied in order; an empty chain returns the audio unchanged."""

    def __init__(self, filters: list[Filter] | None = None) -> None:
        self.filters = list(filters or [])

    def __bool__(self) -> bool:
        return bool(self.filters)

    def apply(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        for step in self.filters:
            audio = step.apply(audio, sample_rate)
        return audio

    def specs(self) -> list[dict[str, Any]]:
        return [step.spec() for step in self.filters]
